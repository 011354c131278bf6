"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009) from the official python pickles, read by torchvision.

Files under ``--source-dir ROOT``: the extracted ``ROOT/cifar-10-batches-py/`` (``data_batch_1..5``,
``test_batch``, ``batches.meta``) / ``ROOT/cifar-100-python/`` (``train``, ``test``, ``meta``), or the official
archives ``ROOT/cifar-10-python.tar.gz`` / ``ROOT/cifar-100-python.tar.gz``; ``--download`` fetches the archive
into ROOT with torchvision's downloader. An archive is md5-checked, extracted safely into a private temporary
directory that is removed after reading; every extracted file is then md5-checked against torchvision's list.
The pickles are read by torchvision's ``CIFAR10``/``CIFAR100`` classes, subclassed without their built-in
integrity check (ltbench checks each file itself, or skips the check with ``--no-verify-checksums``).

Pool: the official training set; ``source_keys`` are indices into it in file order (``data_batch_1..5`` /
``train``), i.e. torchvision's and LDAM-DRW's ``targets`` index. n_max is LDAM's ``len(data) / C`` (5,000 /
500), so the LT split is index-identical to LDAM-DRW's ``IMBALANCECIFAR10/100(imb_factor=1/IR,
rand_number=seed)`` (LDAM's versions compute ``img_max`` with and without ``int()``; both give 5,000 / 500
on the balanced official sets). Test: the official test set, unchanged. Raw pixels are stored as PNG
(lossless). CIFAR-100 labels are the 100 fine labels.
"""

from __future__ import annotations

import pickle
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from ltbench.builders.authors import AuthorsRecipe
from ltbench.builders.files import check_md5, extracted, require
from ltbench.builders.images import png_batch, png_bytes
from ltbench.builders.spec import Pool, ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError, download_or_hint
from ltbench.progress import track
from ltbench.registry import DATASETS

KRIZHEVSKY = "Krizhevsky, Learning Multiple Layers of Features from Tiny Images, University of Toronto (2009)"
BIBTEX = """@techreport{krizhevsky2009cifar,
  title       = {Learning Multiple Layers of Features from Tiny Images},
  author      = {Krizhevsky, Alex},
  institution = {University of Toronto},
  year        = {2009}
}"""
OFFICIAL_SIZES = {"train": 50_000, "test": 10_000}
AUTHORS_GROUPS = {"cifar10": (3, 7), "cifar100": (36, 71)}  # class_dict, custum_data/new_dataset.py


def torchvision_class(name: str):
    """torchvision's reader class for ``cifar10`` / ``cifar100`` (its file names, md5 list and URL)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    return {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]


def unchecked_class(tv_cls):
    """``tv_cls`` without its own integrity check (files are checked by :func:`check_files` instead)."""
    return type(
        f"Unchecked{tv_cls.__name__}",
        (tv_cls,),
        {
            "train_list": [[f, None] for f, _ in tv_cls.train_list],
            "test_list": [[f, None] for f, _ in tv_cls.test_list],
            "meta": {**tv_cls.meta, "md5": None},
        },
    )


def official_files(tv_cls) -> list[tuple[str, str]]:
    """(file name, md5) of every file the reader needs, as torchvision lists them."""
    return [
        *map(tuple, tv_cls.train_list),
        *map(tuple, tv_cls.test_list),
        (tv_cls.meta["filename"], tv_cls.meta["md5"]),
    ]


def locate(opts: ReadOptions, tv_cls, title: str) -> Path:
    """The extracted folder or the archive under ``opts.source_dir`` (downloaded first with ``--download``)."""
    root = Path(opts.source_dir)
    folder, archive = root / tv_cls.base_folder, root / tv_cls.filename
    if folder.is_dir():
        return folder
    if (
        opts.download
    ):  # torchvision's downloader: a no-op when the archive is there (and intact, if verifying)
        from torchvision.datasets.utils import download_url

        root.mkdir(parents=True, exist_ok=True)
        download_or_hint(  # no md5 here: the archive is checked by read_cifar (one-line error on mismatch)
            lambda: download_url(tv_cls.url, str(root), tv_cls.filename),
            f"download of {tv_cls.url}",
            f"download it by hand and put it at {archive}",
        )
        return require(archive, f"{title} archive", f"download {tv_cls.url} by hand into {root}")
    if archive.is_file():
        return archive
    raise LTBenchError(
        f"{title} source not found: expected {archive} or its extracted folder {folder}/",
        f"put the official archive ({tv_cls.url}) in {root}, point --source-dir at its folder, "
        "or pass --download",
    )


def check_files(folder: Path, tv_cls, title: str, verify: bool) -> dict[str, bool]:
    """Every official file present (one-line error naming the first missing one); md5s checked if ``verify``.
    Returns ``{base_folder/file: verified}``."""
    for name, _ in official_files(tv_cls):
        require(
            folder / name, f"{title} file", f"the folder {folder} is incomplete: use the official archive"
        )
    return {
        f"{folder.name}/{name}": check_md5(folder / name, md5, verify) for name, md5 in official_files(tv_cls)
    }


