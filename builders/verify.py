"""Check a built split (a local build or a downloaded Hub copy) against its manifest.

Recomputes the sha256 of every file the manifest lists and re-counts the labels of every split from its
Parquet shards (rows, per-class counts, label range, number of source keys); reports Parquet files the
manifest does not list (``datasets`` would load them). Hidden files (``.gitattributes`` of a Hub repo, a
``.cache`` folder) are ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ltbench.builders.build import MANIFEST, read_manifest, sha256_file

from ltbench.progress import make_progress


def verify_split(split_dir: Path) -> list[str]:
    """Differences between ``split_dir`` and its manifest, one line each (empty list: the copy is intact)."""
    import pyarrow.parquet as pq

    split_dir = Path(split_dir)
    manifest = read_manifest(split_dir)
    problems: list[str] = []
    listed = dict(manifest.get("files", {}))
    present = {
        p.relative_to(split_dir).as_posix()
        for p in split_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(split_dir).parts)
    }
    for extra in sorted(present - set(listed) - {MANIFEST}):
        problems.append(f"{extra}: not listed in the manifest")
    total = sum((split_dir / f).stat().st_size for f in listed if f in present)
    with make_progress() as prog:
        task = prog.add_task("hashing", total=total, info="")
        for name, digest in sorted(listed.items()):
            if name not in present:
                problems.append(f"{name}: missing")
                continue
            got = sha256_file(split_dir / name)
            if got != digest:
                problems.append(f"{name}: sha256 {got[:16]}… differs from the manifest's {digest[:16]}…")
            prog.advance(task, (split_dir / name).stat().st_size)

    num_classes = len(manifest["class_names"])
    for split, info in manifest["splits"].items():
        labels = []
        for f in info["files"]:
            if f not in listed:
                problems.append(f"{split}: shard {f} has no hash in the manifest")
            if f not in present:
                continue
            try:
                labels.append(pq.read_table(split_dir / f, columns=["label"]).column("label").to_numpy())
            except Exception as e:  # a damaged file raises pyarrow's many error types
                problems.append(f"{f}: unreadable Parquet ({type(e).__name__}: {e})")
        y = np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64)
        if len(y) != info["num_rows"]:
            problems.append(f"{split}: {len(y)} rows, the manifest says {info['num_rows']}")
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            problems.append(f"{split}: labels outside 0..{num_classes - 1}")
            continue
        counts = np.bincount(y, minlength=num_classes).tolist()
        if counts != info["class_counts"]:
            diff = [c for c in range(num_classes) if counts[c] != info["class_counts"][c]]
            problems.append(
                f"{split}: per-class counts differ from the manifest for {len(diff)} class(es), first "
                f"class {diff[0]}: {counts[diff[0]]} vs {info['class_counts'][diff[0]]}"
            )
        if len(info.get("source_keys", [])) != info["num_rows"]:
            problems.append(
                f"{split}: {len(info.get('source_keys', []))} source keys for {info['num_rows']} rows"
            )
    return problems


def summary(split_dir: Path) -> str:
    """One line describing an intact copy."""
    m = read_manifest(split_dir)
    rows = ", ".join(f"{s} {v['num_rows']:,}" for s, v in m["splits"].items())
    return f"{m['name']}: {len(m['files'])} files, {rows} rows, {len(m['class_names'])} classes"
