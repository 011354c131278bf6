"""The one exception type for mistakes a user can cause (the CLI prints it as one line, exit code 2)."""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from collections.abc import Callable
from typing import TypeVar


class LTBenchError(Exception):
    """A user-caused error: ``what`` went wrong and ``fix`` says how to put it right."""

    def __init__(self, what: str, fix: str = ""):
        self.what = what
        self.fix = fix
        super().__init__(f"{what} — {fix}" if fix else what)


T = TypeVar("T")
# What a download (or the file it writes / the archive it unpacks) raises for a network or file problem:
# URLError, HTTPError, socket timeouts, ConnectionError and huggingface_hub's errors are all OSErrors.
DOWNLOAD_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
)


def download_or_hint(
    fetch: Callable[[], T],
    what: str,
    fix: str,
    also: tuple[type[BaseException], ...] = (),
    error: Callable[[BaseException], LTBenchError] | None = None,
) -> T:
    """``fetch()``, with a network or file error turned into one line: ``{what} failed (Type: message)`` and
    ``fix`` (or ``error(e)``). ``also`` adds types a library uses for them (torchvision raises RuntimeError for
    a corrupt or quota-limited download). Anything else is a bug and keeps its traceback."""
    try:
        return fetch()
    except (*DOWNLOAD_ERRORS, *also) as e:
        if error is not None:
            raise error(e) from None
        raise LTBenchError(f"{what} failed ({type(e).__name__}: {e})", fix) from None
