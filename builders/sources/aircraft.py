"""FGVC-Aircraft 2013b at the variant level, read with torchvision's ``FGVCAircraft``.

Pool: ``images_variant_trainval.txt`` (6,667: 66 or 67 per class); test: ``images_variant_test.txt`` (3,333).
n_max = LDAM's ``len(pool) / C`` = 66.67, which reproduces Table 6's 2,564 at IR 10 (max 67 → 2,582).
Images keep their 20-pixel copyright banner (stored as the source's bytes, uncropped).
"""

from __future__ import annotations

from pathlib import Path

from ltbench.builders.authors import AuthorsRecipe
from ltbench.builders.readers import count_note, file_pool
from ltbench.builders.spec import ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError
from ltbench.registry import DATASETS

URL = "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz"


def read_aircraft(opts: ReadOptions) -> SourceData:
    from torchvision.datasets import FGVCAircraft

    base = opts.source_dir / "fgvc-aircraft-2013b"
    pools = {}
    classes: list[str] = []
    for split in ("trainval", "test"):
        try:
            ds = FGVCAircraft(
                str(opts.source_dir), split=split, annotation_level="variant", download=opts.download
            )
        except (RuntimeError, FileNotFoundError, KeyError, ValueError) as e:
            raise LTBenchError(
                f"FGVC-Aircraft not found or incomplete under {base} ({e!r})",
                f"pass --download, or extract {URL} into ROOT/",
            ) from None
        classes = list(ds.classes)
        rel = [Path(p).relative_to(base).as_posix() for p in ds._image_files]
        pools[split] = file_pool(base, rel, ds._labels)
    notes = {
        "n_max": "LDAM's len(pool)/C = 6,667/100 = 66.67 (the only rule giving Table 6's 2,564)",
        "banner": "the 20-px copyright banner at the bottom of each image is kept (bytes stored as released)",
        "licence": "non-commercial research use only",
    }
    notes.update(count_note("trainval", len(pools["trainval"]), 6667))
    notes.update(count_note("test", len(pools["test"]), 3333))
    return SourceData(
        class_names=classes,
        pool=pools["trainval"],
        fixed={"test": pools["test"]},
        notes=notes,
        classes_from=str(base / "data" / "variants.txt"),
    )


BIBTEX = r"""
@article{maji2013aircraft,
  title={Fine-Grained Visual Classification of Aircraft},
  author={Maji, Subhransu and Rahtu, Esa and Kannala, Juho and Blaschko, Matthew and Vedaldi, Andrea},
  journal={arXiv:1306.5151},
  year={2013}
}
"""


AIRCRAFT = DATASETS.register("aircraft")(
    SourceSpec(
        name="aircraft",
        title="FGVC-Aircraft 2013b (variants)",
        num_classes=100,
        read=read_aircraft,
        irs=(10, 100),
        paper_ir=10,
        n_max_rule="mean",
        expected={10: {"train": 2564, "test": 3333}},
        license="other",
        citation="Maji, Rahtu, Kannala, Blaschko & Vedaldi, Fine-Grained Visual Classification of Aircraft, "
        "arXiv:1306.5151 (2013)",
        homepage="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
        layout="ROOT/fgvc-aircraft-2013b/data/{images/*.jpg, variants.txt, images_variant_{trainval,test}.txt} "
        "(torchvision's layout: the official archive extracted into ROOT/); --download fetches it",
        pool_definition="variant-level trainval (6,667; 66-67 per class); n_max = mean = 66.67",
        bibtex=BIBTEX,
        redistributable=False,
        authors=AuthorsRecipe(loader="aircraft.py Aircraft", groups=(36, 71), name_order=True),
    )
)
