"""ImageNet-LT (Liu et al., OLTR), imported from the standard list files over the ILSVRC-2012 images.

``ImageNet_LT_train.txt`` (115,846 images, 1,280 to 5 per class), ``ImageNet_LT_val.txt`` (20,000, 20 per
class, drawn from ILSVRC train) and ``ImageNet_LT_test.txt`` (50,000 = the ILSVRC val set, 50 per class), one
``relative/path label`` per line, paths relative to the folder holding the lists (``train/n01440764/…``,
``val/n01440764/ILSVRC2012_val_….JPEG`` — the val images sorted into class folders as usual). The set is
long-tailed already: it is imported as it is (no profile) and grouped by shots (>100 / 20-100 / <20).
ImageNet's terms forbid republishing the images: build it locally for your own use.
"""

from __future__ import annotations

from ltbench.builders.readers import count_note, fixed_splits, names_from_paths, read_list_file
from ltbench.builders.spec import ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError
from ltbench.registry import DATASETS
from ltbench.test_dists import SadeLists

FOLDER = "ImageNet_LT"
HINT = (
    "get ImageNet_LT_{train,val,test}.txt (OLTR's Google Drive folder, or facebookresearch/"
    "classifier-balancing data/ImageNet_LT/) and put them in ROOT/ImageNet_LT/ beside the ILSVRC-2012 "
    "train/ and val/ (class folders) image trees"
)
EXPECTED = {"train": 115846, "val": 20000, "test": 50000}


def read_imagenet_lt(opts: ReadOptions) -> SourceData:
    if opts.download:
        raise LTBenchError("ImageNet cannot be downloaded automatically (licence)", HINT)
    base = opts.source_dir / FOLDER
    lists = {
        s: read_list_file(base / f"ImageNet_LT_{s}.txt", "imagenet-lt") for s in ("train", "val", "test")
    }
    C = 1000
    names = names_from_paths(*lists["train"], C)
    notes = {
        "lists": "OLTR ImageNet_LT_{train,val,test}.txt; test = ILSVRC-2012 val",
        "licence": "ImageNet terms of access: non-commercial research, no redistribution of images",
    }
    for s, n in EXPECTED.items():
        notes.update(count_note(s, len(lists[s][0]), n))
    return SourceData(
        class_names=names,
        pool=None,
        fixed=fixed_splits(base, lists, C, HINT),
        notes=notes,
        classes_from=str(base / "ImageNet_LT_train.txt"),
    )


BIBTEX = r"""
@inproceedings{liu2019oltr,
  title={Large-Scale Long-Tailed Recognition in an Open World},
  author={Liu, Ziwei and Miao, Zhongqi and Zhan, Xiaohang and Wang, Jiayun and Gong, Boqing and Yu, Stella X.},
  booktitle={CVPR},
  year={2019}
}
"""


IMAGENET_LT = DATASETS.register("imagenet-lt")(
    SourceSpec(
        name="imagenet-lt",
        title="ImageNet-LT",
        num_classes=1000,
        read=read_imagenet_lt,
        grouping="shots",
        scale="large",
        irs=(),
        test_lists=SadeLists(FOLDER, "ImageNet_LT"),
        expected={0: {"train": 115846, "test": 50000, "val": 20000}},
        license="other",
        citation="Liu, Miao, Zhan, Wang, Gong & Yu, Large-Scale Long-Tailed Recognition in an Open World, "
        "CVPR (2019); Russakovsky et al., ImageNet Large Scale Visual Recognition Challenge, IJCV (2015)",
        homepage="https://github.com/zhmiao/OpenLongTailRecognition-OLTR",
        layout="ROOT/ImageNet_LT/{ImageNet_LT_train.txt, ImageNet_LT_val.txt, ImageNet_LT_test.txt, "
        "train/<wnid>/*.JPEG, val/<wnid>/*.JPEG} (list paths are relative to this folder; symlinks to an "
        "ILSVRC-2012 tree are fine); no download",
        pool_definition="fixed OLTR lists: train 115,846 (1,280-5 per class), val 20,000, test 50,000",
        bibtex=BIBTEX,
        redistributable=False,
    )
)
