"""Training-step speed: T1 (the fused binary block against the eager float-simulated step), measured in one run.

T1  one optimizer-free training step (forward, cross-entropy, backward) of ``reactnet-a-tiny`` at batch 64 on
    8×8 input and of ``reactnet-a`` at 32×32 (stem stride 1, batch 64), the fused path (one autograd node
    per block, XNOR forward: ``ltbench.binary.fused``, the training default) against the eager op-by-op path
    (``set_fused(model, False)``) on the same weights and batch. The two are timed in alternating rounds
    (median of per-round times, thread CPU time at 1 thread so other processes' time slices do not count),
    and their gradients are compared before timing, with each other (``max_rel_grad_diff``) and with the eager
    graph in float64 (``max_rel_grad_diff_f64``: ours, eager). ``grad_route``: how the fused backward computes
    the binary convs' float gradients (``amx``: AMX-BF16 where the CPU has it, else ``float``: torch's float32
    conv backward); with ``amx`` the fused step on the float route is timed in the same rounds too
    (``float_route_s``, ``route_gain``). ``floor_s``: those gradient convolutions alone on the route used
    (every binary conv's on its shapes), which exact float gradients cannot skip; ``bound_ratio`` =
    eager / floor, the most an exact fused step on that route could reach.
Also (the demo's other per-step costs, each against what it replaced, same run): ``D1`` the digits train transform
per image (``NearestRandomAffine`` against torchvision's ``v2.RandomAffine``, same draws and pixels), ``D2`` a batch of
64 digits train images from the split (its batched fetch against image by image, same pixels), ``O1`` one
Adam step over ``reactnet-a-tiny``'s parameters (fused against torch's per-tensor loop); images/s of a full Adam
step of ``cnn-digits`` and ``reactnet-a-tiny``.

Appends its cases to ``benchmarks/results/<cpu-model>-<kernel path>.json`` (written by ``bench_kernels.py``;
created if missing). ``python benchmarks/bench_train.py [--rounds N] [--threads 1 2] [--quick]``
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ltbench.backbones import create_backbone
from ltbench.binary.fused import binary_conv_backward, set_fused
from ltbench.binary.kernels import cpu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import device_name, merge_cases, results_path  # noqa: E402

CASES = [  # backbone, in_chans, size, batch, factory kwargs
    ("reactnet-a-tiny", 1, 8, 64, {}),
    ("reactnet-a", 3, 32, 64, {"stem_stride": 1}),
]


def _model(name: str, in_chans: int, kwargs: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    m = create_backbone(name, 10, in_chans, **kwargs).train()
    for n, p in m.named_parameters():  # away from the zero init, so RSign/RPReLU biases matter
        if ".bias" in n and "bn" not in n and "classifier" not in n:
            p.data.normal_(0, 0.1)
    return m


def _step(model, x, y) -> None:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


def _clock(threads: int):
    return time.thread_time if threads == 1 else time.perf_counter


def train_step_case(cases, name, in_chans, size, batch, kwargs, threads, rounds) -> None:
    fused = _model(name, in_chans, kwargs)
    eager = copy.deepcopy(fused)
    set_fused(eager, False)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, in_chans, size, size, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    route = cpu.grad_route()
    _step(fused, x, y)
    _step(eager, x, y)
    ref = copy.deepcopy(eager).double()  # the eager graph in float64: what both float32 steps approximate
    _step(ref, x.double(), y)
    worst, f64 = _grad_diff(fused, eager), {"ours": _grad_diff(fused, ref), "eager": _grad_diff(eager, ref)}
    clock = _clock(threads)
    runs = {"ours": (fused, route), "eager": (eager, route)}
    if route != "float":  # the fused step on torch's float32 conv backward too: what the AMX route adds
        runs["float_route"] = (fused, "float")
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for key, (model, r) in runs.items():
            with cpu.use_grad_route(r):
                t = clock()
                _step(model, x, y)
                times[key].append(clock() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    ours, base = med["ours"], med["eager"]
    floor = gemm_floor(fused, x, clock, rounds, route)
    shape = f"{name} {size}² b{batch} fwd+bwd"
    row = {
        "id": "T1",
        "shape": shape,
        "threads": threads,
        "ours_s": ours,
        "baseline": "eager-float-simulated",
    }
    row |= {"baseline_s": base, "ratio": base / ours, "max_rel_grad_diff": worst, "rounds": rounds}
    row |= {"max_rel_grad_diff_f64": f64}
    row |= {"grad_route": route, "floor_s": floor, "bound_ratio": base / floor}
    extra = ""
    if "float_route" in med:
        row |= {"float_route_s": med["float_route"], "route_gain": med["float_route"] / ours}
        extra = (
            f", float-route step {med['float_route'] * 1e3:.1f} ms: {route} ×{med['float_route'] / ours:.2f}"
        )
    row["load_average"] = os.getloadavg()[0]
    cases.append(row)
    print(f"T1  {threads}T {shape:38} ours {ours * 1e3:8.1f} ms  eager {base * 1e3:8.1f} ms  ×{base / ours:5.2f}"
          f"  (max rel grad diff {worst:.1e}; against float64 ours {f64['ours']:.1e}, eager {f64['eager']:.1e};"
          f" load {row['load_average']:.1f}; gradient convs alone ({route})"
          f" {floor * 1e3:.1f} ms: ≤ ×{base / floor:.2f}{extra})", flush=True)  # fmt: skip


def _grad_diff(model: torch.nn.Module, ref: torch.nn.Module) -> float:
    """max over parameters of max |g − g_ref| / max |g_ref|. A float32 step can sit far from float64 on a
    parameter: a pre-activation within rounding of an RSign/RPReLU kink takes the other branch."""
    return max(
        float((a.grad.double() - b.grad.double()).abs().max() / b.grad.double().abs().max().clamp_min(1e-30))
        for a, b in zip(model.parameters(), ref.parameters(), strict=True)
    )


def gemm_floor(model: torch.nn.Module, x: torch.Tensor, clock, rounds: int, route: str) -> float:
    """Seconds of the gradient convolutions alone: the input and latent-weight gradients of every binary conv of
    the network on its training shapes, channels-last, through ``fused.binary_conv_backward`` on ``route`` —
    as the fused backward computes them (float: ``aten.convolution_backward`` on the ±1 tensors, or
    ``fused.conv_backward_taps`` on small maps; AMX: ``ops.conv_backward_amx_direct``; each with its sign, packing
    and STE passes). Exact float gradients of a ±1 × float product need these MACs whatever the rest costs, so
    ``eager / floor`` bounds the step's speed-up on that route."""
    cl = torch.channels_last
    calls, hooks = [], []

    def grab(mod, inp, out):
        calls.append((inp[0].shape, mod.weight.shape, mod.stride, out.shape))

    for mod in model.modules():
        if type(mod).__name__ == "BinaryConv2d":
            hooks.append(mod.register_forward_hook(grab))
    fused_flags = [getattr(m, "fused", None) for m in model.modules()]
    set_fused(model, False)  # the eager blocks call each conv module, so the hooks see every shape
    with torch.no_grad():
        model(x)
    for m, f in zip(model.modules(), fused_flags, strict=True):
        if f is not None:
            m.fused = f
    for h in hooks:
        h.remove()
    g = torch.Generator().manual_seed(2)
    rnd = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    args = [
        (rnd(o).contiguous(memory_format=cl), rnd(i).contiguous(memory_format=cl), rnd(w[1]) * 0.1, rnd(w),
         torch.rand(w[0], generator=g) + 0.5, s, route)
        for i, w, s, o in calls
    ]  # fmt: skip

    def run():
        for a in args:
            binary_conv_backward(*a)

    run()
    times = []
    for _ in range(rounds):
        t = clock()
        run()
        times.append(clock() - t)
    return statistics.median(times)


