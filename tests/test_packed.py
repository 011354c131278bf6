"""Packed ReActNet-A inference: same predictions as the float model, export/load, the evaluator's switch."""

from __future__ import annotations

import json
import types

import pytest
import torch
from torch import nn

from ltbench.backbones import create_backbone
from ltbench.binary import packed
from ltbench.binary.kernels import cpu
from ltbench.errors import LTBenchError

pytestmark = pytest.mark.skipif(not cpu.available(), reason="no C compiler: the XNOR CPU kernel cannot build")


def randomized(name: str, num_classes: int = 10, in_chans: int = 3, seed: int = 0, **kw) -> nn.Module:
    """A backbone with random (trained-looking) BN statistics, biases and PReLU slopes, in eval mode."""
    torch.manual_seed(seed)
    m = create_backbone(name, num_classes, in_chans, **kw)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.normal_(1, 0.2)
            mod.bias.data.normal_(0, 0.2)
    for n, p in m.named_parameters():
        if "bias" in n and "bn" not in n and "classifier" not in n:
            p.data.normal_(0, 0.1)
        elif "prelu" in n:
            p.data.uniform_(0.1, 0.4)
        elif n.endswith("conv3x3.weight") or "conv1x1" in n:
            p.data.normal_(0, 1e-3)
    return m.eval()


@torch.no_grad()
def compare(model: nn.Module, x: torch.Tensor) -> None:
    ref = model(x)
    out = packed.PackedReActNet(model)(x)
    assert torch.equal(out.argmax(1), ref.argmax(1))
    torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-3)


def test_tiny_same_predictions():
    model = randomized("reactnet-a-tiny", in_chans=1)
    compare(model, torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(1)))


def test_reactnet_a_same_predictions_every_layer_kind():
    """Full width, all 13 blocks (stride 2 residual pooling, N = 2·Cin fused down-sampling), 32×32 input."""
    model = randomized("reactnet-a", num_classes=100)
    compare(model, torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2)))


@pytest.mark.slow
def test_reactnet_a_224_same_predictions():
    model = randomized("reactnet-a", num_classes=1000, seed=3)
    compare(model, torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3)))


def test_packed_model_under_torch_compile():
    model = randomized("reactnet-a-tiny", in_chans=1)
    pk = packed.PackedReActNet(model)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        compiled = torch.compile(pk, backend="aot_eager", fullgraph=True)
        assert torch.equal(compiled(x), pk(x))


def test_reused_buffers_across_calls_and_shapes():
    model = randomized("reactnet-a-tiny", in_chans=1)
    pk = packed.PackedReActNet(model)
    xs = [torch.randn(b, 1, 8, 8, generator=torch.Generator().manual_seed(b)) for b in (5, 3, 5)]
    with torch.no_grad():
        outs = [pk(x) for x in xs]  # the logits of earlier calls must survive later calls
        maps = [pk.forward_feature_map(x) for x in xs[:2]]
        for x, out in zip(xs, outs, strict=True):
            torch.testing.assert_close(out, model(x), rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(maps[0], model.forward_feature_map(xs[0]), rtol=1e-3, atol=1e-3)
        pk.reuse_buffers = False
        assert torch.equal(pk(xs[1]), outs[1])


def test_export_load_roundtrip(tmp_path):
    model = randomized("reactnet-a-tiny", in_chans=1, width=0.5)
    path = packed.export(model, tmp_path / "m.pt", {"note": "x"})
    loaded = packed.load(path)
    x = torch.randn(8, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), packed.PackedReActNet(model)(x))
    with pytest.raises(LTBenchError, match="not a packed"):
        torch.save({"a": torch.zeros(1)}, tmp_path / "bad.pt")
        packed.load(tmp_path / "bad.pt")


def test_export_command(tmp_path):
    from click.testing import CliRunner

    from ltbench.cli import cli

    model = randomized("reactnet-a-tiny", in_chans=1)
    torch.save({"modules": {"model": model.state_dict()}}, tmp_path / "ckpt.pt")
    args = ["export", "--packed", str(tmp_path / "ckpt.pt"), "--backbone", "reactnet-a-tiny"]
    res = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "p.pt")])
    assert res.exit_code == 0, res.output
    assert "agreement float vs packed on 8 random 8x8 images: 1.000" in res.output
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(packed.load(tmp_path / "p.pt")(x), packed.PackedReActNet(model)(x))


class _Set(torch.utils.data.Dataset):
    def __init__(self, n: int = 8):
        self.x = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(5))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], 0


def _task(binary: bool = True):
    return types.SimpleNamespace(
        binary=binary, backbone="reactnet-a-tiny", device=torch.device("cpu"), eval_set=lambda split: _Set()
    )


class _Method:
    def predict(self, model, images):
        return model(images)


