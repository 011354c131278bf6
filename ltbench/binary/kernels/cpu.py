"""Build (at first use) and call the plain-C XNOR CPU kernel through ctypes.

The shared library is compiled by the system C compiler (``$CC``, else ``cc``/``gcc``) without
``-march=native``; each instruction set (AVX-512 VPOPCNTDQ, AVX2, scalar) is compiled under its own
``#pragma GCC target`` and chosen at run time. The build is cached under ``$LTBENCH_KERNEL_CACHE`` (default
``~/.cache/ltbench/kernels``) keyed by the sources' hash, the compiler's version and the CPU's features.

The path can be forced with ``LTBENCH_XNOR_ISA=avx512|avx2|scalar`` or :func:`use_isa`; forcing a path the CPU
lacks is an error, never a silent fallback.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from ltbench.errors import LTBenchError

HERE = Path(__file__).resolve().parent
SOURCES = ("xnor_cpu.c", "xnor_cpu.h", "xnor_impl.h", "xnor_math.h", "xnor_amx.h")
ISAS = {"scalar": 0, "avx2": 1, "avx512": 2}
ISA_NAMES = {v: k for k, v in ISAS.items()}
PANEL = 32
_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_forced: str | None = None
#: routes of the fused training block's float gradient convolutions (see :func:`grad_route`)
GRAD_ROUTES = ("amx", "float")
_forced_grad: str | None = None

_p = ctypes.c_void_p
_i = ctypes.c_int64


class ConvArgs(ctypes.Structure):
    """Mirror of ``xnor_conv_args`` in ``xnor_cpu.h``."""

    _fields_ = [
        ("x", _p),
        *[(n, _i) for n in ("B", "H", "W", "cw", "C")],
        ("w", _p),
        ("tapsum", _p),
        *[(n, _i) for n in ("N", "kh", "kw", "stride", "pad", "Ho", "Wo")],
        ("scale", _p),
        ("shift", _p),
        ("res", _p),
        *[(n, _i) for n in ("res_c", "res_h", "res_w", "res_pool")],
        *[(n, _p) for n in ("rp_b1", "rp_slope", "rp_b2", "next_bias", "out_int", "out_f", "out_bits")],
        ("nthreads", _i),
        ("isa", _i),
    ]


def cache_dir() -> Path:
    root = os.environ.get("LTBENCH_KERNEL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "ltbench" / "kernels"


def find_compiler() -> str | None:
    for cand in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cand and shutil.which(cand):
            return cand
    return None


def cpu_features() -> str:
    """The CPU flags that select a path (part of the cache key)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        flags = []
    keep = sorted(f for f in flags if f.startswith(("avx512", "avx2", "popcnt", "amx")))
    return platform.machine() + ":" + ",".join(keep)


#: -fno-trapping-math: the elementwise training loops' selects (PReLU, ApproxSign's clamp) only vectorise when the
#: compiler may evaluate both arms; nothing here reads floating-point exception flags, and no result changes.
CFLAGS = ("-O3", "-fno-trapping-math", "-fPIC", "-shared", "-std=gnu11")


def _build_key(cc: str) -> str:
    h = hashlib.sha256()
    h.update(" ".join(CFLAGS).encode())
    for name in SOURCES:
        h.update((HERE / name).read_bytes())
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        h.update(
            subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout.encode()
        )
    h.update(cpu_features().encode())
    return h.hexdigest()[:20]


