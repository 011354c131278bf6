"""Build (on a GPU machine, at first use) the CUDA XNOR extension and register its ops for ``cuda``.

The extension (``xnor_cuda_kernels.cu`` + ``xnor_cuda_binding.cpp``) is compiled by
``torch.utils.cpp_extension.load`` for the visible device's architecture (sm_80 or newer: the b1 AND-popc
MMA; ``sm_90a`` on Hopper), cached in torch's extension directory (``LTBENCH_XNOR_CUDA_VERBOSE=1`` prints the
compiler's commands). It also holds ``bmma_peak``, the G0 microbenchmark of ``benchmarks/gpu_check.py``. It implements the same ``ltbench::`` custom ops as the CPU
kernel, on the same packed tensors (int64 words, read as uint32), with the weights' OHWI ``rows`` in place of
the CPU panels. Set ``LTBENCH_XNOR_CUDA=0`` to keep CUDA models on the float path.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("xnor_cuda_kernels.cu", "xnor_cuda_binding.cpp")
_lock = threading.Lock()
_state: dict[str, object] = {}


def arch(capability: tuple[int, int]) -> str:
    """nvcc's target for a compute capability: the arch-specific ``a`` form from Hopper on (sm_90a)."""
    return f"{capability[0]}{capability[1]}" + ("a" if capability >= (9, 0) else "")


def nvcc_flags(capability: tuple[int, int]) -> list[str]:
    a = arch(capability)
    return ["-O3", f"-gencode=arch=compute_{a},code=sm_{a}", f"-I{HERE}"]


def build(capability: tuple[int, int] | None = None, verbose: bool | None = None):
    """Compile and load the extension for ``capability`` (default: the visible device's). With an explicit
    capability it compiles on a machine without a GPU too (nvcc and torch's CUDA headers are enough)."""
    import torch
    from torch.utils.cpp_extension import load

    cap = capability or torch.cuda.get_device_capability()
    if cap < (8, 0):
        raise RuntimeError(f"the b1 AND-popc MMA needs sm_80 or newer; this GPU is sm_{cap[0]}{cap[1]}")
    if verbose is None:
        verbose = os.environ.get("LTBENCH_XNOR_CUDA_VERBOSE", "0") == "1"
    return load(
        name=f"ltbench_xnor_cuda_sm{arch(cap)}",
        sources=[str(HERE / s) for s in SOURCES],
        extra_cflags=["-O3", f"-I{HERE}"],
        extra_cuda_cflags=nvcc_flags(cap),
        extra_include_paths=[str(HERE)],
        verbose=verbose,
    )


def status() -> tuple[bool, str]:
    """(True, "") when the CUDA kernels are built and registered; else (False, why)."""
    import torch

    if os.environ.get("LTBENCH_XNOR_CUDA", "1") == "0":
        return False, "LTBENCH_XNOR_CUDA=0"
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    with _lock:
        if "ext" not in _state and "error" not in _state:
            try:
                _state["ext"] = build()
                _register(_state["ext"])
            except Exception as e:  # noqa: BLE001 — any build failure is reported, and auto stays on float
                _state["error"] = f"CUDA XNOR kernel failed to build: {type(e).__name__}: {e}"
    if "error" in _state:
        return False, str(_state["error"])[:500]
    return True, ""


def last_error() -> str:
    """The full text of the last build failure (the compiler's output included), or ""."""
    return str(_state.get("error", ""))


def ext():
    ok, why = status()
    if not ok:
        raise RuntimeError(why)
    return _state["ext"]


