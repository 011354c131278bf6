"""Result files: one schema-versioned JSON per (dataset, row, backbone, seed) at
``<results>/<dataset>/<row>/<backbone>/seed<N>.json``, written atomically.

:class:`Result` is the one definition of a result: ``run`` builds it, ``to_json``/``from_json`` write and read it
(checking the schema version), the test fixtures and the leaderboard use it. A row is the method name, or
``method[value]`` when the method's config declares a ``ROW_FIELD`` (CANDLE's ablation ``variant``).

Schema 2 (2026-12) adds ``protocol``, ``stages``, ``selection`` and ``runtime`` (what really ran: device, world
size, whether AMP was active); schema-1 files still read, with those fields unknown (``None``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ltbench.errors import LTBenchError

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass
class Result:
    """One run's outcome and provenance."""

    dataset: str
    source: str
    method: str
    row: str
    backbone: str
    binary: bool
    recipe: str
    family: str
    seed: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    per_class_accuracy: list[float | None]
    train_counts: list[int]
    grouping: dict[str, Any]  # {"rule": ..., "classes": {"head": [...], "medium": [...], "tail": [...]}}
    protocol: str | None = "ltbench"  # the split protocol of the build (manifest); None: unknown (schema 1)
    #: the inference path: {"packed": auto|on|off, "path": "float" | the XNOR kernel that produced the logits}
    inference: dict[str, Any] | None = field(default_factory=lambda: {"packed": "off", "path": "float"})
    #: what really ran: {"device": ..., "world_size": N, "amp": True only when bf16 autocast was active}
    runtime: dict[str, Any] | None = None
    stages: list[dict[str, Any]] | None = field(default_factory=list)  # [{"name", "train_images", ...}]
    selection: dict[str, Any] | None = None  # {"what": "tau", "on": "val" | "unused-pool" | "test" | ...}
    timings: dict[str, float] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    #: issue-16 blocks (ltbench.result_extras): per-distribution metrics, cost, teacher overlap / reference
    test_distributions: dict[str, Any] | None = None
    test_distributions_protocol: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None
    teacher_overlap: dict[str, Any] | None = None
    teacher_reference: dict[str, Any] | None = None
    config_hash: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.config_hash:
            self.config_hash = config_hash(self.config)

    @property
    def inference_path(self) -> str | None:
        return (self.inference or {}).get("path")

    def variant_key(self) -> tuple:
        """What must agree for two seeds to share a leaderboard row: the row, the data protocol and grouping,
        the inference path and whether AMP really ran."""
        amp = (self.runtime or {}).get("amp")
        return (
            self.dataset,
            self.row,
            self.backbone,
            self.protocol,
            self.grouping.get("rule"),
            self.inference_path,
            amp,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "result") -> Result:
        version = data.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise LTBenchError(
                f"{origin}: result schema version {version!r} is not one this ltbench reads {READABLE_VERSIONS}",
                "re-run it with this version of ltbench, or upgrade ltbench",
            )
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        if version == 1:  # fields schema 1 did not record are unknown, not defaults
            known.setdefault("protocol", None)
            known.setdefault("stages", None)
            known.setdefault("inference", data.get("inference"))
        try:
            return cls(**known)
        except TypeError as e:
            raise LTBenchError(f"{origin}: not a result file ({e})", "re-run it") from None

    @classmethod
    def from_json(cls, text: str, origin: str = "result") -> Result:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise LTBenchError(f"{origin} is not valid JSON ({e})", "re-run it or delete the file") from None
        return cls.from_dict(data, origin)

    def path(self, results: Path) -> Path:
        return result_path(results, self.dataset, self.row, self.backbone, self.seed)

    def write(self, results: Path) -> Path:
        out = self.path(results)
        atomic_write_text(out, self.to_json())
        return out


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


def load_results(results: Path) -> list[tuple[Path, Result]]:
    """Every result under ``results`` as (path relative to it, :class:`Result`), in path order (hidden run
    folders skipped); a file of an unknown schema version is an error."""
    out = []
    for path in sorted(Path(results).glob("*/*/*/seed*.json")):
        rel = path.relative_to(results)
        if any(part.startswith(".") for part in rel.parts):
            continue
        out.append((rel, Result.from_json(path.read_text(encoding="utf-8"), str(path))))
    return out


def read_results(results: Path) -> list[dict[str, Any]]:
    """Every result under ``results`` as a dict (the schema's fields plus ``_path``), schema-checked."""
    return [{**r.to_dict(), "_path": str(rel)} for rel, r in load_results(results)]
