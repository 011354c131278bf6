"""Packed ReActNet-A inference on the XNOR kernels, and the evaluator's ``--packed auto|on|off`` switch.

:class:`PackedReActNet` replaces a trained :class:`~ltbench.binary.reactnet.ReActNetA` (any width, stem
stride, stride pattern) for inference. The FP stem and classifier are kept as they are; each block becomes two
fused binary convolutions that carry NHWC float32 activations (the residuals) and packed sign bits between
them::

    h1, g  = xnor_conv_fused(bits, 3×3: α·BN1, + shortcut (2×2 avg-pooled when strided), RPReLU1, → sign(h1 + b_rsign2))
    h, bits = xnor_conv_fused(g, 1×1 (the two down-sampling convs as one N = 2·Cin GEMM): α·BN2, + h1, RPReLU2,
                              → sign(h + b_rsign1 of the next block))

BatchNorm uses its running statistics (eval mode), folded with α into one scale and shift per channel. The
float model and the packed one differ only by float rounding in the epilogue (the binary dot products are
exact), so their predictions agree except where a pre-sign value is within rounding of 0.

Exported files (:func:`export`) hold only tensors and plain values and load with ``weights_only=True``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ltbench.binary.pack import pack_conv
from ltbench.errors import LTBenchError

FORMAT = "ltbench-packed-reactnet-a"
VERSION = 1
MODES = ("auto", "on", "off")


def _vec(t: torch.Tensor, n: int) -> torch.Tensor:
    return t.detach().float().reshape(-1).expand(n).contiguous().cpu()


def _fold_bn(bn: nn.BatchNorm2d, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BN (running stats) after a conv scaled by α: ``y = scale·dot + shift``."""
    if bn.running_mean is None or bn.running_var is None:
        raise LTBenchError(
            "a BatchNorm without running statistics cannot be packed", "train with track_running_stats"
        )
    inv = torch.rsqrt(bn.running_var.detach().float().cpu() + bn.eps)
    g = bn.weight.detach().float().cpu() if bn.weight is not None else torch.ones_like(inv)
    b = bn.bias.detach().float().cpu() if bn.bias is not None else torch.zeros_like(inv)
    s = g * inv
    return (s * alpha).contiguous(), (b - bn.running_mean.detach().float().cpu() * s).contiguous()


def _rprelu(m: nn.Module, n: int) -> list[torch.Tensor]:
    return [_vec(m.bias_in, n), _vec(m.prelu.weight, n), _vec(m.bias_out, n)]


