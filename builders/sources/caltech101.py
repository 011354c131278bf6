"""Caltech-101 with the TFDS-style split: 102 folders (the 101 object classes and ``BACKGROUND_Google``).

Split procedure (fixed, independent of the build seed; part of ltbench's contract): classes are the folder
names of ``101_ObjectCategories`` sorted as strings (so ``BACKGROUND_Google``, ``Faces``, … come first); in
each folder the ``.jpg`` names are sorted; one ``numpy.random.RandomState(1234)`` draws, folder by folder in
class order, ``rng.choice(n_files, 30, replace=False)`` — those 30 images form the pool, the rest the test
split (6,084 images). TFDS ``caltech101`` uses the same rule (30 per class, seed 1234) but iterates
``os.listdir`` order, so its exact images depend on the filesystem; sorting makes ltbench's split reproducible.
The LT train split is then drawn from the 30-per-class pool (n_max = 30). torchvision's ``Caltech101`` drops
``BACKGROUND_Google``; it is used here only for ``--download``.
"""

from __future__ import annotations

import numpy as np
from ltbench.builders.authors import AuthorsRecipe
from ltbench.builders.readers import count_note, extract, file_pool, image_folder, subset
from ltbench.builders.spec import ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError, download_or_hint
from ltbench.registry import DATASETS

SPLIT_SEED = 1234
TRAIN_PER_CLASS = 30
FOLDER = "101_ObjectCategories"
ARCHIVE_MD5 = "b224c7392d521a49829488ab0f1120d9"  # 101_ObjectCategories.tar.gz


def read_caltech101(opts: ReadOptions) -> SourceData:
    base = opts.source_dir / "caltech101"
    checksums: dict[str, bool] = {}
    if not (base / FOLDER).is_dir():
        archive = base / f"{FOLDER}.tar.gz"
        if archive.exists():
            checksums[archive.name] = extract(archive, ARCHIVE_MD5, base, opts.verify_checksums)
        elif opts.download:
            from torchvision.datasets import Caltech101

            download_or_hint(
                lambda: Caltech101(str(opts.source_dir), download=True),
                "Caltech-101 download",
                f"get caltech-101.zip from https://data.caltech.edu/records/mzrjq-6wc02 and extract "
                f"{FOLDER}.tar.gz into {base}",
                also=(RuntimeError,),  # torchvision: corrupt file / Google Drive quota
            )
        else:
            raise LTBenchError(
                f"Caltech-101 not found: expected {base / FOLDER}/ (or {archive})",
                "pass --download, or get caltech-101.zip from https://data.caltech.edu/records/mzrjq-6wc02",
            )
    root = base / FOLDER
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    paths, labels = image_folder(base, FOLDER, classes)
    pool = file_pool(base, paths, labels)
    labels = np.asarray(labels)
    rng = np.random.RandomState(SPLIT_SEED)
    train_idx, test_idx = [], []
    for c, name in enumerate(classes):
        idx = np.where(labels == c)[0]  # sorted file names within the class
        if len(idx) < TRAIN_PER_CLASS:
            raise LTBenchError(
                f"Caltech-101 folder {name} has {len(idx)} images, fewer than {TRAIN_PER_CLASS}",
                "the source copy is incomplete: extract the official archive again",
            )
        pick = np.zeros(len(idx), dtype=bool)
        pick[rng.choice(len(idx), TRAIN_PER_CLASS, replace=False)] = True
        train_idx.append(idx[pick])
        test_idx.append(idx[~pick])
    notes = {
        "split": f"TFDS-style: {TRAIN_PER_CLASS} per folder drawn with RandomState({SPLIT_SEED}).choice from "
        "sorted file names, folders in sorted order; the rest is the test split",
        "licence": "CC BY 4.0 (CaltechDATA record mzrjq-6wc02)",
    }
    notes.update(count_note("folder", len(classes), 102))
    notes.update(count_note("image", len(labels), 9144))
    return SourceData(
        class_names=classes,
        pool=subset(pool, np.concatenate(train_idx)),
        fixed={"test": subset(pool, np.concatenate(test_idx))},
        checksums=checksums,
        notes=notes,
        classes_from=str(root),
    )


BIBTEX = r"""
@inproceedings{feifei2004caltech101,
  title={Learning Generative Visual Models from Few Training Examples: An Incremental Bayesian Approach Tested on 101 Object Categories},
  author={Fei-Fei, Li and Fergus, Rob and Perona, Pietro},
  booktitle={CVPR Workshop on Generative-Model Based Vision},
  year={2004}
}
"""


CALTECH101 = DATASETS.register("caltech101")(
    SourceSpec(
        name="caltech101",
        title="Caltech-101 (102 classes incl. BACKGROUND_Google)",
        num_classes=102,
        read=read_caltech101,
        irs=(10, 100),
        paper_ir=10,
        n_max_rule="max",
        expected={10: {"train": 1151, "test": 6084}},
        license="cc-by-4.0",
        citation="Fei-Fei, Fergus & Perona, Learning generative visual models from few training examples, "
        "CVPR Workshop on Generative-Model Based Vision (2004)",
        homepage="https://data.caltech.edu/records/mzrjq-6wc02",
        layout="ROOT/caltech101/101_ObjectCategories/<class>/image_NNNN.jpg (102 folders incl. "
        "BACKGROUND_Google), or ROOT/caltech101/101_ObjectCategories.tar.gz; --download fetches "
        "caltech-101.zip from data.caltech.edu (via torchvision)",
        pool_definition="30 images per folder (102 folders), drawn with a fixed seed (1234) from sorted file "
        "names, TFDS-style; the remaining 6,084 images are the test split",
        bibtex=BIBTEX,
        redistributable=True,
        authors=AuthorsRecipe(
            loader="caltech101.py ImbalanceCaltech101",
            groups=(36, 72),
            seed=42,
            presort=True,
            inexact="the loader reads the authors' own caltech101_train.txt / caltech101_test.txt (their "
            "30-per-class split and its order), which are not published; ltbench's TFDS-style pool (30 per "
            "folder, RandomState(1234)) is used in its place",
        ),
    )
)
