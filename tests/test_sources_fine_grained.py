"""The 8 fine-grained source readers on fixtures in the official layouts: splits, labels, names, stored bytes,
errors; and (slow) full-size fixtures with the real per-class pool counts reproducing Table 6's train counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import source_fixtures as fx
from click.testing import CliRunner
from ltbench.builders.build import build
from ltbench.builders.profile import lt_counts

from ltbench.cli import cli
from ltbench.errors import LTBenchError
from ltbench.registry import DATASETS


def rows(split_dir: Path, split: str) -> list[dict]:
    out = []
    for f in sorted(split_dir.glob(f"{split}-*.parquet")):
        out += pq.read_table(f).to_pylist()
    return out


def manifest(split_dir: Path) -> dict:
    return json.loads((split_dir / "manifest.json").read_text())


def check_bytes(split_dir: Path, split: str, source_root: Path) -> list[dict]:
    """Every stored image equals the source file named by its path, byte for byte (never re-encoded)."""
    got = rows(split_dir, split)
    assert got
    for r in got:
        assert r["image"]["bytes"] == (source_root / r["image"]["path"]).read_bytes()
    return got


def build_small(name: str, src: Path, out: Path, ir: float = 10, **kw) -> Path:
    return build(DATASETS.get(name), ir, out, source_dir=src, **kw)


# ------------------------------------------------------------------------------------------ small fixtures


def test_caltech101_tfds_style_split(tmp_path):
    per_folder = [40, 31, 35, 33]
    names = fx.write_caltech101(tmp_path / "src", per_folder)
    d = build_small("caltech101", tmp_path / "src", tmp_path / "out")
    m = manifest(d)
    assert m["class_names"] == sorted(names) and "BACKGROUND_Google" in m["class_names"]
    assert m["profile"]["pool_class_counts"] == [30] * 4
    assert m["splits"]["test"]["num_rows"] == sum(per_folder) - 120
    assert m["splits"]["train"]["num_rows"] == sum(lt_counts(30, 4, 10))
    # the split is fixed by seed 1234 and sorted names: the test images are the same for another build seed
    d2 = build(DATASETS.get("caltech101"), 10, tmp_path / "out2", seed=5, source_dir=tmp_path / "src")
    assert manifest(d2)["splits"]["test"]["source_keys"] == m["splits"]["test"]["source_keys"]
    base = tmp_path / "src" / "caltech101"
    test = check_bytes(d, "test", base)
    train_keys = set(m["splits"]["train"]["source_keys"])
    assert train_keys.isdisjoint(r["image"]["path"] for r in test)
    # the draw is RandomState(1234).choice over each sorted folder, folders in sorted order
    rng = np.random.RandomState(1234)
    first = sorted(names)[0]
    files = sorted(p.name for p in (base / "101_ObjectCategories" / first).iterdir())
    chosen = {f"101_ObjectCategories/{first}/{files[i]}" for i in rng.choice(len(files), 30, replace=False)}
    test0 = {k for k in m["splits"]["test"]["source_keys"] if k.split("/")[1] == first}
    assert test0 == {f"101_ObjectCategories/{first}/{f}" for f in files} - chosen


def test_cub200_reader(tmp_path):
    fx.write_cub200(tmp_path / "src", [4, 3, 4], [2, 3, 1])
    d = build_small("cub200", tmp_path / "src", tmp_path / "out")
    m = manifest(d)
    assert m["class_names"] == ["Bird_1", "Bird_2", "Bird_3"]
    assert m["profile"]["pool_class_counts"] == [4, 3, 4] and m["profile"]["n_max"] == 4
    assert m["splits"]["test"]["class_counts"] == [2, 3, 1]
    test = check_bytes(d, "test", tmp_path / "src" / "CUB_200_2011")
    for r in test:  # the label comes from image_class_labels.txt, matching the image's folder
        assert r["image"]["path"].split("/")[1].startswith(f"{r['label'] + 1:03d}.")
    assert m["expected"] == {"train": 2253, "test": 5794}


def test_dogs_reader(tmp_path):
    fx.write_dogs(tmp_path / "src", [5, 5, 5], [2, 4, 3])
    d = build_small("dogs", tmp_path / "src", tmp_path / "out")
    m = manifest(d)
    assert m["class_names"] == ["n02085621-Breed_1", "n02085622-Breed_2", "n02085623-Breed_3"]
    assert m["splits"]["test"]["class_counts"] == [2, 4, 3]
    assert m["splits"]["train"]["class_counts"] == lt_counts(5, 3, 10)
    for r in check_bytes(d, "train", tmp_path / "src" / "stanford_dogs"):
        assert r["image"]["path"].split("/")[1] == m["class_names"][r["label"]]


def test_cars_reader_and_count_order(tmp_path):
    # class 0 is smaller than class 1: with n_max = second_max the counts go in pool-count order
    fx.write_cars(tmp_path / "src", [5, 9, 7, 6], [2, 2, 3, 1])
    d = build_small("cars", tmp_path / "src", tmp_path / "out")
    m = manifest(d)
    assert m["profile"]["n_max"] == 7 and m["profile"]["class_order"] == "count"
    prof = lt_counts(7, 4, 10)  # ranks: class 1 (9), class 2 (7), class 3 (6), class 0 (5)
    assert m["splits"]["train"]["class_counts"] == [prof[3], prof[0], prof[1], prof[2]]
    assert m["splits"]["test"]["class_counts"] == [2, 2, 3, 1]
    assert m["class_names"][0] == "Make 1 Model 2001"
    check_bytes(d, "test", tmp_path / "src" / "stanford_cars")
    with pytest.raises(LTBenchError, match="cannot be downloaded"):
        build_small("cars", tmp_path / "src", tmp_path / "o2", download=True)


def test_dtd_reader_partition1(tmp_path):
    fx.write_dtd(tmp_path / "src", per_split=3, classes=fx.DTD_CLASSES[:4])
    d = build_small("dtd", tmp_path / "src", tmp_path / "out")
    m = manifest(d)
    assert m["class_names"] == fx.DTD_CLASSES[:4]
    assert m["profile"]["pool_class_counts"] == [6] * 4
    test_lines = (tmp_path / "src/dtd/dtd/labels/test1.txt").read_text().split()
    assert sorted(m["splits"]["test"]["source_keys"]) == sorted(f"images/{t}" for t in test_lines)
    pool_lines = (tmp_path / "src/dtd/dtd/labels/train1.txt").read_text().split()
    pool_lines += (tmp_path / "src/dtd/dtd/labels/val1.txt").read_text().split()
    assert set(m["splits"]["train"]["source_keys"]) <= {f"images/{t}" for t in pool_lines}
    check_bytes(d, "train", tmp_path / "src" / "dtd" / "dtd")


def test_aircraft_reader_mean_rule(tmp_path):
    names = fx.write_aircraft(tmp_path / "src", [7, 6, 7, 6], [3, 4, 3, 4])
    d = build_small("aircraft", tmp_path / "src", tmp_path / "out")
    m = manifest(d)
    assert m["class_names"] == names and "Model 0/A-0" in names
    assert m["profile"]["n_max"] == pytest.approx(26 / 4)
    assert m["splits"]["train"]["num_rows"] == sum(lt_counts(6.5, 4, 10))
    assert m["splits"]["test"]["class_counts"] == [3, 4, 3, 4]
    check_bytes(d, "test", tmp_path / "src" / "fgvc-aircraft-2013b")


def test_flowers102_reader_and_paper_test(tmp_path):
    fx.write_flowers102(tmp_path / "src", [25, 22, 30])
    with pytest.raises(
        LTBenchError, match="checksum mismatch"
    ):  # fixture .mat files are not the official ones
        build_small("flowers102", tmp_path / "src", tmp_path / "out")
    d = build_small("flowers102", tmp_path / "src", tmp_path / "out", verify_checksums=False)
    m = manifest(d)
    skipped = "md5 not verified (--no-verify-checksums)"
    assert m["checksums"] == {"imagelabels.mat": skipped, "setid.mat": skipped}
    assert m["profile"]["pool_class_counts"] == [20, 20, 20]
    assert m["splits"]["test"]["class_counts"] == [5, 2, 10]
    assert m["splits"]["paper_test"]["class_counts"] == [10, 10, 10]
    assert m["class_names"] == ["0", "1", "2"]  # torchvision's 102 names are used only for 102 classes
    setid = __import__("scipy.io", fromlist=["loadmat"]).loadmat(tmp_path / "src/flowers-102/setid.mat")
    valid = {f"jpg/image_{i:05d}.jpg" for i in setid["valid"].ravel()}
    assert set(m["splits"]["paper_test"]["source_keys"]) == valid
    check_bytes(d, "paper_test", tmp_path / "src" / "flowers-102")
    assert "paper_test" in (d / "README.md").read_text()


def test_fruits360_reader_nested_kaggle_layout(tmp_path):
    src = tmp_path / "src"
    base = fx.write_fruits360(
        src / "fruits-360-original-size", [6, 9, 4], [2, 3, 1], classes=fx.FRUITS_CLASSES[:3]
    )
    assert base.parent.name == base.name  # fruits-360-original-size/fruits-360-original-size/
    d = build_small("fruits360", src, tmp_path / "out", ir=100)
    m = manifest(d)
    assert m["class_names"] == fx.FRUITS_CLASSES[:3]
    assert m["profile"]["n_max"] == 9 and m["splits"]["test"]["class_counts"] == [2, 3, 1]
    prof = lt_counts(9, 3, 100)
    assert m["splits"]["train"]["class_counts"] == [prof[1], prof[0], prof[2]]
    check_bytes(d, "train", base)


# ------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "name, expect",
    [
        ("caltech101", "101_ObjectCategories"),
        ("cub200", "CUB_200_2011"),
        ("dogs", "stanford_dogs"),
        ("cars", "kaggle"),
        ("dtd", "dtd"),
        ("aircraft", "fgvc-aircraft-2013b"),
        ("flowers102", "flowers-102"),
        ("fruits360", "fruits-360-original-size"),
    ],
)
def test_missing_source_is_one_line_error(tmp_path, name, expect):
    with pytest.raises(LTBenchError) as e:
        build_small(name, tmp_path, tmp_path / "o")
    msg = str(e.value)
    assert "\n" not in msg and expect.lower() in msg.lower() and e.value.fix
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_missing_source_cli_exit_code(tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "ltbench", "build", "cub200", "--ir", "10", "--source-dir", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("error: CUB-200-2011 not found") and r.stderr.count("\n") == 1


def test_corrupt_image_and_bad_archive(tmp_path):
    fx.write_cub200(tmp_path / "src", [3, 3], [1, 1])
    img = sorted((tmp_path / "src/CUB_200_2011/images").rglob("*.jpg"))[0]  # class 1: every image is read
    img.write_bytes(b"not a jpeg")
    with pytest.raises(LTBenchError, match="not a JPEG"):
        build_small("cub200", tmp_path / "src", tmp_path / "out", ir=10)
    assert not (tmp_path / "out" / "cub200-lt10").exists()
    (tmp_path / "src2").mkdir()
    (tmp_path / "src2" / "CUB_200_2011.tgz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(LTBenchError, match="checksum mismatch"):
        build_small("cub200", tmp_path / "src2", tmp_path / "out")
    with pytest.raises(LTBenchError, match="cannot extract"):
        build_small("cub200", tmp_path / "src2", tmp_path / "out", verify_checksums=False)


def test_cub200_archive_is_extracted(tmp_path):
    import tarfile

    fx.write_cub200(tmp_path / "tree", [3, 2], [1, 1])
    (tmp_path / "src").mkdir()
    with tarfile.open(tmp_path / "src" / "CUB_200_2011.tgz", "w:gz") as tf:
        tf.add(tmp_path / "tree" / "CUB_200_2011", arcname="CUB_200_2011")
    d = build_small("cub200", tmp_path / "src", tmp_path / "out", verify_checksums=False)
    assert manifest(d)["splits"]["test"]["num_rows"] == 2


def test_details_show_layout():
    result = CliRunner().invoke(cli, ["datasets", "--details", "cub200"])
    assert result.exit_code == 0 and "CUB_200_2011" in result.output


# ----------------------------------------------------------------- full size: Table 6 train counts exactly


def test_cub200_full_size_cli_as_typed(tmp_path, monkeypatch):
    """`ltbench build cub200 --ir 10` with the real per-class counts (30, six classes 29) → 2,253 / 5,794."""
    train, test = fx.cub_real_counts()
    fx.write_cub200(tmp_path / "src", train, test, distinct=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["build", "cub200", "--ir", "10", "--source-dir", "src"])
    assert result.exit_code == 0, result.output
    m = manifest(tmp_path / "data" / "cub200-lt10")
    assert (m["splits"]["train"]["num_rows"], m["splits"]["test"]["num_rows"]) == (2253, 5794)
    assert m["profile"]["n_max"] == 30


FULL = {
    # name: (writer, expected train at the paper's IR, expected test)
    "caltech101": (
        lambda r: fx.write_caltech101(r, fx.spread(9144, 102, 31), distinct=False),
        10,
        1151,
        6084,
    ),
    "dogs": (
        lambda r: fx.write_dogs(r, [100] * 120, fx.spread(8580, 120, 50), distinct=False),
        10,
        4646,
        8580,
    ),
    "cars": (lambda r: fx.write_cars(r, fx.CARS_TRAIN, fx.CARS_TEST, distinct=False), 10, 3666, 8041),
    "dtd": (lambda r: fx.write_dtd(r, 40, distinct=False), 10, 1457, 1880),
    "aircraft": (
        lambda r: fx.write_aircraft(r, [67] * 67 + [66] * 33, [33] * 67 + [34] * 33, distinct=False),
        10,
        2564,
        3333,
    ),
    "flowers102": (lambda r: fx.write_flowers102(r, fx.spread(8189, 102, 40), distinct=False), 10, 753, 6149),
    "fruits360": (
        lambda r: fx.write_fruits360(
            r, [326] + fx.spread(6231 - 326, 23, 150), fx.spread(3110, 24, 60), distinct=False
        ),
        100,
        1770,
        3110,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FULL))
def test_full_size_reproduces_table6(tmp_path, name):
    write, ir, train, test = FULL[name]
    write(tmp_path / "src")
    d = build(DATASETS.get(name), ir, tmp_path / "out", source_dir=tmp_path / "src", verify_checksums=False)
    m = manifest(d)
    assert m["splits"]["train"]["num_rows"] == train
    assert m["splits"]["test"]["num_rows"] == test
    assert m["expected"]["train"] == train
    if name == "flowers102":
        assert m["splits"]["paper_test"]["num_rows"] == 1020
        assert m["class_names"][0] == "pink primrose"  # torchvision's names for the 102 classes
    # the authors' protocol gives the same counts (Fruits: its loader's n_max is the second-largest class)
    da = build(
        DATASETS.get(name),
        ir,
        tmp_path / "out",
        source_dir=tmp_path / "src",
        verify_checksums=False,
        protocol="authors",
    )
    ma = manifest(da)
    if name != "fruits360":
        assert ma["splits"]["train"]["num_rows"] == train
    else:
        second = sorted(m["profile"]["pool_class_counts"])[-2]
        assert ma["splits"]["train"]["num_rows"] == sum(lt_counts(second, 24, 100))
    assert ma["splits"]["test"]["num_rows"] == (1020 if name == "flowers102" else test)
    # both IRs build
    d100 = build(
        DATASETS.get(name), 110 - ir, tmp_path / "out", source_dir=tmp_path / "src", verify_checksums=False
    )
    assert manifest(d100)["splits"]["train"]["num_rows"] < 100_000


def test_cars_label_order_would_not_reproduce():
    """Why Cars needs count order: with label order n_max = 49 is infeasible for 13 low-label classes."""
    prof = lt_counts(49, 196, 10)
    assert sum(prof) == 3666
    assert sum(min(n, c) for n, c in zip(prof, fx.CARS_TRAIN, strict=True)) == 3597
    ranked = sorted(fx.CARS_TRAIN, reverse=True)
    assert sorted(fx.CARS_TRAIN)[-2] == 49 and all(c >= n for c, n in zip(ranked, prof, strict=True))
