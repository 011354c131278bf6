"""The embedded default: digits-LT counts, disjointness, determinism, loading with `datasets`."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from ltbench.builders.build import build
from ltbench.builders.profile import lt_counts
from PIL import Image

from ltbench.registry import DATASETS

IR10 = [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]
IR100 = [100, 59, 35, 21, 12, 7, 4, 2, 1, 1]


def manifest(root, name):
    return json.loads((root / name / "manifest.json").read_text())


def test_profile_counts_match_the_contract():
    assert lt_counts(100, 10, 10) == IR10 and sum(IR10) == 403
    assert lt_counts(100, 10, 100) == IR100 and sum(IR100) == 242


@pytest.mark.parametrize(("name", "counts"), [("digits-lt10", IR10), ("digits-lt100", IR100)])
def test_split_counts(digits_data, name, counts):
    m = manifest(digits_data, name)
    assert m["splits"]["train"]["class_counts"] == counts
    assert m["splits"]["test"]["class_counts"] == [40] * 10
    assert m["splits"]["pretrain"]["class_counts"] == [30] * 10
    assert m["profile"]["n_max"] == 100 and m["profile"]["ir"] == int(name.split("lt")[1])


def _pixel_hashes(split_dir, m, split):
    hashes = set()
    for f in m["splits"][split]["files"]:
        for row in pq.read_table(split_dir / f).column("image").to_pylist():
            hashes.add(hashlib.sha256(np.asarray(Image.open(io.BytesIO(row["bytes"]))).tobytes()).hexdigest())
    return hashes


def test_splits_are_disjoint_by_index_and_pixels(digits_data):
    m = manifest(digits_data, "digits-lt10")
    keys = {s: set(v["source_keys"]) for s, v in m["splits"].items()}
    assert len(keys["train"]) == 403 and len(keys["test"]) == 400 and len(keys["pretrain"]) == 300
    assert not (keys["train"] & keys["test"]) and not (keys["train"] & keys["pretrain"])
    assert not (keys["test"] & keys["pretrain"])
    px = {s: _pixel_hashes(digits_data / "digits-lt10", m, s) for s in keys}
    assert len(px["train"]) == 403
    assert (
        not (px["train"] & px["test"])
        and not (px["train"] & px["pretrain"])
        and not (px["test"] & px["pretrain"])
    )


def test_pixels_are_the_scaled_source(digits_data):
    from sklearn.datasets import load_digits

    d = load_digits()
    m = manifest(digits_data, "digits-lt10")
    key = int(m["splits"]["train"]["source_keys"][0])
    row = (
        pq.read_table(digits_data / "digits-lt10" / m["splits"]["train"]["files"][0])
        .slice(0, 1)
        .to_pylist()[0]
    )
    img = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))
    assert img.shape == (8, 8) and row["label"] == d.target[key]
    np.testing.assert_array_equal(img, np.round(d.images[key] * 255 / 16).astype(np.uint8))


def test_rebuild_is_byte_identical(digits_data, tmp_path):
    build(DATASETS.get("digits"), 10, tmp_path)
    a, b = digits_data / "digits-lt10", tmp_path / "digits-lt10"
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n


def test_other_seed_gives_other_split(digits_data, tmp_path):
    build(DATASETS.get("digits"), 10, tmp_path, seed=1)
    m0, m1 = manifest(digits_data, "digits-lt10"), manifest(tmp_path, "digits-lt10")
    assert m1["splits"]["train"]["class_counts"] == IR10
    assert m0["splits"]["train"]["source_keys"] != m1["splits"]["train"]["source_keys"]


def test_manifest_hashes_match_files(digits_data):
    m = manifest(digits_data, "digits-lt10")
    for name, digest in m["files"].items():
        assert hashlib.sha256((digits_data / "digits-lt10" / name).read_bytes()).hexdigest() == digest


def test_load_dataset_reads_the_build(digits_data):
    import datasets

    ds = datasets.load_dataset(str(digits_data / "digits-lt10"))
    assert set(ds) == {"train", "test", "pretrain"}
    assert ds["train"].num_rows == 403 and ds["test"].num_rows == 400
    assert isinstance(ds["train"].features["image"], datasets.Image)
    assert ds["train"].features["label"].names == [str(i) for i in range(10)]
    assert ds["train"][0]["image"].size == (8, 8)


def test_ltbench_load_split(digits_data):
    import ltbench

    train = ltbench.load_split(str(digits_data / "digits-lt10"), split="train")
    assert np.bincount(train["label"]).tolist() == IR10
