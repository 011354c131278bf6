"""CIFAR-10/100-LT builds from generated sources in the exact official pickle layout.

Default suite: tiny per-class counts (fast). ``slow``: full-size 5,000 / 500-per-class sources, the four paper
counts exactly and LDAM-DRW index identity at full size.
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
from cifar_fixtures import (  # noqa: E402
    CIFAR10_CLASSES,
    CIFAR100_FINE,
    ldam_reference,
    official_md5_patch,
    pickle_keys,
    run_cli,
    truncated_copy,
    write_cifar,
)
from ltbench.builders.build import build  # noqa: E402
from ltbench.builders.profile import ldam_select, lt_counts  # noqa: E402

from ltbench.errors import LTBenchError  # noqa: E402
from ltbench.registry import DATASETS  # noqa: E402

os.environ.setdefault("LTBENCH_NO_PROGRESS", "1")


@pytest.fixture(scope="module")
def c10(tmp_path_factory):
    return write_cifar(tmp_path_factory.mktemp("c10"), "cifar10", train_per_class=100, test_per_class=3)


@pytest.fixture(scope="module")
def c100_tar(tmp_path_factory):
    return write_cifar(tmp_path_factory.mktemp("c100"), "cifar100", 10, 1, archive=True, seed=1)


def read_rows(split_dir: Path, split: str) -> tuple[list[bytes], np.ndarray]:
    m = json.loads((split_dir / "manifest.json").read_text())
    tables = [pq.read_table(split_dir / f) for f in m["splits"][split]["files"]]
    images = [r["bytes"] for t in tables for r in t.column("image").to_pylist()]
    labels = np.concatenate([t.column("label").to_numpy() for t in tables])
    return images, labels


def check_build(split_dir: Path, fx, num_classes: int, imb_factor: float, seed: int = 0) -> dict:
    """Train = LDAM's selection of the fixture (indices, labels, pixels); test = the whole test set."""
    m = json.loads((split_dir / "manifest.json").read_text())
    ref, per_cls = ldam_reference(list(fx.train_labels), num_classes, imb_factor, seed)
    keys = np.array([int(k) for k in m["splits"]["train"]["source_keys"]])
    np.testing.assert_array_equal(keys, ref)
    assert m["splits"]["train"]["class_counts"] == per_cls
    images, labels = read_rows(split_dir, "train")
    np.testing.assert_array_equal(labels, fx.train_labels[ref])
    for row in (0, len(ref) // 2, len(ref) - 1):
        np.testing.assert_array_equal(
            np.asarray(Image.open(io.BytesIO(images[row]))), fx.image("train", ref[row])
        )
    timages, tlabels = read_rows(split_dir, "test")
    np.testing.assert_array_equal(tlabels, fx.test_labels)
    assert [int(k) for k in m["splits"]["test"]["source_keys"]] == list(range(len(fx.test_labels)))
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(timages[-1]))), fx.image("test", len(tlabels) - 1)
    )
    assert all(b.startswith(b"\x89PNG") for b in images[:5])
    return m


def test_fixture_is_the_official_pickle_layout(c10, c100_tar, tmp_path):
    folder = c10.source_dir / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*(f"data_batch_{k}" for k in range(1, 6)), "test_batch", "batches.meta"]
    )
    as_bytes, as_latin1 = pickle_keys(folder / "data_batch_1")
    assert as_bytes == [b"batch_label", b"labels", b"data", b"filenames"]
    assert as_latin1 == ["batch_label", "labels", "data", "filenames"]
    meta_bytes, _ = pickle_keys(folder / "batches.meta")
    assert meta_bytes == [b"num_cases_per_batch", b"label_names", b"num_vis"]
    from ltbench.builders.sources.cifar import unchecked_class
    from torchvision.datasets import CIFAR10

    ds = unchecked_class(CIFAR10)(root=str(c10.source_dir), train=True)
    assert ds.classes == CIFAR10_CLASSES and ds.data.shape == (1000, 32, 32, 3)
    np.testing.assert_array_equal(ds.data[7], c10.image("train", 7))
    import tarfile

    with tarfile.open(c100_tar.path) as tf:
        assert sorted(tf.getnames()) == [
            "cifar-100-python",
            "cifar-100-python/meta",
            "cifar-100-python/test",
            "cifar-100-python/train",
        ]
        keys = pickle_keys_from(tf, "cifar-100-python/train")
        assert keys == [b"filenames", b"batch_label", b"fine_labels", b"coarse_labels", b"data"]


