"""Fetching a built split from the Hugging Face Hub (what ``ltbench.load_split`` needs), in the core so that the
loaders do not import the builders; publishing stays in ``ltbench.builders.hub``."""

from __future__ import annotations

import re
from pathlib import Path

from ltbench.errors import LTBenchError

CARD = "README.md"  # the dataset card of a built split
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_repo_id(text: str) -> bool:
    return bool(REPO_ID.match(text)) and not text.endswith((".", "-")) and ".." not in text


def download_split(
    repo_id: str,
    revision: str | None = None,
    cache_dir: Path | None = None,
    config: str | None = None,
) -> Path:
    """A local copy (the Hub cache's snapshot) of the dataset repo ``repo_id`` (with ``config``: its card and
    that config's folder only)."""
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = None if config is None else [CARD, f"{config}/*"]
    try:
        path = huggingface_hub.snapshot_download(
            repo_id, repo_type="dataset", revision=revision, cache_dir=cache_dir, allow_patterns=patterns
        )
    except (HfHubHTTPError, LocalEntryNotFoundError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise LTBenchError(
            f"cannot fetch the Hub dataset {repo_id}: {first}",
            "check the repo id, your network, and your token for a private repo",
        ) from None
    return Path(path)