class PackedBlock(nn.Module):
    """One ReActNet-A block as two fused XNOR convolutions (see the module docstring)."""

    def __init__(self, block: nn.Module | None = None, next_bias: torch.Tensor | None = None, **shape: int):
        super().__init__()
        if block is not None:
            c, co, s = block.in_chans, block.out_chans, block.stride
            shape = {"c": c, "co": co, "stride": s, "has_next": int(next_bias is not None)}
        self.c, self.co, self.stride = shape["c"], shape["co"], shape["stride"]
        self.has_next = bool(shape["has_next"])
        c, co = self.c, self.co
        names = ["w3_panels", "w3_rows", "w3_tapsum", "s1", "b1", "rp1_in", "rp1_slope", "rp1_out", "sign2"]
        names += [
            "w1_panels",
            "w1_rows",
            "w1_tapsum",
            "s2",
            "b2",
            "rp2_in",
            "rp2_slope",
            "rp2_out",
            "next_bias",
        ]
        if block is None:  # shell for load_state_dict
            for name in names:
                self.register_buffer(name, torch.empty(0))
            return
        convs = [block.conv3x3, *block.conv1x1]
        if not all(cv.binary_weights for cv in convs):
            raise LTBenchError(
                "this ReActNet-A has real-valued weights (step 1), which have no packed form",
                "export a model trained with binary weights, or evaluate with --packed off",
            )
        p3 = pack_conv(block.conv3x3.weight, self.stride, 1)
        s1, b1 = _fold_bn(block.bn1, block.conv3x3.scale().float().cpu())
        p1 = pack_conv(torch.cat([cv.weight.detach() for cv in block.conv1x1]), 1, 0)
        folded = [
            _fold_bn(bn, cv.scale().float().cpu()) for cv, bn in zip(block.conv1x1, block.bn2, strict=True)
        ]
        tensors = [
            p3.panels,
            p3.rows,
            p3.tapsum,
            s1,
            b1,
            *_rprelu(block.rprelu1, c),
            _vec(block.rsign2.bias, c),
        ]
        tensors += [
            p1.panels,
            p1.rows,
            p1.tapsum,
            torch.cat([f[0] for f in folded]),
            torch.cat([f[1] for f in folded]),
        ]
        tensors += [
            *_rprelu(block.rprelu2, co),
            _vec(next_bias, co) if next_bias is not None else torch.empty(0),
        ]
        for name, t in zip(names, tensors, strict=True):
            self.register_buffer(name, t.contiguous())

    def forward(self, h: torch.Tensor, bits: torch.Tensor, ws: Workspace | None = None):
        from ltbench.binary import ops

        if ws is not None:
            return self._forward_ws(h, bits, ws)
        cuda = h.is_cuda
        w3 = self.w3_rows if cuda else self.w3_panels
        w1 = self.w1_rows if cuda else self.w1_panels
        c, co, s = self.c, self.co, self.stride
        h1, g = ops.xnor_conv_fused(
            bits, w3, self.w3_tapsum, self.s1, self.b1, h, self.rp1_in, self.rp1_slope, self.rp1_out,
            self.sign2, c, c, 3, 3, s, 1, s == 2, True,
        )  # fmt: skip
        nb = self.next_bias if self.has_next else None
        return ops.xnor_conv_fused(
            g, w1, self.w1_tapsum, self.s2, self.b2, h1, self.rp2_in, self.rp2_slope, self.rp2_out, nb,
            c, co, 1, 1, 1, 0, False, self.has_next,
        )  # fmt: skip

    def _forward_ws(self, h: torch.Tensor, bits: torch.Tensor, ws: Workspace):
        """CPU eager: the same two convolutions, called directly on the C kernel (:class:`ops.ConvPlan`, no
        dispatcher) and writing into reused buffers."""
        p3, p1 = self._plans()
        c, co = self.c, self.co
        b, hh, ww, _ = bits.shape
        ho, wo = p3.out_hw(hh, ww)
        h1, g = ws.get((id(self), 1, b, ho, wo, c)), ws.get((id(self), 2, b, ho, wo, c), torch.int64)
        p3(bits, h, h1, g)
        out = ws.get((id(self), 3, b, ho, wo, co))
        obits = ws.get((id(self), 4, b, ho, wo, co if self.has_next else 0), torch.int64)
        p1(g, h1, out, obits)
        return out, obits

    def _plans(self):
        """The two layers' :class:`ops.ConvPlan`, rebuilt when a buffer was replaced (``.to``, ``load``)."""
        from ltbench.binary import ops

        src = [getattr(self, n) for n in self._PLAN_BUFFERS]
        plans = getattr(self, "_plan_cache", None)
        if plans is None or any(a is not b for a, b in zip(plans[0], src, strict=True)):
            (w3, t3, s1, b1, r1i, r1s, r1o, sg2, w1, t1, s2, b2, r2i, r2s, r2o, nb) = src
            nb = nb if self.has_next else None
            p3 = ops.ConvPlan(w3, t3, self.c, self.c, 3, 3, self.stride, 1, s1, b1, (r1i, r1s, r1o), sg2,
                              self.stride == 2)  # fmt: skip
            p1 = ops.ConvPlan(w1, t1, self.c, self.co, 1, 1, 1, 0, s2, b2, (r2i, r2s, r2o), nb)
            plans = self._plan_cache = (src, (p3, p1))
        return plans[1]

    _PLAN_BUFFERS = (
        "w3_panels", "w3_tapsum", "s1", "b1", "rp1_in", "rp1_slope", "rp1_out", "sign2",
        "w1_panels", "w1_tapsum", "s2", "b2", "rp2_in", "rp2_slope", "rp2_out", "next_bias",
    )  # fmt: skip

    def shape(self) -> dict[str, int]:
        return {"c": self.c, "co": self.co, "stride": self.stride, "has_next": int(self.has_next)}