def pickle_keys_from(tf, member: str) -> list:
    import pickle

    return list(pickle.load(tf.extractfile(member), encoding="bytes"))


@pytest.mark.parametrize("ir,imb_factor", [(100, 0.01), (10, 0.1)])
def test_cifar10_from_folder_is_ldam_identical(c10, tmp_path, ir, imb_factor):
    out = build(DATASETS.get("cifar10"), ir, tmp_path, source_dir=c10.source_dir, verify_checksums=False)
    m = check_build(out, c10, 10, imb_factor)
    assert out.name == f"cifar10-lt{ir}"
    files = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    skipped = "md5 not verified (--no-verify-checksums)"
    assert m["checksums"] == {f"cifar-10-batches-py/{f}": skipped for f in [*files, "batches.meta"]}
    assert m["class_names"] == CIFAR10_CLASSES
    assert m["profile"]["n_max"] == 100 and m["profile"]["n_max_rule"] == "mean"
    assert sum(m["splits"]["train"]["class_counts"]) == sum(lt_counts(100, 10, ir))


def test_cifar100_from_archive_and_seed(c100_tar, tmp_path):
    before = sorted(p.name for p in c100_tar.source_dir.iterdir())
    out = build(
        DATASETS.get("cifar100"), 10, tmp_path, seed=3, source_dir=c100_tar.source_dir, verify_checksums=False
    )
    m = check_build(out, c100_tar, 100, 0.1, seed=3)
    assert m["class_names"] == CIFAR100_FINE and m["seed"] == 3
    assert (
        sorted(p.name for p in c100_tar.source_dir.iterdir()) == before
    )  # nothing extracted beside the archive
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar100-lt10"]


def test_verified_checksums_are_recorded(c10, tmp_path, monkeypatch):
    official_md5_patch(monkeypatch, "cifar10", c10.md5)
    out = build(DATASETS.get("cifar10"), 100, tmp_path, source_dir=c10.source_dir)
    checks = json.loads((out / "manifest.json").read_text())["checksums"]
    assert len(checks) == 7 and set(checks.values()) == {"md5 verified"}  # 5 batches, test, meta


def test_verified_archive(c100_tar, tmp_path, monkeypatch):
    official_md5_patch(monkeypatch, "cifar100", c100_tar.md5)
    out = build(DATASETS.get("cifar100"), 100, tmp_path, source_dir=c100_tar.source_dir)
    checks = json.loads((out / "manifest.json").read_text())["checksums"]
    names = ["cifar-100-python.tar.gz", *(f"cifar-100-python/{f}" for f in ("train", "test", "meta"))]
    assert checks == {n: "md5 verified" for n in names}


def test_bad_checksum_is_one_line_exit_2(c10, tmp_path, capsys):
    code, out, err = run_cli(
        ["build", "cifar10", "--ir", "100", "--source-dir", c10.source_dir, "--out", tmp_path], capsys
    )
    assert code == 2
    assert err.strip().count("\n") == 0 and "checksum mismatch" in err and "data_batch_1" in err
    assert "--no-verify-checksums" in err
    assert list(tmp_path.iterdir()) == []


def test_missing_source_names_file_and_download(tmp_path, capsys):
    code, _, err = run_cli(
        ["build", "cifar100", "--ir", "10", "--source-dir", tmp_path / "src", "--out", tmp_path], capsys
    )
    assert code == 2 and err.count("\n") == 1
    assert str(tmp_path / "src" / "cifar-100-python.tar.gz") in err and "--download" in err


