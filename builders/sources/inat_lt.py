"""iNaturalist 2018 (iNat-LT), imported from the official ``train2018.json`` / ``val2018.json``.

COCO-style annotations: ``images[{id, file_name}]``, ``annotations[{image_id, category_id}]``,
``categories[{id, name}]``; ``file_name`` is relative to the folder holding the json files
(``train_val2018/Plantae/7477/<hash>.jpg``). Labels are the category ids (0..8,141). Train: 437,513 images
(1,000 to 2 per class); test: ``val2018`` (24,426, 3 per class; the official test set is unlabelled).
classifier-balancing's ``iNaturalist18_{train,val}.txt`` lists (same images, ``path label`` per line) are
read instead when the json files are absent. Only names and labels are kept in memory; images are streamed.
The iNaturalist terms forbid republishing the images: build it locally for your own use.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ltbench.builders.readers import count_note, fixed_splits, read_list_file
from ltbench.builders.spec import ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError
from ltbench.registry import DATASETS
from ltbench.test_dists import SadeLists

FOLDER = "iNat2018"
NUM_CLASSES = 8142
HINT = (
    "get train_val2018.tar.gz, train2018.json.tar.gz and val2018.json.tar.gz (github.com/visipedia/inat_comp, "
    "2018) and extract them into ROOT/iNat2018/"
)
EXPECTED = {"train": 437513, "test": 24426}
LISTS = {"train": "iNaturalist18_train.txt", "test": "iNaturalist18_val.txt"}  # classifier-balancing's


def read_coco_json(path: Path) -> tuple[list[str], np.ndarray, dict[int, str]]:
    """(file names, category ids, category names) of an iNat-2018 annotation file, in ``images`` order."""
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        label_of = {a["image_id"]: a["category_id"] for a in d["annotations"]}
        paths = [im["file_name"] for im in d["images"]]
        labels = np.fromiter((label_of[im["id"]] for im in d["images"]), dtype=np.int64, count=len(paths))
        cats = {int(c["id"]): str(c.get("name", c["id"])) for c in d.get("categories", [])}
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise LTBenchError(
            f"cannot read {path}: {type(e).__name__} {e}", "use the official json unchanged"
        ) from None
    return paths, labels, cats


def read_inat_lt(opts: ReadOptions) -> SourceData:
    if opts.download:
        raise LTBenchError("iNat-2018 (120 GB) is not downloaded automatically", HINT)
    base = opts.source_dir / FOLDER
    cats: dict[int, str] = {}
    lists = {}
    for split, stem in (("train", "train2018"), ("test", "val2018")):
        if (base / f"{stem}.json").exists():
            paths, labels, c = read_coco_json(base / f"{stem}.json")
            cats.update(c)
        elif (base / LISTS[split]).exists():
            paths, labels = read_list_file(base / LISTS[split], "inat-lt")
        else:
            raise LTBenchError(
                f"iNat-2018 annotations not found: expected {base / (stem + '.json')} or "
                f"classifier-balancing's {base / LISTS[split]}",
                HINT,
            )
        lists[split] = (paths, labels)
    names = [cats.get(c, str(c)) for c in range(NUM_CLASSES)]
    notes = {
        "test": "test = val2018 (24,426; the official test set has no public labels)",
        "licence": "iNaturalist 2018 competition terms: research use, images may not be redistributed",
    }
    for s, n in EXPECTED.items():
        notes.update(count_note(s, len(lists[s][0]), n))
    return SourceData(
        class_names=names,
        pool=None,
        fixed=fixed_splits(base, lists, NUM_CLASSES, HINT),
        notes=notes,
        classes_from=str(base / "train2018.json"),
    )


BIBTEX = r"""
@inproceedings{vanhorn2018inat,
  title={The iNaturalist Species Classification and Detection Dataset},
  author={Van Horn, Grant and Mac Aodha, Oisin and Song, Yang and Cui, Yin and Sun, Chen and Shepard, Alex and Adam, Hartwig and Perona, Pietro and Belongie, Serge},
  booktitle={CVPR},
  year={2018}
}
"""


INAT_LT = DATASETS.register("inat-lt")(
    SourceSpec(
        name="inat-lt",
        title="iNaturalist 2018 (iNat-LT)",
        num_classes=NUM_CLASSES,
        read=read_inat_lt,
        grouping="shots",
        scale="large",
        irs=(),
        test_lists=SadeLists(FOLDER, "iNaturalist18"),
        expected={0: {"train": 437513, "test": 24426}},
        license="other",
        citation="Van Horn et al., The iNaturalist Species Classification and Detection Dataset, CVPR (2018)",
        homepage="https://github.com/visipedia/inat_comp/tree/master/2018",
        layout="ROOT/iNat2018/{train2018.json, val2018.json, train_val2018/<kingdom>/<id>/*.jpg} (or "
        "classifier-balancing's iNaturalist18_{train,val}.txt instead of the json files); no download",
        pool_definition="fixed: train2018 (437,513; 1,000-2 per class); test = val2018 (24,426)",
        bibtex=BIBTEX,
        redistributable=False,
    )
)
