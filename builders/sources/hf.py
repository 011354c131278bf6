"""Any image-classification dataset ``datasets`` can read as a source: ``ltbench build hf:ORG/NAME[:CONFIG]``.

``ORG/NAME`` is a Hub dataset (read streaming) or a local directory: one written by ``save_to_disk`` or one
``datasets.load_dataset`` reads (Parquet files, an image folder). Columns: ``--image-column`` (default: the
first ``Image`` feature) and ``--label-column`` (default: the first ``ClassLabel`` feature, else ``label``);
class names from the ``ClassLabel``, else the sorted distinct labels. Splits: ``--train-split`` (the balanced
pool, default ``train``) and ``--test-split`` (kept whole, default ``test``).

The source is streamed twice and never copied whole (a Parquet-backed one reads only the column it needs each
time): first its labels, from which the LT selection is
drawn exactly as for every named source (standard profile, n_max = the largest class, LDAM's selection with the
build seed); then its images, of which only the selected train rows and every test row are kept, in a
temporary spool file that the Parquet writer reads from. Keys in the manifest are ``<split>:<row index>`` in
the stream's order. The split is named ``hf-<org>-<name>[-<config>]-lt<IR>``; its family is read off the
first image (see :func:`~ltbench.builders.sources.imagefolder.family_of`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ltbench.builders.profile import ldam_select, lt_counts, order_counts, resolve_n_max
from ltbench.builders.sources.imagefolder import GENERIC_NOTE, family_of, slug
from ltbench.builders.spec import GENERIC_SOURCES, Pool, ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError
from ltbench.progress import make_progress

N_MAX_RULE = "max"
CLASS_ORDER = "label"
OPEN_LICENSES = (
    "apache-2.0",
    "mit",
    "cc0-1.0",
    "cc-by-4.0",
    "cc-by-sa-4.0",
    "bsd-3-clause",
    "odc-by",
    "pddl",
)


def parse_ref(source: str) -> tuple[str, str | None]:
    """``hf:ORG/NAME[:CONFIG]`` → (``ORG/NAME`` or a local path, config or None)."""
    body = source[len("hf:") :]
    path, _, config = body.partition(":")
    if not path:
        raise LTBenchError(f"{source!r} names no dataset", "use hf:ORG/NAME[:CONFIG] or hf:LOCAL_DIR")
    return path, config or None


def _saved_to_disk(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists())


def open_split(path: str, config: str | None, split: str):
    """An ``IterableDataset`` over one split (a Hub dataset streamed, a local one read from disk)."""
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    local = Path(path).expanduser()
    if _saved_to_disk(local):
        saved = datasets.load_from_disk(str(local))
        if isinstance(saved, datasets.DatasetDict):
            if split not in saved:
                raise LTBenchError(f"{path} has no split {split!r}", f"available: {', '.join(saved)}")
            saved = saved[split]
        elif split != "train":
            raise LTBenchError(f"{path} holds one split, read as 'train'", f"it has no {split!r} split")
        return saved.to_iterable_dataset()
    try:
        return datasets.load_dataset(path, config, split=split, streaming=True)
    except (DatasetNotFoundError, FileNotFoundError, ValueError, ConnectionError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LTBenchError(
            f"cannot read split {split!r} of {path}{f' ({config})' if config else ''}: {first}",
            "check the name, config and split (and your network for a Hub dataset)",
        ) from None


def pick_columns(features: Any, image_column: str | None, label_column: str | None) -> tuple[str, str]:
    import datasets

    names = list(features or {})
    if image_column is None:
        found = [k for k, f in (features or {}).items() if isinstance(f, datasets.Image)]
        image_column = found[0] if found else "image"
    if label_column is None:
        found = [k for k, f in (features or {}).items() if isinstance(f, datasets.ClassLabel)]
        label_column = found[0] if found else "label"
    for what, col in (("image", image_column), ("label", label_column)):
        if features is not None and col not in features:
            raise LTBenchError(
                f"no {what} column {col!r} (columns: {', '.join(names)})", f"pass --{what}-column NAME"
            )
    if features is not None and not isinstance(features[image_column], datasets.Image):
        raise LTBenchError(
            f"column {image_column!r} is not an Image feature ({type(features[image_column]).__name__})",
            "pass --image-column with the image column",
        )
    return image_column, label_column


def only(ds, column: str, path: str, config: str | None, split: str):
    """``ds`` reduced to one column; a Parquet-backed dataset reads only that column's chunks."""
    import datasets

    if ds.info.builder_name == "parquet" and not _saved_to_disk(Path(path).expanduser()):
        return datasets.load_dataset(path, config, split=split, streaming=True, columns=[column])
    return ds.select_columns([column])


def _labels(ds, column: str, what: str) -> list:
    out = []
    with make_progress() as prog:
        task = prog.add_task(f"reading {what} labels", total=None, info="")
        for row in ds:
            out.append(row[column])
            prog.advance(task)
    return out


def class_names_and_ids(feature: Any, train: list, test: list) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Class names and integer labels: a ``ClassLabel``'s names, else the sorted distinct labels."""
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        names = list(feature.names)
        tr, te = np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)
    else:
        names = [str(v) for v in sorted(set(train))]
        index = {v: i for i, v in enumerate(sorted(set(train)))}
        missing = sorted({str(v) for v in test if v not in index})
        if missing:
            raise LTBenchError(
                f"test labels {', '.join(missing[:5])} are not train labels", "check --test-split"
            )
        tr = np.asarray([index[v] for v in train], dtype=np.int64)
        te = np.asarray([index[v] for v in test], dtype=np.int64)
    for what, labels in (("train", tr), ("test", te)):
        if len(labels) == 0:
            raise LTBenchError(f"the {what} split is empty", f"check --{what}-split")
        if labels.min() < 0 or labels.max() >= len(names):
            raise LTBenchError(
                f"{what} labels outside 0..{len(names) - 1} (e.g. {int(labels.min())}: unlabelled rows?)",
                f"choose a labelled split with --{what}-split",
            )
    return names, tr, te