def test_incomplete_folder_names_missing_file(c10, tmp_path):
    src = tmp_path / "src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    for p in (c10.source_dir / "cifar-10-batches-py").iterdir():
        if p.name != "data_batch_3":
            (src / p.name).write_bytes(p.read_bytes())
    with pytest.raises(LTBenchError, match=r"data_batch_3"):
        build(
            DATASETS.get("cifar10"), 10, tmp_path / "out", source_dir=tmp_path / "src", verify_checksums=False
        )
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_corrupt_archive_is_one_line(c100_tar, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    truncated_copy(c100_tar.path, src / "cifar-100-python.tar.gz")
    args = ["build", "cifar100", "--ir", "10", "--source-dir", src, "--out", tmp_path / "out"]
    code, _, err = run_cli([*args, "--no-verify-checksums"], capsys)
    assert code == 2 and err.count("\n") == 1 and "corrupt" in err
    code, _, err = run_cli(args, capsys)  # with verification: the md5 of the archive
    assert code == 2 and "checksum mismatch" in err and "cifar-100-python.tar.gz" in err
    assert not (tmp_path / "out" / "cifar100-lt10").exists()


def test_corrupt_pickle_is_one_line(c10, tmp_path, capsys):
    src = tmp_path / "src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    for p in (c10.source_dir / "cifar-10-batches-py").iterdir():
        (src / p.name).write_bytes(p.read_bytes())
    truncated_copy(src / "data_batch_2", src / "data_batch_2", keep=0.3)
    args = ["build", "cifar10", "--ir", "10", "--source-dir", tmp_path / "src", "--out", tmp_path / "out"]
    code, _, err = run_cli([*args, "--no-verify-checksums"], capsys)
    assert code == 2 and err.count("\n") == 1 and "cannot read the CIFAR-10 pickles" in err


def test_download_uses_torchvision_and_keeps_only_the_archive(c100_tar, tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    calls = []

    def fake_download(url, root, filename=None, md5=None):
        calls.append(url)
        Path(root, filename).write_bytes(c100_tar.path.read_bytes())

    monkeypatch.setattr(tvu, "download_url", fake_download)
    src = tmp_path / "cache"
    out = build(
        DATASETS.get("cifar100"), 10, tmp_path / "out", source_dir=src, download=True, verify_checksums=False
    )
    assert calls == ["https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"]
    assert [p.name for p in src.iterdir()] == ["cifar-100-python.tar.gz"]
    check_build(out, c100_tar, 100, 0.1)


def test_ldam_identity_at_full_size_labels():
    """ltbench's selection equals LDAM's on official-size label vectors, and gives the paper's four counts."""
    rng = np.random.default_rng(5)
    for C, per_class, ir, imb_factor, total in [
        (10, 5000, 100, 0.01, 12406),
        (10, 5000, 10, 0.1, 20431),
        (100, 500, 100, 0.01, 10847),
        (100, 500, 10, 0.1, 19573),
    ]:
        labels = rng.permutation(np.repeat(np.arange(C), per_class))
        ref, per_cls = ldam_reference(list(labels), C, imb_factor, rand_number=0)
        counts = lt_counts(len(labels) / C, C, ir)
        assert counts == per_cls and sum(counts) == total
        np.testing.assert_array_equal(ldam_select(labels, counts, 0), ref)


@pytest.mark.slow
def test_full_size_four_counts_exact(tmp_path):
    """Full-size fixtures (5,000 / 500 per class, 10,000 test): the paper's counts and LDAM identity."""
    fx10 = write_cifar(tmp_path / "s10", "cifar10", 5000, 1000)
    fx100 = write_cifar(tmp_path / "s100", "cifar100", 500, 100, archive=True)
    expected = {
        ("cifar10", 100): 12406,
        ("cifar10", 10): 20431,
        ("cifar100", 100): 10847,
        ("cifar100", 10): 19573,
    }
    for (name, ir), total in expected.items():
        fx = fx10 if name == "cifar10" else fx100
        spec = DATASETS.get(name)
        out = build(spec, ir, tmp_path / "out", source_dir=fx.source_dir, verify_checksums=False)
        m = check_build(out, fx, spec.num_classes, 1 / ir)
        assert m["splits"]["train"]["num_rows"] == total == spec.expected[ir]["train"]
        assert m["splits"]["test"]["num_rows"] == 10000 == spec.expected[ir]["test"]
        assert f"Built counts {{'train': {total}, 'test': 10000}} equal" in (out / "README.md").read_text()
