"""Build a split directory: read the source, apply the LT profile, write Parquet, card and manifest.

The directory is assembled under a hidden temporary name beside the target and renamed into place at the end,
so an interrupted build leaves no output directory, and ``--force`` replaces an old build atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from ltbench.builders.card import render_card
from ltbench.builders.parquet import write_split
from ltbench.builders.profile import FORMULA, check_ir, ldam_select, lt_counts, resolve_n_max
from ltbench.builders.spec import Pool, ReadOptions, SourceSpec

import ltbench
from ltbench.errors import LTBenchError
from ltbench.groups import RULES, group_classes
from ltbench.progress import console

MANIFEST = "manifest.json"


@contextmanager
def atomic_dir(target: Path, force: bool) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``target`` when the block ends without error."""
    target = Path(target)
    if target.exists() and not force:
        raise LTBenchError(f"{target} already exists", "pass --force to rebuild it, or choose another --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def spec_info(spec: SourceSpec) -> dict[str, Any]:
    keys = ("title", "license", "citation", "homepage", "pool_definition", "redistributable")
    return {k: getattr(spec, k) for k in keys}


def build(
    spec: SourceSpec,
    ir: float | None,
    out: Path,
    seed: int = 0,
    source_dir: Path | None = None,
    download: bool = False,
    verify_checksums: bool = True,
    force: bool = False,
    allow_any_ir: bool = False,
) -> Path:
    """Build ``spec`` at imbalance ratio ``ir`` under ``out``; return the split directory."""
    if spec.irs:
        if ir is None:
            raise LTBenchError(f"{spec.name} needs an imbalance ratio", "add --ir 10 or --ir 100")
        ir = check_ir(ir, allow_any_ir)
    elif ir is not None:
        raise LTBenchError(f"{spec.name} is long-tailed already and takes no --ir", "drop --ir")
    target = Path(out) / spec.split_name(ir)
    if target.exists() and not force:
        raise LTBenchError(f"{target} already exists", "pass --force to rebuild it, or choose another --out")
    opts = ReadOptions(
        source_dir=Path(source_dir or default_source_dir()).expanduser(),
        seed=seed,
        download=download,
        verify_checksums=verify_checksums,
    )
    data = spec.read(opts)
    if not data.checksums_verified:
        console.print("[yellow]warning:[/] source checksums not verified (--no-verify-checksums)")
    C = len(data.class_names)
    splits: dict[str, tuple[Pool, np.ndarray]] = {}
    profile = None
    if spec.irs:
        pool_counts = data.pool.class_counts(C)
        n_max = resolve_n_max(spec.n_max_rule, pool_counts)
        counts = lt_counts(n_max, C, ir)
        splits["train"] = (data.pool, ldam_select(data.pool.labels, counts, seed))
        profile = {
            "formula": FORMULA,
            "ir": ir,
            "n_max": n_max,
            "n_max_rule": spec.n_max_rule,
            "pool_size": len(data.pool),
            "pool_class_counts": pool_counts.tolist(),
        }
    for name, pool in data.fixed.items():
        splits[name] = (pool, np.arange(len(pool)))
    with atomic_dir(target, force) as tmp:
        manifest = write_all(tmp, spec, target.name, data.class_names, splits, seed, profile, ir)
        manifest["checksums_verified"] = data.checksums_verified
        manifest["notes"] = data.notes
        (tmp / "README.md").write_text(render_card(manifest, spec_info(spec)), encoding="utf-8")
        manifest["files"]["README.md"] = sha256_file(tmp / "README.md")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return target


def write_all(tmp, spec, name, class_names, splits, seed, profile, ir) -> dict[str, Any]:
    C = len(class_names)
    manifest: dict[str, Any] = {
        "name": name,
        "source": spec.name,
        "title": spec.title,
        "ltbench_version": ltbench.__version__,
        "seed": seed,
        "class_names": list(class_names),
        "profile": profile,
        "splits": {},
        "files": {},
    }
    for split, (pool, idx) in splits.items():
        files = write_split(tmp, split, pool, idx, class_names)
        counts = np.bincount(np.asarray(pool.labels)[idx].astype(np.int64), minlength=C)
        manifest["splits"][split] = {
            "num_rows": int(len(idx)),
            "class_counts": counts.tolist(),
            "source_keys": [pool.keys[int(i)] for i in idx],
            "files": files,
        }
        for f in files:
            manifest["files"][f] = sha256_file(tmp / f)
    train_counts = manifest["splits"]["train"]["class_counts"]
    manifest["groups"] = {
        "rule": spec.grouping,
        "description": RULES[spec.grouping],
        "classes": group_classes(train_counts, spec.grouping),
    }
    exp = spec.expected.get(ir if ir is not None else 0)
    if exp:
        manifest["expected"] = exp
    return manifest


def default_source_dir() -> Path:
    return Path(os.environ.get("LTBENCH_SOURCES", "~/.cache/ltbench/sources")).expanduser()


def read_manifest(split_dir: Path) -> dict[str, Any]:
    path = Path(split_dir) / MANIFEST
    if not path.exists():
        raise LTBenchError(
            f"{split_dir} is not a built split (no {MANIFEST})", "build it with `ltbench build`"
        )
    return json.loads(path.read_text(encoding="utf-8"))