def _register(module) -> None:
    import torch

    from ltbench.binary import ops
    from ltbench.binary.pack import n_words

    def f32(t):
        return None if t is None else t.contiguous().float()

    @ops.sign_pack.register_kernel("cuda")
    def _(x, bias=None):
        x = x.contiguous().float()
        out = torch.empty(*x.shape[:-1], n_words(x.shape[-1]), dtype=torch.int64, device=x.device)
        module.sign_pack(x, f32(bias), out)
        return out

    def run(x_bits, rows, tapsum, c, n, kh, kw, stride, pad, **epilogue):
        tapsum = tapsum.contiguous().to(torch.int32)
        wpop = weight_pop(tapsum, kh * kw * c)
        launch(module, x_bits, rows, tapsum, wpop, c, n, kh, kw, stride, pad, **epilogue)

    def out_hw(x_bits, kh, kw, stride, pad):
        _, h, w, _ = x_bits.shape
        return (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1

    @ops.xnor_conv.register_kernel("cuda")
    def _(x_bits, rows, tapsum, c, n, kh, kw, stride, pad):
        ho, wo = out_hw(x_bits, kh, kw, stride, pad)
        out = torch.empty(x_bits.shape[0], ho, wo, n, dtype=torch.int32, device=x_bits.device)
        run(x_bits, rows, tapsum, c, n, kh, kw, stride, pad, out_int=out)
        return out

    @ops.xnor_gemm.register_kernel("cuda")
    def _(a_bits, rows, k, n):
        m = a_bits.shape[0]
        out = torch.empty(m, n, dtype=torch.int32, device=a_bits.device)
        tapsum = torch.zeros(n, 1, dtype=torch.int32, device=a_bits.device)
        tapsum += k - 2 * _row_pop(rows)[:, None]  # one tap: tapsum = K - 2*popc(row)
        run(a_bits.reshape(1, m, 1, -1), rows, tapsum, k, n, 1, 1, 1, 0, out_int=out)
        return out

    @ops.xnor_conv_fused.register_kernel("cuda")
    def _(x_bits, rows, tapsum, scale, shift, res, rp_b1, rp_slope, rp_b2, next_bias, c, n, kh, kw, stride,
          pad, res_pool, want_bits):  # fmt: skip
        ho, wo = out_hw(x_bits, kh, kw, stride, pad)
        dev = x_bits.device
        out = torch.empty(x_bits.shape[0], ho, wo, n, dtype=torch.float32, device=dev)
        bits = torch.empty(
            x_bits.shape[0], ho, wo, n_words(n) if want_bits else 0, dtype=torch.int64, device=dev
        )
        run(
            x_bits, rows, tapsum, c, n, kh, kw, stride, pad, scale=f32(scale), shift=f32(shift), res=f32(res),
            res_pool=res_pool, rp_b1=f32(rp_b1), rp_slope=f32(rp_slope), rp_b2=f32(rp_b2),
            next_bias=f32(next_bias), out_f=out, out_bits=bits if want_bits else None,
        )  # fmt: skip
        return out, bits


def weight_pop(tapsum, k: int):
    """Popcount of each packed weight row (its −1 count) from ``tapsum`` = Σ sign(w) per tap: (K − Σ) / 2."""
    import torch

    return ((k - tapsum.sum(1)) // 2).to(torch.int32).contiguous()


def launch(
    module, x_bits, rows, tapsum, wpop, c, n, kh, kw, stride, pad, *, scale=None, shift=None, res=None,
    res_pool=False, rp_b1=None, rp_slope=None, rp_b2=None, next_bias=None, out_int=None, out_f=None, out_bits=None,
) -> None:  # fmt: skip
    """One call of the extension's conv kernel (``tapsum``, ``wpop`` int32 CUDA tensors): the outputs given
    (``out_int``, ``out_f``, ``out_bits``) are written, with the fused steps named as in
    :func:`ltbench.binary.ops.xnor_conv_fused`."""
    module.conv(
        x_bits.contiguous(), rows.contiguous(), tapsum, wpop, c, n, kh, kw, stride, pad, scale, shift, res,
        res_pool, rp_b1, rp_slope, rp_b2, next_bias, out_int, out_f, out_bits,
    )  # fmt: skip


def sass_tool() -> list[str] | None:
    """A disassembler command that prints SASS (``cuobjdump -sass`` or ``nvdisasm``): on the PATH, else the
    copies Triton's package bundles; None when neither exists."""
    import glob
    import shutil

    for tool in ("cuobjdump", "nvdisasm"):
        found = shutil.which(tool)
        if not found:
            try:
                import triton
            except ImportError:
                continue
            cands = glob.glob(os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin", tool))
            found = cands[0] if cands else None
        if found:
            return [found, "-sass"] if tool == "cuobjdump" else [found]
    return None


def _row_pop(rows):
    """Popcount of each int64-word row (torch ops; GEMM weights have a single tap)."""
    import torch

    x = rows.contiguous().view(torch.uint8).to(torch.int32)
    table = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int32, device=rows.device)
    return table[x].reshape(rows.shape[0], -1).sum(1)