class Workspace:
    """Activation buffers reused across forward calls (CPU eager): a fresh multi-megabyte tensor page-faults
    on every call, which costs more than the binary convolutions themselves at large batches."""

    def __init__(self) -> None:
        self.buffers: dict[tuple, torch.Tensor] = {}

    def get(self, key: tuple, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Buffer for ``key = (owner, slot, B, H, W, channels)``: float ``[B,H,W,C]`` or int64 bit words."""
        buf = self.buffers.get(key)
        if buf is None:
            b, h, w, c = key[2:]
            last = c if dtype == torch.float32 else (c + 63) // 64
            buf = self.buffers[key] = torch.empty(b, h, w, last, dtype=dtype)
        return buf


def run_blocks(
    blocks: Sequence[PackedBlock], sign1: torch.Tensor, h: torch.Tensor, ws: Workspace | None
) -> torch.Tensor:
    """Packed blocks on NHWC float32 ``h``: sign-pack ``h + sign1`` (the first block's RSign bias), run the
    blocks, return the last one's NHWC output (a reused ``ws`` buffer on CPU eager, ``ws=None`` elsewhere)."""
    from ltbench.binary import ops

    if h.is_cuda or torch.compiler.is_compiling():
        ws = None
    bits = ops.sign_pack_direct(h, sign1) if ws is not None else ops.sign_pack(h, sign1)
    for block in blocks:
        h, bits = block(h, bits, ws)
    return h


def _pack_blocks(blocks: Sequence[nn.Module]) -> tuple[list[PackedBlock], torch.Tensor]:
    """The packed form of consecutive ReActNet-A blocks, and the first block's RSign bias (each block's
    second conv also applies the next block's RSign bias, so sign bits pass straight on)."""
    biases = [b.rsign1.bias for b in blocks[1:]] + [None]
    packed = [PackedBlock(b, nb) for b, nb in zip(blocks, biases, strict=True)]
    return packed, _vec(blocks[0].rsign1.bias, blocks[0].in_chans)


class PackedReActNet(nn.Module):
    """Inference-only ReActNet-A on packed weights, with the backbone interface (``num_features``,
    ``forward_features``, ``forward_feature_map``, ``classifier``, ``forward``)."""

    def __init__(self, model: nn.Module | None = None, *, stem=None, classifier=None, shapes=None):
        super().__init__()
        if model is not None:
            stem, classifier = model.stem, model.classifier
            packed, first = _pack_blocks(list(model.blocks))
        else:
            packed = [PackedBlock(**s) for s in shapes]
            first = torch.empty(0)
        # channels_last: the stem writes NHWC, which the first sign-pack and block read without a copy
        self.stem = copy.deepcopy(stem).eval().to(memory_format=torch.channels_last)
        self.blocks = nn.ModuleList(packed)
        self.register_buffer("sign1", first)
        self.num_features = self.blocks[-1].co
        self.classifier = copy.deepcopy(classifier)
        self.reuse_buffers = True  # CPU eager: see Workspace
        self._workspace = Workspace()

    def forward_feature_map_nhwc(self, x: torch.Tensor) -> torch.Tensor:
        h = (
            self.stem(x.contiguous(memory_format=torch.channels_last))
            .float()
            .permute(0, 2, 3, 1)
            .contiguous()
        )
        ws = self._workspace if self.reuse_buffers else None
        return run_blocks(self.blocks, self.sign1, h, ws)

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_feature_map_nhwc(x).permute(0, 3, 1, 2).clone()  # never hand out a reused buffer

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_feature_map_nhwc(x).mean(dim=(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))

    def config(self) -> dict[str, Any]:
        return {"blocks": [b.shape() for b in self.blocks]}


class PackedSequential(nn.Module):
    """Inference-only stand-in for an ``nn.Sequential`` that ends in ReActNet-A blocks (a piece of a split
    backbone, e.g. TADE's shared stem and its experts): the leading modules run as they are, the blocks
    packed; NCHW float in and out, as the ``nn.Sequential`` it replaces."""

    def __init__(self, seq: nn.Sequential):
        super().__init__()
        mods = list(seq)
        k = _trailing_blocks(mods)
        self.head = copy.deepcopy(nn.Sequential(*mods[:-k])).eval()
        packed, first = _pack_blocks(mods[-k:])
        self.blocks = nn.ModuleList(packed)
        self.register_buffer("sign1", first)
        self._workspace = Workspace()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x).float().permute(0, 2, 3, 1).contiguous()
        out = run_blocks(self.blocks, self.sign1, h, self._workspace)
        return out.permute(0, 3, 1, 2).clone()  # never hand out a reused buffer


def _trailing_blocks(mods: Sequence[nn.Module]) -> int:
    """How many of ``mods`` are ReActNet-A blocks at the end, with none before them (else 0)."""
    from ltbench.binary.reactnet import ReActBlock

    is_block = [isinstance(m, ReActBlock) for m in mods]
    k = len(is_block) - is_block.index(True) if any(is_block) else 0
    return k if all(is_block[len(mods) - k :]) else 0


def _reactnet_class():
    from ltbench.binary.reactnet import ReActNetA

    return ReActNetA


def pack_model(model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``model`` (eval mode) with every ReActNet-A inside replaced by its packed form, and every
    ``nn.Sequential`` outside one that ends in ReActNet-A blocks by a :class:`PackedSequential`; also the
    number of modules replaced. The original model is left untouched."""
    ReActNetA = _reactnet_class()
    if isinstance(model, ReActNetA):
        return PackedReActNet(model.eval()).to(_device_of(model)), 1
    if isinstance(model, nn.Sequential) and _trailing_blocks(list(model)):
        return PackedSequential(model).to(_device_of(model)), 1
    found: list[str] = []
    for name, m in model.named_modules():
        if any(name.startswith(f + ".") for f in found):
            continue  # inside a module already replaced
        if isinstance(m, ReActNetA) or (isinstance(m, nn.Sequential) and _trailing_blocks(list(m))):
            found.append(name)
    if not found:
        return model, 0
    out = copy.deepcopy(model).eval()
    for name in found:
        parent_name, _, attr = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        sub = getattr(parent, attr)
        cls = PackedReActNet if isinstance(sub, ReActNetA) else PackedSequential
        setattr(parent, attr, cls(sub).to(_device_of(sub)))
    return out, len(found)


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def kernel_status(device: torch.device) -> tuple[bool, str]:
    """Whether a packed kernel runs on ``device`` here, and its path name (or why not)."""
    if device.type == "cpu":
        from ltbench.binary.kernels import cpu

        try:
            cpu.lib()
        except LTBenchError as e:
            return False, str(e)
        return True, f"packed-cpu-{cpu.current_isa()}"
    if device.type == "cuda":
        from ltbench.binary.kernels import cuda

        ok, why = cuda.status()
        return ok, "packed-cuda-b1mma" if ok else why
    return False, f"no XNOR kernel for device type {device.type!r}"


def prepare_eval(
    method: Any, model: nn.Module, task: Any, mode: str = "auto", check: int = 64
) -> tuple[nn.Module, dict[str, Any]]:
    """The model the evaluator should use, and a record of which path produced the numbers.

    ``off``: the float model. ``on``: the packed model or an error. ``auto``: packed where the backbone is
    binary and a kernel exists for the device, else the float model, with the reason recorded. When packed,
    the first ``check`` test images are predicted by both models and the argmax agreement is recorded.
    """
    if mode not in MODES:
        raise LTBenchError(f"unknown --packed value {mode!r}", f"use one of {', '.join(MODES)}")
    info: dict[str, Any] = {"packed": mode, "path": "float"}
    if mode == "off":
        return model, info
    if not task.binary:
        if mode == "on":
            raise LTBenchError(
                f"--packed on, but {task.backbone} is not a binary backbone", "use --packed auto"
            )
        info["reason"] = "full-precision backbone"
        return model, info
    ok, path = kernel_status(task.device)
    if not ok:
        if mode == "on":
            raise LTBenchError(
                f"--packed on, but no XNOR kernel runs here: {path}", "use --packed auto or off"
            )
        info["reason"] = path
        return model, info
    try:
        packed, n = pack_model(model)
    except LTBenchError as e:
        if mode == "on":
            raise
        info["reason"] = e.what
        return model, info
    if n == 0:
        if mode == "on":
            raise LTBenchError("--packed on, but the model holds no ReActNet-A backbone", "use --packed auto")
        info["reason"] = "no ReActNet-A backbone in the model"
        return model, info
    info["path"] = path
    if check:
        info["check"] = agreement(method, model, packed, task, check)
    return packed, info


@torch.no_grad()
def agreement(method: Any, model: nn.Module, packed: nn.Module, task: Any, n: int) -> dict[str, Any]:
    """Argmax agreement of the float and packed models on the first ``n`` test images."""
    ds = task.eval_set("test")
    n = min(n, len(ds))
    images = torch.stack([ds[i][0] for i in range(n)]).to(task.device)
    model.eval()
    a = method.predict(model, images).argmax(1)
    b = method.predict(packed, images).argmax(1)
    return {"images": n, "argmax_agreement": float((a == b).float().mean())}


def export(model: nn.Module, path: Path, meta: dict[str, Any] | None = None) -> Path:
    """Save the packed form of a ReActNet-A (atomically)."""
    cls = _reactnet_class()
    if not isinstance(model, cls):
        raise LTBenchError(f"export --packed needs a ReActNet-A, got {type(model).__name__}", "")
    packed = PackedReActNet(model.eval())
    blob = {
        "format": FORMAT,
        "version": VERSION,
        "config": packed.config(),
        "meta": meta or {},
        "stem": packed.stem.cpu().state_dict(),
        "stem_config": _stem_config(packed.stem),
        "classifier": packed.classifier.cpu().state_dict(),
        "classifier_shape": [packed.classifier.out_features, packed.classifier.in_features],
        "blocks": packed.blocks.cpu().state_dict(),
        "sign1": packed.sign1.cpu(),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def _stem_config(stem: nn.Module) -> dict[str, int]:
    conv = stem.conv
    return {"in_chans": conv.in_channels, "out_chans": conv.out_channels, "stride": conv.stride[0]}


def load(path: Path) -> PackedReActNet:
    """Load a file written by :func:`export`."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise LTBenchError(
            f"{path} is not a packed ReActNet-A file", "write one with `ltbench export --packed`"
        )
    from ltbench.binary.reactnet import Stem

    sc = blob["stem_config"]
    stem = Stem(sc["in_chans"], sc["out_chans"], sc["stride"])
    stem.load_state_dict(blob["stem"])
    out_f, in_f = blob["classifier_shape"]
    fc = nn.Linear(in_f, out_f)
    fc.load_state_dict(blob["classifier"])
    model = PackedReActNet(stem=stem, classifier=fc, shapes=blob["config"]["blocks"])
    for name, t in blob["blocks"].items():  # buffers were registered empty: assign, then check strictly
        model.blocks.get_submodule(name.rpartition(".")[0]).register_buffer(name.rpartition(".")[2], t)
    model.sign1 = blob["sign1"]
    missing = [n for n, b in model.blocks.named_buffers() if b.numel() == 0 and not n.endswith("next_bias")]
    if missing:
        raise LTBenchError(f"{path} lacks packed tensors {missing[:3]}…", "re-export it")
    return model.eval()
