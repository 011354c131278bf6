"""Places-LT (Liu et al., OLTR), imported from the standard list files over the Places365 images.

``Places_LT_train.txt`` (62,500 images, 4,980 to 5 per class), ``Places_LT_val.txt`` (7,300, 20 per class,
from Places365 train) and ``Places_LT_test.txt`` (36,500, 100 per class, the Places365 val set). CANDLE's
Table 6 lists 7,300 test images: its test set is ``Places_LT_val``. ltbench's ``test`` split is therefore
``Places_LT_val`` (the paper's protocol) and the usual OLTR test set is written too, as ``oltr_test``.

List paths (``train/airfield/00004851.jpg``, ``val/airfield/Places365_val_00003597.jpg``; two-level
categories joined by ``-``, e.g. ``train/apartment_building-outdoor/…``) follow Places365-Standard's "easy
format" archive (``places365_standard/{train,val}/<category>/``) and are resolved under ``ROOT/Places_LT/``.
Where that tree is absent but Places365's ``data_256/`` and ``val_256/`` are there, paths are mapped onto
them (``train/<cat>/<f>`` → ``data_256/<c>/<cat with / for ->/<f>``, ``<c>`` its first letter;
``val/<cat>/<f>`` → ``val_256/<f>``). Class names use ``/`` (``apartment_building/outdoor``) as Places365.
"""

from __future__ import annotations

from pathlib import Path

from ltbench.builders.readers import count_note, fixed_splits, names_from_paths, read_list_file
from ltbench.builders.spec import ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError
from ltbench.registry import DATASETS
from ltbench.test_dists import SadeLists

FOLDER = "Places_LT"
HINT = (
    "get Places_LT_{train,val,test}.txt (OLTR's Google Drive folder, or facebookresearch/classifier-balancing "
    "data/Places_LT/) into ROOT/Places_LT/, beside train/ and val/ image trees or Places365's data_256/ and "
    "val_256/ (places2.csail.mit.edu)"
)
LISTS = {"train": "Places_LT_train.txt", "test": "Places_LT_val.txt", "oltr_test": "Places_LT_test.txt"}
EXPECTED = {"train": 62500, "test": 7300, "oltr_test": 36500}


def places365_path(rel: str) -> str:
    """A Places-LT list path on Places365's own ``data_256`` / ``val_256`` layout."""
    parts = rel.split("/")
    if parts[0] == "train" and len(parts) == 3:
        category = parts[1].replace("-", "/")
        return f"data_256/{category[0]}/{category}/{parts[2]}"
    if parts[0] == "val":
        return f"val_256/{parts[-1]}"
    return rel


def _strip(path: str) -> int:
    """Leading path components before the category: 1 (``train/airfield/…``) or 2 for Places365's own
    ``data_256/a/airfield/…`` (as in SADE's ``Places_LT_v2`` lists)."""
    parts = path.split("/")
    return 2 if parts[0] == "data_256" and len(parts) > 2 and len(parts[1]) == 1 else 1


def read_places_lt(opts: ReadOptions) -> SourceData:
    if opts.download:
        raise LTBenchError("Places-LT cannot be downloaded automatically", HINT)
    base = opts.source_dir / FOLDER
    lists = {s: read_list_file(base / name, "places-lt") for s, name in LISTS.items()}
    first = lists["train"][0][0] if lists["train"][0] else ""
    mapped = bool(first) and not (base / first).exists() and (base / "data_256").is_dir()
    names = [n.replace("-", "/") for n in names_from_paths(*lists["train"], 365, strip=_strip(first))]
    if mapped:
        lists = {s: ([places365_path(p) for p in paths], y) for s, (paths, y) in lists.items()}
    notes = {
        "test": "test = Places_LT_val (7,300; CANDLE Table 6's test set); oltr_test = Places_LT_test (36,500)",
        "layout": "Places365 data_256/val_256 (mapped)" if mapped else "list paths under Places_LT/",
        "licence": "Places365 terms: non-commercial research and education, no redistribution of images",
    }
    for s, n in EXPECTED.items():
        notes.update(count_note(s, len(lists[s][0]), n))
    return SourceData(
        class_names=names,
        pool=None,
        fixed=fixed_splits(Path(base), lists, 365, HINT),
        notes=notes,
        classes_from=str(base / LISTS["train"]),
    )


BIBTEX = r"""
@inproceedings{liu2019oltr,
  title={Large-Scale Long-Tailed Recognition in an Open World},
  author={Liu, Ziwei and Miao, Zhongqi and Zhan, Xiaohang and Wang, Jiayun and Gong, Boqing and Yu, Stella X.},
  booktitle={CVPR},
  year={2019}
}
@article{zhou2017places,
  title={Places: A 10 Million Image Database for Scene Recognition},
  author={Zhou, Bolei and Lapedriza, Agata and Khosla, Aditya and Oliva, Aude and Torralba, Antonio},
  journal={TPAMI},
  year={2017}
}
"""


PLACES_LT = DATASETS.register("places-lt")(
    SourceSpec(
        name="places-lt",
        title="Places-LT",
        num_classes=365,
        read=read_places_lt,
        grouping="shots",
        scale="large",
        irs=(),
        test_lists=SadeLists(FOLDER, "Places_LT", "oltr_test", places365_path),
        expected={0: {"train": 62500, "test": 7300}},
        license="other",
        citation="Liu, Miao, Zhan, Wang, Gong & Yu, Large-Scale Long-Tailed Recognition in an Open World, "
        "CVPR (2019); Zhou, Lapedriza, Khosla, Oliva & Torralba, Places: A 10 Million Image Database for "
        "Scene Recognition, TPAMI (2017)",
        homepage="https://github.com/zhmiao/OpenLongTailRecognition-OLTR",
        layout="ROOT/Places_LT/{Places_LT_train.txt, Places_LT_val.txt, Places_LT_test.txt} beside the images "
        "at the list paths (train/<category>/*.jpg, val/<category>/*.jpg: Places365-Standard's easy-format "
        "places365_standard/ tree) or Places365's data_256/ and val_256/ in the same folder; no download",
        pool_definition="fixed OLTR lists: train 62,500 (4,980-5 per class); test = Places_LT_val (7,300, "
        "the paper's); oltr_test = Places_LT_test (36,500)",
        bibtex=BIBTEX,
        redistributable=False,
    )
)
