"""SADE's test-agnostic distributions: counts from the paper's formula (derived by hand here), the draw, the
skipped ratios, SADE's list files, and per-distribution evaluation with TADE adapting on each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ltbench import test_dists as td
from ltbench.errors import LTBenchError

# Hand counts for 40 test images per class, 10 classes, forward (class k = k-th head-to-tail):
# n_k = int(40 * (1/r)^(k/9)).  r = 2: 2^(-1/9) = 0.925875 → 37.03 → 37, 2^(-2/9) = 0.857244 → 34.29 → 34,
# 2^(-3/9) = 0.793701 → 31.75 → 31, 0.734867 → 29.39, 0.680395 → 27.22, 0.629961 → 25.20, 0.583265 → 23.33,
# 0.540029 → 21.60, 0.5 → 20.
FORWARD2 = [40, 37, 34, 31, 29, 27, 25, 23, 21, 20]
# r = 5: 5^(-k/9) = 1, .836251, .699317, .584804, .489041, .408962, .341995, .285995, .239165, .2
FORWARD5 = [40, 33, 27, 23, 19, 16, 13, 11, 9, 8]
# r = 10: 10^(-k/9) = 1, .774264, .599484, .464159, .359381, .278256, .215443, .166810, .129155, .1
FORWARD10 = [40, 30, 23, 18, 14, 11, 8, 6, 5, 4]
DIGITS_TRAIN = [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]  # any strictly decreasing counts: label order = rank


def test_forward_and_backward_counts_by_hand():
    ranks = td.class_ranks(DIGITS_TRAIN)
    assert ranks == list(range(10))
    assert td.sade_counts(40, ranks, 2, False) == FORWARD2
    assert td.sade_counts(40, ranks, 5, False) == FORWARD5
    assert td.sade_counts(40, ranks, 10, False) == FORWARD10
    assert td.sade_counts(40, ranks, 10, True) == FORWARD10[::-1]
    assert td.sade_counts(40, ranks, 1, False) == [40] * 10


def test_cifar_counts_by_hand():
    # CIFAR-10 test, 1000/class, r = 50: head 1000, 50^(-1/9) = e^(-3.912023/9) = 0.647477 → 647, tail 20.
    c10 = td.sade_counts(1000, list(range(10)), 50, False)
    assert (c10[0], c10[1], c10[-1]) == (1000, 647, 20)
    # CIFAR-100, 100/class, r = 50: 50^(-1/99) = e^(-0.039516) = 0.961254 → 96; tail int(100 * 0.02) = 2.
    c100 = td.sade_counts(100, list(range(100)), 50, False)
    assert (c100[0], c100[1], c100[-1]) == (100, 96, 2)
    assert td.why_unfit(c100, 50) is None and td.why_unfit(c10, 50) is None


def test_forward_follows_the_training_order_not_the_labels():
    # train counts [5, 100, 50]: head = class 1, then 2, tail = 0. n_max 4, r = 2, C = 3:
    # rank 0 → 4, rank 1 → int(4 * 2^-0.5) = int(2.83) = 2, rank 2 → int(4 * 0.5) = 2.
    ranks = td.class_ranks([5, 100, 50])
    assert ranks == [2, 0, 1]
    assert td.sade_counts(4, ranks, 2, False) == [2, 4, 2]
    assert td.sade_counts(4, ranks, 2, True) == [4, 2, 2]


def test_digits_supports_2_5_10_and_skips_25_50():
    labels = np.repeat(np.arange(10), 40)
    block = td.formula_distributions(labels, DIGITS_TRAIN)
    assert list(block["distributions"]) == [
        "forward10", "forward5", "forward2", "uniform", "backward2", "backward5", "backward10"
    ]  # fmt: skip
    assert set(block["skipped"]) == {"forward50", "forward25", "backward25", "backward50"}
    assert "realized ratio 40" in block["skipped"]["forward25"]  # int(40/25) = 1: 40/1, not 25
    assert "= 0 test images" in block["skipped"]["forward50"]  # int(40/50) = 0
    d = block["distributions"]
    assert d["forward2"]["class_counts"] == FORWARD2 and d["forward2"]["num_rows"] == 287
    assert d["forward5"]["class_counts"] == FORWARD5 and d["forward5"]["num_rows"] == 199
    assert d["forward10"]["class_counts"] == FORWARD10 and d["forward10"]["num_rows"] == 159
    assert d["backward10"]["class_counts"] == FORWARD10[::-1]
    assert d["uniform"]["indices"] == list(range(400)) and block["n_max"] == 40
    for entry in d.values():  # the indices really hold those counts
        assert np.bincount(labels[entry["indices"]], minlength=10).tolist() == entry["class_counts"]


def test_draw_is_sades_seeded_per_class_shuffle():
    rng = np.random.RandomState(3)
    labels = rng.randint(0, 4, size=60)
    counts = [5, 3, 2, 1]
    # SADE (imbalance_cifar.py gen_imbalanced_data): np.random.seed(0) once; per class in label order,
    # shuffle that class's indices and keep the first n.
    np.random.seed(0)
    expected = []
    for c, n in enumerate(counts):
        idx = np.where(labels == c)[0]
        np.random.shuffle(idx)
        expected += idx[:n].tolist()
    assert td.draw(labels, counts) == sorted(expected)
    assert td.draw(labels, counts) == td.draw(labels, counts)


def test_select_names_and_errors():
    block = td.formula_distributions(np.repeat(np.arange(10), 40), DIGITS_TRAIN)
    assert td.select(block, "all") == list(block["distributions"])
    assert td.select(block, "uniform,backward5") == ["uniform", "backward5"]
    with pytest.raises(LTBenchError, match="forward50 is not available: a class would get"):
        td.select(block, "forward50")
    with pytest.raises(LTBenchError, match="unknown test distribution"):
        td.select(block, "sideways3")


def _write(path, rows):
    path.write_text("".join(f"{rel} {label}\n" for rel, label in rows), encoding="utf-8")


def test_sade_list_files_become_indices(tmp_path):
    keys = [f"val/n{c}/img{i}.JPEG" for c in range(3) for i in range(4)]
    labels = [c for c in range(3) for _ in range(4)]
    _write(tmp_path / "ImageNet_LT_forward2.txt", [(keys[0], 0), (keys[1], 0), (keys[4], 1), (keys[8], 2)])
    _write(tmp_path / "ImageNet_LT_backward2.txt", [(keys[11], 2), (keys[10], 2), (keys[5], 1), (keys[3], 0)])
    (tmp_path / "ImageNet_LT_train.txt").write_text("ignored 0\n")
    block = td.list_distributions(tmp_path, "ImageNet_LT", keys, labels, 3)
    d = block["distributions"]
    assert list(d) == ["forward2", "uniform", "backward2"]
    assert d["forward2"]["indices"] == [0, 1, 4, 8] and d["forward2"]["class_counts"] == [2, 1, 1]
    assert d["backward2"]["indices"] == [3, 5, 10, 11] and d["backward2"]["class_counts"] == [1, 1, 2]
    assert d["uniform"]["num_rows"] == 12 and "whole test split" in block["files"]["uniform"]
    _write(tmp_path / "ImageNet_LT_forward5.txt", [("val/n9/missing.JPEG", 0)])
    with pytest.raises(LTBenchError, match="not in this build's test split"):
        td.list_distributions(tmp_path, "ImageNet_LT", keys, labels, 3)
    _write(tmp_path / "ImageNet_LT_forward5.txt", [(keys[0], 2)])
    with pytest.raises(LTBenchError, match="has label 2, the test split has 0"):
        td.list_distributions(tmp_path, "ImageNet_LT", keys, labels, 3)


def test_digits_build_records_distributions_in_manifest_and_card(digits_data):
    manifest = json.loads((digits_data / "digits-lt10" / "manifest.json").read_text())
    block = manifest["test_distributions"]
    assert block["distributions"]["forward10"]["class_counts"] == FORWARD10
    assert block["distributions"]["backward5"]["class_counts"] == FORWARD5[::-1]
    assert set(block["skipped"]) == {"forward50", "forward25", "backward25", "backward50"}
    card = (digits_data / "digits-lt10" / "README.md").read_text()
    assert "## Test-agnostic distributions" in card and "| forward25 | skipped |" in card


def test_tade_adapts_per_distribution(digits_data, tmp_path):
    from ltbench.run import run_one

    sets = {"epochs": "1", "tta_epochs": "1"}
    path = run_one(
        "tade", "digits-lt10", "reactnet-a-tiny", 0, sets, data_root=digits_data, results=tmp_path,
        test_dist="all",
    )  # fmt: skip
    res = json.loads(path.read_text())
    dists = res["test_distributions"]
    names = ("forward10", "forward5", "forward2", "uniform", "backward2", "backward5", "backward10")
    assert set(dists) == set(names)  # the file's keys are sorted; the leaderboard orders them as SADE does
    assert [dists[n]["num_rows"] for n in names] == [159, 199, 287, 400, 287, 199, 159]
    weights = {n: tuple(d["records"]["tade"]["aggregation_weights"]) for n, d in dists.items()}
    assert len(set(weights.values())) > 1  # learned on each distribution's own images
    # the whole-test metrics stay those of the run's own test-time step (uniform = the whole split here)
    assert res["records"]["tade"]["aggregation_weights"] == list(weights["uniform"])
    assert dists["uniform"]["top1"] == res["metrics"]["top1"]


def test_run_rejects_an_unsupported_distribution_before_training(digits_data, tmp_path):
    from ltbench.run import run_one

    with pytest.raises(LTBenchError, match="forward50 is not available"):
        run_one("ce", "digits-lt10", data_root=digits_data, results=tmp_path, test_dist="forward50")
    assert not list(tmp_path.rglob("*.json")) and not (tmp_path / ".runs").exists()


def test_imagenet_lt_build_imports_sades_lists(tmp_path):
    import source_fixtures as fx
    from ltbench.builders.build import build

    from ltbench.registry import DATASETS

    base = tmp_path / "src" / "ImageNet_LT"
    lists = fx.imagenet_lt_lists({"train": [130, 40, 7], "val": [2, 2, 2], "test": [5, 5, 5]})
    fx.write_list_set(base, lists)
    test = lists["ImageNet_LT_test.txt"]  # 5 per class, class-major: rows 0-4 class 0, 5-9 class 1, ...
    spec = DATASETS.get("imagenet-lt")
    plain = build(spec, None, tmp_path / "plain", source_dir=tmp_path / "src")
    block = json.loads((plain / "manifest.json").read_text())["test_distributions"]
    assert block["origin"] == "none" and "no SADE list" in block["note"]  # OLTR's lists only
    _write(base / "ImageNet_LT_forward2.txt", [test[i] for i in (0, 1, 2, 3, 5, 6, 10)])
    _write(base / "ImageNet_LT_backward2.txt", [test[i] for i in (0, 5, 6, 10, 11, 12, 13)])
    d = build(spec, None, tmp_path / "out", source_dir=tmp_path / "src")
    block = json.loads((d / "manifest.json").read_text())["test_distributions"]
    dist = block["distributions"]
    assert block["origin"] == "sade-lists" and set(dist) == {"forward2", "uniform", "backward2"}
    assert dist["forward2"]["class_counts"][:3] == [4, 2, 1] and dist["forward2"]["num_rows"] == 7
    assert dist["backward2"]["class_counts"][:3] == [1, 2, 4]
    assert dist["uniform"]["num_rows"] == 15
    stored = json.loads((d / "manifest.json").read_text())["splits"]["test"]["source_keys"]
    assert [stored[i] for i in dist["forward2"]["indices"]] == [test[i][0] for i in (0, 1, 2, 3, 5, 6, 10)]


def test_places_lt_lists_index_the_oltr_test_split_in_places365_paths(tmp_path):
    """SADE's ``Places_LT_v2`` lists are drawn from Places_LT_test (ltbench's ``oltr_test``; ``test`` is
    Places_LT_val, CANDLE's Table 6) and name Places365's ``val_256/`` files, whichever layout the build read."""
    import source_fixtures as fx
    from ltbench.builders.build import build

    from ltbench.registry import DATASETS

    base = tmp_path / "src" / "Places_LT"
    cats = ("airfield", "apartment_building-outdoor", "bakery-shop")
    oltr_test = [
        (f"val/{c}/Places365_val_{10 * k + j:08d}.jpg", k) for k, c in enumerate(cats) for j in range(4)
    ]
    lists = {
        "Places_LT_train.txt": [
            (f"train/{c}/{j:08d}.jpg", k) for k, c in enumerate(cats) for j in range(6 - 2 * k)
        ],
        "Places_LT_val.txt": [
            (f"train/{c}/{100 + j:08d}.jpg", k) for k, c in enumerate(cats) for j in range(2)
        ],
        "Places_LT_test.txt": oltr_test,
    }
    fx.write_list_set(base, lists)
    sade = lambda rows: [(f"val_256/{Path(p).name}", y) for p, y in rows]  # noqa: E731 (SADE's own paths)
    _write(base / "Places_LT_forward2.txt", sade([oltr_test[i] for i in (0, 1, 2, 3, 4, 5, 8)]))
    _write(base / "Places_LT_uniform.txt", sade(oltr_test))
    d = build(DATASETS.get("places-lt"), None, tmp_path / "out", source_dir=tmp_path / "src")
    m = json.loads((d / "manifest.json").read_text())
    block = m["test_distributions"]
    assert block["origin"] == "sade-lists" and block["split"] == "oltr_test"
    dist = block["distributions"]
    assert set(dist) == {"forward2", "uniform"} and dist["uniform"]["num_rows"] == 12
    assert dist["forward2"]["class_counts"][:4] == [4, 2, 1, 0]  # 365 classes, 3 in the fixture
    keys = m["splits"]["oltr_test"]["source_keys"]
    assert [keys[i] for i in dist["forward2"]["indices"]] == [oltr_test[i][0] for i in (0, 1, 2, 3, 4, 5, 8)]
    import torch

    from ltbench.data import open_split
    from ltbench.method import Task

    task = Task(info=open_split(d.name, d.parent), backbone="resnet32", device=torch.device("cpu"))
    task.test_indices, task.test_indices_split = dist["forward2"]["indices"], block["split"]
    ds = task.eval_set("test")  # what evaluate() and TADE's test-time step read under this distribution
    assert len(ds) == 7 and [int(ds[i][1]) for i in range(7)] == [0, 0, 0, 0, 1, 1, 2]
    _write(base / "Places_LT_backward2.txt", [("val_256/Places365_val_99999999.jpg", 0)])
    with pytest.raises(
        LTBenchError, match="Places365_val_99999999.jpg, which is not in this build's oltr_test"
    ):
        build(DATASETS.get("places-lt"), None, tmp_path / "again", source_dir=tmp_path / "src")
    assert not (tmp_path / "again" / "places-lt").exists()  # nothing half-written


def test_inat_lt_lists_keep_sades_ratios_2_and_3(tmp_path):
    import source_fixtures as fx
    from ltbench.builders.build import build

    from ltbench.registry import DATASETS

    base = tmp_path / "src" / "iNat2018"
    fx.write_inat(base, {"train2018": [12, 6, 3], "val2018": [3, 3, 3]})
    val = json.loads((base / "val2018.json").read_text())
    rows = [
        (im["file_name"], a["category_id"]) for im, a in zip(val["images"], val["annotations"], strict=True)
    ]
    _write(base / "iNaturalist18_forward3.txt", [rows[i] for i in (0, 1, 2, 3, 6)])
    _write(base / "iNaturalist18_backward3.txt", [rows[i] for i in (0, 3, 6, 7, 8)])
    d = build(DATASETS.get("inat-lt"), None, tmp_path / "out", source_dir=tmp_path / "src")
    block = json.loads((d / "manifest.json").read_text())["test_distributions"]
    dist = block["distributions"]
    assert block["split"] == "test" and sorted(dist, key=td.sade_order) == [
        "forward3",
        "uniform",
        "backward3",
    ]
    assert dist["forward3"]["class_counts"][:3] == [3, 1, 1] and dist["backward3"]["class_counts"][:3] == [
        1,
        1,
        3,
    ]
    assert dist["uniform"]["num_rows"] == 9  # no uniform list here: the whole test split


def test_a_class_without_test_images_skips_every_distribution_and_the_build_goes_on():
    """A test split missing a class (a small source fixture, an odd image folder) can't hold any SADE subset:
    every distribution is skipped with that reason; the split itself still builds."""
    labels = np.repeat(np.arange(3), [5, 0, 4])  # class 1 has no test image
    block = td.formula_distributions(labels, [10, 5, 1])
    assert block["distributions"] == {} and block["n_max"] == 0
    assert set(block["skipped"]) == set(td.NAMES)
    assert all("class 1 has no test image" in why for why in block["skipped"].values())