def load(root: Path, tv_cls, title: str, train: bool):
    """torchvision's reader on ``root`` (which holds the base folder), errors turned into one line."""
    try:
        ds = unchecked_class(tv_cls)(root=str(root), train=train)
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
    ) as e:
        raise LTBenchError(
            f"cannot read the {title} pickles in {Path(root) / tv_cls.base_folder}: {type(e).__name__}: {e}",
            "the files are corrupt or not the official python version: download them again",
        ) from None
    return ds


def to_pool(ds, num_classes: int, title: str, split: str) -> Pool:
    data = ds.data  # (N, 32, 32, 3) uint8, HWC
    labels = np.asarray(ds.targets, dtype=np.int64)
    if data.shape[1:] != (32, 32, 3) or len(labels) != len(data):
        raise LTBenchError(f"{title} {split} data has shape {data.shape}", "use the official python files")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise LTBenchError(
            f"{title} {split} labels leave 0..{num_classes - 1}", "use the official python files"
        )
    return Pool(
        labels=labels,
        keys=[str(i) for i in range(len(labels))],
        read=lambda i: png_bytes(data[i]),
        paths=None,
        thread_safe=True,
        read_many=lambda idx: png_batch(data[np.asarray(idx, dtype=np.int64)]),
    )


def read_cifar(opts: ReadOptions, name: str, title: str, num_classes: int) -> SourceData:
    tv_cls = torchvision_class(name)
    found = locate(opts, tv_cls, title)
    checksums: dict[str, bool] = {}
    with ExitStack() as stack:
        if found.is_file():  # the archive
            checksums[found.name] = check_md5(found, tv_cls.tgz_md5, opts.verify_checksums)
            root = stack.enter_context(extracted(found))
            if not (root / tv_cls.base_folder).is_dir():
                raise LTBenchError(
                    f"{found} does not hold the folder {tv_cls.base_folder}/", "use the official archive"
                )
        else:
            root = found.parent
        checksums.update(check_files(root / tv_cls.base_folder, tv_cls, title, opts.verify_checksums))
        sets = {
            split: load(root, tv_cls, title, split == "train")
            for split in track(["train", "test"], 2, f"reading {title}")
        }
    classes = list(sets["train"].classes)
    if len(classes) != num_classes:
        raise LTBenchError(
            f"{title} meta file lists {len(classes)} classes, not {num_classes}", "use the official files"
        )
    pools = {split: to_pool(ds, num_classes, title, split) for split, ds in sets.items()}
    notes = {
        "source_keys": f"index into the official {title} training/test set in file order "
        f"({', '.join(f for f, _ in tv_cls.train_list)}), the index of torchvision's {tv_cls.__name__} "
        "and LDAM-DRW's IMBALANCECIFAR `targets`",
        "images": "the raw 32x32 RGB pixels stored losslessly as PNG",
    }
    if name == "cifar100":
        notes["labels"] = "the 100 fine labels (the 20 coarse labels are not stored)"
    for split, n in OFFICIAL_SIZES.items():
        if len(pools[split]) != n:
            notes[f"{split} size"] = (
                f"the source files hold {len(pools[split]):,} images; the official set {n:,}"
            )
    return SourceData(
        class_names=classes,
        pool=pools["train"],
        fixed={"test": pools["test"]},
        checksums=checksums,
        notes=notes,
        classes_from=f"{tv_cls.base_folder}/{tv_cls.meta['filename']}",
    )


def _spec(
    name: str, title: str, num_classes: int, expected: dict, archive: str, folder: str, files: str
) -> SourceSpec:
    per_class = OFFICIAL_SIZES["train"] // num_classes
    return SourceSpec(
        name=name,
        title=title,
        num_classes=num_classes,
        read=lambda opts: read_cifar(opts, name, title, num_classes),
        scale="small",
        irs=(10, 100),
        paper_ir=None,  # the paper reports both IR 10 and IR 100 (Table 6)
        n_max_rule="mean",  # LDAM's img_max = len(data) / C
        expected=expected,
        license="unknown",
        citation=KRIZHEVSKY,
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        layout=f"ROOT/{archive} (official; --download fetches it) or its extracted ROOT/{folder}/{{{files}}}",
        pool_definition=f"the official training set, 50,000 images ({per_class:,} per class)",
        redistributable=True,
        bibtex=BIBTEX,
        authors=AuthorsRecipe(
            # binary_train.py reads CIFAR through data_loader/imbalance_cifar.py (LDAM-DRW's IMBALANCECIFAR);
            # class_dict gives 36 / 35 / 29 for CIFAR-100 (custum_data/imbalance_cifar.py says 37: not used)
            loader=f"imbalance_cifar.py Imbalance{title.replace('-', '')}",
            groups=AUTHORS_GROUPS[name],
        ),
    )


CIFAR10 = DATASETS.register("cifar10")(
    _spec(
        "cifar10",
        "CIFAR-10",
        10,
        {10: {"train": 20431, "test": 10000}, 100: {"train": 12406, "test": 10000}},
        "cifar-10-python.tar.gz",
        "cifar-10-batches-py",
        "data_batch_1..5,test_batch,batches.meta",
    )
)
CIFAR100 = DATASETS.register("cifar100")(
    _spec(
        "cifar100",
        "CIFAR-100",
        100,
        {10: {"train": 19573, "test": 10000}, 100: {"train": 10847, "test": 10000}},
        "cifar-100-python.tar.gz",
        "cifar-100-python",
        "train,test,meta",
    )
)
