"""Stanford Cars, read with torchvision's ``StanfordCars`` (devkit ``.mat`` annotations).

Pool: the official train split (8,144; 24-68 per class); test: the official test split (8,041).
n_max = 49, the second-largest class: the profile ignores the single 68-image outlier (GMC Savana Van 2012).
It is the only count-based n_max that reproduces Table 6's 3,666 (max 68 → 5,123, mean 41.55 → 3,092).
Because several low-label classes hold fewer images than the profile asks of their position (class 0 has
45 < 49), the profile's counts go to classes in pool-count order (descending, ties by label), not label
order; with label order LDAM's slicing would silently give 3,597.
"""

from __future__ import annotations

from pathlib import Path

from ltbench.builders.authors import AuthorsRecipe
from ltbench.builders.readers import count_note, file_pool
from ltbench.builders.spec import ReadOptions, SourceData, SourceSpec

from ltbench.errors import LTBenchError
from ltbench.registry import DATASETS

HINT = (
    "the official URL is dead: get the Kaggle copy (see https://github.com/pytorch/vision/issues/7545) and "
    "put devkit/, cars_train/, cars_test/ and cars_test_annos_withlabels.mat in ROOT/stanford_cars/"
)


def _split(opts: ReadOptions, split: str):
    from torchvision.datasets import StanfordCars

    try:
        return StanfordCars(str(opts.source_dir), split=split)
    except RuntimeError:
        raise LTBenchError(
            f"Stanford Cars {split} split not found under {opts.source_dir / 'stanford_cars'}", HINT
        ) from None
    except (ValueError, KeyError, OSError) as e:
        raise LTBenchError(f"cannot read the Stanford Cars annotations: {e}", HINT) from None


def read_cars(opts: ReadOptions) -> SourceData:
    if opts.download:
        raise LTBenchError("Stanford Cars cannot be downloaded (the official URL is dead)", HINT)
    base = opts.source_dir / "stanford_cars"
    pools = {}
    classes: list[str] = []
    for split in ("train", "test"):
        ds = _split(opts, split)
        classes = [str(c) for c in ds.classes]
        rel = [Path(p).relative_to(base).as_posix() for p, _ in ds._samples]
        pools[split] = file_pool(base, rel, [int(y) for _, y in ds._samples])
    notes = {
        "n_max": "49 = second-largest train class; the only count-based n_max giving Table 6's 3,666",
        "class order": "profile counts assigned by pool count (descending, ties by label)",
        "licence": "non-commercial research use (ImageNet-style terms)",
    }
    notes.update(count_note("train", len(pools["train"]), 8144))
    notes.update(count_note("test", len(pools["test"]), 8041))
    return SourceData(
        class_names=classes,
        pool=pools["train"],
        fixed={"test": pools["test"]},
        notes=notes,
        classes_from=str(base / "devkit" / "cars_meta.mat"),
    )


BIBTEX = r"""
@inproceedings{krause2013cars,
  title={3D Object Representations for Fine-Grained Categorization},
  author={Krause, Jonathan and Stark, Michael and Deng, Jia and Fei-Fei, Li},
  booktitle={ICCV Workshop on 3D Representation and Recognition},
  year={2013}
}
"""


CARS = DATASETS.register("cars")(
    SourceSpec(
        name="cars",
        title="Stanford Cars",
        num_classes=196,
        read=read_cars,
        irs=(10, 100),
        paper_ir=10,
        n_max_rule="second_max",
        class_order="count",
        expected={10: {"train": 3666, "test": 8041}},
        license="other",
        citation="Krause, Stark, Deng & Fei-Fei, 3D Object Representations for Fine-Grained Categorization, "
        "ICCV Workshop on 3D Representation and Recognition (2013)",
        homepage="https://ai.stanford.edu/~jkrause/cars/car_dataset.html",
        layout="ROOT/stanford_cars/{devkit/{cars_meta.mat, cars_train_annos.mat}, cars_train/*.jpg, "
        "cars_test/*.jpg, cars_test_annos_withlabels.mat} (torchvision's layout); no download (dead URL: "
        "use the Kaggle copy, pytorch/vision#7545)",
        pool_definition="official train split (8,144; 24-68 per class); n_max = 49 (second-largest class), "
        "counts assigned in pool-count order",
        bibtex=BIBTEX,
        redistributable=False,
        authors=AuthorsRecipe(loader="cars.py Cars", groups=(70, 139), n_max="second_max", rerank=True),
    )
)
