"""Fruits-360, the 24-class original-size release (test 3,110), read as an image folder.

``Training/<class>/*.jpg`` is the pool and ``Test/<class>/*.jpg`` the test split; ``Validation/`` is not used.
Classes are the sorted ``Training`` folder names. n_max = the largest Training class, expected to be 326
(the only n_max giving Table 6's 1,770 at IR 100; the release's per-class counts could not be checked when
this reader was written, so the manifest records the n_max the data gives). Profile counts go to classes in
pool-count order (descending, ties by label) so the largest class receives n_max whatever its name.
Later original-size releases (69+ classes) are read the same way but are not the paper's set.
"""

from __future__ import annotations

from pathlib import Path

from ltbench.builders.authors import AuthorsRecipe
from ltbench.builders.readers import class_folders, count_note, file_pool, image_folder
from ltbench.builders.spec import ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError
from ltbench.registry import DATASETS

HINT = (
    "get the 24-class original-size release of Fruits-360 (https://github.com/fruits-360, or Kaggle "
    "moltean/fruits, folder fruits-360-original-size) and put it at ROOT/fruits-360-original-size/"
)


def find_root(source_dir: Path) -> Path:
    """The folder holding ``Training/`` and ``Test/``: ``ROOT/fruits-360-original-size`` (possibly nested
    once, as in the Kaggle zip) or another ``ROOT/fruits-360*`` folder."""
    candidates = [source_dir / "fruits-360-original-size"]
    candidates += sorted(p for p in source_dir.glob("fruits-360*") if p not in candidates)
    for c in candidates:
        for d in (c, c / c.name, c / "fruits-360-original-size"):
            if (d / "Training").is_dir() and (d / "Test").is_dir():
                return d
    raise LTBenchError(
        f"Fruits-360 not found: expected {source_dir / 'fruits-360-original-size'}/{{Training,Test}}/", HINT
    )


def read_fruits360(opts: ReadOptions) -> SourceData:
    if opts.download:
        raise LTBenchError("the 24-class Fruits-360 release has no stable download URL", HINT)
    root = find_root(opts.source_dir)
    classes = class_folders(root / "Training")
    test_classes = class_folders(root / "Test")
    if test_classes != classes:
        raise LTBenchError(
            f"Fruits-360 Training and Test hold different class folders under {root}",
            "use one release unchanged",
        )
    train_paths, train_y = image_folder(root, "Training", classes)
    test_paths, test_y = image_folder(root, "Test", classes)
    notes = {
        "release": f"{len(classes)} classes read from {root.name}/ (the paper's set is the 24-class release)",
        "licence": "CC BY-SA 4.0",
    }
    notes.update(count_note("class", len(classes), 24))
    notes.update(count_note("test", len(test_paths), 3110))
    notes.update(count_note("Training", len(train_paths), 6231))
    return SourceData(
        class_names=classes,
        pool=file_pool(root, train_paths, train_y),
        fixed={"test": file_pool(root, test_paths, test_y)},
        notes=notes,
        classes_from=str(root / "Training"),
    )


BIBTEX = r"""
@article{muresan2018fruits,
  title={Fruit recognition from images using deep learning},
  author={Mure{\c{s}}an, Horea and Oltean, Mihai},
  journal={Acta Universitatis Sapientiae, Informatica},
  volume={10},
  number={1},
  pages={26--42},
  year={2018}
}
"""


FRUITS360 = DATASETS.register("fruits360")(
    SourceSpec(
        name="fruits360",
        title="Fruits-360 (original size, 24 classes)",
        num_classes=24,
        read=read_fruits360,
        irs=(10, 100),
        paper_ir=100,
        n_max_rule="max",
        class_order="count",
        expected={100: {"train": 1770, "test": 3110}},
        license="cc-by-sa-4.0",
        citation="Muresan & Oltean, Fruit recognition from images using deep learning, Acta Universitatis "
        "Sapientiae, Informatica 10(1) (2018)",
        homepage="https://github.com/fruits-360/fruits-360-original-size",
        layout="ROOT/fruits-360-original-size/{Training,Test}/<class>/*.jpg (the 24-class release; a nested "
        "fruits-360-original-size/fruits-360-original-size/ as in the Kaggle zip is found too); no download",
        pool_definition="the Training folder (6,231 images); n_max = the largest class (326 expected), counts "
        "assigned in pool-count order",
        bibtex=BIBTEX,
        redistributable=True,
        authors=AuthorsRecipe(
            loader="fruits.py Fruits",
            groups=(7, 14),
            n_max="second_max",
            rerank=True,
            inexact="the loader lists class folders and images with os.listdir (filesystem order) and never "
            "seeds numpy; ltbench lists them sorted and seeds 0, the other loaders' seed",
        ),
    )
)
