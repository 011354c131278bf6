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
from ltbench.builders.authors import REFERENCE, authors_split, duplicates
from ltbench.builders.card import render_card
from ltbench.builders.files import hash_file
from ltbench.builders.parquet import write_split
from ltbench.builders.profile import (
    FORMULA,
    check_ir,
    ldam_select,
    lt_counts,
    lt_order,
    order_counts,
    resolve_n_max,
)
from ltbench.builders.spec import Pool, ReadOptions, SourceData, SourceSpec

import ltbench
from ltbench.errors import LTBenchError
from ltbench.groups import RULES, describe, group_classes
from ltbench.manifest import MANIFEST, read_manifest  # noqa: F401  (re-exported for verify, hub)
from ltbench.progress import console, make_progress

PROTOCOLS = ("ltbench", "authors")


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


def check_options(spec: SourceSpec, protocol: str, grouping: str | None, seed: int) -> str:
    """Validate ``--protocol``, ``--set groups=`` and ``--seed`` for ``spec``; return the grouping rule."""
    if protocol not in PROTOCOLS:
        raise LTBenchError(f"unknown protocol {protocol!r}", f"use --protocol {' or '.join(PROTOCOLS)}")
    if protocol == "authors" and spec.irs and spec.authors is None:
        raise LTBenchError(
            f"{spec.name} has no loader in the CANDLE authors' code", "build it with --protocol ltbench"
        )
    if protocol == "authors" and spec.authors is not None and seed != 0:
        raise LTBenchError(
            f"--seed {seed} does not apply to --protocol authors: the authors' {spec.authors.loader} seeds "
            f"numpy with {spec.authors.seed}",
            "drop --seed, or use --protocol ltbench",
        )
    rule = grouping or spec.default_grouping
    if rule not in RULES:
        raise LTBenchError(f"unknown grouping rule {rule!r}", f"use --set groups={'|'.join(RULES)}")
    if rule == "authors" and spec.authors is None:
        raise LTBenchError(
            f"{spec.name} has no authors' head / medium / tail groups", "use --set groups=thirds or shots"
        )
    return rule


def check_pool(data: SourceData, counts: list[int], authors: bool) -> None:
    """One-line error naming the first class whose pool holds fewer images than the profile asks (any class
    with none, for the authors' loaders, which index classes by ``np.unique``), and the file defining it."""
    pool_counts = data.pool.class_counts(len(data.class_names))
    for c, (have, want) in enumerate(zip(pool_counts, counts, strict=True)):
        if have < want or (authors and have == 0):
            where = f", defined by {data.classes_from}" if data.classes_from else ""
            raise LTBenchError(
                f"class {c} ({data.class_names[c]!r}{where}) has {have} pool images but the profile asks "
                f"for {want}",
                "check the source files are complete (and that the class list matches the images)",
            )


VERIFIED = "md5 verified"


