"""Helpers shared by the file-based source readers: locating the source, listing image folders, reading the
standard list files, lazy byte readers, and downloads.

Every pool built here keeps only file names and labels in memory; ``Pool.read(i)`` opens one file and returns
its bytes exactly as stored (the source's own JPEG, never re-encoded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from ltbench.builders.files import check_md5, require, safe_extract
from ltbench.builders.spec import Pool

from ltbench.errors import LTBenchError, download_or_hint

IMAGE_EXTS = (".jpg", ".jpeg", ".png")
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


def lazy_reader(root: Path, rel_paths: Sequence[str]) -> Callable[[int], bytes]:
    """``read(i)`` → the bytes of ``root / rel_paths[i]``; a missing or non-image file is a one-line error."""
    root = Path(root)

    def read(i: int) -> bytes:
        path = root / rel_paths[i]
        try:
            data = path.read_bytes()
        except OSError:
            raise LTBenchError(
                f"source image missing or unreadable: {path}", "check the source folder is complete"
            ) from None
        if not data.startswith(_MAGIC):
            raise LTBenchError(
                f"{path} is not a JPEG/PNG image", "the source copy is corrupt: fetch it again"
            )
        return data

    return read


def file_pool(root: Path, rel_paths: Sequence[str], labels: Sequence[int] | np.ndarray) -> Pool:
    """A pool of files under ``root``; keys and stored paths are the source-relative file names."""
    rel = list(rel_paths)
    labels = np.asarray(labels, dtype=np.int64)
    return Pool(labels=labels, keys=rel, read=lazy_reader(root, rel), paths=rel, thread_safe=True)


def subset(pool: Pool, idx: Sequence[int] | np.ndarray) -> Pool:
    """The rows ``idx`` of ``pool`` as a new pool sharing its reader."""
    idx = np.asarray(idx, dtype=np.int64)
    paths = pool.paths
    return Pool(
        labels=np.asarray(pool.labels)[idx],
        keys=[pool.keys[int(i)] for i in idx],
        read=lambda j, idx=idx: pool.read(int(idx[j])),
        paths=None if paths is None else [paths[int(i)] for i in idx],
        thread_safe=pool.thread_safe,
        read_many=None if pool.read_many is None else lambda js, idx=idx: pool.read_many(idx[list(js)]),
    )


def concat(a: Pool, b: Pool) -> Pool:
    """``a`` followed by ``b`` (e.g. a train and a validation list forming one pool)."""
    n = len(a)
    paths = None if a.paths is None or b.paths is None else [*a.paths, *b.paths]
    return Pool(
        labels=np.concatenate([np.asarray(a.labels), np.asarray(b.labels)]).astype(np.int64),
        keys=[*a.keys, *b.keys],
        read=lambda i: a.read(i) if i < n else b.read(i - n),
        paths=paths,
        thread_safe=a.thread_safe and b.thread_safe,
    )


def list_images(folder: Path) -> list[str]:
    """Sorted names of the image files directly inside ``folder`` (hidden files skipped)."""
    return sorted(
        p.name
        for p in Path(folder).iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTS
    )


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the sub-folders of ``folder`` (hidden ones skipped)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith("."))


def image_folder(root: Path, split: str, class_names: Sequence[str]) -> tuple[list[str], list[int]]:
    """(relative paths, labels) of ``root/split/<class>/<image>``, classes in the given order, files sorted."""
    paths: list[str] = []
    labels: list[int] = []
    for c, name in enumerate(class_names):
        folder = Path(root) / split / name
        if not folder.is_dir():
            raise LTBenchError(
                f"class folder missing: expected {folder}", "check the source folder is complete"
            )
        for f in list_images(folder):
            paths.append(f"{split}/{name}/{f}")
            labels.append(c)
    return paths, labels


def read_list_file(path: Path, source: str) -> tuple[list[str], np.ndarray]:
    """An OLTR / classifier-balancing list file of ``source``: one ``relative/path label`` per line."""
    paths: list[str] = []
    labels: list[int] = []
    hint = f"see `ltbench datasets --details {source}` for where to get it"
    with open(require(path, "list file", hint)) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise LTBenchError(
                    f"{path}:{n}: expected 'relative/path label', got {line[:80]!r}",
                    "use the official list file unchanged",
                )
            paths.append(parts[0])
            labels.append(int(parts[1]))
    return paths, np.asarray(labels, dtype=np.int64)


def download(url: str, dest_dir: Path, filename: str, md5: str | None, verify: bool) -> Path:
    """Download ``url`` to ``dest_dir/filename`` (kept if present), then check its md5 when ``verify``."""
    from torchvision.datasets.utils import download_url

    dest_dir = Path(dest_dir)
    target = dest_dir / filename
    if not target.exists():
        dest_dir.mkdir(parents=True, exist_ok=True)
        download_or_hint(
            lambda: download_url(url, str(dest_dir), filename),
            f"download of {url}",
            f"download it by hand and put it at {target}",
        )
    if md5:
        check_md5(target, md5, verify)
    return target


def extract(archive: Path, md5: str | None, dest: Path, verify: bool) -> bool:
    """Extract ``archive`` into ``dest`` after checking its md5; return whether the md5 was verified."""
    verified = check_md5(archive, md5, verify) if md5 else False
    safe_extract(archive, dest)
    return verified


def count_note(what: str, got: int, expected: int) -> dict[str, str]:
    """A manifest note when the data gives another count than the official one (empty when equal)."""
    if got == expected:
        return {}
    return {f"{what} count": f"the source files give {got:,}; the official release has {expected:,}"}


def fixed_splits(
    root: Path, lists: dict[str, tuple[list[str], np.ndarray]], num_classes: int, hint: str
) -> dict[str, Pool]:
    """Pools for a set that is long-tailed already: each split's files under ``root``; labels must lie in
    0..num_classes-1 and the first image of each split must exist (the rest are checked as they are read)."""
    out = {}
    for split, (paths, labels) in lists.items():
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise LTBenchError(
                f"{split} list has labels outside 0..{num_classes - 1}", "use the official list files"
            )
        if paths and not (Path(root) / paths[0]).is_file():
            raise LTBenchError(f"source image not found: expected {Path(root) / paths[0]}", hint)
        out[split] = file_pool(root, paths, labels)
    return out


def names_from_paths(paths: Sequence[str], labels: np.ndarray, num_classes: int, strip: int = 1) -> list[str]:
    """Class names from the folder part of list paths (``train/n01440764/x.JPEG`` → ``n01440764`` with
    ``strip=1`` leading components dropped); a class never seen is named by its id."""
    names: list[str | None] = [None] * num_classes
    for p, y in zip(paths, labels, strict=True):
        if names[y] is None:
            names[y] = "/".join(p.split("/")[strip:-1]) or str(y)
    return [n if n is not None else str(c) for c, n in enumerate(names)]
