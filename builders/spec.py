"""What a source reader returns, and the registry entry that describes each dataset source."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ltbench.builders.authors import AuthorsRecipe

from ltbench.test_dists import SadeLists


@dataclass
class Pool:
    """A list of images of one split of a source: labels, stable source keys, and a byte reader.

    ``read(i)`` returns the encoded image (the source's own JPEG/PNG bytes, or PNG for raw-pixel sources);
    ``paths[i]`` is stored in the Image feature's ``path`` (the source-relative file name, or None).
    Images are read one at a time when written, so a pool never holds all pixels in memory.
    """

    labels: np.ndarray
    keys: Sequence[str]
    read: Callable[[int], bytes]
    paths: Sequence[str | None] | None = None
    thread_safe: bool = False  # ``read`` may run in threads at once: the writer then reads in parallel
    #: optional ``read`` of many rows at once, the same bytes in order (raw-pixel sources encode a stack at once)
    read_many: Callable[[Sequence[int]], list[bytes]] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def read_batch(self, indices: Sequence[int]) -> list[bytes]:
        """``[read(i) for i in indices]``, through ``read_many`` where the source has one."""
        if self.read_many is not None:
            return self.read_many(indices)
        return [self.read(i) for i in indices]

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(np.asarray(self.labels, dtype=np.int64), minlength=num_classes)


@dataclass
class SourceData:
    """A source as read: class names, the pool the LT train split is drawn from, and splits kept whole.

    ``checksums`` maps each source file that was hashed to whether its md5 was verified (False: skipped with
    ``--no-verify-checksums``); files read from extracted folders have no official checksum and are absent.
    ``classes_from`` names the file or folder that defines the classes (for error messages)."""

    class_names: list[str]
    pool: Pool | None
    fixed: dict[str, Pool]
    checksums: dict[str, bool] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    classes_from: str = ""


@dataclass
class ReadOptions:
    source_dir: Path
    seed: int = 0
    download: bool = False
    verify_checksums: bool = True


@dataclass(frozen=True)
class SourceSpec:
    """A registered dataset source.

    ``irs`` empty means the source is long-tailed already (ImageNet-LT, …) and is imported as it is.
    ``expected`` maps an IR (or 0 for fixed sets) to the paper's Table 6 ``{"train": n, "test": n}``.
    ``grouping`` is the default head / medium / tail rule (ltbench.groups.RULES); ``authors`` is how the CANDLE
    authors' loader draws the split (``--protocol authors``; None: the source has no such loader).
    """

    name: str
    title: str
    num_classes: int
    read: Callable[[ReadOptions], SourceData]
    grouping: str = ""  # "": ``authors`` where the source has an authors recipe, else ``thirds``
    scale: str = "small"
    irs: tuple[float, ...] = (10, 100)
    paper_ir: float | None = None
    n_max_rule: str | float = "max"
    class_order: str = "label"  # which class gets the profile's c-th count: "label" or "count" (profile.py)
    expected: dict[float, dict[str, int]] = field(default_factory=dict)
    license: str = "unknown"
    citation: str = ""
    homepage: str = ""
    layout: str = ""
    pool_definition: str = ""
    redistributable: bool = True
    bibtex: str = ""  # BibTeX of the source, shown in the dataset card
    authors: AuthorsRecipe | None = None
    origin: dict[str, Any] | None = None  # a source made from CLI options: where it came from (manifest)
    #: SADE's published test-agnostic list files; None: drawn by SADE's formula from the balanced test split
    test_lists: SadeLists | None = None

    @property
    def default_grouping(self) -> str:
        return self.grouping or ("authors" if self.authors else "thirds")

    def split_name(self, ir: float | None, protocol: str = "ltbench") -> str:
        """``cub200-lt10`` (``--protocol ltbench``), ``cub200-lt10-authors``; ``imagenet-lt`` for fixed sets."""
        from ltbench.builders.profile import ir_tag

        name = self.name if not self.irs else f"{self.name}-lt{ir_tag(ir)}"
        return name if protocol == "ltbench" else f"{name}-{protocol}"


# Sources made from command-line options rather than registered by name: ``imagefolder`` (any folder of class
# folders) and ``hf:ORG/NAME[:CONFIG]`` (any image-classification dataset ``datasets`` can read). Each module of
# ``builders/sources`` that defines one adds its factory here (``imagefolder.py``, ``hf.py``).
GENERIC_SOURCES: dict[str, Callable[..., SourceSpec]] = {}


def generic_kind(source: str) -> str | None:
    """``imagefolder`` / ``hf`` for a source named by options (``imagefolder``, ``hf:ORG/NAME``), else None."""
    if source == "imagefolder":
        return "imagefolder"
    return "hf" if source.startswith("hf:") else None
