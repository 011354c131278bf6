"""Stanford Dogs, read from the official ``train_list.mat`` / ``test_list.mat`` (torchvision has no reader).

Each list holds ``file_list`` (``n02085620-Chihuahua/n02085620_5927.jpg``, relative to ``Images/``) and
``labels`` (1..120). Pool: ``train_list.mat`` (100 per class, 12,000); test: ``test_list.mat`` (8,580).
Class names are the image folder names (``n02085620-Chihuahua``), labels = ``labels − 1``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ltbench.builders.authors import AuthorsRecipe
from ltbench.builders.files import require
from ltbench.builders.readers import count_note, download, extract, file_pool
from ltbench.builders.spec import ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError
from ltbench.registry import DATASETS

URL = "http://vision.stanford.edu/aditya86/ImageNetDogs/"
ARCHIVES = {"images.tar": "1bb1f2a596ae7057f99d7d75860002ef", "lists.tar": "edbb9f16854ec66506b5f09b583e0656"}
HINT = f"pass --download, or get images.tar and lists.tar from {URL} into ROOT/stanford_dogs/"


def _read_list(path: Path) -> tuple[list[str], np.ndarray]:
    from scipy.io import loadmat

    try:
        mat = loadmat(require(path, "Stanford Dogs list", HINT), squeeze_me=True)
        files = [str(f) for f in np.atleast_1d(mat["file_list"])]
        labels = np.atleast_1d(mat["labels"]).astype(np.int64) - 1
    except (ValueError, KeyError, OSError) as e:
        raise LTBenchError(f"cannot read {path}: {e}", "use the official lists.tar unchanged") from None
    if len(files) != len(labels):
        raise LTBenchError(f"{path}: file_list and labels differ in length", "use the official lists.tar")
    return files, labels


def read_dogs(opts: ReadOptions) -> SourceData:
    base = opts.source_dir / "stanford_dogs"
    checksums: dict[str, bool] = {}
    for archive, what in (("images.tar", base / "Images"), ("lists.tar", base / "train_list.mat")):
        if what.exists():
            continue
        if not (base / archive).exists() and opts.download:
            download(URL + archive, base, archive, ARCHIVES[archive], opts.verify_checksums)
        if not (base / archive).exists():
            raise LTBenchError(f"Stanford Dogs not found: expected {what} (or {base / archive})", HINT)
        checksums[archive] = extract(base / archive, ARCHIVES[archive], base, opts.verify_checksums)
    train_files, train_y = _read_list(base / "train_list.mat")
    test_files, test_y = _read_list(base / "test_list.mat")
    C = int(max(train_y.max(), test_y.max())) + 1
    names = [""] * C
    for f, y in zip(train_files + test_files, np.concatenate([train_y, test_y]), strict=True):
        names[int(y)] = names[int(y)] or f.split("/")[0]
    notes = {"licence": "non-commercial research use (images from ImageNet; ImageNet terms apply)"}
    notes.update(count_note("train", len(train_files), 12000))
    notes.update(count_note("test", len(test_files), 8580))
    return SourceData(
        class_names=names,
        pool=file_pool(base, [f"Images/{f}" for f in train_files], train_y),
        fixed={"test": file_pool(base, [f"Images/{f}" for f in test_files], test_y)},
        checksums=checksums,
        notes=notes,
        classes_from=str(base / "train_list.mat"),
    )


BIBTEX = r"""
@inproceedings{khosla2011dogs,
  title={Novel Dataset for Fine-Grained Image Categorization},
  author={Khosla, Aditya and Jayadevaprakash, Nityananda and Yao, Bangpeng and Fei-Fei, Li},
  booktitle={CVPR Workshop on Fine-Grained Visual Categorization},
  year={2011}
}
"""


DOGS = DATASETS.register("dogs")(
    SourceSpec(
        name="dogs",
        title="Stanford Dogs",
        num_classes=120,
        read=read_dogs,
        irs=(10, 100),
        paper_ir=10,
        n_max_rule="max",
        expected={10: {"train": 4646, "test": 8580}},
        license="other",
        citation="Khosla, Jayadevaprakash, Yao & Fei-Fei, Novel Dataset for Fine-Grained Image "
        "Categorization, CVPR Workshop on Fine-Grained Visual Categorization (2011)",
        homepage="http://vision.stanford.edu/aditya86/ImageNetDogs/",
        layout="ROOT/stanford_dogs/{Images/<wnid-name>/*.jpg, train_list.mat, test_list.mat} (images.tar and "
        "lists.tar extracted there, or the two .tar files themselves); --download fetches both",
        pool_definition="official train_list.mat: 100 images per class (12,000); n_max = 100",
        bibtex=BIBTEX,
        redistributable=False,
        authors=AuthorsRecipe(loader="dogs.py Dogs", groups=(43, 85), rerank=True),
    )
)
