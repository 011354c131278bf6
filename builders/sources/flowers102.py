"""Oxford Flowers-102, from ``imagelabels.mat`` and ``setid.mat`` (torchvision's ``Flowers102`` layout).

Pool: ``trnid`` + ``valid`` (10 + 10 per class = 2,040), which gives Table 6's 753 at IR 10 (``trnid`` alone
gives 353). Test: the official ``tstid`` (6,149). Table 6 lists 1,020 test images, which no official split
of the test images gives; 1,020 is the size of ``trnid`` and of ``valid``. ltbench also writes a
``paper_test`` split = ``valid`` (1,020, 10 per class; torchvision's ``split="val"``), the most likely reading.
It overlaps the pool, so results on it are not clean held-out numbers; ``test`` (tstid) is the default.

The ``.mat`` files are read with scipy here (torchvision's class insists on the official md5s, which would
make ``--no-verify-checksums`` meaningless); torchvision is used for ``--download`` and the class names.
"""

from __future__ import annotations

import numpy as np
from ltbench.builders.authors import AuthorsRecipe
from ltbench.builders.files import check_md5, require
from ltbench.builders.readers import concat, count_note, file_pool
from ltbench.builders.spec import ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError, download_or_hint
from ltbench.registry import DATASETS

URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
MD5 = {"imagelabels.mat": "e0620be6f572b9609742df49c70aed4d", "setid.mat": "a5357ecc9cb78c4bef273ce3793fc85c"}
HINT = (
    f"pass --download, or get 102flowers.tgz, imagelabels.mat and setid.mat from {URL} into ROOT/flowers-102/"
)


def read_flowers102(opts: ReadOptions) -> SourceData:
    from scipy.io import loadmat
    from torchvision.datasets import Flowers102

    base = opts.source_dir / "flowers-102"
    if opts.download:
        download_or_hint(
            lambda: Flowers102(str(opts.source_dir), download=True),
            "Flowers-102 download",
            HINT,
            also=(RuntimeError,),  # torchvision: "File not found or corrupted."
        )
    require(base / "jpg", "Flowers-102 images folder", HINT)
    checksums: dict[str, bool] = {}
    mats = {}
    for name, md5 in MD5.items():
        path = require(base / name, f"Flowers-102 {name}", HINT)
        checksums[name] = check_md5(path, md5, opts.verify_checksums)
        try:
            mats[name] = loadmat(path, squeeze_me=True)
        except (ValueError, OSError) as e:
            raise LTBenchError(f"cannot read {path}: {e}", HINT) from None
    try:
        labels = np.atleast_1d(mats["imagelabels.mat"]["labels"]).astype(np.int64) - 1
        ids = {k: np.atleast_1d(mats["setid.mat"][k]).astype(np.int64) for k in ("trnid", "valid", "tstid")}
    except KeyError as e:
        raise LTBenchError(f"Flowers-102 .mat file lacks {e}", HINT) from None

    def split(key: str):
        image_ids = ids[key]
        return file_pool(base, [f"jpg/image_{i:05d}.jpg" for i in image_ids], labels[image_ids - 1])

    C = int(labels.max()) + 1
    classes = list(Flowers102.classes) if len(Flowers102.classes) == C else [str(c) for c in range(C)]
    valid = split("valid")
    notes = {
        "test": "Table 6 lists 1,020 test images; `test` is the official tstid (6,149) and `paper_test` is "
        "`valid` (1,020), which overlaps the pool (trnid + valid)",
        "licence": "not stated by the authors (research dataset)",
    }
    notes.update(count_note("tstid", len(ids["tstid"]), 6149))
    notes.update(count_note("pool", len(ids["trnid"]) + len(ids["valid"]), 2040))
    return SourceData(
        class_names=classes,
        pool=concat(split("trnid"), valid),
        fixed={"test": split("tstid"), "paper_test": valid},
        checksums=checksums,
        notes=notes,
        classes_from=str(base / "imagelabels.mat"),
    )


BIBTEX = r"""
@inproceedings{nilsback2008flowers,
  title={Automated Flower Classification over a Large Number of Classes},
  author={Nilsback, Maria-Elena and Zisserman, Andrew},
  booktitle={ICVGIP},
  year={2008}
}
"""


FLOWERS102 = DATASETS.register("flowers102")(
    SourceSpec(
        name="flowers102",
        title="Oxford Flowers-102",
        num_classes=102,
        read=read_flowers102,
        irs=(10, 100),
        paper_ir=10,
        n_max_rule="max",
        expected={10: {"train": 753, "test": 1020}},
        license="unknown",
        citation="Nilsback & Zisserman, Automated Flower Classification over a Large Number of Classes, "
        "ICVGIP (2008)",
        homepage="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
        layout="ROOT/flowers-102/{jpg/image_NNNNN.jpg, imagelabels.mat, setid.mat} (torchvision's layout); "
        "--download fetches them (via torchvision)",
        pool_definition="trnid + valid (20 per class, 2,040); n_max = 20; test = tstid (6,149), "
        "paper_test = valid (1,020, overlaps the pool)",
        bibtex=BIBTEX,
        redistributable=False,
        authors=AuthorsRecipe(
            loader="flowers.py Flowers",
            groups=(36, 72),
            test="paper_test",
            inexact="the loader reads the authors' own train.txt / valid.txt (pandas tables with a TARGET "
            "column), which are not published; the pool is trnid + valid in setid.mat order (the only "
            "reading giving Table 6's 753) and the test split is valid (Table 6's 1,020)",
        ),
    )
)
