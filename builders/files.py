"""Source-file helpers shared by the readers: required paths, checksums, safe archive extraction."""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
from pathlib import Path

from ltbench.errors import LTBenchError


def require(path: Path, what: str, hint: str) -> Path:
    """``path`` if it exists, else a one-line error naming the file expected, where, and how to get it."""
    path = Path(path)
    if not path.exists():
        raise LTBenchError(f"{what} not found: expected {path}", hint)
    return path


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_md5(path: Path, expected: str, verify: bool) -> bool:
    """True when verified; a mismatch is a one-line error unless ``verify`` is off (then False)."""
    if not verify:
        return False
    got = md5sum(path)
    if got != expected:
        raise LTBenchError(
            f"checksum mismatch for {path} (md5 {got}, official {expected})",
            "re-download the official file, or pass --no-verify-checksums for a re-packed copy",
        )
    return True


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar or zip archive into ``dest`` without path traversal or links leaving ``dest``."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    target = (dest / name).resolve()
                    if os.path.commonpath([root, target]) != str(root):
                        raise LTBenchError(
                            f"archive {archive} has an unsafe path {name!r}", "use an official copy"
                        )
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise LTBenchError(
            f"cannot extract {archive}: {e}", "the archive is corrupt: download it again"
        ) from None
