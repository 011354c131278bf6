"""What a result costs to deploy: parameters, OPs as the BNN papers count them, and measured CPU latency.

``result["cost"]``:

- ``params``: parameters of the fitted model (all experts of a multi-expert method); ``binary_params``: those
  that are ±1 weights of a :class:`~ltbench.binary.layers.BinaryConv2d`;
- ``bops`` / ``flops`` / ``ops``: per-image MACs from :func:`ltbench.binary.layers.count_ops` (binary MACs,
  FP MACs, and ``ops = bops / 64 + flops`` — ReActNet's / the CANDLE paper's count);
- ``latency_ms``: the median over ``repeats`` timed runs of ``method.predict`` on one test image (batch 1) on
  the CPU, after ``warmup`` untimed runs, with the evaluated model (``path``: packed XNOR kernels or float);
  ``threads`` is ``torch.get_num_threads()`` during the measurement, ``input_shape`` the image tensor's shape.
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any

import torch
from torch import nn

from ltbench.binary.layers import BinaryConv2d, count_ops

WARMUP = 3
REPEATS = 20


def count_params(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    binary = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, BinaryConv2d) and m.binary_weights
    )
    return {"params": int(total), "binary_params": int(binary)}


@torch.no_grad()
def cpu_latency_ms(
    method, model: nn.Module, image: torch.Tensor, warmup: int = WARMUP, repeats: int = REPEATS
):
    """Median wall time (ms) of ``method.predict(model, image)`` for one (1, C, H, W) CPU batch."""
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        method.predict(model, image)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _on_cpu(model: nn.Module) -> nn.Module:
    params = [*model.parameters(), *model.buffers()]
    if all(t.device.type == "cpu" for t in params):
        return model
    return copy.deepcopy(model).cpu()


def measure_cost(
    method, model: nn.Module, eval_model: nn.Module, task, path: str, repeats: int = REPEATS
) -> dict[str, Any]:
    """``result["cost"]`` for the fitted ``model`` (params, OPs) and the evaluated ``eval_model`` (latency)."""
    image = task.eval_set("test")[0][0].unsqueeze(0)
    ops = count_ops(model, tuple(image.shape))
    cpu_model = _on_cpu(eval_model).eval()
    latency = cpu_latency_ms(method, cpu_model, image.cpu(), repeats=repeats)
    return {
        **count_params(model),
        "bops": ops["bops"],
        "flops": ops["flops"],
        "ops": ops["ops"],
        "latency_ms": round(latency, 4),
        "latency_device": "cpu",
        "threads": torch.get_num_threads(),
        "batch": 1,
        "repeats": repeats,
        "input_shape": list(image.shape),
        "path": path,
    }
