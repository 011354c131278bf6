"""CUB-200-2011, read from the official files (torchvision has no reader for it).

``images.txt`` (``id path``), ``image_class_labels.txt`` (``id class``, 1..200), ``train_test_split.txt``
(``id is_train``) and ``classes.txt`` (``class name``, names like ``001.Black_footed_Albatross``) under
``ROOT/CUB_200_2011/``. Pool: the official train images (5,994; 30 per class except six classes with 29);
test: the official test images (5,794). n_max = the largest pool class (30), which gives Table 6's 2,253 at
IR 10 (LDAM's mean, 29.97, would give 2,249). Class names drop the ``NNN.`` prefix; labels are class − 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ltbench.builders.authors import AuthorsRecipe
from ltbench.builders.files import require
from ltbench.builders.readers import count_note, download, extract, file_pool, subset
from ltbench.builders.spec import ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError
from ltbench.registry import DATASETS

URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"
MD5 = "97eceeb196236b17998738112f37df78"
HINT = f"pass --download, or get CUB_200_2011.tgz from {URL} and extract it under --source-dir"


def _table(path: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    with open(require(path, "CUB-200-2011 file", HINT)) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                parts = line.split(maxsplit=1)
                if len(parts) != 2 or not parts[0].isdigit():
                    raise LTBenchError(f"{path}:{n}: expected 'id value'", "use the official file unchanged")
                out[int(parts[0])] = parts[1].strip()
    return out


def read_cub200(opts: ReadOptions) -> SourceData:
    base = opts.source_dir / "CUB_200_2011"
    checksums: dict[str, bool] = {}
    if not base.is_dir():
        archive = opts.source_dir / "CUB_200_2011.tgz"
        if not archive.exists() and opts.download:
            download(URL, opts.source_dir, archive.name, MD5, opts.verify_checksums)
        if not archive.exists():
            raise LTBenchError(f"CUB-200-2011 not found: expected {base}/ (or {archive})", HINT)
        checksums[archive.name] = extract(archive, MD5, opts.source_dir, opts.verify_checksums)
    images = _table(base / "images.txt")
    labels = _table(base / "image_class_labels.txt")
    is_train = _table(base / "train_test_split.txt")
    classes = _table(base / "classes.txt")
    names = [classes[k].split(".", 1)[-1] for k in sorted(classes)]
    ids = sorted(images)
    missing = [i for i in ids if i not in labels or i not in is_train]
    if missing:
        raise LTBenchError(
            f"CUB-200-2011 image id {missing[0]} has no label or split entry",
            "use the official files unchanged",
        )
    rel = [f"images/{images[i]}" for i in ids]
    y = np.asarray([int(labels[i]) - 1 for i in ids])
    if y.min() < 0 or y.max() >= len(names):
        raise LTBenchError("CUB-200-2011 class ids out of range of classes.txt", "use the official files")
    pool = file_pool(base, rel, y)
    train = np.asarray([is_train[i] == "1" for i in ids])
    notes = {"licence": "non-commercial research and educational use (images from Flickr)"}
    notes.update(count_note("train", int(train.sum()), 5994))
    notes.update(count_note("test", int((~train).sum()), 5794))
    return SourceData(
        class_names=names,
        pool=subset(pool, np.where(train)[0]),
        fixed={"test": subset(pool, np.where(~train)[0])},
        checksums=checksums,
        notes=notes,
        classes_from=str(base / "classes.txt"),
    )


BIBTEX = r"""
@techreport{wah2011cub,
  title={The Caltech-UCSD Birds-200-2011 Dataset},
  author={Wah, Catherine and Branson, Steve and Welinder, Peter and Perona, Pietro and Belongie, Serge},
  institution={California Institute of Technology},
  number={CNS-TR-2011-001},
  year={2011}
}
"""


CUB200 = DATASETS.register("cub200")(
    SourceSpec(
        name="cub200",
        title="CUB-200-2011",
        num_classes=200,
        read=read_cub200,
        irs=(10, 100),
        paper_ir=10,
        n_max_rule="max",
        expected={10: {"train": 2253, "test": 5794}},
        license="other",
        citation="Wah, Branson, Welinder, Perona & Belongie, The Caltech-UCSD Birds-200-2011 Dataset, "
        "Caltech CNS-TR-2011-001 (2011)",
        homepage="https://www.vision.caltech.edu/datasets/cub_200_2011/",
        layout="ROOT/CUB_200_2011/{images.txt, image_class_labels.txt, train_test_split.txt, classes.txt, "
        "images/NNN.Name/*.jpg} (the official archive's top folder), or ROOT/CUB_200_2011.tgz; "
        "--download fetches it from data.caltech.edu",
        pool_definition="official train split (train_test_split.txt = 1): 5,994 images, 29-30 per class; "
        "n_max = 30 (the largest class)",
        bibtex=BIBTEX,
        redistributable=False,
        authors=AuthorsRecipe(
            loader="imabalance_cub.py Cub2011",
            groups=(72, 142),
            n_max=30,
            with_replacement=True,
            first_class_from=30,
            assumes="images.txt lists the images in id order, as the official file does (the loader keeps "
            "the order of its pandas merges)",
        ),
    )
)
