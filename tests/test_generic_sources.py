"""LT splits from any balanced dataset: ``ltbench build imagefolder`` (a generated folder of class folders) and
``ltbench build hf:DIR`` (a ``datasets`` dataset saved to disk, and one as local Parquet files).

Counts are the profile's by hand: n_c = int(n_max · (1/IR) ** (c / (C − 1))) with n_max = the largest class.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from cifar_fixtures import run_cli  # noqa: E402

os.environ.setdefault("LTBENCH_NO_PROGRESS", "1")
CLASSES = ["ant", "bee", "cat", "dog"]
# 4 classes of 40, IR 10: 40, int(40·0.1^(1/3)) = int(18.57), int(40·0.1^(2/3)) = int(8.62), 4
FOLDER_IR10 = [40, 18, 8, 4]
# --test-fraction 0.25 leaves 30 per class: 30, int(13.92), int(6.46), 3
FRACTION_IR10 = [30, 13, 6, 3]
# 5 classes of 30, IR 10: 30, int(30·0.1^0.25) = int(16.87), int(9.49), int(5.33), 3; IR 100: 30, 9, 3, 0, 0
HF_IR10 = [30, 16, 9, 5, 3]
HF_IR100 = [30, 9, 3, 0, 0]


def write_folder(root: Path, per_class: int, size=(12, 12), mode="RGB", seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for c in CLASSES:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            shape = (*size, 3) if mode == "RGB" else size
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / c / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("folders")
    train = write_folder(base / "My Pets", 40)
    test = write_folder(base / "pets-test", 5, seed=1)
    nested = base / "nested"
    write_folder(nested / "train", 40, seed=2)
    write_folder(nested / "test", 5, seed=3)
    return {"train": train, "test": test, "nested": nested}


def manifest(split: Path) -> dict:
    return json.loads((split / "manifest.json").read_text())


def rows(split: Path, name: str) -> list[dict]:
    files = manifest(split)["splits"][name]["files"]
    return [r for f in files for r in pq.read_table(split / f).to_pylist()]


def counts(split: Path, name: str) -> list[int]:
    return manifest(split)["splits"][name]["class_counts"]


def test_imagefolder_with_a_test_dir(folders, tmp_path, capsys):
    out = tmp_path / "d"
    args = ["build", "imagefolder", "--source-dir", folders["train"], "--test-dir", folders["test"]]
    code, stdout, err = run_cli([*args, "--ir", "10", "--out", out], capsys)
    assert code == 0, err
    split = out / "imagefolder-my-pets-lt10"
    assert stdout.strip() == str(split)
    m = manifest(split)
    assert m["class_names"] == CLASSES and m["family"] == "small" and m["source"] == "imagefolder-my-pets"
    assert counts(split, "train") == FOLDER_IR10 and counts(split, "test") == [5] * 4
    assert m["profile"]["n_max"] == 40 and m["profile"]["n_max_rule"] == "max"
    assert m["origin"] == {
        "kind": "imagefolder",
        "source_dir": str(folders["train"]),
        "test_dir": str(folders["test"]),
        "test_fraction": None,
    }
    for r, key in zip(rows(split, "train"), m["splits"]["train"]["source_keys"], strict=True):
        assert r["image"]["bytes"] == (folders["train"] / key).read_bytes()  # the file's own bytes
        assert r["label"] == CLASSES.index(key.split("/")[0])
    assert "image folder My Pets" in (split / "README.md").read_text()
    from ltbench.builders.verify import verify_split

    assert verify_split(split) == []


def test_imagefolder_test_fraction_is_seeded_and_disjoint(folders, tmp_path, capsys):
    base = ["build", "imagefolder", "--source-dir", folders["train"], "--test-fraction", "0.25", "--ir", "10"]
    for seed, out in ((0, "a"), (0, "b"), (1, "c")):
        assert run_cli([*base, "--seed", seed, "--out", tmp_path / out], capsys)[0] == 0
    a, b, c = (tmp_path / x / "imagefolder-my-pets-lt10" for x in "abc")
    assert counts(a, "train") == FRACTION_IR10 and counts(a, "test") == [10] * 4  # int(0.25 · 40 + 0.5)
    ma = manifest(a)
    assert not set(ma["splits"]["train"]["source_keys"]) & set(ma["splits"]["test"]["source_keys"])
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in [*ma["files"], "manifest.json"])
    assert manifest(c)["splits"]["test"]["source_keys"] != ma["splits"]["test"]["source_keys"]


def test_imagefolder_with_train_and_test_inside(folders, tmp_path, capsys):
    args = ["build", "imagefolder", "--source-dir", folders["nested"], "--ir", "100", "--out", tmp_path]
    assert run_cli(args, capsys)[0] == 0
    split = tmp_path / "imagefolder-nested-lt100"
    # IR 100: 40, int(40·0.01^(1/3)) = int(8.62), int(40·0.01^(2/3)) = int(1.86), 0
    assert counts(split, "train") == [40, 8, 1, 0] and counts(split, "test") == [5] * 4


def _bad(tmp_path, folders) -> list[tuple[list, str]]:
    empty_class = write_folder(tmp_path / "empty-class", 3)
    for f in (empty_class / "dog").iterdir():
        f.unlink()
    other_test = tmp_path / "other-test"
    for c in ["ant", "bee", "cow", "dog"]:
        (other_test / c).mkdir(parents=True)
    src = ["build", "imagefolder", "--ir", "10", "--source-dir"]
    return [
        ([*src, tmp_path / "missing", "--test-fraction", "0.2"], "image folder not found"),
        ([*src, folders["train"]], "no test split"),
        ([*src, folders["train"], "--test-fraction", "0.2", "--test-dir", folders["test"]], "both given"),
        ([*src, folders["train"], "--test-fraction", "1.5"], "not between 0 and 1"),
        ([*src, empty_class, "--test-fraction", "0.2"], "holds no JPEG/PNG image"),
        ([*src, folders["train"], "--test-dir", other_test], "other class folders"),
        (["build", "cifar10", "--ir", "10", "--test-fraction", "0.2"], "only apply to imagefolder and hf:"),
        (["build", "imagefolder", "--ir", "10", "--image-column", "x"], "do not apply to imagefolder"),
    ]


def test_bad_folders_are_one_line_and_write_nothing(folders, tmp_path, capsys):
    out = tmp_path / "out"
    for args, message in _bad(tmp_path, folders):
        code, stdout, err = run_cli([*args, "--out", out], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)
        assert not out.exists()


# -- hf: ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A DatasetDict (8×8 grey images, ClassLabel 'fine' of 5 names) saved to disk and as local Parquet."""
    import datasets

    rng = np.random.default_rng(0)

    def make(n):
        pixels = rng.integers(0, 255, (5 * n, 8, 8), dtype=np.uint8)
        return {"img": [Image.fromarray(p) for p in pixels], "fine": [c for c in range(5) for _ in range(n)]}

    feats = datasets.Features({"img": datasets.Image(), "fine": datasets.ClassLabel(names=list("vwxyz"))})
    dd = datasets.DatasetDict(
        {s: datasets.Dataset.from_dict(make(n), features=feats) for s, n in (("train", 30), ("test", 3))}
    )
    base = tmp_path_factory.mktemp("hf")
    dd.save_to_disk(str(base / "saved"))
    (base / "pq" / "data").mkdir(parents=True)
    for s in dd:
        dd[s].to_parquet(str(base / "pq" / "data" / f"{s}-00000-of-00001.parquet"))
    unlabelled = datasets.DatasetDict(train=dd["train"], test=dd["test"].map(lambda r: {"fine": -1}))
    unlabelled.save_to_disk(str(base / "unlabelled"))  # ClassLabel -1: no label, as some Hub test splits
    return {"dd": dd, "base": base}