def test_prepare_eval_modes():
    model = randomized("reactnet-a-tiny", in_chans=1)
    m, info = packed.prepare_eval(_Method(), model, _task(), "off")
    assert m is model and info == {"packed": "off", "path": "float"}
    m, info = packed.prepare_eval(_Method(), model, _task(), "auto")
    assert isinstance(m, packed.PackedReActNet)
    assert info["path"] == f"packed-cpu-{cpu.current_isa()}"
    assert info["check"] == {"images": 8, "argmax_agreement": 1.0}
    with pytest.raises(LTBenchError, match="not a binary backbone"):
        packed.prepare_eval(_Method(), model, _task(binary=False), "on")
    with pytest.raises(LTBenchError, match="unknown --packed"):
        packed.prepare_eval(_Method(), model, _task(), "yes")


def test_real_weight_model_is_not_packed_silently():
    model = randomized("reactnet-a-tiny", in_chans=1, binary_weights=False)
    m, info = packed.prepare_eval(_Method(), model, _task(), "auto")
    assert m is model and info["path"] == "float" and "real-valued weights" in info["reason"]
    with pytest.raises(LTBenchError, match="real-valued weights"):
        packed.prepare_eval(_Method(), model, _task(), "on")


def test_nested_backbone_is_replaced_and_original_untouched():
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.student = randomized("reactnet-a-tiny", in_chans=1)
            self.head = nn.Identity()

        def forward(self, x):
            return self.head(self.student(x))

    w = Wrapper().eval()
    out, n = packed.pack_model(w)
    assert n == 1 and isinstance(out.student, packed.PackedReActNet)
    assert not isinstance(w.student, packed.PackedReActNet)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(out(x).argmax(1), w(x).argmax(1))


def test_cli_passes_packed_to_run_one(monkeypatch, digits_data, tmp_path):
    from click.testing import CliRunner

    import ltbench.run
    from ltbench.cli import cli

    seen = {}

    def fake_run_one(*args, **kwargs):
        seen.update(kwargs)
        raise LTBenchError("stop", "")

    monkeypatch.setattr(ltbench.run, "run_one", fake_run_one)
    args = [
        "run",
        "--method",
        "ce",
        "--dataset",
        "digits-lt10",
        "--data",
        str(digits_data),
        "--packed",
        "off",
    ]
    CliRunner().invoke(cli, args)
    assert seen["packed"] == "off"


@pytest.mark.slow
def test_run_records_the_inference_path(digits_data, tmp_path):
    from ltbench.run import run_one

    path = run_one(
        "ce", "digits-lt10", "reactnet-a-tiny", 0, {"epochs": "1"}, None, digits_data, tmp_path, "cpu",
        packed="auto",
    )  # fmt: skip
    result = json.loads(path.read_text())
    assert result["inference"]["path"].startswith("packed-cpu-")
    assert result["inference"]["check"]["argmax_agreement"] == 1.0


def test_split_backbone_pieces_are_packed():
    """TADE's shared stem (stem + first blocks) and its 3 experts (later blocks) are ``nn.Sequential`` pieces
    of ReActNet-As: each becomes a :class:`PackedSequential` with the same outputs."""
    from ltbench.baselines.tade import NUM_EXPERTS, TADEModel, split_backbone

    nets = [randomized("reactnet-a-tiny", in_chans=1, seed=s) for s in range(NUM_EXPERTS)]
    stem, first, _ = split_backbone(nets[0])
    experts = [first] + [split_backbone(n)[1] for n in nets[1:]]
    width = nets[0].num_features
    model = TADEModel(stem, experts, [nn.Linear(width, 10) for _ in experts]).eval()
    model.aggregation.copy_(torch.tensor([0.5, 0.3, 0.2]))
    out, n = packed.pack_model(model)
    assert n == 1 + NUM_EXPERTS
    assert all(isinstance(m, packed.PackedSequential) for m in (out.stem, *out.experts))
    assert isinstance(model.stem, nn.Sequential)  # the original is untouched
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref, got = model.expert_logits(x), out.expert_logits(x)
        torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-3)
        assert torch.equal(got.argmax(2), ref.argmax(2))
        torch.testing.assert_close(out(x), model(x), rtol=1e-3, atol=1e-3)


def test_sequential_not_ending_in_blocks_is_left_float():
    net = randomized("reactnet-a-tiny", in_chans=1)
    seq = nn.Sequential(net.stem, net.blocks[0], nn.ReLU())
    holder = nn.ModuleDict({"a": seq, "b": nn.Sequential(net.blocks[1], net.stem)})
    out, n = packed.pack_model(holder)
    assert n == 0 and out is holder


def test_nested_sequential_is_replaced_once():
    """A Sequential inside a replaced one stays float inside the packed copy (it is not replaced again)."""
    net = randomized("reactnet-a-tiny", in_chans=1)
    outer = nn.Sequential(nn.Sequential(net.stem, net.blocks[0]), net.blocks[1]).eval()
    out, n = packed.pack_model(nn.ModuleDict({"x": outer}))
    assert n == 1 and isinstance(out["x"], packed.PackedSequential)
    top, n_top = packed.pack_model(outer)  # the model itself is such a Sequential
    assert n_top == 1 and isinstance(top, packed.PackedSequential)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        torch.testing.assert_close(out["x"](x), outer(x), rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(top(x), outer(x), rtol=1e-3, atol=1e-3)
