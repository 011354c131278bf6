"""Reading a built split's ``manifest.json``: the one reader that the loaders (``ltbench.data``) and the
builders (``verify``, ``hub``) share, so neither imports the other for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ltbench.errors import LTBenchError

MANIFEST = "manifest.json"


def read_manifest(split_dir: Path | str) -> dict[str, Any]:
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
