"""Result files: one JSON per (dataset, method, backbone, seed) at
``<results>/<dataset>/<method>/<backbone>/seed<N>.json``, written atomically.

A method's variant (CANDLE's ablations) is part of its row name: ``candle`` with ``variant=cd`` is filed as
``candle[cd]`` unless the variant is the method's default.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def result_path(results: Path, dataset: str, method: str, backbone: str, seed: int) -> Path:
    return Path(results) / dataset / method / backbone / f"seed{seed}.json"


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_result(path: Path, result: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(result, indent=1, sort_keys=True) + "\n")


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "-uno"], cwd=here, capture_output=True, text=True
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: str) -> dict[str, Any]:
    import torch

    import ltbench

    env = {
        "ltbench": ltbench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": device,
        "threads": torch.get_num_threads(),
        "git_commit": git_commit(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["device_name"] = torch.cuda.get_device_name()
    return env


def read_results(results: Path) -> list[dict[str, Any]]:
    """Every result JSON under ``results``, in path order (hidden run folders are skipped)."""
    out = []
    for path in sorted(Path(results).glob("*/*/*/seed*.json")):
        if any(part.startswith(".") for part in path.relative_to(results).parts):
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        data["_path"] = str(path.relative_to(results))
        out.append(data)
    return out