class Spool:
    """Encoded images kept in an anonymous temporary file; ``read(i)`` returns row i's bytes (thread-safe)."""

    def __init__(self):
        self.file = tempfile.TemporaryFile(prefix="ltbench-hf-")  # noqa: SIM115 - lives as long as the pool
        self.at: dict[int, tuple[int, int]] = {}
        self.size = 0

    def add(self, i: int, data: bytes) -> None:
        self.file.write(data)
        self.at[i] = (self.size, len(data))
        self.size += len(data)

    def read(self, i: int) -> bytes:
        if i not in self.at:
            raise RuntimeError(f"row {i} was not spooled: the selection read differs from the one drawn")
        offset, n = self.at[i]
        return os.pread(self.file.fileno(), n, offset)


def _image_bytes(cell: dict, column: str) -> bytes:
    if cell.get("bytes") is not None:
        return cell["bytes"]
    if cell.get("path"):
        return Path(cell["path"]).read_bytes()
    raise LTBenchError(f"a row of column {column!r} has no image", "check the dataset")


def spool(ds, column: str, keep: set[int] | None, what: str) -> Spool:
    """Stream ``ds``'s images (undecoded) and keep rows ``keep`` (every row when None)."""
    import datasets

    out = Spool()
    stream = ds.cast_column(column, datasets.Image(decode=False))
    with make_progress() as prog:
        task = prog.add_task(f"reading {what} images", total=None, info="")
        for i, row in enumerate(stream):
            if keep is None or i in keep:
                out.add(i, _image_bytes(row[column], column))
            prog.advance(task)
    out.file.flush()
    return out


def hf_spec(
    source: str,
    ir: float | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    train_split: str = "train",
    test_split: str = "test",
) -> SourceSpec:
    """The source for ``ltbench build hf:ORG/NAME[:CONFIG] --ir IR [--image-column ...]``."""
    path, config = parse_ref(source)
    train_ds = open_split(path, config, train_split)
    test_ds = open_split(path, config, test_split)
    features = train_ds.features
    image_column, label_column = pick_columns(features, image_column, label_column)
    info = train_ds.info
    local = Path(path).expanduser()
    where = local.resolve().name if local.exists() else path
    name = slug(f"hf-{where}" + (f"-{config}" if config else ""))
    license = (info.license or "unknown").strip() or "unknown"
    title = f"{path}{f' ({config})' if config else ''}"

    def read(opts: ReadOptions) -> SourceData:
        feature = features[label_column] if features is not None else None
        train_labels = _labels(
            only(train_ds, label_column, path, config, train_split), label_column, train_split
        )
        test_labels = _labels(only(test_ds, label_column, path, config, test_split), label_column, test_split)
        names, train, test = class_names_and_ids(feature, train_labels, test_labels)
        keep: set[int] = set()
        if ir is not None:  # the rows the LT profile will select (the same calls as the builder's)
            pool_counts = np.bincount(train, minlength=len(names))
            counts = order_counts(
                lt_counts(resolve_n_max(N_MAX_RULE, pool_counts), len(names), ir), pool_counts, CLASS_ORDER
            )
            keep = {int(i) for i in ldam_select(train, counts, opts.seed)}
        train_images = spool(
            only(train_ds, image_column, path, config, train_split), image_column, keep, train_split
        )
        test_images = spool(
            only(test_ds, image_column, path, config, test_split), image_column, None, test_split
        )
        first = train_images.read(min(train_images.at)) if train_images.at else test_images.read(0)
        _, why = family_of(first)
        pool = Pool(
            train, [f"{train_split}:{i}" for i in range(len(train))], train_images.read, thread_safe=True
        )
        fixed = Pool(
            test, [f"{test_split}:{i}" for i in range(len(test))], test_images.read, thread_safe=True
        )
        return SourceData(
            class_names=names,
            pool=pool,
            fixed={"test": fixed},
            notes={
                "source": GENERIC_NOTE,
                "family": why,
                "source_keys": f"<split>:<row index> in the order `datasets` streams {title}",
            },
            classes_from=f"column {label_column!r} of {title}",
        )

    family = _family_from_first(train_ds, image_column)
    return SourceSpec(
        name=name,
        title=f"Hub dataset {title}" if not local.exists() else f"dataset {title}",
        num_classes=0,  # known once the labels are read
        read=read,
        scale=family,
        irs=(10, 100),
        n_max_rule=N_MAX_RULE,
        class_order=CLASS_ORDER,
        license=license,
        citation=title,
        homepage=info.homepage or ("" if local.exists() else f"https://huggingface.co/datasets/{path}"),
        layout="any image-classification dataset `datasets` reads (streamed)",
        pool_definition=f"the {train_split!r} split of {title}",
        redistributable=license.lower() in OPEN_LICENSES,
        bibtex=(info.citation or "").strip() if (info.citation or "").strip().startswith("@") else "",
        origin={
            "kind": "hf",
            "dataset": path,
            "config": config,
            "train_split": train_split,
            "test_split": test_split,
            "image_column": image_column,
            "label_column": label_column,
        },
    )


def _family_from_first(ds, column: str) -> str:
    """The family from the stream's first image (one row read)."""
    import datasets

    stream = ds.select_columns([column]).cast_column(column, datasets.Image(decode=False))
    for row in stream.take(1):
        return family_of(_image_bytes(row[column], column))[0]
    raise LTBenchError("the train split is empty", "check --train-split")


GENERIC_SOURCES["hf"] = hf_spec