def _median_time(fn, rounds: int, inner: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t = time.thread_time()
        for _ in range(inner):
            fn()
        times.append((time.thread_time() - t) / inner)
    return statistics.median(times)


def data_case(cases, rounds: int) -> None:
    """D1: the digits train transform on one 8×8 image, ours against torchvision's RandomAffine in its place."""
    from torchvision.transforms import v2

    from ltbench.families import get_family

    ours = get_family("digits").train_transform()
    theirs = v2.Compose([v2.RandomAffine(**_affine_kwargs(ours.transforms[0])), *ours.transforms[1:]])
    img = torch.randint(0, 256, (1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    t_o, t_t = (_median_time(lambda f=f: f(img), rounds, 200) for f in (ours, theirs))
    cases.append(_row("D1", "digits train transform, 1 image 8×8", "torchvision-RandomAffine", t_o, t_t))
    print(f"D1  digits train transform per image: ours {t_o * 1e6:.0f} µs, torchvision RandomAffine {t_t * 1e6:.0f}"
          f" µs  ×{t_t / t_o:.2f}", flush=True)  # fmt: skip


def loader_case(cases, rounds: int) -> None:
    """D2: one batch of 64 digits-LT10 train images as the trainer's DataLoader fetches it: the split's batched
    path (``ImageSplit.__getitems__``: the transform once on the stacked batch) against image by image (the same
    transform per image, then the default collate), same draws and pixels."""
    import tempfile

    from ltbench.builders.build import build
    from torch.utils.data import default_collate

    from ltbench.data import ImageSplit, open_split
    from ltbench.families import get_family
    from ltbench.registry import DATASETS

    with tempfile.TemporaryDirectory() as root:
        build(DATASETS.get("digits"), 10, Path(root))
        split = ImageSplit(open_split("digits-lt10", root), "train", get_family("digits").train_transform())
    idx = list(range(64))
    t_b = _median_time(lambda: default_collate(split.__getitems__(idx)), rounds, 20)
    t_i = _median_time(lambda: default_collate([split[i] for i in idx]), rounds, 20)
    cases.append(_row("D2", "digits train batch of 64 from the split", "image-by-image-fetch", t_b, t_i))
    print(f"D2  digits train batch of 64: batched {t_b * 1e3:.2f} ms, image by image {t_i * 1e3:.2f} ms"
          f"  ×{t_i / t_b:.2f}", flush=True)  # fmt: skip


def _affine_kwargs(fast) -> dict:
    ref = fast.reference
    return {"degrees": ref.degrees, "translate": ref.translate, "scale": ref.scale}


def optimizer_case(cases, rounds: int) -> None:
    """O1: one Adam step over reactnet-a-tiny's parameters, fused (the trainer's default) against the loop."""
    from ltbench.method import TrainConfig
    from ltbench.trainer import make_optimizer

    model = create_backbone("reactnet-a-tiny", 10, 1)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    t = {}
    for fused in (True, False):
        opt = make_optimizer(
            model.parameters(), TrainConfig(optimizer="adam", lr=1e-4, fused_optimizer=fused)
        )
        t[fused] = _median_time(opt.step, rounds, 5)
    n = sum(p.numel() for p in model.parameters()) / 1e6
    cases.append(
        _row("O1", f"Adam step, reactnet-a-tiny ({n:.2f} M params)", "torch-adam-loop", t[True], t[False])
    )
    print(f"O1  Adam step reactnet-a-tiny: fused {t[True] * 1e3:.1f} ms, loop {t[False] * 1e3:.1f} ms"
          f"  ×{t[False] / t[True]:.2f}", flush=True)  # fmt: skip


def _row(cid: str, shape: str, baseline: str, ours: float, base: float) -> dict:
    row = {"id": cid, "shape": shape, "threads": 1, "ours_s": ours, "baseline": baseline, "baseline_s": base}
    return row | {"ratio": base / ours, "load_average": os.getloadavg()[0]}


def images_per_s(name: str, in_chans: int, size: int, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    model = create_backbone(name, 10, in_chans).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.randn(batch, in_chans, size, size), torch.randint(0, 10, (batch,))

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--quick", action="store_true", help="reactnet-a-tiny only, 5 rounds")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rounds = 5 if args.quick else args.rounds
    print(f"device: {device_name()} · torch {torch.__version__} · load {os.getloadavg()}", flush=True)
    cases: list[dict] = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, c, size, batch, kw in CASES[:1] if args.quick else CASES:
            train_step_case(cases, name, c, size, batch, kw, threads, rounds)
    torch.set_num_threads(1)
    data_case(cases, rounds)
    loader_case(cases, rounds)
    optimizer_case(cases, rounds)
    torch.set_num_threads(args.threads[0])
    base = images_per_s("cnn-digits", 1, 8, 64, 20)
    tiny = images_per_s("reactnet-a-tiny", 1, 8, 64, 20)
    print(
        f"    Adam step, {args.threads[0]}T: cnn-digits 8x8 b64 {base:.0f} img/s · reactnet-a-tiny {tiny:.0f} img/s"
    )
    out = args.out or results_path()
    merge_cases(out, cases, {"train_load_average_at_start": os.getloadavg()[0]})


if __name__ == "__main__":
    main()
