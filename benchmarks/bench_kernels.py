"""XNOR-popcount CPU kernels vs torch fp32, measured in one run (research note kernels.md §5, targets C1–C4).

C1  GEMM on packed inputs (S1–S7): bMAC/cycle/core, % of the measured XOR+POPCNT+ADD limit, × torch fp32 matmul;
    at 2 threads also × the 1-thread kernel, from rounds alternating between 1 and 2 threads (``paired_s``)
C2  full binary conv op (sign-pack + bit im2col + GEMM + fused α·BN, residual, RPReLU, next sign bits),
    float in → float + bits out, × the torch fp32 ops it replaces (best of NCHW and channels_last)
C1 times the kernel itself: rounds of back-to-back calls inside C (``ConvPlan.rerun``), so a 20 µs shape is
not measured as the Python around it; the direct call from Python (``direct_call_s``, what packed inference and
the fused training block make) and the ``torch.library`` custom op (``custom_op_s``, what ``torch.compile``
graphs call) are timed beside it and give the same integers (checked). C2 times the op as packed inference
calls it: ``ops.sign_pack_direct`` + ``ConvPlan`` into reused output buffers (the custom ops, checked equal,
beside it as ``custom_op_s``). The fixed cost per call is L1's subject.
C3  whole ReActNet-A-224, batch 1, × torch fp32 eager (as trained, and with pre-binarised weights) and
    × torch.compile (inductor, of the pre-binarised model; compile time excluded from the ratio and recorded
    as ``compile_s``; ``--no-compile`` skips it)
C4  the 32×32 variant (stem stride 1), batch 128, × the same baselines

Every integer result is checked equal to the fp32 result (sums of ±1 below 2^24 are exact in fp32) before
timing; whole networks must give the same argmax. Prints a table and writes
``benchmarks/results/<cpu-model>-<family>-<model>-<kernel path>.json`` (:func:`results_path`). Usage:
``python benchmarks/bench_kernels.py [--threads 1 2] [--no-compile] [--quick]`` (the torch.compile baselines of
C3/C4 take minutes to compile).
L1  fixed cost of one packed-layer call (1×1 conv over a 1×1 map): the direct C call against the custom op.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ltbench.binary import ops, pack
from ltbench.binary.kernels import cpu
from ltbench.binary.packed import PackedReActNet

ROOT = Path(__file__).resolve().parent
SHAPES = {  # M per image, N, K (research note §3); batch in the second element
    "S1": ((3136, 128, 1152), 1),
    "S2": ((784, 256, 2304), 1),
    "S3": ((196, 512, 4608), 8),
    "S4": ((196, 512, 512), 8),
    "S5": ((49, 1024, 9216), 8),
    "S6": ((12544, 32, 288), 1),
    "S7": ((784, 256, 128), 1),
}
CONVS = [  # name, Cin, Cout, input H (224 net), kernel, stride
    ("block2 3x3 s2", 64, 64, 112, 3, 2),
    ("block3 3x3", 128, 128, 56, 3, 1),
    ("block5 3x3", 256, 256, 28, 3, 1),
    ("block7 3x3", 512, 512, 14, 3, 1),
    ("block7 1x1", 512, 512, 14, 1, 1),
    ("block13 3x3", 1024, 1024, 7, 3, 1),
]


_clock = time.perf_counter  # thread CPU time at 1 thread (main): other processes' time slices do not count


def timeit(fn, budget: float = 0.6, min_runs: int = 3, max_runs: int = 25) -> float:
    """Median seconds per call after one warm-up call, running until ``budget`` s or ``max_runs``
    (a single timed call when the warm-up alone exceeds the budget). At 1 thread the clock is the thread's
    CPU time (every torch and kernel op runs on the calling thread), so preemption on a shared machine does
    not count; at more threads it is wall time."""
    t = _clock()
    fn()
    if _clock() - t > budget:
        min_runs = 1
    times: list[float] = []
    start = _clock()
    while len(times) < min_runs or (len(times) < max_runs and _clock() - start < budget):
        t = _clock()
        fn()
        times.append(_clock() - t)
    return statistics.median(times)


ROUND_S, ROUNDS = 0.004, 15  # seconds of back-to-back kernel calls in one timed round; rounds per median


def kernel_time(plan: ops.ConvPlan, t_call: float, round_s: float = ROUND_S, rounds: int = ROUNDS) -> float:
    """Seconds per kernel call with the caller's cost taken out: rounds of ``n`` back-to-back calls inside C
    (:meth:`ops.ConvPlan.rerun` of the plan's last call, ``n`` sized to ≈ ``round_s``), the median round / n."""
    n = max(1, round(round_s / t_call))
    times = []
    for _ in range(rounds):
        t = _clock()
        plan.rerun(n)
        times.append((_clock() - t) / n)
    return statistics.median(times)


def paired_kernel_times(
    call,
    plan: ops.ConvPlan,
    counts: tuple[int, ...],
    t_call: float,
    round_s: float = ROUND_S,
    rounds: int = ROUNDS,
) -> dict[int, float]:
    """Seconds per kernel call at each thread count in ``counts``, from rounds that alternate between them on
    the wall clock (C1's threading ratio: both sides of it measured in the same seconds and by the same clock,
    where separate passes minutes apart on a shared VM drift by 10–30 %). ``call`` runs the plan once, which
    makes its current torch thread count the one :meth:`ops.ConvPlan.rerun` repeats."""
    n, prev = max(1, round(round_s / t_call)), torch.get_num_threads()
    times: dict[int, list[float]] = {c: [] for c in counts}
    try:
        for _ in range(rounds):
            for c in counts:
                torch.set_num_threads(c)
                call()
                t = time.perf_counter()
                plan.rerun(n)
                times[c].append((time.perf_counter() - t) / n)
    finally:
        torch.set_num_threads(prev)
    return {c: statistics.median(v) for c, v in times.items()}


def clock_ghz() -> float:
    """Core clock from a chain of dependent adds (1 cycle each) over thread CPU time, median of 5."""
    lib, n = cpu.lib(), 50_000_000
    vals = []
    for _ in range(5):  # thread CPU time: a time slice lost to other processes does not count
        t = time.thread_time()
        lib.xnor_add_chain(n)
        vals.append(n / (time.thread_time() - t) / 1e9)
    return statistics.median(vals)


PROBE_MACS = 12_000_000_000  # binary MACs per timed round of the limit probe (≈ 1 s of one core)


def peak_bmac_per_cycle(ghz: float, isa: str) -> float | None:
    """Single-thread throughput of ``isa``'s XOR+POPCNT+ADD instruction mix in registers (``xnor_peak``: AVX-512
    VPOPCNTQ, or AVX2's nibble-table popcount as its GEMM does it), in binary MACs per cycle; None for scalar."""
    lib, code = cpu.lib(), cpu.ISAS[isa]
    macs = int(lib.xnor_peak_macs(code))
    if macs == 0:
        return None
    iters = max(1, PROBE_MACS // macs)
    lib.xnor_peak(max(1, iters // 1000), code)
    best = 0.0
    for _ in range(5):
        t = time.thread_time()
        lib.xnor_peak(iters, code)
        best = max(best, iters * macs / (time.thread_time() - t) / (ghz * 1e9))
    return best


CPUINFO = Path("/proc/cpuinfo")


def cpuinfo() -> dict[str, str]:
    """Each /proc/cpuinfo field's first value (the first processor's), or {} where there is no such file."""
    fields: dict[str, str] = {}
    try:
        with open(CPUINFO) as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def device_name() -> str:
    return cpuinfo().get("model name") or platform.processor() or platform.machine()


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def cpu_id() -> str | None:
    """``"<cpu family>-<model>"`` from /proc/cpuinfo (x86 Linux), else None: VMs report a generic model name
    ("AMD EPYC" for Zen 3, Zen 4 and later alike), so the name alone does not tell two machine kinds apart."""
    fields = cpuinfo()
    family, model = fields.get("cpu family"), fields.get("model")
    return f"{family}-{model}" if family and model else None


def results_path() -> Path:
    """``benchmarks/results/<cpu-model>-<family>-<model>-<kernel path>.json``: one file per machine kind (VMs
    named "AMD EPYC" came as Zen 3 with AVX2 and as two AVX-512 kinds, which must not overwrite each other's
    figures). Files written before the family and model were part of the name lack them."""
    ident = cpu_id()
    name = "-".join(filter(None, (slug(device_name()), ident, cpu.current_isa())))
    return ROOT / "results" / f"{name}.json"


def case(cases, cid, shape, threads, ours, baseline, base_s, **extra):
    row = {"id": cid, "shape": shape, "threads": threads, "ours_s": ours, "baseline": baseline}
    row |= {"baseline_s": base_s, "ratio": base_s / ours, **extra, "load_average": os.getloadavg()[0]}
    cases.append(row)
    more = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items())
    more += f" load={row['load_average']:.1f}"
    print(f"{cid:3} {threads}T {shape:38} ours {ours * 1e3:9.3f} ms  {baseline:32} {base_s * 1e3:9.2f} ms"
          f"  ×{base_s / ours:6.1f}  {more}", flush=True)  # fmt: skip


def bench_gemm(cases, threads, ghz, peak, quick):
    g = torch.Generator().manual_seed(0)
    for sid, ((m1, n, k), batch) in SHAPES.items():
        if quick and sid not in ("S1", "S3"):
            continue
        m = m1 * batch
        a = pack.sign_pm1(torch.randn(m, k, generator=g))
        w = pack.sign_pm1(torch.randn(n, k, generator=g))
        ab, pw = ops.sign_pack(a), pack.pack_linear(w)
        wt = w.T.contiguous()
        base = a @ wt
        plan, x4 = ops.ConvPlan(pw.panels, None, k, n, 1, 1, 1, 0), ab.reshape(1, m, 1, -1)
        out = torch.empty(m, n, dtype=torch.int32)
        call = lambda plan=plan, x4=x4, out=out: plan(x4, None, None, None, out)  # noqa: E731
        call()
        assert torch.equal(out.float(), base), f"{sid}: kernel differs from the fp32 result"
        assert torch.equal(ops.xnor_gemm(ab, pw.panels, k, n), out), f"{sid}: the custom op differs"
        t_call = timeit(call, max_runs=400)
        t_ours = kernel_time(plan, t_call)
        t_op = timeit(lambda ab=ab, pw=pw, k=k, n=n: ops.xnor_gemm(ab, pw.panels, k, n), max_runs=400)
        t_base = timeit(lambda a=a, wt=wt: a @ wt)
        rate = m * n * k / t_ours / (ghz * 1e9) / threads
        extra = {"bmac_per_cycle_core": rate}
        if peak:
            extra["pct_of_limit"] = 100 * rate / peak
        extra |= {"direct_call_s": t_call, "custom_op_s": t_op}
        if threads > 1:
            paired = paired_kernel_times(call, plan, (1, threads), t_call)
            extra |= {
                "speedup_vs_1_thread": paired[1] / paired[threads],
                "paired_1_thread_s": paired[1],
                "paired_s": paired[threads],
            }
        case(cases, "C1", f"{sid} {m}x{n}x{k}", threads, t_ours, "torch-fp32-matmul", t_base, **extra)


def bench_conv(cases, threads, quick, batch: int = 1):
    g = torch.Generator().manual_seed(1)
    for name, c, co, h, k, s in CONVS:
        if not quick or name in ("block3 3x3", "block7 3x3"):
            conv_case(cases, threads, g, batch, name, c, co, h, k, s)


def conv_case(cases, threads, g, batch, name, c, co, h, k, s):
    pad = k // 2
    x = torch.randn(batch, c, h, h, generator=g)
    wt = torch.randn(co, c, k, k, generator=g) * 1e-3
    pw = pack.pack_conv(wt, s, pad)
    w_eff = pack.sign_pm1(wt) * pw.alpha.view(-1, 1, 1, 1)
    bn = [torch.randn(co, generator=g) * 0.1, torch.rand(co, generator=g) + 0.5]
    gamma, beta = torch.rand(co, generator=g) + 0.5, torch.randn(co, generator=g) * 0.1
    b_sign, b_in, slope, b_out, b_next = (torch.randn(n, generator=g) * 0.1 for n in (c, co, co, co, co))
    inv = torch.rsqrt(bn[1] + 1e-5)
    scale, shift = gamma * inv * pw.alpha, beta - bn[0] * gamma * inv
    ho = (h + 2 * pad - k) // s + 1

    def torch_ops(xx, rr, w_eff=w_eff):
        xs = torch.where(xx + b_sign.view(1, -1, 1, 1) < 0, -1.0, 1.0)
        y = F.conv2d(xs, w_eff, stride=s, padding=pad)
        y = F.batch_norm(y, bn[0], bn[1], gamma, beta, False, 0.0, 1e-5)
        y = y + (F.avg_pool2d(rr, 2) if s == 2 else rr)
        return F.prelu(y + b_in.view(1, -1, 1, 1), slope) + b_out.view(1, -1, 1, 1)

    res = x  # every case keeps the width (Cout = Cin): the block input is the shortcut
    x_cl, res_cl = x.to(memory_format=torch.channels_last), res.to(memory_format=torch.channels_last)
    w_cl = w_eff.to(memory_format=torch.channels_last)
    x_nhwc = x.permute(0, 2, 3, 1).contiguous()
    res_nhwc = res.permute(0, 2, 3, 1).contiguous()

    def custom_op():
        bits = ops.sign_pack(x_nhwc, b_sign)
        return ops.xnor_conv_fused(
            bits, pw.panels, pw.tapsum, scale, shift, res_nhwc, b_in, slope, b_out, b_next,
            c, co, k, k, s, pad, s == 2, True,
        )  # fmt: skip

    plan = ops.ConvPlan(pw.panels, pw.tapsum, c, co, k, k, s, pad, scale, shift, (b_in, slope, b_out), b_next,
                        s == 2)  # fmt: skip
    y_ours = torch.empty(batch, ho, ho, co)
    bits_ours = torch.empty(batch, ho, ho, pack.n_words(co), dtype=torch.int64)

    def ours():
        plan(ops.sign_pack_direct(x_nhwc, b_sign), res_nhwc, y_ours, bits_ours)

    ours()
    y_op, bits_op = custom_op()
    assert torch.equal(y_ours, y_op) and torch.equal(bits_ours, bits_op), f"C2 {name}: the custom op differs"
    y_ref = torch_ops(x, res)
    torch.testing.assert_close(y_ours, y_ref.permute(0, 2, 3, 1), rtol=1e-4, atol=1e-3)
    t_ours = timeit(ours)
    t_op = timeit(custom_op)
    t_nchw = timeit(lambda: torch_ops(x, res))
    t_cl = timeit(lambda: torch_ops(x_cl, res_cl, w_cl))
    best, which = min((t_nchw, "nchw"), (t_cl, "channels_last"))
    shape = f"{name} b{batch} {c}->{co} {h}²→{ho}²"
    case(
        cases,
        "C2",
        shape,
        threads,
        t_ours,
        f"torch-fp32-conv+bn+add+rprelu ({which})",
        best,
        custom_op_s=t_op,
    )


def bench_layer_call(cases, threads, calls: int = 2000):
    """L1: fixed cost of one packed-layer call (1×1 conv 64→64 over a 1×1 map, batch 1, full epilogue: α·BN,
    residual, RPReLU, next sign bits), the direct C call (:class:`ops.ConvPlan`, what packed inference uses)
    against the ``torch.library`` custom op it replaces, in µs per call (mean over ``calls`` back-to-back calls,
    best of 5)."""
    g = torch.Generator().manual_seed(2)
    c = 64
    pw = pack.pack_conv(torch.randn(c, c, 1, 1, generator=g))
    vec = [torch.randn(c, generator=g) for _ in range(6)]
    bits = ops.sign_pack(torch.randn(1, 1, 1, c, generator=g))
    res = torch.randn(1, 1, 1, c, generator=g)
    out, obits = torch.empty(1, 1, 1, c), torch.empty(1, 1, 1, 1, dtype=torch.int64)
    plan = ops.ConvPlan(pw.panels, pw.tapsum, c, c, 1, 1, 1, 0, vec[0], vec[1], tuple(vec[2:5]), vec[5])

    def direct():
        plan(bits, res, out, obits)

    def custom_op():
        ops.xnor_conv_fused_out(
            bits, pw.panels, pw.tapsum, vec[0], vec[1], res, vec[2], vec[3], vec[4], vec[5], c, c, 1, 1, 1, 0,
            False, out, obits,
        )  # fmt: skip

    direct()
    ref = out.clone(), obits.clone()
    custom_op()
    assert torch.equal(out, ref[0]) and torch.equal(obits, ref[1]), (
        "L1: direct call differs from the custom op"
    )

    def per_call(fn):
        best = float("inf")
        for _ in range(5):
            t = time.thread_time()
            for _ in range(calls):
                fn()
            best = min(best, (time.thread_time() - t) / calls)
        return best

    ours, base = per_call(direct), per_call(custom_op)
    case(cases, "L1", "1x1 conv 64->64 on a 1x1 map, b1", threads, ours, "torch.library-custom-op", base,
         us_per_call=ours * 1e6, baseline_us_per_call=base * 1e6)  # fmt: skip


def prebinarized(model: nn.Module) -> nn.Module:
    """The float model with each BinaryConv2d's α·sign(W) computed once (a plain conv): the fairest eager."""
    from ltbench.binary.layers import BinaryConv2d

    out = copy.deepcopy(model)
    for name, mod in list(out.named_modules()):
        if isinstance(mod, BinaryConv2d):
            conv = nn.Conv2d(
                mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding, bias=False
            )
            conv.weight.data = mod.effective_weight().detach().clone()
            parent, _, attr = name.rpartition(".")
            setattr(out.get_submodule(parent) if parent else out, attr, conv)
    return out.eval()


def _randomized(stem_stride: int) -> nn.Module:
    from ltbench.backbones import create_backbone

    torch.manual_seed(0)
    m = create_backbone("reactnet-a", 1000, 3, stem_stride=stem_stride)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    for n, p in m.named_parameters():
        if ".bias" in n and "bn" not in n and "classifier" not in n:
            p.data.normal_(0, 0.1)
    return m.eval()


def bench_network(cases, threads, cid, size, batch, stem_stride, use_compile, compiled):
    model = _randomized(stem_stride)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(5))
    packed = PackedReActNet(model)
    pre = prebinarized(model)
    with torch.no_grad():
        ref = model(x)
        assert torch.equal(packed(x).argmax(1), ref.argmax(1)), f"{cid}: packed predictions differ"
        budget = 2.0
        t_ours = timeit(lambda: packed(x), budget=budget)
        shape = f"ReActNet-A {size}² b{batch} stem s{stem_stride}"
        t_eager = timeit(lambda: model(x), budget=budget, min_runs=2)
        case(cases, cid, shape, threads, t_ours, "torch-fp32-eager", t_eager)
        t_pre = timeit(lambda: pre(x), budget=budget, min_runs=2)
        case(cases, cid, shape, threads, t_ours, "torch-fp32-eager-prebinarized", t_pre)
        if use_compile:
            key = (cid, size, batch)
            if key not in compiled:
                t0 = time.perf_counter()
                fn = torch.compile(pre)
                fn(x)
                compiled[key] = fn, time.perf_counter() - t0
                print(f"    (torch.compile took {compiled[key][1]:.0f} s)", flush=True)
            fn, compile_s = compiled[key]
            assert torch.equal(fn(x).argmax(1), ref.argmax(1))
            t_comp = timeit(lambda: fn(x), budget=budget, min_runs=2)
            case(cases, cid, shape, threads, t_ours, "torch-fp32-compile(prebinarized)", t_comp,
                 compile_s=compile_s)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="Skip the torch.compile baselines (2–5 min of compilation).",
    )
    ap.add_argument("--quick", action="store_true", help="Fewer shapes (a smoke run).")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not cpu.available():
        sys.exit("error: the XNOR CPU kernel cannot build here (no C compiler) — nothing to benchmark")
    t_start = time.perf_counter()
    name, isa = device_name(), cpu.current_isa()
    ghz = clock_ghz()
    peak = peak_bmac_per_cycle(ghz, isa)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"device: {name} · path {isa} · {ghz:.2f} GHz (add chain) · XOR+POPCNT+ADD limit "
          f"{peak or float('nan'):.0f} bMAC/cycle/core · torch {torch.__version__} · load {load}", flush=True)  # fmt: skip
    cases: list[dict] = []
    compiled: dict = {}
    global _clock
    for threads in args.threads:
        torch.set_num_threads(threads)
        _clock = time.thread_time if threads == 1 else time.perf_counter
        bench_layer_call(cases, threads)
        bench_gemm(cases, threads, ghz, peak, args.quick)
        bench_conv(cases, threads, args.quick)
        bench_network(cases, threads, "C3", 224, 1, 2, args.compile, compiled)
        if not args.quick:
            bench_network(cases, threads, "C4", 32, 128, 1, args.compile, compiled)
    one = {(c["id"], c["shape"], c["baseline"]): c["ours_s"] for c in cases if c["threads"] == 1}
    for c in cases:  # threading: throughput at T threads over 1 thread (target ≥ 1.8 at 2 for C1, M·N ≥ 1e5;
        base = one.get((c["id"], c["shape"], c["baseline"]))  # C1 has its paired figure already)
        if c["threads"] > 1 and base and "speedup_vs_1_thread" not in c:
            c["speedup_vs_1_thread"] = base / c["ours_s"]
    result = {
        "device": name,
        "cpu_family_model": cpu_id(),
        "threads": args.threads,
        "path": isa,
        "clock_ghz": ghz,
        "limit_bmac_per_cycle_core": peak,
        "load_average_at_start": load,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "cases": cases,
        "wall_s": time.perf_counter() - t_start,
    }
    out = args.out or results_path()
    merge_cases(out, cases, {k: v for k, v in result.items() if k != "cases"})
    print(f"({result['wall_s']:.0f} s)")


def merge_cases(out: Path, cases: list[dict], extra: dict) -> None:
    """Write ``cases`` into the results file, replacing earlier cases of the same (id, shape, threads,
    baseline) and keeping the others (T1 from bench_train.py, B1 from bench_build.py, a skipped baseline)."""
    data = json.loads(out.read_text()) if out.exists() else {"device": device_name(), "cases": []}
    key = lambda c: (c["id"], c["shape"], c["threads"], c["baseline"].split(" (")[0])  # noqa: E731 (C2: layout)
    new = {key(c) for c in cases}
    data["cases"] = [c for c in data.get("cases", []) if key(c) not in new] + cases
    data.update(extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(out)
    print(f"updated {out}")


if __name__ == "__main__":
    main()