def _compile(cc: str, out: Path) -> None:
    base = [cc, *CFLAGS, str(HERE / "xnor_cpu.c"), "-o"]
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".build-"))
    try:
        errors = []
        for extra in (["-fopenmp"], []):  # OpenMP when the compiler has it; threads=1 otherwise (recorded)
            target = tmp / out.name
            proc = subprocess.run([*base, str(target), *extra], capture_output=True, text=True)
            if proc.returncode == 0:
                os.replace(target, out)
                return
            errors.append(proc.stderr.strip()[-2000:])
        raise LTBenchError(
            f"the C compiler {cc!r} failed to build the XNOR CPU kernel:\n" + "\n".join(errors),
            "install gcc >= 9 (apt install gcc), or run with --packed off to use the float path",
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def library_path() -> Path:
    """Path of the built kernel library, compiling it first if the cache lacks it."""
    cc = find_compiler()
    if cc is None:
        raise LTBenchError(
            "no C compiler found to build the XNOR CPU kernel (tried $CC, cc, gcc, clang)",
            "install gcc (apt install gcc), or run with --packed off to use the float path",
        )
    d = cache_dir() / _build_key(cc)
    d.mkdir(parents=True, exist_ok=True)
    path = d / "libltbench_xnor.so"
    if not path.exists():
        _compile(cc, path)
    return path


def lib() -> ctypes.CDLL:
    """The loaded kernel library (built on first use)."""
    global _lib
    with _lock:
        if _lib is None:
            so = ctypes.CDLL(str(library_path()))
            so.xnor_isa_supported.argtypes = [_i]
            so.xnor_isa_supported.restype = ctypes.c_int
            so.xnor_best_isa.restype = _i
            so.xnor_has_openmp.restype = ctypes.c_int
            so.xnor_conv.argtypes = [ctypes.POINTER(ConvArgs)]
            so.xnor_conv.restype = ctypes.c_int
            so.xnor_conv_repeat.argtypes = [ctypes.POINTER(ConvArgs), _i]
            so.xnor_conv_repeat.restype = ctypes.c_int
            so.xnor_pack.argtypes = [_p, _i, _i, _p, _p, _i, _i, _i]
            so.xnor_pack.restype = ctypes.c_int
            so.xnor_pack_weights.argtypes = [_p, _i, _i, _i, _p, _p, _p]
            so.xnor_pm1.argtypes = [_p, _i, _i, _p, _p, _i, _i]
            so.xnor_pm1.restype = ctypes.c_int
            so.xnor_approxsign_backward.argtypes = [_p, _p, _i, _i, _p, _p, _p, _p, _i, _i]
            so.xnor_approxsign_backward.restype = ctypes.c_int
            so.xnor_prelu_bn_backward.argtypes = [_p] * 7 + [_i, _i, _p, _p, _p, _i, _i]
            so.xnor_prelu_bn_backward.restype = ctypes.c_int
            so.xnor_weff.argtypes = [_p, _i, _i, _i, _p, _p, _i]
            so.xnor_weff.restype = ctypes.c_int
            so.xnor_ste_weight_grad.argtypes = [_p, _p, _i, _i, _i, _p, _i]
            so.xnor_ste_weight_grad.restype = ctypes.c_int
            so.xnor_pack_weights.restype = ctypes.c_int
            so.xnor_bn_act_train.argtypes = [_p, _i, _i] + [_p] * 4 + [ctypes.c_double] * 2 + [_p, _i]
            so.xnor_bn_act_train.argtypes += [_p] * 7 + [_i, _i]
            so.xnor_bn_act_train.restype = ctypes.c_int
            so.xnor_amx_available.restype = ctypes.c_int
            so.xnor_amx_conv_backward.argtypes = [_p] * 5 + [_i] * 10 + [_p, _p, _i]
            so.xnor_amx_conv_backward.restype = ctypes.c_int
            so.xnor_add_chain.argtypes = [_i]
            so.xnor_add_chain.restype = _i
            so.xnor_peak.argtypes = [_i, _i]
            so.xnor_peak.restype = _i
            so.xnor_peak_macs.argtypes = [_i]
            so.xnor_peak_macs.restype = _i
            _lib = so
    return _lib


def available() -> bool:
    """Whether the CPU kernel can be built and loaded here (no exception)."""
    try:
        lib()
    except (LTBenchError, OSError):
        return False
    return True


def supported(isa: str) -> bool:
    return bool(lib().xnor_isa_supported(ISAS[isa]))


@functools.cache
def best_isa() -> str:
    return ISA_NAMES[int(lib().xnor_best_isa())]


def current_isa() -> str:
    """The path calls use now: :func:`use_isa` override, else ``$LTBENCH_XNOR_ISA``, else the best one."""
    name = _forced or os.environ.get("LTBENCH_XNOR_ISA", "auto").strip().lower() or "auto"
    if name == "auto":
        return best_isa()
    if name not in ISAS:
        raise LTBenchError(f"unknown XNOR path {name!r}", f"use one of auto, {', '.join(ISAS)}")
    if not supported(name):
        raise LTBenchError(
            f"the XNOR path {name!r} was forced but this CPU lacks it", "unset LTBENCH_XNOR_ISA or use auto"
        )
    return name


@contextlib.contextmanager
def use_isa(name: str | None) -> Iterator[None]:
    """Force one path (``avx512``/``avx2``/``scalar``) inside the block; ``None`` keeps the current one."""
    global _forced
    old = _forced
    _forced = name
    try:
        current_isa()
        yield
    finally:
        _forced = old


@functools.cache
def amx_available() -> bool:
    """Whether AMX-BF16 runs here: the CPU has it and Linux granted this process the tile registers."""
    return bool(lib().xnor_amx_available())


def grad_route() -> str:
    """How the fused block's backward computes its binary convolutions' float gradients: ``amx`` (every conv on
    AMX-BF16, each float split into three bf16 pieces, exact to float32 rounding; ``xnor_amx.h``), ``float``
    (torch's float32 convolution backward), or ``auto`` — AMX on the shapes where it measured faster
    (:func:`ltbench.binary.fused.amx_pays`), float on the others. ``$LTBENCH_GRAD_GEMM=auto|amx|float`` or
    :func:`use_grad_route` chooses (default ``auto``); ``auto`` means ``float`` where the CPU lacks AMX-BF16, and
    forcing ``amx`` there is an error."""
    name = _forced_grad or os.environ.get("LTBENCH_GRAD_GEMM", "auto").strip().lower() or "auto"
    if name not in ("auto", *GRAD_ROUTES):
        raise LTBenchError(f"unknown gradient route {name!r}", f"use one of auto, {', '.join(GRAD_ROUTES)}")
    if name == "auto":
        return "auto" if amx_available() else "float"
    if name == "amx" and not amx_available():
        raise LTBenchError(
            "the gradient route 'amx' was forced but this CPU (or kernel) lacks AMX-BF16",
            "unset LTBENCH_GRAD_GEMM or use auto",
        )
    return name


@contextlib.contextmanager
def use_grad_route(name: str | None) -> Iterator[None]:
    """Force one gradient route (``auto``/``amx``/``float``) inside the block; ``None`` keeps the current one."""
    global _forced_grad
    old = _forced_grad
    _forced_grad = name
    try:
        grad_route()
        yield
    finally:
        _forced_grad = old


@functools.cache
def has_openmp() -> bool:
    return bool(lib().xnor_has_openmp())


def check_rc(rc: int, what: str) -> None:
    if rc == -3:
        raise LTBenchError(f"{what}: the forced XNOR path is not supported by this CPU", "use auto")
    if rc != 0:
        raise RuntimeError(f"{what} failed in the C kernel (code {rc}): invalid arguments")