def _pixels(image_bytes: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image_bytes)))


def test_hf_saved_to_disk(saved, tmp_path, capsys):
    out = tmp_path / "d"
    code, _, err = run_cli(["build", f"hf:{saved['base'] / 'saved'}", "--ir", "10", "--out", out], capsys)
    assert code == 0, err
    split = out / "hf-saved-lt10"
    m = manifest(split)
    assert m["class_names"] == list("vwxyz") and m["family"] == "digits"  # 8×8 grey
    assert counts(split, "train") == HF_IR10 and counts(split, "test") == [3] * 5
    assert m["origin"]["image_column"] == "img" and m["origin"]["label_column"] == "fine"
    dd = saved["dd"]
    for name in ("train", "test"):
        for r, key in zip(rows(split, name), m["splits"][name]["source_keys"], strict=True):
            which, i = key.split(":")
            assert which == name
            np.testing.assert_array_equal(_pixels(r["image"]["bytes"]), np.asarray(dd[name][int(i)]["img"]))
            assert r["label"] == dd[name][int(i)]["fine"]

    # `ltbench run` and the leaderboard take it like any other set (family digits: the digits backbone)
    res = tmp_path / "results"
    args = ["run", "--method", "ce", "--dataset", "hf-saved-lt10", "--data", out, "--results", res]
    code, _, err = run_cli([*args, "--epochs", "1", "--backbone", "cnn-digits", "--device", "cpu"], capsys)
    assert code == 0, err
    result = json.loads((res / "hf-saved-lt10" / "ce" / "cnn-digits" / "seed0.json").read_text())
    assert result["family"] == "digits" and result["source"] == "hf-saved"
    assert result["train_counts"] == HF_IR10
    code, _, err = run_cli(
        ["leaderboard", "--results", res, "--out", tmp_path / "lb", "--no-reported"], capsys
    )
    assert code == 0, err
    assert "| ce | cnn-digits |" in (tmp_path / "lb" / "hf-saved-lt10.md").read_text()


