"""The GPU path in one call (issue 18): build the CUDA XNOR extension, run the ``gpu`` tests, measure G0–G4.

Steps, in order (each recorded as ``ok``, ``failed`` or ``skipped`` with its reason, its seconds and data):

- ``env``          device, driver, torch, CUDA, nvcc and package versions; ltbench's subpackages importable
- ``build``        the extension through the project's loader (``ltbench.binary.kernels.cuda``, sm_90a on
                   Hopper), compiled in a subprocess (timed, compiler output in the log), then loaded here;
                   its SASS checked for ``BMMA.168256.AND.POPC`` where cuobjdump exists
- ``pytest-gpu``   ``pytest -m gpu`` (exactness of the CUDA kernels); without CUDA, collection only
- ``G0``           peak b1 AND-popc MMA rate (binary MAC/s) of the chip: register-only MMA chains
- ``G1``           the conv kernel on every ReActNet-A-224 layer shape, batch 1 and 256, each checked equal to
                   an fp32 conv of the ±1 tensors (TF32 off) first; rate and % of G0
- ``G2``           ``torch._int_mm`` (int8 ±1) on the same implicit-GEMM shapes, checked against ``xnor_gemm``
- ``G3``           packed ReActNet-A vs the float model in bf16 autocast (eager), batch 256 at 224²
- ``G4-candle``    a short CANDLE run on digits-LT100 (reactnet-a-tiny, bf16 AMP, few epochs): losses finite,
                   result JSON written (copied to the output folder)
- ``G4-train``     ReActNet-A training steps, batch 64 at 224², bf16 AMP, Adam: losses and gradients finite
- ``G3-compile``   the float model under ``torch.compile`` (last: its compile time is the least predictable)

GPU times are CUDA-event medians over repeats (CUDA graphs of several calls for the per-layer kernels, so
Python dispatch is out of the kernel figures), on random inputs. Without a CUDA device every CUDA step is
skipped with its reason and the JSON is still written (``--cpu-smoke`` runs G3 and G4 on the CPU at toy sizes
to exercise their code). Exit status 1 when any step failed (``--require-cuda``: no device is a failure).

    python benchmarks/gpu_check.py [--out DIR] [--require-cuda] [--steps G0,G1] [--budget-s 420]

Output (``--out``, else ``$OUT``, else ``benchmarks/results/gpu-check/``): ``gpu-check.json``,
``gpu-check.log`` and ``candle-digits-lt100.json``. The JSON is rewritten after every step.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import importlib
import importlib.metadata
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LTBENCH_NO_PROGRESS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the tests' model fixture (tests/test_packed.py) and the tree's ltbench
    sys.path.insert(0, str(ROOT))

from ltbench.binary import pack  # noqa: E402
from ltbench.binary.kernels import cuda as kcuda  # noqa: E402

SCHEMA = "ltbench-gpu-check/1"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu-check"
MMA_MACS = 16 * 8 * 256  # binary MACs of one m16n8k256 MMA
PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "triton",
    "numpy",
    "datasets",
    "pyarrow",
    "pandas",
    "fsspec",
    "huggingface-hub",
    "dill",
    "multiprocess",
    "xxhash",
    "scikit-learn",
    "click",
    "rich",
    "pytest",
    "hypothesis",
    "setuptools",
)
SUBPACKAGES = ("ltbench", "ltbench.builders", "ltbench.baselines", "ltbench.candle", "datasets")
G3_BATCH, G3_SIZE, G4_BATCH, G4_SIZE = 256, 224, 64, 224
SMOKE_BATCH, SMOKE_SIZE = 2, 64  # --cpu-smoke: toy sizes, code paths only
CANDLE_SETS = {"epochs": "2", "calib_epochs": "2", "amp": "true"}


class Skip(Exception):
    """A step that cannot run here; the message is the reason."""


@dataclass
class Ctx:
    out: Path
    dev: torch.device | None  # None: no CUDA device and no --cpu-smoke
    smoke: bool
    compile_without_gpu: bool
    require_cuda: bool
    log_file: Any
    tests: list[str] = field(default_factory=lambda: ["tests"])  # what pytest-gpu collects
    data: dict[str, Any] = field(default_factory=dict)  # results later steps read (G0 peak, G1 times)

    def log(self, msg: str = "") -> None:
        print(msg, flush=True)
        self.log_file.write(msg + "\n")
        self.log_file.flush()

    @property
    def cuda(self) -> bool:
        return self.dev is not None and self.dev.type == "cuda"


NO_CUDA = "no CUDA device (torch.cuda.is_available() is False)"


def need_cuda(ctx: Ctx) -> None:
    if not ctx.cuda:
        raise Skip(NO_CUDA)


def need_ext(ctx: Ctx):
    need_cuda(ctx)
    if ctx.data.get("build") is False:
        raise Skip("needs the CUDA extension, and the build step failed")
    ok, why = kcuda.status()  # built by the build step; when that was not selected, built here
    if not ok:
        raise Skip(f"the CUDA extension is not available: {why}")
    return kcuda.ext()


def need_device(ctx: Ctx) -> torch.device:
    """CUDA, or the CPU under --cpu-smoke (the step's figures are then CPU figures at toy sizes)."""
    if ctx.dev is None:
        raise Skip(NO_CUDA + "; --cpu-smoke runs this step on the CPU at toy sizes")
    return ctx.dev


# -- timing --------------------------------------------------------------------------------------------------


def time_calls(
    fn: Callable[[], Any], dev: torch.device, reps: int = 15, target_ms: float = 2.0, graph: bool = False
) -> dict[str, Any]:
    """Median milliseconds per call of ``fn``. CUDA: events around ``inner`` calls (sized to ``target_ms``),
    captured in one CUDA graph when ``graph``; CPU: perf_counter."""
    for _ in range(2):
        fn()
    if dev.type != "cuda":
        times = []
        for _ in range(max(3, reps // 3)):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
        return {
            "median_ms": statistics.median(times),
            "min_ms": min(times),
            "reps": len(times),
            "timer": "cpu",
        }
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    inner = max(1, min(200, math.ceil(target_ms / max(start.elapsed_time(end), 1e-3))))
    graph_error = None
    if graph:
        g = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(g):
                for _ in range(inner):
                    fn()
        except RuntimeError as e:  # recorded in the row: timed without a graph (launch gaps included)
            torch.cuda.synchronize()
            graph, graph_error = False, f"{type(e).__name__}: {str(e)[:200]}"

    if graph:

        def body():
            g.replay()
    else:

        def body():
            for _ in range(inner):
                fn()

    body()
    times = []
    for _ in range(reps):
        start.record()
        body()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / inner)
    row = {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "reps": reps,
        "inner": inner,
        "graph": graph,
        "timer": "cuda-events",
    }
    return row | ({"graph_error": graph_error} if graph_error else {})


@contextlib.contextmanager
def exact_fp32():
    """fp32 convs and matmuls without TF32 (the references for ±1 sums must be exact)."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def run_cmd(ctx: Ctx, cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``cmd`` in the repository root; its output goes to the log; returns (exit code, output)."""
    ctx.log(f"$ {' '.join(cmd)}")
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        ctx.log(out)
        return 124, out + f"\n(timed out after {timeout:.0f} s)"
    out = proc.stdout + proc.stderr
    ctx.log(out.rstrip())
    return proc.returncode, out


def tail(text: str, n: int = 1500) -> str:
    return text[-n:].strip()


# -- env -----------------------------------------------------------------------------------------------------


def step_env(ctx: Ctx) -> dict[str, Any]:
    """Device, driver, torch, CUDA and package versions."""
    from torch.utils import cpp_extension

    d: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cuda_home": cpp_extension.CUDA_HOME,
        "nvcc": shutil.which("nvcc"),
        "cpu_count": os.cpu_count(),
    }
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    d["packages"] = versions
    imports = {}
    for mod in SUBPACKAGES:
        try:
            m = importlib.import_module(mod)
            imports[mod] = str(Path(m.__file__).parent) if getattr(m, "__file__", None) else "namespace"
        except ImportError as e:
            imports[mod] = f"ImportError: {e}"
    d["imports"] = imports
    if d["nvcc"]:
        d["nvcc_version"] = subprocess.run(
            ["nvcc", "--version"], capture_output=True, text=True
        ).stdout.strip()
        d["nvcc_version"] = d["nvcc_version"].splitlines()[-1] if d["nvcc_version"] else ""
    if shutil.which("nvidia-smi"):
        q = "name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw"
        smi = subprocess.run(
            ["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"], capture_output=True, text=True
        )
        d["nvidia_smi"] = dict(zip(q.split(","), [v.strip() for v in smi.stdout.split(",")], strict=False))
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        d["device"] = {
            "name": p.name,
            "capability": f"{p.major}.{p.minor}",
            "sms": p.multi_processor_count,
            "memory_gib": round(p.total_memory / 2**30, 1),
            "l2_mib": round(getattr(p, "L2_cache_size", 0) / 2**20, 1),
            "cudnn": torch.backends.cudnn.version(),
        }
    ctx.log(json.dumps(d, indent=1))
    bad = [m for m, v in imports.items() if v.startswith("ImportError") and m.startswith("ltbench")]
    if bad:
        raise RuntimeError(f"not importable: {bad} (install the tree: pip install --no-deps -e .)")
    if ctx.require_cuda and not torch.cuda.is_available():
        raise RuntimeError(f"--require-cuda: {NO_CUDA}")
    return d


# -- build ---------------------------------------------------------------------------------------------------


def step_build(ctx: Ctx) -> dict[str, Any]:
    """Compile the extension with the project's loader (subprocess, timed), then load it here."""
    if ctx.cuda:
        cap = torch.cuda.get_device_capability()
    elif ctx.compile_without_gpu:
        cap = (9, 0)
    else:
        raise Skip(NO_CUDA + "; --compile-without-gpu compiles for sm_90a without loading")
    d: dict[str, Any] = {"arch": f"sm_{kcuda.arch(cap)}", "nvcc_flags": kcuda.nvcc_flags(cap)}
    code = (
        "import sys, time; from ltbench.binary.kernels import cuda; t = time.perf_counter(); "
        f"m = cuda.build({tuple(cap)!r}, verbose=True); print('BUILD_SECONDS', time.perf_counter() - t); "
        "print('BUILT', m.__file__)"
    )
    t = time.perf_counter()
    rc, out = run_cmd(ctx, [sys.executable, "-c", code], timeout=420)
    d["build_wall_s"] = round(time.perf_counter() - t, 2)
    ctx.data["build"] = rc == 0
    if rc != 0:
        raise RuntimeError(f"the extension failed to build (exit {rc}):\n{tail(out)}")
    d["build_s"] = round(float(re.search(r"BUILD_SECONDS (\S+)", out).group(1)), 2)
    so = re.search(r"BUILT (\S+)", out).group(1)
    d["library"] = so
    tool = kcuda.sass_tool()
    if tool and "-sass" in tool:  # cuobjdump reads the shared library (nvdisasm reads cubins only)
        sass = subprocess.run([*tool, so], capture_output=True, text=True).stdout
        d["sass_bmma_and_popc"] = sass.count("BMMA.168256.AND.POPC")
        d["sass_xor_popc"] = sass.count("XOR.POPC")
        if d["sass_bmma_and_popc"] == 0:
            raise RuntimeError(f"no BMMA.168256.AND.POPC in the SASS of {so}")
    else:
        d["sass_bmma_and_popc"] = "cuobjdump not found"
    if not ctx.cuda:
        d["compiled_only"] = True  # nothing was run
        return d
    t = time.perf_counter()
    ok, why = kcuda.status()
    d["load_s"] = round(time.perf_counter() - t, 2)
    ctx.data["build"] = ok
    if not ok:
        raise RuntimeError(f"built, but the loader failed here: {kcuda.last_error()[-3000:]}")
    return d


# -- pytest --------------------------------------------------------------------------------------------------


def step_pytest(ctx: Ctx) -> dict[str, Any]:
    """``pytest -m gpu``: the CUDA kernels' exactness tests (collection only without CUDA)."""
    base = [sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", *ctx.tests]
    if not ctx.cuda:
        rc, out = run_cmd(ctx, [*base, "--collect-only", "-q"], timeout=300)
        ids = [ln for ln in out.splitlines() if "::" in ln]
        if rc != 0 or not ids:
            raise RuntimeError(f"collecting the gpu tests failed (exit {rc}):\n{tail(out)}")
        raise Skip(f"{NO_CUDA}; {len(ids)} gpu tests collected, none run")
    need_ext(ctx)  # every gpu test needs the extension: do not rebuild a failed one in each test
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [*base, "-q", "-rfEs", "--continue-on-collection-errors", f"--junitxml={xml}"]
        rc, out = run_cmd(ctx, cmd, timeout=400)
        if not xml.exists():
            raise RuntimeError(f"pytest wrote no report (exit {rc}):\n{tail(out)}")
        cases = []
        for tc in ET.parse(xml).getroot().iter("testcase"):
            outcome, msg = "passed", ""
            for child in tc:
                if child.tag in ("failure", "error", "skipped"):
                    outcome, msg = child.tag, (child.get("message") or "")[:300]
            cases.append(
                {
                    "test": f"{tc.get('classname')}::{tc.get('name')}",
                    "outcome": outcome,
                    "seconds": float(tc.get("time") or 0),
                    **({"message": msg} if msg else {}),
                }
            )
    counts = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failure", "error", "skipped")}
    d = {"exit_code": rc, "counts": counts, "tests": cases}
    ctx.data["pytest"] = d
    if rc != 0 or not cases or counts["failure"] or counts["error"] or counts["skipped"]:
        bad = [c["test"] for c in cases if c["outcome"] != "passed"]
        raise RuntimeError(f"pytest -m gpu: {counts} (exit {rc}); not passed: {bad[:10]}")
    return d


# -- G0 ------------------------------------------------------------------------------------------------------


def step_g0(ctx: Ctx) -> dict[str, Any]:
    """Peak b1 AND-popc MMA rate: register-only chains, a few grid shapes, checked then timed."""
    ext = need_ext(ctx)
    dev, chains = ctx.dev, int(ext.BMMA_PEAK_CHAINS)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    words = torch.randint(-(2**31), 2**31, (192,), dtype=torch.int64).to(torch.int32).to(dev)
    rows = []
    for per_sm in (1, 2, 4, 8):
        for threads in (128, 256):
            blocks = sms * per_sm
            warps = blocks * threads // 32
            out = torch.full((blocks * threads * 4,), -7, dtype=torch.int32, device=dev)
            ext.bmma_peak(words, out, 1, blocks, threads)
            one = out.clone()
            probe = time_calls(
                lambda o=out, b=blocks, t=threads: ext.bmma_peak(words, o, 256, b, t), dev, reps=3
            )
            iters = int(min(2**17, max(256, 256 * 20.0 / probe["median_ms"])))  # ≈ 20 ms per launch
            out.fill_(-7)
            ext.bmma_peak(words, out, iters, blocks, threads)
            if not torch.equal(out, one * iters) or not one.any() or (one < 0).any():
                raise RuntimeError(f"bmma_peak({blocks}x{threads}, {iters} iters) is not {iters} x one MMA")
            tm = time_calls(
                lambda o=out, b=blocks, t=threads, i=iters: ext.bmma_peak(words, o, i, b, t),
                dev,
                reps=7,
                target_ms=0,
            )
            rate = warps * iters * chains * MMA_MACS / (tm["median_ms"] * 1e-3)
            rows.append({"blocks": blocks, "threads": threads, "iters": iters, **tm, "bmac_per_s": rate})
            ctx.log(
                f"G0 {blocks:5d} blocks x {threads} threads, {iters} iters: {tm['median_ms']:.3f} ms, "
                f"{rate / 1e12:.1f} T bMAC/s"
            )
    best = max(rows, key=lambda r: r["bmac_per_s"])
    ctx.data["g0"] = best["bmac_per_s"]
    return {
        "peak_bmac_per_s": best["bmac_per_s"],
        "peak_tops": 2 * best["bmac_per_s"] / 1e12,
        "best": best,
        "per_sm_per_clock_at_max_sm_clock": _per_sm_clock(best["bmac_per_s"], sms),
        "chains": chains,
        "sms": sms,
        "configs": rows,
    }


def _per_sm_clock(rate: float, sms: int) -> float | None:
    """Binary MACs per SM per cycle at nvidia-smi's max SM clock (the clock during the run is not read)."""
    try:
        mhz = subprocess.run(
            ["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
        ).stdout.split()[0]
        return rate / sms / (float(mhz) * 1e6)
    except (OSError, IndexError, ValueError):
        return None


# -- G1 / G2 -------------------------------------------------------------------------------------------------


def reactnet_layers(size: int = 224) -> list[dict[str, int]]:
    """Every binary conv of ReActNet-A at ``size``² as a (c, n, h, k, stride) shape, with its count."""
    from ltbench.backbones import create_backbone

    model = create_backbone("reactnet-a", 1000, 3)
    conv = model.stem.conv
    h = (size + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
    shapes: dict[tuple, int] = {}
    for b in model.blocks:
        s, ho = b.stride, (h + 2 - 3) // b.stride + 1
        key3, key1 = (b.in_chans, b.in_chans, h, 3, s), (b.in_chans, b.out_chans, ho, 1, 1)
        shapes[key3] = shapes.get(key3, 0) + 1
        shapes[key1] = shapes.get(key1, 0) + 1
        h = ho
    return [
        {"c": c, "n": n, "h": hh, "k": k, "stride": s, "count": cnt}
        for (c, n, hh, k, s), cnt in shapes.items()
    ]


def layer_name(sh: dict[str, int]) -> str:
    return f"{sh['k']}x{sh['k']} {sh['c']}->{sh['n']} @{sh['h']} s{sh['stride']}"


def conv_case(ext, dev, b: int, sh: dict[str, int], seed: int) -> tuple[dict[str, Any], Callable]:
    """Pack random inputs and weights for one layer, check the kernel exactly, and return (row, launch).

    The check is a float64 conv of the ±1 tensors (exact; cuDNN's fp32 Winograd/FFT paths would not be) on
    the first and the last image of the batch, so the last, partial row block is covered too."""
    c, n, h, k, s = sh["c"], sh["n"], sh["h"], sh["k"], sh["stride"]
    pad = k // 2
    from ltbench.binary import ops

    x = torch.randn(b, h, h, c, device=dev, generator=torch.Generator(dev).manual_seed(seed))
    w = torch.randn(n, c, k, k, generator=torch.Generator().manual_seed(seed))
    pw = pack.pack_conv(w, s, pad)
    xb = ops.sign_pack(x)
    rows, tapsum = pw.rows.to(dev), pw.tapsum.to(dev).to(torch.int32)
    wpop = kcuda.weight_pop(tapsum, k * k * c)
    ho = (h + 2 * pad - k) // s + 1
    out = torch.full((b, ho, ho, n), -(2**30), dtype=torch.int32, device=dev)  # poisoned

    def launch():
        kcuda.launch(ext, xb, rows, tapsum, wpop, c, n, k, k, s, pad, out_int=out)

    launch()
    idx = sorted({0, b - 1})
    xs = pack.sign_pm1(x[idx]).double().permute(0, 3, 1, 2)
    ref = F.conv2d(xs, pack.sign_pm1(w).double().to(dev), stride=s, padding=pad).permute(0, 2, 3, 1)
    if not torch.equal(out[idx].double(), ref):
        diff = (out[idx].double() - ref).abs().max().item()
        raise RuntimeError(
            f"{layer_name(sh)} batch {b}: kernel differs from the float64 conv (max |diff| {diff})"
        )
    del x
    m, kk = b * ho * ho, k * k * c
    return {"layer": layer_name(sh), "batch": b, "count": sh["count"], "M": m, "N": n, "K": kk}, launch


def step_g1(ctx: Ctx) -> dict[str, Any]:
    """The conv kernel on ReActNet-A-224's layer shapes, batch 1 and 256, vs G0."""
    ext = need_ext(ctx)
    dev, peak = ctx.dev, ctx.data.get("g0")
    cases, totals = [], {}
    for b in (1, 256):
        for i, sh in enumerate(reactnet_layers()):
            row, launch = conv_case(ext, dev, b, sh, seed=1000 * b + i)
            tm = time_calls(launch, dev, graph=True)
            rate = row["M"] * row["N"] * row["K"] / (tm["median_ms"] * 1e-3)
            row |= {**tm, "bmac_per_s": rate, "pct_of_g0": 100 * rate / peak if peak else None}
            cases.append(row)
            totals[b] = totals.get(b, 0.0) + row["count"] * tm["median_ms"]
            ctx.log(
                f"G1 b{b:<3} {row['layer']:26} M={row['M']:8d} N={row['N']:4d} K={row['K']:5d} "
                f"{tm['median_ms']:8.4f} ms {rate / 1e12:7.2f} T bMAC/s"
                + (f" {row['pct_of_g0']:5.1f}% of G0" if peak else "")
            )
            torch.cuda.empty_cache()
    ctx.data["g1"] = {(r["batch"], r["layer"]): r["median_ms"] for r in cases}
    return {
        "cases": cases,
        "network_binary_convs_ms": {str(b): v for b, v in totals.items()},
        "g0_peak_bmac_per_s": peak,
        "note": "kernel only (packed input and weights ready, int32 output); "
        "inputs that fit in L2 are re-read from it",
    }


def step_g2(ctx: Ctx) -> dict[str, Any]:
    """``torch._int_mm`` (int8 ±1) on the same implicit-GEMM shapes vs the XNOR conv kernel (G1)."""
    ext = need_ext(ctx)
    from ltbench.binary import ops

    dev, g, gdev = ctx.dev, torch.Generator().manual_seed(2), torch.Generator(ctx.dev).manual_seed(2)
    g1 = ctx.data.get("g1", {})
    cases = []
    for b in (1, 256):
        for i, sh in enumerate(reactnet_layers()):
            name = layer_name(sh)
            ho = (sh["h"] + 2 * (sh["k"] // 2) - sh["k"]) // sh["stride"] + 1
            m, n, k = b * ho * ho, sh["n"], sh["k"] ** 2 * sh["c"]
            a = torch.randint(0, 2, (m, k), generator=gdev, dtype=torch.int8, device=dev) * 2 - 1
            w = torch.randint(0, 2, (n, k), generator=g, dtype=torch.int8) * 2 - 1
            wt = w.to(dev).t()  # K x N, column-major (the layout cuBLASLt's int8 GEMM wants)
            row: dict[str, Any] = {"layer": name, "batch": b, "M": m, "N": n, "K": k}
            try:
                res = torch._int_mm(a, wt)
            except RuntimeError as e:
                row["int8"] = f"unsupported: {str(e)[:200]}"
                cases.append(row)
                continue
            top = min(m, 4096)  # check the int8 baseline and xnor_gemm against each other
            xg = ops.xnor_gemm(ops.sign_pack(a[:top].float()), pack.pack_linear(w.float()).rows.to(dev), k, n)
            if not torch.equal(xg, res[:top]):
                raise RuntimeError(f"{name} batch {b}: torch._int_mm and xnor_gemm differ")
            tm = time_calls(lambda a=a, wt=wt: torch._int_mm(a, wt), dev, graph=True)
            xnor_ms = g1.get((b, name))
            if xnor_ms is None:
                _, launch = conv_case(ext, dev, b, sh, seed=1000 * b + i)
                xnor_ms = time_calls(launch, dev, graph=True)["median_ms"]
            row |= {"int8_" + k_: v for k_, v in tm.items()}
            row |= {
                "int8_tops": 2 * m * n * k / (tm["median_ms"] * 1e-3) / 1e12,
                "xnor_conv_ms": xnor_ms,
                "int8_over_xnor": tm["median_ms"] / xnor_ms,
            }
            cases.append(row)
            ctx.log(
                f"G2 b{b:<3} {name:26} int8 {tm['median_ms']:8.4f} ms  xnor conv {xnor_ms:8.4f} ms  "
                f"int8/xnor {row['int8_over_xnor']:5.2f}"
            )
            del a, wt, res
            torch.cuda.empty_cache()
    return {
        "cases": cases,
        "note": "int8 GEMM on ready im2col matrices (no im2col cost) vs the XNOR conv kernel "
        "with its implicit im2col; >1 means the XNOR kernel is faster",
    }


# -- G3 ------------------------------------------------------------------------------------------------------


def g3_models(dev: torch.device):
    from ltbench.binary.packed import PackedReActNet
    from tests.test_packed import randomized

    model = randomized("reactnet-a", num_classes=1000)
    packed = PackedReActNet(model).to(dev).eval()
    fmodel = copy.deepcopy(model).to(dev).to(memory_format=torch.channels_last).eval()
    return packed, fmodel


def step_g3(ctx: Ctx) -> dict[str, Any]:
    """Packed ReActNet-A vs the float model in bf16 autocast (eager), batch 256 at 224²."""
    dev = need_device(ctx)
    if ctx.cuda:
        need_ext(ctx)
    batch, size = (G3_BATCH, G3_SIZE) if ctx.cuda else (SMOKE_BATCH, SMOKE_SIZE)
    packed, fmodel = g3_models(dev)
    x = torch.randn(batch, 3, size, size, device=dev)
    xc = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        n = min(batch, 16)
        with exact_fp32():
            ref = fmodel(xc[:n]).argmax(1)
        agree = float((packed(x[:n]).argmax(1) == ref).float().mean())
        t_packed = time_calls(lambda: packed(x), dev, reps=10, target_ms=0)

        def bf16():
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                return fmodel(xc)

        t_bf16 = time_calls(bf16, dev, reps=10, target_ms=0)
    d = {
        "device": str(dev),
        "batch": batch,
        "size": size,
        "argmax_agreement_fp32": agree,
        "agreement_images": n,
        "packed": t_packed,
        "float_bf16_eager": t_bf16,
        "speedup_vs_bf16_eager": t_bf16["median_ms"] / t_packed["median_ms"],
        "packed_images_per_s": batch / (t_packed["median_ms"] * 1e-3),
        "float_bf16_eager_images_per_s": batch / (t_bf16["median_ms"] * 1e-3),
    }
    ctx.log(
        f"G3 {dev} batch {batch} at {size}²: packed {t_packed['median_ms']:.2f} ms, float bf16 eager "
        f"{t_bf16['median_ms']:.2f} ms (×{d['speedup_vs_bf16_eager']:.2f}); argmax agreement {agree:.3f}"
    )
    if agree < 1.0:
        raise RuntimeError(f"packed and float (fp32) argmax agree on {agree:.3f} of {n} images, not all")
    return d


def step_g3_compile(ctx: Ctx) -> dict[str, Any]:
    """The float model in bf16 autocast under ``torch.compile`` (inductor), same batch as G3."""
    dev = need_device(ctx)
    if not ctx.cuda:
        raise Skip("--cpu-smoke: torch.compile on the CPU takes minutes here and says nothing about the GPU")
    _, fmodel = g3_models(dev)
    x = torch.randn(G3_BATCH, 3, G3_SIZE, G3_SIZE, device=dev).contiguous(memory_format=torch.channels_last)
    compiled = torch.compile(fmodel)

    def run():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            return compiled(x)

    t = time.perf_counter()
    run()
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - t
    tm = time_calls(run, dev, reps=10, target_ms=0)
    d = {
        "batch": G3_BATCH,
        "size": G3_SIZE,
        "compile_s": round(compile_s, 1),
        "float_bf16_compile": tm,
        "images_per_s": G3_BATCH / (tm["median_ms"] * 1e-3),
    }
    packed_ms = ctx.data.get("g3_packed_ms")
    if packed_ms:
        d["speedup_packed_vs_compile"] = tm["median_ms"] / packed_ms
    ctx.log(f"G3-compile: compiled in {compile_s:.1f} s, {tm['median_ms']:.2f} ms per batch")
    return d


# -- G4 ------------------------------------------------------------------------------------------------------


def step_g4_candle(ctx: Ctx) -> dict[str, Any]:
    """A short CANDLE run on digits-LT100 with bf16 AMP: losses finite, result JSON written."""
    dev = need_device(ctx)
    from ltbench.builders.build import build

    from ltbench.registry import DATASETS
    from ltbench.run import run_one

    with tempfile.TemporaryDirectory() as tmp:
        data, results = Path(tmp) / "data", Path(tmp) / "results"
        t = time.perf_counter()
        build(DATASETS.get("digits"), 100, data)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        res_path = run_one(
            "candle",
            "digits-lt100",
            "reactnet-a-tiny",
            sets=CANDLE_SETS,
            data_root=data,
            results=results,
            device=dev.type,
        )
        run_s = time.perf_counter() - t
        res = json.loads(Path(res_path).read_text())
        losses = []
        for log in sorted(results.glob(".runs/**/*.log")):
            losses += [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        shutil.copy(res_path, ctx.out / "candle-digits-lt100.json")
    d = {
        "device": str(dev),
        "sets": CANDLE_SETS,
        "build_s": round(build_s, 2),
        "run_s": round(run_s, 2),
        "metrics": res["metrics"],
        "inference": res["inference"],
        "timings": res["timings"],
        "epoch_losses": [{"stage": r["stage"], "epoch": r["epoch"], "loss": r["loss"]} for r in losses],
        "result_json": "candle-digits-lt100.json",
    }
    ctx.log(f"G4-candle: {json.dumps({k: d[k] for k in ('metrics', 'inference', 'epoch_losses')})}")
    if not losses:
        raise RuntimeError("the trainer logged no epoch losses")
    bad = [r for r in losses if not math.isfinite(r["loss"])]
    if bad:
        raise RuntimeError(f"non-finite losses: {bad}")
    if not all(math.isfinite(v) for v in res["metrics"].values() if isinstance(v, float)):
        raise RuntimeError(f"non-finite metrics: {res['metrics']}")
    if ctx.cuda and res["inference"].get("path") != "packed-cuda-b1mma":
        raise RuntimeError(f"evaluation did not use the CUDA packed path: {res['inference']}")
    return d


def step_g4_train(ctx: Ctx) -> dict[str, Any]:
    """ReActNet-A training steps at batch 64, 224², bf16 AMP, Adam: losses and gradients finite."""
    dev = need_device(ctx)
    from ltbench.backbones import create_backbone

    batch, size = (G4_BATCH, G4_SIZE) if ctx.cuda else (SMOKE_BATCH, SMOKE_SIZE)
    torch.manual_seed(0)
    model = create_backbone("reactnet-a", 1000, 3).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, size, size, device=dev)
    y = torch.randint(0, 1000, (batch,), device=dev)
    losses: list[torch.Tensor] = []

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())

    if ctx.cuda:
        torch.cuda.reset_peak_memory_stats()
    tm = time_calls(step, dev, reps=6, target_ms=0)
    vals = [float(v) for v in losses]
    grads_finite = all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)
    d = {
        "device": str(dev),
        "batch": batch,
        "size": size,
        "amp": "bf16",
        "step": tm,
        "losses": vals,
        "images_per_s": batch / (tm["median_ms"] * 1e-3),
        "grads_finite": grads_finite,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if ctx.cuda else None,
    }
    ctx.log(
        f"G4-train {dev} batch {batch}: {tm['median_ms']:.1f} ms/step, {d['images_per_s']:.0f} img/s, "
        f"losses {[round(v, 3) for v in vals]}"
    )
    if not all(math.isfinite(v) for v in vals) or not grads_finite:
        raise RuntimeError(f"non-finite training step: losses {vals}, gradients finite {grads_finite}")
    return d


# -- driver --------------------------------------------------------------------------------------------------

#: (id, function, rough seconds on an H200: a step is not started when it would overrun --budget-s)
STEPS: tuple[tuple[str, Callable[[Ctx], dict[str, Any]], float], ...] = (
    ("env", step_env, 5),
    ("build", step_build, 120),
    ("pytest-gpu", step_pytest, 60),
    ("G0", step_g0, 15),
    ("G1", step_g1, 40),
    ("G2", step_g2, 40),
    ("G3", step_g3, 40),
    ("G4-candle", step_g4_candle, 60),
    ("G4-train", step_g4_train, 30),
    ("G3-compile", step_g3_compile, 120),
)
STEP_IDS = tuple(s[0] for s in STEPS)


def default_out() -> Path:
    return Path(os.environ["OUT"]) if os.environ.get("OUT") else DEFAULT_OUT


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: $OUT, else %(default)s)")
    ap.add_argument(
        "--steps", default=",".join(STEP_IDS), help="comma-separated subset of " + ",".join(STEP_IDS)
    )
    ap.add_argument(
        "--budget-s", type=float, default=420.0, help="do not start a step that would end past this"
    )
    ap.add_argument(
        "--require-cuda", action="store_true", help="no CUDA device is a failure (the GPU machine)"
    )
    ap.add_argument(
        "--cpu-smoke", action="store_true", help="without CUDA, run G3 and G4 on the CPU at toy sizes"
    )
    ap.add_argument(
        "--compile-without-gpu",
        action="store_true",
        help="without CUDA, compile the extension for sm_90a (no run)",
    )
    ap.add_argument(
        "--tests", nargs="+", default=["tests"], help="paths pytest-gpu collects (default: tests)"
    )
    args = ap.parse_args(argv)
    unknown = set(args.steps.split(",")) - set(STEP_IDS)
    if unknown:
        ap.error(f"unknown steps {sorted(unknown)}; choose from {','.join(STEP_IDS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or default_out()
    out.mkdir(parents=True, exist_ok=True)
    selected = set(args.steps.split(","))
    dev = (
        torch.device("cuda")
        if torch.cuda.is_available()
        else (torch.device("cpu") if args.cpu_smoke else None)
    )
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "command": [sys.executable, *sys.argv] if argv is None else ["gpu_check.py", *argv],
        "started_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "mode": "cuda"
        if dev is not None and dev.type == "cuda"
        else ("cpu-smoke" if dev is not None else "dry-run"),
        "steps": [],
    }
    t0 = time.perf_counter()
    with (out / "gpu-check.log").open("w") as log_file:
        ctx = Ctx(out, dev, args.cpu_smoke, args.compile_without_gpu, args.require_cuda, log_file, args.tests)
        ctx.log(
            f"gpu_check: {report['mode']} on {report['device'] or platform.processor() or 'CPU'}, out {out}"
        )
        for sid, fn, estimate in STEPS:
            rec: dict[str, Any] = {"id": sid, "title": fn.__doc__.splitlines()[0]}
            elapsed = time.perf_counter() - t0
            ctx.log(f"\n=== {sid}: {rec['title']}")
            t = time.perf_counter()
            if sid not in selected:
                rec |= {"status": "skipped", "reason": "not selected (--steps)"}
            elif elapsed + estimate > args.budget_s:
                rec |= {
                    "status": "skipped",
                    "reason": f"time budget: {elapsed:.0f} s used + ~{estimate:.0f} s "
                    f"> --budget-s {args.budget_s:.0f}",
                }
            else:
                try:
                    rec["data"] = fn(ctx)
                    if ctx.cuda:
                        torch.cuda.synchronize()  # a late CUDA error belongs to this step
                    rec["status"] = "ok"
                except Skip as e:
                    rec |= {"status": "skipped", "reason": str(e)}
                except Exception as e:  # noqa: BLE001 — the harness records every failure and keeps measuring
                    ctx.log(traceback.format_exc())
                    rec |= {"status": "failed", "reason": f"{type(e).__name__}: {str(e)[:2000]}"}
            rec["seconds"] = round(time.perf_counter() - t, 2)
            if sid == "G3" and rec["status"] == "ok":
                ctx.data["g3_packed_ms"] = rec["data"]["packed"]["median_ms"]
            ctx.log(f"--- {sid}: {rec['status']}" + (f" ({rec['reason'][:300]})" if "reason" in rec else ""))
            report["steps"].append(rec)
            write_report(out, report, t0)
        summary = report["summary"]
        ctx.log(
            "\n"
            + "\n".join(
                f"{r['id']:11} {r['status']:8} {r['seconds']:7.1f} s  {r.get('reason', '')[:90]}"
                for r in report["steps"]
            )
        )
        ctx.log(f"gpu_check: {summary} in {report['total_s']:.0f} s -> {out / 'gpu-check.json'}")
    return 1 if summary["failed"] else 0


def write_report(out: Path, report: dict[str, Any], t0: float) -> None:
    report["summary"] = {
        k: sum(r["status"] == k for r in report["steps"]) for k in ("ok", "failed", "skipped")
    }
    report["total_s"] = round(time.perf_counter() - t0, 1)
    tmp = out / "gpu-check.json.tmp"
    tmp.write_text(json.dumps(report, indent=1, default=str) + "\n")
    tmp.replace(out / "gpu-check.json")


if __name__ == "__main__":
    sys.exit(main())
