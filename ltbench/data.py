"""Loading built splits: ``load_split`` for users, and torch datasets for training and evaluation."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ltbench.errors import LTBenchError

DEFAULT_DATA = Path("data")
CACHE_PIXELS = 64 * 1024 * 1024  # splits up to this many decoded bytes are kept in memory as one tensor


def split_dir(name: str, data_root: Path | str = DEFAULT_DATA) -> Path:
    """The directory of built split ``name`` (``digits-lt10``) under ``data_root``, or a path given directly."""
    path = Path(name)
    if (path / "manifest.json").exists():
        return path
    path = Path(data_root) / name
    if not (path / "manifest.json").exists():
        base, authors = (name[: -len("-authors")], True) if name.endswith("-authors") else (name, False)
        source = base.split("-lt")[0]
        ir = base.split("-lt")[1] if "-lt" in base else "10"
        extra = " --protocol authors" if authors else ""
        raise LTBenchError(
            f"dataset {name!r} is not built under {data_root}",
            f"run `ltbench build {source} --ir {ir}{extra} --out {data_root}` first (or pass --data DIR)",
        )
    return path


def load_split(
    name_or_path_or_repo_id: str,
    split: str | None = None,
    data_root: Path | str = DEFAULT_DATA,
    config: str | None = None,
    **kw,
):
    """A built split as a ``datasets.DatasetDict`` (or one ``Dataset`` when ``split`` is given).

    Accepts a split directory, a split name under ``data_root``, or a Hugging Face Hub repo id (``ORG/NAME``,
    optional ``revision=``), whose files are fetched into the Hub cache first (so ``manifest.json`` is local
    too and ``ltbench verify`` can check the copy). ``config`` picks a config of a published source repo
    (``ir10``, ``ir100``, ``ir10-authors``; its default config without it): only that config's folder is
    fetched, and loaded through its own card (same rows and features as ``load_dataset(repo_id, config)``).
    Other keyword arguments go to ``datasets.load_dataset``.
    """
    import datasets

    from ltbench.hub_download import download_split, is_repo_id

    name = str(name_or_path_or_repo_id)
    revision = kw.pop("revision", None)
    path = Path(name).expanduser()
    if not (path / "README.md").exists():
        path = Path(data_root) / name
    if not (path / "README.md").exists():
        if not is_repo_id(name):
            raise LTBenchError(
                f"no built split or Hub dataset named {name!r}",
                f"give a split directory, a split name under {data_root}, or ORG/NAME on the Hub",
            )
        path = download_split(name, revision=revision, config=config)
    if config is not None:  # a config's folder is its build, with its own card: load it as such
        if not (path / config / "manifest.json").exists():
            have = sorted(p.parent.name for p in path.glob("*/manifest.json"))
            raise LTBenchError(f"{name} has no config {config!r}", f"available: {', '.join(have) or 'none'}")
        path = path / config
    if split is not None:
        splits = _card_splits(path)
        if splits and split not in splits:
            raise LTBenchError(f"{name} has no split {split!r}", f"available: {', '.join(splits)}")
    return datasets.load_dataset(str(path), split=split, **kw)


def _card_splits(path: Path) -> list[str]:
    """Split names of a built split (from its manifest; empty when there is none)."""
    import json

    manifest = path / "manifest.json"
    return list(json.loads(manifest.read_text(encoding="utf-8"))["splits"]) if manifest.exists() else []


def decode(image_bytes: bytes, mode: str | None = None):
    from PIL import Image

    img = Image.open(io.BytesIO(image_bytes))
    return img.convert(mode) if mode and img.mode != mode else img


@dataclass
class SplitInfo:
    """What a method needs to know about the data without touching images."""

    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        return self.manifest["class_names"]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def counts(self, split: str = "train") -> list[int]:
        return self.manifest["splits"][split]["class_counts"]

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    @property
    def family(self) -> str:
        """The image family (``ltbench.families``) the manifest stores (older builds: the source's)."""
        from ltbench.families import family_of_source

        return self.manifest.get("family") or family_of_source(self.manifest["source"])

    @property
    def grouping(self) -> str:
        """The head / medium / tail rule the split was built with."""
        return self.manifest["groups"]["rule"]

    @property
    def groups(self) -> dict[str, list[int]]:
        """The head / medium / tail class ids stored in the manifest (what the evaluator reports)."""
        from ltbench.groups import manifest_groups

        return manifest_groups(self.manifest)

    @property
    def protocol(self) -> str:
        """The split protocol (``ltbench`` or ``authors``; builds made before protocols existed: ltbench)."""
        return self.manifest.get("protocol", "ltbench")


def open_split(name: str, data_root: Path | str = DEFAULT_DATA) -> SplitInfo:
    from ltbench.manifest import read_manifest

    path = split_dir(name, data_root)
    return SplitInfo(name=path.name, path=path, manifest=read_manifest(path))


class ImageSplit:
    """A torch ``Dataset`` over one Parquet split: ``(transform(image), label)``, decoded lazily.

    Small splits are decoded once into a uint8 tensor (N, C, H, W) so that epochs cost no decoding.
    ``transform`` receives a uint8 CHW tensor and returns a float tensor.
    """

    def __init__(self, info: SplitInfo, split: str, transform=None, mode: str | None = None):
        import pyarrow.parquet as pq

        if split not in info.manifest["splits"]:
            raise LTBenchError(f"{info.name} has no {split!r} split", f"available: {', '.join(info.splits)}")
        files = [info.path / f for f in info.manifest["splits"][split]["files"]]
        tables = [pq.read_table(f) for f in files]
        self.labels = np.concatenate([t.column("label").to_numpy() for t in tables]).astype(np.int64)
        self._bytes = [row["bytes"] for t in tables for row in t.column("image").to_pylist()]
        self.transform = transform
        self.mode = mode
        self._cache = None
        self._batch_key: Any = None  # the transform _batch was made for (see _batch_fn)
        self._batch = None
        first = np.asarray(decode(self._bytes[0], mode)) if self._bytes else np.zeros((1, 1))
        if first.nbytes * len(self._bytes) <= CACHE_PIXELS:
            self._cache = [self._tensor(i) for i in range(len(self._bytes))]

    def _tensor(self, i: int):
        import torch

        arr = np.asarray(decode(self._bytes[i], self.mode))
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        return torch.from_numpy(np.array(arr, copy=True))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        img = self._cache[i] if self._cache is not None else self._tensor(i)
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[i])

    def __getitems__(self, indices: list[int]) -> list[tuple[Any, int]]:
        """What torch's ``DataLoader`` fetches for a batch in place of ``[self[i] for i in indices]``: the same
        samples (same pixels, same random draws in the same order), with the transform run once on the stacked
        batch where :func:`~ltbench.families.batch_transform` can promise that (the digits train and eval
        transforms: 64 images in ≈ 5 ms instead of ≈ 27 ms one by one, ``D2``)."""
        batch = self._batch_fn() if self._cache is not None else None
        imgs = [self._cache[i] for i in indices] if batch is not None else []
        if not imgs or any(t.shape != imgs[0].shape for t in imgs):
            return [self[i] for i in indices]
        import torch

        out = batch(torch.stack(imgs))
        return list(zip(out.unbind(0), self.labels[indices].tolist(), strict=True))

    def _batch_fn(self):
        from ltbench.families import batch_transform

        if self._batch_key is not self.transform:  # the transform may be swapped after init
            self._batch_key = self.transform
            self._batch = None if self.transform is None else batch_transform(self.transform)
        return self._batch


def fetch_batch(dataset: Any, indices: list[int]) -> list[Any]:
    """``[dataset[i] for i in indices]``, through the dataset's ``__getitems__`` where it has one (as torch's
    ``DataLoader`` fetches), for wrappers that keep the batched path of the split they wrap."""
    getitems = getattr(dataset, "__getitems__", None)
    return getitems(indices) if callable(getitems) else [dataset[i] for i in indices]


def num_workers() -> int:
    return int(os.environ.get("LTBENCH_WORKERS", "0"))