def test_hf_local_parquet_is_streamed(saved, tmp_path, capsys):
    code, _, err = run_cli(["build", f"hf:{saved['base'] / 'pq'}", "--ir", "100", "--out", tmp_path], capsys)
    assert code == 0, err
    split = tmp_path / "hf-pq-lt100"
    assert counts(split, "train") == HF_IR100 and counts(split, "test") == [3] * 5
    # the same rows as from the saved copy: the stream's order is the dataset's
    code, _, err = run_cli(
        ["build", f"hf:{saved['base'] / 'saved'}", "--ir", "100", "--out", tmp_path], capsys
    )
    assert code == 0, err
    a, b = manifest(split)["splits"], manifest(tmp_path / "hf-saved-lt100")["splits"]
    assert a["train"]["source_keys"] == b["train"]["source_keys"]
    assert [r["image"]["bytes"] for r in rows(split, "train")] == [
        r["image"]["bytes"] for r in rows(tmp_path / "hf-saved-lt100", "train")
    ]


def test_hf_bad_input_is_one_line_and_writes_nothing(saved, tmp_path, capsys):
    out = tmp_path / "out"
    base = saved["base"]
    for args, message in [
        ([f"hf:{base / 'saved'}", "--label-column", "nope"], "no label column 'nope' (columns: img, fine)"),
        ([f"hf:{base / 'saved'}", "--image-column", "fine"], "is not an Image feature"),
        ([f"hf:{base / 'saved'}", "--test-split", "validation"], "has no split 'validation'"),
        ([f"hf:{base / 'unlabelled'}"], "test labels outside 0..4 (e.g. -1"),
        ([f"hf:{base / 'saved'}", "--test-dir", base], "do not apply to hf sources"),
    ]:
        code, _, err = run_cli(["build", *args, "--ir", "10", "--out", out], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)
        assert not out.exists()