def checksum_line(checksums: dict[str, str]) -> str:
    """What was really verified (``manifest["checksums"]``), for the build's last line."""
    skipped = sorted(f for f, status in checksums.items() if status != VERIFIED)
    if skipped:
        return f"source md5 NOT verified for {', '.join(skipped)} (--no-verify-checksums)"
    if checksums:
        return f"source md5 verified: {', '.join(sorted(checksums))}"
    return "no source checksum verified (read from extracted files, for which no official md5 exists)"


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
    protocol: str = "ltbench",
    grouping: str | None = None,
    repo_id: str | None = None,
    workers: int | None = None,
) -> Path:
    """Build ``spec`` at imbalance ratio ``ir`` under ``out``; return the split directory.

    ``protocol`` ``ltbench`` (LDAM-DRW's selection, deterministic orders) or ``authors`` (the CANDLE authors'
    loaders, :mod:`ltbench.builders.authors`; directory ``<name>-authors``); ``grouping`` overrides the
    source's head / medium / tail rule. ``repo_id`` (the Hub repo the split is meant for) only changes the
    loading example in the card; ``workers`` is the number of reader threads
    (see :func:`~ltbench.builders.parquet.default_workers`).
    """
    if spec.irs:
        if ir is None:
            raise LTBenchError(f"{spec.name} needs an imbalance ratio", "add --ir 10 or --ir 100")
        ir = check_ir(ir, allow_any_ir)
    elif ir is not None:
        raise LTBenchError(f"{spec.name} is long-tailed already and takes no --ir", "drop --ir")
    rule = check_options(spec, protocol, grouping, seed)
    recipe = spec.authors if protocol == "authors" else None
    if recipe is not None:
        seed = recipe.seed
    target = Path(out) / spec.split_name(ir, protocol)
    if target.exists() and not force:
        raise LTBenchError(f"{target} already exists", "pass --force to rebuild it, or choose another --out")
    opts = ReadOptions(
        source_dir=Path(source_dir or default_source_dir()).expanduser(),
        seed=seed,
        download=download,
        verify_checksums=verify_checksums,
    )
    data = spec.read(opts)
    if not all(data.checksums.values()):
        console.print("[yellow]warning:[/] source checksums not verified (--no-verify-checksums)")
    C = len(data.class_names)
    splits: dict[str, tuple[Pool, np.ndarray]] = {}
    profile = None
    order = list(range(C))
    info: dict[str, Any] = {"exact": True, "reference": REFERENCE}
    if spec.irs:
        pool_counts = data.pool.class_counts(C)
        if recipe is None:
            n_max = resolve_n_max(spec.n_max_rule, pool_counts)
            order = lt_order(pool_counts, spec.class_order)
            counts = order_counts(lt_counts(n_max, C, ir), pool_counts, spec.class_order)
            check_pool(data, counts, authors=False)
            splits["train"] = (data.pool, ldam_select(data.pool.labels, counts, seed))
        else:
            check_pool(data, [0] * C, authors=True)
            drawn = authors_split(data.pool.labels, data.class_names, ir, recipe)
            n_max, order = drawn.n_max, drawn.lt_order
            splits["train"] = (data.pool, drawn.indices)
            info.update(loader=recipe.loader, **drawn.notes)
            if recipe.with_replacement:
                info["duplicates"] = duplicates(drawn.indices)
        profile = {
            "formula": FORMULA,
            "ir": ir,
            "n_max": n_max,
            "n_max_rule": recipe.n_max if recipe else spec.n_max_rule,
            "class_order": "authors" if recipe else spec.class_order,
            "lt_order": order,
            "pool_size": len(data.pool),
            "pool_class_counts": pool_counts.tolist(),
        }
    if recipe is not None:
        if recipe.inexact:
            info.update(exact=False, reason=recipe.inexact)
            console.print(
                f"[yellow]warning:[/] the authors' {spec.name} split is not reproduced exactly: "
                f"{recipe.inexact}; built the closest deterministic equivalent",
                soft_wrap=True,
            )
        if recipe.assumes:
            info["assumes"] = recipe.assumes
    fixed = dict(data.fixed)
    if recipe is not None and recipe.test != "test":
        fixed = {"test": fixed.pop(recipe.test), "official_test": fixed.pop("test"), **fixed}
    for name, pool in fixed.items():
        splits[name] = (pool, np.arange(len(pool)))
    bounds = spec.authors.groups if spec.authors else None
    with atomic_dir(target, force) as tmp:
        manifest = write_all(
            tmp, spec, target.name, data.class_names, splits, seed, profile, ir, workers=workers
        )
        train_counts = manifest["splits"]["train"]["class_counts"]
        manifest["groups"] = {
            "rule": rule,
            "description": describe(rule, bounds, C),
            **group_classes(train_counts, rule, order=order, bounds=bounds),
        }
        manifest["protocol"] = protocol
        if protocol == "authors":
            manifest["protocol_info"] = info
        manifest["checksums"] = {
            f: VERIFIED if ok else "md5 not verified (--no-verify-checksums)"
            for f, ok in sorted(data.checksums.items())
        }
        manifest["notes"] = data.notes
        manifest["source_info"] = spec_info(spec)
        if spec.origin is not None:  # a source made from options: where it came from, and its family
            manifest.update(origin=spec.origin, family=spec.scale)
        if "test" in splits:  # SADE's test-agnostic subsets, as index lists into a split (ltbench.test_dists)
            from ltbench.test_dists import for_build

            indexed = spec.test_lists.split if spec.test_lists else "test"
            pool, idx = splits[indexed]
            manifest["test_distributions"] = for_build(
                spec.test_lists,
                opts.source_dir,
                manifest["splits"][indexed]["source_keys"],
                np.asarray(pool.labels)[idx],
                manifest["splits"]["train"]["class_counts"],
                order if profile else None,
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
        "family": spec.scale,
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
    exp = spec.expected.get(ir if ir is not None else 0)
    if exp:
        manifest["expected"] = exp
    return manifest


def default_source_dir() -> Path:
    return Path(os.environ.get("LTBENCH_SOURCES", "~/.cache/ltbench/sources")).expanduser()
