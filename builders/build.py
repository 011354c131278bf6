"""Build a split directory: read the source, apply the LT profile, write Parquet, card and manifest.

The directory is assembled under a hidden temporary name beside the target (``.NAME.tmp-PID``) and renamed
into place at the end, so an interrupted build (an exception, Ctrl-C or SIGTERM) leaves no output directory;
after a SIGKILL only the hidden temporary remains, and the next build removes it. ``--force`` replaces an old
build by two renames, never leaving a half-written target. The content holds no timestamps: the same source
and seed give byte-identical Parquet, card and manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from ltbench.builders.card import render_card
from ltbench.builders.files import hash_file
from ltbench.builders.parquet import write_split
from ltbench.builders.profile import FORMULA, check_ir, ldam_select, lt_counts, order_counts, resolve_n_max
from ltbench.builders.spec import Pool, ReadOptions, SourceSpec

import ltbench
from ltbench.errors import LTBenchError
from ltbench.groups import RULES, group_classes
from ltbench.progress import console, make_progress

MANIFEST = "manifest.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(parent: Path, name: str) -> None:
    """Remove leftovers of killed builds of ``name`` (hidden ``.tmp-PID`` / ``.old-PID`` of dead processes)."""
    for stale in [*parent.glob(f".{name}.tmp-*"), *parent.glob(f".{name}.old-*")]:
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while building, so the temporary directory is cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def atomic_dir(target: Path, force: bool) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``target`` when the block ends without error."""
    target = Path(target)
    if target.exists() and not force:
        raise LTBenchError(f"{target} already exists", "pass --force to rebuild it, or choose another --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target.parent, target.name)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with _sigterm_as_interrupt():
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
    return hash_file(path, "sha256")


def hash_files(folder: Path, names: list[str]) -> dict[str, str]:
    """sha256 of each file in ``names`` under ``folder``, with one progress bar over their total size."""
    folder = Path(folder)
    total = sum((folder / n).stat().st_size for n in names)
    out = {}
    with make_progress() as prog:
        task = prog.add_task("hashing", total=total, info="")
        for n in names:
            out[n] = sha256_file(folder / n)
            prog.advance(task, (folder / n).stat().st_size)
    return out


def spec_info(spec: SourceSpec) -> dict[str, Any]:
    keys = ("title", "license", "citation", "homepage", "pool_definition", "redistributable", "bibtex")
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
    *,
    repo_id: str | None = None,
    workers: int | None = None,
) -> Path:
    """Build ``spec`` at imbalance ratio ``ir`` under ``out``; return the split directory.

    ``repo_id`` (the Hub repo the split is meant for) only changes the loading example in the card;
    ``workers`` is the number of reader threads (see :func:`~ltbench.builders.parquet.default_workers`).
    """
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
        counts = order_counts(lt_counts(n_max, C, ir), pool_counts, spec.class_order)
        splits["train"] = (data.pool, ldam_select(data.pool.labels, counts, seed))
        profile = {
            "formula": FORMULA,
            "ir": ir,
            "n_max": n_max,
            "n_max_rule": spec.n_max_rule,
            "class_order": spec.class_order,
            "pool_size": len(data.pool),
            "pool_class_counts": pool_counts.tolist(),
        }
    for name, pool in data.fixed.items():
        splits[name] = (pool, np.arange(len(pool)))
    with atomic_dir(target, force) as tmp:
        manifest = write_all(
            tmp, spec, target.name, data.class_names, splits, seed, profile, ir, workers=workers
        )
        manifest["checksums_verified"] = data.checksums_verified
        manifest["notes"] = data.notes
        manifest["source_info"] = spec_info(spec)
        if "test" in splits:  # SADE's test-agnostic subsets, as index lists into `test` (ltbench.test_dists)
            from ltbench.test_dists import for_build

            test = manifest["splits"]["test"]
            labels = np.asarray(splits["test"][0].labels)[splits["test"][1]]
            manifest["test_distributions"] = for_build(
                spec.name,
                opts.source_dir,
                test["source_keys"],
                labels,
                manifest["splits"]["train"]["class_counts"],
            )
        card = render_card(manifest, spec_info(spec), repo_id=repo_id)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        manifest["files"]["README.md"] = sha256_file(tmp / "README.md")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return target


def write_all(
    tmp, spec, name, class_names, splits, seed, profile, ir, workers: int | None = None
) -> dict[str, Any]:
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
        files = write_split(tmp, split, pool, idx, class_names, workers=workers)
        counts = np.bincount(np.asarray(pool.labels)[idx].astype(np.int64), minlength=C)
        manifest["splits"][split] = {
            "num_rows": int(len(idx)),
            "class_counts": counts.tolist(),
            "source_keys": [pool.keys[int(i)] for i in idx],
            "files": files,
            "num_bytes": sum((Path(tmp) / f).stat().st_size for f in files),
        }
    manifest["files"] = hash_files(tmp, [f for s in manifest["splits"].values() for f in s["files"]])
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
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LTBenchError(
            f"{path} is not valid JSON ({e})", "rebuild the split or download it again"
        ) from None
