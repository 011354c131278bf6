"""DTD (Describable Textures), partition 1, read with torchvision's ``DTD``.

Pool: ``labels/train1.txt`` + ``labels/val1.txt`` (40 + 40 per class = 3,760); test: ``labels/test1.txt``
(1,880). Train-only (40 per class) would give 718 at IR 10, not Table 6's 1,457. Classes: the 47 sorted names.
"""

from __future__ import annotations

from pathlib import Path

from ltbench.builders.authors import AuthorsRecipe
from ltbench.builders.readers import concat, count_note, file_pool
from ltbench.builders.spec import ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError
from ltbench.registry import DATASETS

PARTITION = 1
URL = "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz"


def read_dtd(opts: ReadOptions) -> SourceData:
    from torchvision.datasets import DTD

    base = opts.source_dir / "dtd" / "dtd"
    pools = {}
    classes: list[str] = []
    for split in ("train", "val", "test"):
        try:
            ds = DTD(str(opts.source_dir), split=split, partition=PARTITION, download=opts.download)
        except (RuntimeError, FileNotFoundError) as e:
            raise LTBenchError(
                f"DTD not found or incomplete under {base} ({e})",
                f"pass --download, or extract {URL} into ROOT/dtd/",
            ) from None
        if classes and ds.classes != classes:
            raise LTBenchError(
                f"DTD {split}{PARTITION}.txt has other classes", "use the official label files"
            )
        classes = ds.classes
        rel = [Path(p).relative_to(base).as_posix() for p in ds._image_files]
        pools[split] = file_pool(base, rel, ds._labels)
    notes = {
        "pool": f"partition {PARTITION} train + val",
        "licence": "research use (images from Flickr)",
    }
    notes.update(count_note("pool", len(pools["train"]) + len(pools["val"]), 3760))
    notes.update(count_note("test", len(pools["test"]), 1880))
    return SourceData(
        class_names=classes,
        pool=concat(pools["train"], pools["val"]),
        fixed={"test": pools["test"]},
        notes=notes,
        classes_from=str(base / "labels" / f"train{PARTITION}.txt"),
    )


BIBTEX = r"""
@inproceedings{cimpoi2014dtd,
  title={Describing Textures in the Wild},
  author={Cimpoi, Mircea and Maji, Subhransu and Kokkinos, Iasonas and Mohamed, Sammy and Vedaldi, Andrea},
  booktitle={CVPR},
  year={2014}
}
"""


DTD_SPEC = DATASETS.register("dtd")(
    SourceSpec(
        name="dtd",
        title="DTD (Describable Textures Dataset)",
        num_classes=47,
        read=read_dtd,
        irs=(10, 100),
        paper_ir=10,
        n_max_rule="max",
        expected={10: {"train": 1457, "test": 1880}},
        license="other",
        citation="Cimpoi, Maji, Kokkinos, Mohamed & Vedaldi, Describing Textures in the Wild, CVPR (2014)",
        homepage="https://www.robots.ox.ac.uk/~vgg/data/dtd/",
        layout="ROOT/dtd/dtd/{images/<class>/*.jpg, labels/{train,val,test}1.txt} (torchvision's layout: "
        "dtd-r1.0.1.tar.gz extracted into ROOT/dtd/); --download fetches it (via torchvision)",
        pool_definition="partition 1 train + val (80 per class, 3,760); n_max = 80",
        bibtex=BIBTEX,
        redistributable=False,
        authors=AuthorsRecipe(
            loader="dtd.py DTD",
            groups=(14, 33),
            assumes="the loader's labels/train1.txt and val1.txt are the official files with a header line "
            "PATH added (it reads them with pandas.read_csv(...)['PATH'])",
        ),
    )
)
