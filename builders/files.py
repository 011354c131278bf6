"""Source-file helpers shared by the readers: required paths, checksums, safe archive extraction.

Hashes of large files show a rich progress bar (bytes). Extraction refuses absolute paths, ``..`` traversal,
links that leave the target and device files (tarfile's ``filter="data"``; the same rules for zip members),
and turns any archive error into one line.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ltbench.errors import LTBenchError
from ltbench.progress import make_progress

CHUNK = 1 << 20
PROGRESS_MIN_BYTES = 32 << 20  # smaller files hash without a progress bar


def require(path: Path, what: str, hint: str) -> Path:
    """``path`` if it exists, else a one-line error naming the file expected, where, and how to get it."""
    path = Path(path)
    if not path.exists():
        raise LTBenchError(f"{what} not found: expected {path}", hint)
    return path


def hash_file(path: Path, algorithm: str = "sha256", description: str | None = None) -> str:
    """Hex digest of a file read in 1 MiB chunks, with a byte progress bar for large files."""
    path = Path(path)
    h = hashlib.new(algorithm)
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size < PROGRESS_MIN_BYTES:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
        else:
            with make_progress() as prog:
                task = prog.add_task(description or f"hashing {path.name}", total=size, info="")
                for chunk in iter(lambda: f.read(CHUNK), b""):
                    h.update(chunk)
                    prog.advance(task, len(chunk))
    return h.hexdigest()


def md5sum(path: Path) -> str:
    return hash_file(path, "md5", f"md5 {Path(path).name}")


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


def _inside(root: Path, name: str) -> bool:
    target = (root / name).resolve()
    return os.path.commonpath([root, target]) == str(root)


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar or zip archive into ``dest`` without path traversal or links leaving ``dest``."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    if os.path.isabs(name) or not _inside(root, name):
                        raise LTBenchError(
                            f"archive {archive} has an unsafe member {name!r} (it would land outside {dest})",
                            "use an official copy of the archive",
                        )
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
    except tarfile.FilterError as e:
        raise LTBenchError(
            f"archive {archive} has an unsafe member: {e}", "use an official copy of the archive"
        ) from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as e:
        raise LTBenchError(
            f"cannot extract {archive}: {type(e).__name__}: {e}",
            "the archive is corrupt or truncated: download it again",
        ) from None


@contextmanager
def extracted(archive: Path) -> Iterator[Path]:
    """Safely extract ``archive`` into a private temporary directory, removed when the block ends.

    Used where a reader only needs the files while reading, so nothing is left outside ``--out``."""
    tmp = Path(tempfile.mkdtemp(prefix="ltbench-extract-"))
    try:
        safe_extract(archive, tmp)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
