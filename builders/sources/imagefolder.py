"""Any folder of class folders as a source: ``ltbench build imagefolder --source-dir DIR --ir 10``.

The layout torchvision's ``ImageFolder`` and HF's ``imagefolder`` read: ``DIR/<class>/<image>`` (JPEG or PNG, in
sub-folders too; other files are skipped), classes in sorted folder-name order, files in sorted path order. The
test split is ``--test-dir DIR2`` (the same class folders), or ``--test-fraction F`` (per class in label order,
after one seeded shuffle — numpy's legacy RNG seeded with the build seed, as the digits source does — the first
``int(F · n + 0.5)`` images, at least one, go to test), or ``DIR/train`` and ``DIR/test`` when DIR holds both.
The LT train split is then drawn from the pool with the standard profile (n_max = the largest class) and
LDAM's selection, like every named source. The split is named ``imagefolder-<dirname>-lt<IR>``; its family is
read off the first image (``digits`` for grey images up to 16 px, else ``small``).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from ltbench.builders.readers import IMAGE_EXTS, class_folders, file_pool, subset
from ltbench.builders.spec import GENERIC_SOURCES, ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError

DIGITS_MAX_SIDE = 16  # grey images up to this size train as the digits family (8×8 digits, its transforms)
GENERIC_NOTE = "long-tailed split of a balanced source given on the command line; no paper counts to match"


def slug(text: str) -> str:
    """``My Org/Some_Set`` → ``my-org-some-set`` (for split names)."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not s:
        raise LTBenchError(f"cannot make a dataset name out of {text!r}", "give the folder or dataset a name")
    return s


def family_of(image: bytes) -> tuple[str, str]:
    """(family, why) from one encoded image: ``digits`` for grey images up to 16 px, else ``small``."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(image))
    except UnidentifiedImageError:
        raise LTBenchError(
            "the first image of the source is not an image PIL can read", "check the source"
        ) from None
    grey = img.mode in ("1", "L", "I;16", "I")
    family = "digits" if grey and max(img.size) <= DIGITS_MAX_SIDE else "small"
    return family, f"{family} (first image {img.size[0]}×{img.size[1]} {img.mode})"


def _images(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not any(x.startswith(".") for x in p.parts)
    )


def folder_split(root: Path, class_names: list[str] | None = None) -> tuple[list[str], list[str], np.ndarray]:
    """(class names, paths relative to ``root``, labels) of ``root/<class>/...``; with ``class_names``, the
    folder must hold exactly those classes."""
    root = Path(root)
    if not root.is_dir():
        raise LTBenchError(
            f"image folder not found: {root}", "give a folder holding one sub-folder per class"
        )
    names = class_folders(root)
    if class_names is not None and names != class_names:
        extra = sorted(set(names) ^ set(class_names))
        raise LTBenchError(
            f"{root} has other class folders than the train folder ({', '.join(extra[:5])})",
            "give the test folder the same class folders",
        )
    if len(names) < 2:
        raise LTBenchError(
            f"{root} holds {len(names)} class folder(s)",
            "give a folder with one sub-folder per class (2 or more)",
        )
    paths: list[str] = []
    labels: list[int] = []
    for c, name in enumerate(names):
        files = _images(root / name)
        if not files:
            raise LTBenchError(
                f"class folder {root / name} holds no JPEG/PNG image", "add its images or remove it"
            )
        paths += [f"{name}/{f}" for f in files]
        labels += [c] * len(files)
    return names, paths, np.asarray(labels, dtype=np.int64)


def split_off(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool indices, test indices): per class in label order, after one seeded shuffle, the first
    ``int(fraction · n + 0.5)`` (at least 1, at most n − 1) go to test."""
    rng = np.random.RandomState(seed)
    pool, test = [], []
    for c in range(int(labels.max()) + 1):
        idx = np.where(labels == c)[0]
        rng.shuffle(idx)
        k = min(max(int(fraction * len(idx) + 0.5), 1), len(idx) - 1)
        test.append(idx[:k])
        pool.append(idx[k:])
    return np.sort(np.concatenate(pool)), np.sort(np.concatenate(test))


def imagefolder_spec(
    source_dir: Path | None,
    test_dir: Path | None = None,
    test_fraction: float | None = None,
) -> SourceSpec:
    """The source for ``ltbench build imagefolder --source-dir DIR [--test-dir DIR2 | --test-fraction F]``."""
    if source_dir is None:
        raise LTBenchError(
            "imagefolder needs --source-dir DIR", "give the folder holding one sub-folder per class"
        )
    source_dir = Path(source_dir).expanduser()
    if test_dir is not None and test_fraction is not None:
        raise LTBenchError("--test-dir and --test-fraction both given", "give one of them")
    if test_fraction is not None and not 0 < test_fraction < 1:
        raise LTBenchError(
            f"--test-fraction {test_fraction} is not between 0 and 1", "use e.g. --test-fraction 0.2"
        )
    nested = test_dir is None and test_fraction is None
    if nested and not ((source_dir / "train").is_dir() and (source_dir / "test").is_dir()):
        raise LTBenchError(
            f"no test split for {source_dir}",
            "add --test-dir DIR2 or --test-fraction F (or give a folder holding train/ and test/)",
        )
    train_root = source_dir / "train" if nested else source_dir
    test_root = source_dir / "test" if nested else (Path(test_dir).expanduser() if test_dir else None)
    names, paths, labels = folder_split(
        train_root
    )  # checked now: a bad folder fails before anything is built
    family, why = family_of(file_pool(train_root, paths[:1], labels[:1]).read(0))
    if test_fraction is not None:
        test_how = f"--test-fraction {test_fraction:g} of each class folder (seeded with the build seed)"
    else:
        test_how = f"every image of {test_root}"

    def read(opts: ReadOptions) -> SourceData:
        full = file_pool(train_root, paths, labels)
        if test_fraction is not None:
            pool_idx, test_idx = split_off(labels, test_fraction, opts.seed)
            pool, test = subset(full, pool_idx), subset(full, test_idx)
        else:
            _, tpaths, tlabels = folder_split(test_root, names)
            pool, test = full, file_pool(test_root, tpaths, tlabels)
        return SourceData(
            class_names=names,
            pool=pool,
            fixed={"test": test},
            notes={"source": GENERIC_NOTE, "family": why, "test split": test_how},
            classes_from=str(train_root),
        )

    origin = {
        "kind": "imagefolder",
        "source_dir": str(source_dir),
        "test_dir": None if test_root is None else str(test_root),
        "test_fraction": test_fraction,
    }
    return SourceSpec(
        name=f"imagefolder-{slug(source_dir.resolve().name)}",
        title=f"image folder {source_dir.resolve().name}",
        num_classes=len(names),
        read=read,
        scale=family,
        irs=(10, 100),
        n_max_rule="max",
        license="unknown",
        citation=f"images of the folder {source_dir} ({len(names)} class folders)",
        layout="DIR/<class>/<image> (JPEG/PNG), as torchvision's ImageFolder reads it",
        pool_definition=f"the images of {train_root}" + (", less the test fraction" if test_fraction else ""),
        redistributable=False,  # ltbench cannot know who holds the rights to a user's folder
        origin=origin,
    )


GENERIC_SOURCES["imagefolder"] = imagefolder_spec
