"""Split protocols (``--protocol ltbench|authors``), the ``authors`` head / medium / tail groups, and the
rough edges found on real metadata files.

Each ``reference_*`` below re-implements, in this file and from the official files alone, what the CANDLE
authors' loader (gistvision/SADE-AgnosticLT f0c042c ``custum_data/<loader>.py``) selects; ltbench's
``--protocol authors`` build must keep exactly those images, in that order. The loaders' ``np.argsort`` calls
use :func:`argsort_introsort` (numpy 1.17-1.24's algorithm), pinned separately on hand-derived cases.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import source_fixtures as fx
from click.testing import CliRunner
from ltbench.builders.authors import _aheapsort, argsort_introsort
from ltbench.builders.build import build
from ltbench.builders.profile import lt_counts

from ltbench.cli import cli
from ltbench.errors import LTBenchError, download_or_hint
from ltbench.groups import group_classes, manifest_groups
from ltbench.registry import DATASETS

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("LTBENCH_NO_PROGRESS", "1")

# Split fingerprints (fx.split_fingerprint) of the default-protocol builds of fx.write_small, computed with
# main's code before protocols existed (commit 673508e): the ltbench protocol must keep these bytes.
BEFORE_PROTOCOLS = {
    "aircraft": "8a41567580dd4430eb69bb2d005af0d2eb81eeb7285ec701a8ee0b6ae8e0f3a5",
    "caltech101": "e5f818a64bf5a9e865f887e1c10b9d1871c3c968fc4e8d0bbfbf66992a1c7613",
    "cars": "f67f72c13f1d80e765660d5e1f98fc44ced555f915f7017ee188e0482d4a4f99",
    "cifar10": "dd7b382743adc85fbf1d322de007bcb21f39ecb365c1f0213a7f5415effdc47b",
    "cifar100": "0569b4008cb6dcaaae938e6b07ff8675687f082ac9c36e5e8deb39b4d2478e27",
    "cub200": "ca94b12364df13b3585e497a9f904c78fb2e48675df730106adb4480579bf179",
    "dogs": "e91bfb5fa82e522ecd7f3fce839e3954c746963b196a9d39da8fe0b94432f9c5",
    "dtd": "fc938bdbf1de98da506b6ff63501c10a93250898f6f0c6c9f4cfd4aefd547023",
    "flowers102": "b28915d0ad643ae3507d39dfd6e89b4bf49574ccf7a9a6eba64a8d2cfd864a9f",
    "fruits360": "729a6b6e19ac3342b817b3d5c76f864da35af2abb929f9a55c9c8dc59182f791",
    "digits": "5c61a405e5a015d98608a9534f47c7d20f2498f0d9dfb1bcfe7cfa16d31a5448",
}
# class_dict of custum_data/new_dataset.py: head / medium / tail sizes (the table, checked by hand).
AUTHORS_SIZES = {
    "cifar10": (3, 4, 3),
    "cifar100": (36, 35, 29),
    "cub200": (72, 70, 58),
    "aircraft": (36, 35, 29),
    "dogs": (43, 42, 35),
    "cars": (70, 69, 57),
    "flowers102": (36, 36, 30),
    "dtd": (14, 19, 14),
    "caltech101": (36, 36, 30),
    "fruits360": (7, 7, 10),
}


def manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text())


def build_fx(name: str, tmp_path: Path, protocol: str = "ltbench", **kw) -> tuple[Path, Path]:
    src = tmp_path / "src"
    opts = fx.write_small(name, src) if name != "digits" else {"ir": 10}
    ir = opts.pop("ir")
    d = build(DATASETS.get(name), ir, tmp_path / "out", source_dir=src, protocol=protocol, **opts, **kw)
    return d, src


# ------------------------------------------------------------------------------- the ltbench protocol's bytes


@pytest.mark.parametrize("name", sorted(BEFORE_PROTOCOLS))
def test_ltbench_protocol_bytes_unchanged(tmp_path, name):
    d, _ = build_fx(name, tmp_path)
    m = manifest(d)
    assert d.name == DATASETS.get(name).split_name(10 if name != "fruits360" else 100)
    assert m["protocol"] == "ltbench" and "protocol_info" not in m
    assert fx.split_fingerprint(m) == BEFORE_PROTOCOLS[name]


# ------------------------------------------------------------------------ numpy 1.17-1.24 argsort (introsort)


def test_introsort_small_arrays_are_insertion_sorted_hence_stable():
    assert argsort_introsort([1, 0, 1, 0]).tolist() == [1, 3, 0, 2]
    assert argsort_introsort([5] * 16).tolist() == list(range(16))


def test_introsort_partition_order_of_ties_by_hand():
    # 17 equal keys: one median-of-3 partition (pivot at 8, moved to 15; pi/pj swap 1..7 with 14..8; pivot
    # back to 8), then insertion sorts that move nothing; traced by hand from npysort's aquicksort_.
    assert argsort_introsort([0] * 17).tolist() == [0, 14, 13, 12, 11, 10, 9, 15, 8, 6, 5, 4, 3, 2, 1, 7, 16]
    # the authors' class re-rank, np.argsort(counts)[::-1], of 17 tied counts: the reverse of that order
    assert argsort_introsort(np.full(17, 100))[::-1].tolist()[:3] == [16, 7, 1]


def test_heapsort_fallback_by_hand():
    a = [0, 1, 2]
    _aheapsort([7, 7, 7], a, 0, 3)  # heapify leaves [0,1,2]; two pops give [2,1,0] then [1,2,0]
    assert a == [1, 2, 0]


def test_introsort_sorts_and_takes_the_heap_path_on_a_median_of_3_killer():
    import ltbench.builders.authors as au

    n, k = 1000, 500
    killer = [0] * n
    for i in range(1, k + 1):
        if i % 2:
            killer[i - 1], killer[i] = i, k + i
        killer[k + i - 1] = 2 * i
    calls = []
    real = au._aheapsort
    try:
        au._aheapsort = lambda *a: (calls.append(a[3]), real(*a))
        out = au.argsort_introsort(killer)
    finally:
        au._aheapsort = real
    assert calls  # depth limit 2*floor(log2 1000) = 18 exceeded
    assert sorted(out.tolist()) == list(range(n))
    assert all(killer[a] <= killer[b] for a, b in zip(out[:-1], out[1:], strict=True))


# ------------------------------------------------------------------- independent re-implementations (tests)


def _shuffle_first(t: np.ndarray, s: np.ndarray, counts: list[int]) -> list[int]:
    """The loaders' gen_imbalanced_data: per class label in order, shuffle its positions, keep the first n."""
    out: list[int] = []
    for c, n in enumerate(counts):
        idx = np.where(t == c)[0]
        np.random.shuffle(idx)
        out += [int(i) for i in s[idx[:n]]]
    return out


def _profile(n_max: float, C: int, ir: float) -> list[int]:
    return [int(n_max * ((1 / ir) ** (c / (C - 1.0)))) for c in range(C)]


def _sort_dataset(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Dogs/Cars/Fruits ``sort_dataset``: (targets, sample positions, old label of each new label)."""
    num_in_class = [int((targets == c).sum()) for c in np.unique(targets)]
    idx = argsort_introsort(targets)
    t, s = targets[idx], np.arange(len(targets))[idx]
    new_sorted = argsort_introsort(num_in_class)[::-1]
    t = np.array([int(np.where(new_sorted == v)[0][0]) for v in t])
    idx = argsort_introsort(t)
    return t[idx], s[idx], [int(k) for k in new_sorted]


def reference_cub200(src: Path, ir: float) -> list[str]:
    base = src / "CUB_200_2011"
    rows = [line.split() for line in (base / "images.txt").read_text().splitlines()]
    label = dict(line.split() for line in (base / "image_class_labels.txt").read_text().splitlines())
    train = dict(line.split() for line in (base / "train_test_split.txt").read_text().splitlines())
    C = len((base / "classes.txt").read_text().splitlines())
    np.random.seed(0)
    counts = [int(30 * ((1 / ir) ** (c / (C - 1.0)))) for c in range(C)]
    keys: list[str] = []
    for c in range(1, C + 1):
        pool = [p for i, p in rows if train[i] == "1" and label[i] == str(c)]
        draw = np.random.choice(30 if c == 1 else len(pool), counts[c - 1])
        keys += [f"images/{pool[j]}" for j in draw]
    return keys


def reference_dogs(src: Path, ir: float) -> list[str]:
    from scipy.io import loadmat

    mat = loadmat(src / "stanford_dogs" / "train_list.mat")
    files = [str(item[0][0]) + ".jpg" for item in mat["annotation_list"]]
    targets = np.array([int(item[0]) - 1 for item in mat["labels"]])
    np.random.seed(0)
    t, s, _ = _sort_dataset(targets)
    C = len(np.unique(targets))
    return [f"Images/{files[i]}" for i in _shuffle_first(t, s, _profile(len(files) / C, C, ir))]


def reference_cars(src: Path, ir: float) -> list[str]:
    from scipy.io import loadmat

    annos = loadmat(src / "stanford_cars" / "devkit" / "cars_train_annos.mat")["annotations"][0]
    files = [str(np.ravel(a[-1])[0]) for a in annos]  # fname, class: the last two fields
    targets = np.array([int(np.ravel(a[-2])[0]) - 1 for a in annos])
    num_in_class = [int((targets == c).sum()) for c in np.unique(targets)]
    np.random.seed(0)
    t, s, _ = _sort_dataset(targets)
    n_max = max(sorted(num_in_class)[::-1][1:])
    C = len(num_in_class)
    return [f"cars_train/{files[i]}" for i in _shuffle_first(t, s, _profile(n_max, C, ir))]


def reference_aircraft(src: Path, ir: float) -> list[str]:
    data = src / "fgvc-aircraft-2013b" / "data"
    ids, names = [], []
    with open(data / "images_variant_trainval.txt") as f:
        for line in f:
            parts = line.split(" ")
            ids.append(parts[0])
            names.append(" ".join(parts[1:]))  # with its newline, as the loader keeps it
    classes = list(np.unique(names))
    targets = np.array([classes.index(n) for n in names])
    np.random.seed(0)
    C = len(classes)
    kept = _shuffle_first(targets, np.arange(len(ids)), _profile(len(ids) / C, C, ir))
    return [f"data/images/{ids[i]}.jpg" for i in kept]


def reference_dtd(src: Path, ir: float) -> list[str]:
    base = src / "dtd" / "dtd"
    categories = sorted(os.listdir(base / "images"))
    samples = []
    for f in ("train1.txt", "val1.txt"):
        samples += (base / "labels" / f).read_text().split()
    targets = np.array([categories.index(p.split("/")[0]) for p in samples])
    np.random.seed(0)
    C = len(categories)
    kept = _shuffle_first(targets, np.arange(len(samples)), _profile(len(samples) / C, C, ir))
    return [f"images/{samples[i]}" for i in kept]


def reference_cifar(src: Path, name: str, ir: float) -> list[str]:
    """IMBALANCECIFAR (LDAM-DRW, which binary_train.py uses for CIFAR) on the pickles' labels in file order."""
    import pickle

    from cifar_fixtures import ldam_reference

    if name == "cifar10":
        files, key, C = [f"cifar-10-batches-py/data_batch_{k}" for k in range(1, 6)], b"labels", 10
    else:
        files, key, C = ["cifar-100-python/train"], b"fine_labels", 100
    targets = []
    for f in files:
        with open(src / f, "rb") as fh:
            targets += pickle.load(fh, encoding="bytes")[key]
    kept, _ = ldam_reference(targets, C, 1 / ir, 0)
    return [str(int(i)) for i in kept]


# the closest deterministic equivalents where the authors' own files are not published
def reference_flowers102(src: Path, ir: float) -> list[str]:
    from scipy.io import loadmat

    base = src / "flowers-102"
    labels = loadmat(base / "imagelabels.mat")["labels"].ravel().astype(int) - 1
    setid = loadmat(base / "setid.mat")
    ids = [*setid["trnid"].ravel(), *setid["valid"].ravel()]
    targets = np.array([labels[i - 1] for i in ids])
    np.random.seed(0)
    C = len(np.unique(targets))
    kept = _shuffle_first(targets, np.arange(len(ids)), _profile(len(ids) / C, C, ir))
    return [f"jpg/image_{ids[i]:05d}.jpg" for i in kept]


def reference_caltech101(src: Path, ir: float) -> list[str]:
    base = src / "caltech101" / "101_ObjectCategories"
    pool, targets = [], []
    rng = np.random.RandomState(1234)  # ltbench's TFDS-style pool stands in for the private list
    for c, name in enumerate(sorted(os.listdir(base))):
        files = sorted(os.listdir(base / name))
        for j in sorted(rng.choice(len(files), 30, replace=False)):
            pool.append(f"101_ObjectCategories/{name}/{files[j]}")
            targets.append(c)
    targets = np.array(targets)
    np.random.seed(42)
    idx = argsort_introsort(targets)
    C = len(np.unique(targets))
    kept = _shuffle_first(targets[idx], idx, _profile(len(pool) / C, C, ir))
    return [pool[i] for i in kept]


def reference_fruits360(src: Path, ir: float) -> list[str]:
    root = src / "fruits-360-original-size" / "Training"
    classes = sorted(os.listdir(root))
    samples, targets = [], []
    for c in classes:
        for p in sorted(os.listdir(root / c)):  # the loader's os.listdir, sorted here
            samples.append(f"Training/{c}/{p}")
            targets.append(classes.index(c))
    targets = np.array(targets)
    num_in_class = [int((targets == c).sum()) for c in np.unique(targets)]
    np.random.seed(0)  # the loader never seeds; 0 stands in
    t, s, _ = _sort_dataset(targets)
    n_max = max(sorted(num_in_class)[::-1][1:])
    return [samples[i] for i in _shuffle_first(t, s, _profile(n_max, len(classes), ir))]


REFERENCES = {
    "aircraft": (reference_aircraft, True),
    "caltech101": (reference_caltech101, False),
    "cars": (reference_cars, True),
    "cifar10": (lambda src, ir: reference_cifar(src, "cifar10", ir), True),
    "cifar100": (lambda src, ir: reference_cifar(src, "cifar100", ir), True),
    "cub200": (reference_cub200, True),
    "dogs": (reference_dogs, True),
    "dtd": (reference_dtd, True),
    "flowers102": (reference_flowers102, False),
    "fruits360": (reference_fruits360, False),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_authors_protocol_selects_the_reference_files(tmp_path, name, capsys):
    d, src = build_fx(name, tmp_path, protocol="authors")
    ir = 100 if name == "fruits360" else 10
    m = manifest(d)
    ref, exact = REFERENCES[name]
    saved = np.random.get_state()
    try:
        expected = ref(src, ir)
    finally:
        np.random.set_state(saved)
    assert d.name == f"{DATASETS.get(name).split_name(ir)}-authors"
    assert m["splits"]["train"]["source_keys"] == expected
    assert m["protocol"] == "authors" and m["protocol_info"]["exact"] is exact
    warned = "not reproduced exactly" in capsys.readouterr().err
    assert warned is (not exact)
    if not exact:
        assert m["protocol_info"]["reason"]
    card = (d / "README.md").read_text()
    assert "Protocol `authors`" in card and ("Not the authors' exact image list" in card) is (not exact)


def test_authors_reranking_needs_the_2022_sort(tmp_path):
    """On the Dogs fixture (20 tied classes) the stable order would pick other classes than the introsort."""
    from scipy.io import loadmat

    d, src = build_fx("dogs", tmp_path, protocol="authors")
    lt = manifest(d)["profile"]["lt_order"]
    targets = np.array([int(i[0]) - 1 for i in loadmat(src / "stanford_dogs/train_list.mat")["labels"]])
    counts = [int((targets == c).sum()) for c in range(20)]
    assert lt == argsort_introsort(counts)[::-1].tolist()
    assert lt != np.argsort(counts, kind="stable")[::-1].tolist()


def test_flowers_authors_test_is_valid(tmp_path):
    d, src = build_fx("flowers102", tmp_path, protocol="authors")
    from scipy.io import loadmat

    valid = loadmat(src / "flowers-102" / "setid.mat")["valid"].ravel()
    m = manifest(d)
    assert m["splits"]["test"]["source_keys"] == [f"jpg/image_{i:05d}.jpg" for i in valid]
    assert m["splits"]["official_test"]["num_rows"] == sum([25, 22, 30, 24, 27]) - 100


def test_cub200_authors_full_size_duplicates(tmp_path):
    """Real CUB per-class train counts (30, six classes 29): 2,253 rows of which 497 repeat an earlier image
    (the count follows from np.random.seed(0) and the pool sizes alone, re-derived here)."""
    train, test = fx.cub_real_counts()
    fx.write_cub200(tmp_path / "src", train, test, distinct=False)
    saved = np.random.get_state()
    try:
        np.random.seed(0)
        sizes = [30, *train[1:]]
        draws = [np.random.choice(L, n) for L, n in zip(sizes, _profile(30, 200, 10), strict=True)]
    finally:
        np.random.set_state(saved)
    expected_dups = sum(len(x) - len(set(x.tolist())) for x in draws)
    assert expected_dups == 497
    d = build(DATASETS.get("cub200"), 10, tmp_path / "out", source_dir=tmp_path / "src", protocol="authors")
    m = manifest(d)
    keys = m["splits"]["train"]["source_keys"]
    assert len(keys) == 2253 and len(keys) - len(set(keys)) == 497
    assert m["protocol_info"]["duplicates"] == 497 and m["protocol_info"]["exact"] is True
    assert [len(m["groups"][g]) for g in ("head", "medium", "tail")] == [72, 70, 58]
    assert m["groups"]["head"] == list(range(72))  # CUB keeps label order
    assert "497 rows repeat" in (d / "README.md").read_text()
    from ltbench.builders.verify import verify_split

    assert verify_split(d) == []  # duplicate rows are rows like any other


# ------------------------------------------------------------------------------------------------- groups


@pytest.mark.parametrize("name", sorted(AUTHORS_SIZES))
def test_authors_group_sizes(name):
    spec = DATASETS.get(name)
    assert spec.default_grouping == "authors"
    C = spec.num_classes
    order = list(range(C))[::-1]  # any LT order: the groups follow it, not the counts
    g = group_classes([1] * C, "authors", order=order, bounds=spec.authors.groups)
    assert tuple(len(g[k]) for k in ("head", "medium", "tail")) == AUTHORS_SIZES[name]
    assert g["head"] == sorted(order[: AUTHORS_SIZES[name][0]])


def test_large_sets_keep_shots_and_digits_thirds():
    for name in ("imagenet-lt", "places-lt", "inat-lt"):
        assert DATASETS.get(name).default_grouping == "shots"
    assert DATASETS.get("digits").default_grouping == "thirds"


def test_groups_follow_the_lt_order_of_count_ordered_sources(tmp_path):
    d, _ = build_fx("cars", tmp_path)  # ltbench protocol, count order (ties by label)
    m = manifest(d)
    order = m["profile"]["lt_order"]
    pool = m["profile"]["pool_class_counts"]
    assert order == sorted(range(20), key=lambda c: (-pool[c], c))
    assert m["groups"]["rule"] == "authors" and m["groups"]["head"] == sorted(order)  # 20 < 70: all head


def test_set_groups_thirds_and_errors(tmp_path, monkeypatch):
    fx.write_small("dtd", tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    args = ["build", "dtd", "--ir", "10", "--source-dir", "src"]
    r = CliRunner().invoke(cli, [*args, "--set", "groups=thirds"])
    assert r.exit_code == 0, r.output
    m = manifest(tmp_path / "data" / "dtd-lt10")
    counts = m["splits"]["train"]["class_counts"]
    assert m["groups"]["rule"] == "thirds"
    assert {k: m["groups"][k] for k in ("head", "medium", "tail")} == group_classes(counts, "thirds")
    for bad, msg in (("groups=x", "unknown grouping"), ("lr=1", "no setting")):
        with pytest.raises(LTBenchError, match=msg):
            CliRunner().invoke(cli, [*args, "--force", "--set", bad], catch_exceptions=False)
    with pytest.raises(LTBenchError, match="no loader"):
        build(DATASETS.get("digits"), 10, tmp_path / "o", protocol="authors")
    with pytest.raises(LTBenchError, match="does not apply"):
        build(DATASETS.get("dtd"), 10, tmp_path / "o", seed=1, source_dir="src", protocol="authors")
    with pytest.raises(LTBenchError, match="unknown protocol"):
        build(DATASETS.get("dtd"), 10, tmp_path / "o", source_dir="src", protocol="paper")


def test_evaluator_reads_groups_from_the_manifest():
    from ltbench.data import SplitInfo
    from ltbench.evaluate import summarize

    groups = {"head": [2], "medium": [0], "tail": [1]}  # not what thirds would give for these counts
    info = SplitInfo("x", Path("."), {"groups": {"rule": "authors", **groups}, "protocol": "authors"})
    assert info.groups == groups and info.protocol == "authors"
    old = SplitInfo("y", Path("."), {"groups": {"rule": "thirds", "classes": groups}})
    assert old.groups == groups and old.protocol == "ltbench"
    labels = np.array([0, 1, 2, 2])
    logits = np.eye(3)[[0, 0, 2, 2]]
    m = summarize(labels, logits, [30, 20, 10], info.groups)
    assert (m["head"], m["medium"], m["tail"]) == (1.0, 1.0, 0.0)
    assert manifest_groups({"groups": {"rule": "shots", **groups}}) == groups


# ------------------------------------------------------------------------------------------- rough edges


def test_places_lt_data_256_list_paths_give_plain_names(tmp_path):
    base = tmp_path / "src" / "Places_LT"
    rows = [
        ("data_256/a/airfield/00000001.jpg", 0),
        ("data_256/a/apartment_building/outdoor/00000002.jpg", 1),
    ]
    test = [("val_256/Places365_val_00000003.jpg", 0)]
    fx.write_list_set(
        base, {"Places_LT_train.txt": rows, "Places_LT_val.txt": rows, "Places_LT_test.txt": test}
    )
    m = manifest(build(DATASETS.get("places-lt"), None, tmp_path / "out", source_dir=tmp_path / "src"))
    assert m["class_names"][:2] == ["airfield", "apartment_building/outdoor"]


def test_checksums_record_what_was_verified(tmp_path, monkeypatch):
    import tarfile

    train, test = [30, 30], [1, 1]
    fx.write_cub200(tmp_path / "src", train, test)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["build", "cub200", "--ir", "10", "--source-dir", "src"])
    assert r.exit_code == 0, r.output
    assert manifest(tmp_path / "data" / "cub200-lt10")["checksums"] == {}
    built = [line for line in r.output.splitlines() if line.startswith("built")]
    assert "no source checksum verified" in built[-1]
    (tmp_path / "src2").mkdir()
    with tarfile.open(tmp_path / "src2" / "CUB_200_2011.tgz", "w:gz") as tf:
        tf.add(tmp_path / "src" / "CUB_200_2011", arcname="CUB_200_2011")
    args = ["build", "cub200", "--ir", "10", "--source-dir", "src2", "--out", "d2", "--no-verify-checksums"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    m = manifest(tmp_path / "d2" / "cub200-lt10")
    assert m["checksums"] == {"CUB_200_2011.tgz": "md5 not verified (--no-verify-checksums)"}
    built = [line for line in r.output.splitlines() if line.startswith("built")]
    assert "NOT verified for CUB_200_2011.tgz" in built[-1]
    assert (
        "`CUB_200_2011.tgz` md5 not verified" in (tmp_path / "d2" / "cub200-lt10" / "README.md").read_text()
    )


def test_inat_not_found_names_the_txt_lists(tmp_path):
    with pytest.raises(LTBenchError, match="iNaturalist18_train.txt"):
        build(DATASETS.get("inat-lt"), None, tmp_path / "o", source_dir=tmp_path)


def test_imagenet_lt_hint_names_the_source(tmp_path):
    with pytest.raises(LTBenchError) as e:
        build(DATASETS.get("imagenet-lt"), None, tmp_path / "o", source_dir=tmp_path)
    assert "ltbench datasets --details imagenet-lt" in e.value.fix


@pytest.mark.parametrize("protocol", ["ltbench", "authors"])
def test_empty_class_error_names_class_and_file(tmp_path, protocol):
    fx.write_cub200(tmp_path / "src", [30, 0, 30], [2, 2, 2])
    with pytest.raises(LTBenchError) as e:
        build(DATASETS.get("cub200"), 10, tmp_path / "o", source_dir=tmp_path / "src", protocol=protocol)
    msg = str(e.value)
    assert "class 1 ('Bird_2'" in msg and "classes.txt" in msg and "has 0 pool images" in msg


def test_details_of_a_profile_less_set_show_no_n_max_rule():
    r = CliRunner().invoke(cli, ["datasets", "--details", "inat-lt"])
    assert r.exit_code == 0 and "n_max" not in r.output
    r = CliRunner().invoke(cli, ["datasets", "--details", "cars"])
    assert "n_max rule" in r.output and "second_max" in r.output


# ------------------------------------------------------------------------------------------ download_or_hint


def test_download_or_hint_keeps_bugs_and_words_network_errors():
    from urllib.error import URLError

    def offline():
        raise URLError("no route to host")

    with pytest.raises(LTBenchError, match=r"download of x failed \(URLError"):
        download_or_hint(offline, "download of x", "fetch it by hand")

    def bug():
        raise TypeError("unexpected keyword")

    with pytest.raises(TypeError, match="unexpected keyword"):
        download_or_hint(bug, "download of x", "fetch it by hand")
    with pytest.raises(RuntimeError):  # only where a caller names it (torchvision's corrupt download)
        download_or_hint(lambda: (_ for _ in ()).throw(RuntimeError("boom")), "x", "y")


def test_reader_download_bug_keeps_its_traceback(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu
    from ltbench.builders.readers import download

    def broken(url, root, filename=None, md5=None):
        raise TypeError("bug in the downloader")

    monkeypatch.setattr(tvu, "download_url", broken)
    with pytest.raises(TypeError, match="bug in the downloader"):
        download("https://example.org/a.tgz", tmp_path, "a.tgz", None, True)

    def offline(url, root, filename=None, md5=None):
        raise ConnectionResetError("reset")

    monkeypatch.setattr(tvu, "download_url", offline)
    with pytest.raises(LTBenchError, match="download of https://example.org/a.tgz failed"):
        download("https://example.org/a.tgz", tmp_path, "a.tgz", None, True)


def test_no_broad_except_left_in_the_download_paths():
    root = Path(__file__).parent.parent
    files = [
        "builders/readers.py",
        "builders/sources/caltech101.py",
        "builders/sources/flowers102.py",
        "builders/sources/cifar.py",
        "ltbench/backbones/pretrained.py",
    ]
    for f in files:
        assert "except Exception" not in (root / f).read_text(), f


def test_lt_counts_used_by_both_protocols_agree():
    assert lt_counts(30, 200, 10)[:3] == _profile(30, 200, 10)[:3] == [30, 29, 29]


def test_result_carries_protocol_and_the_manifest_groups(digits_data, tmp_path):
    """The evaluator reports the groups stored in the manifest (here edited by hand), and the result names the
    protocol."""
    import shutil

    from ltbench.run import run_one

    data = tmp_path / "data"
    shutil.copytree(digits_data / "digits-lt10", data / "digits-lt10")
    path = data / "digits-lt10" / "manifest.json"
    m = json.loads(path.read_text())
    custom = {"head": [9, 8], "medium": [0, 1, 2, 3], "tail": [4, 5, 6, 7]}  # not what thirds gives
    m["groups"] = {"rule": "thirds", "description": "edited", **custom}
    path.write_text(json.dumps(m))
    out = run_one(
        "ce",
        "digits-lt10",
        backbone="cnn-digits",
        sets={"epochs": "1"},
        data_root=data,
        results=tmp_path / "results",
        device="cpu",
    )
    result = json.loads(out.read_text())
    assert result["protocol"] == "ltbench"
    assert result["grouping"]["classes"] == {k: sorted(v) for k, v in custom.items()}
    acc = result["per_class_accuracy"]
    head = [acc[c] for c in (8, 9) if acc[c] is not None]
    assert result["metrics"]["head"] == pytest.approx(sum(head) / len(head))


def test_missing_authors_build_hint_names_the_protocol(tmp_path):
    from ltbench.data import split_dir

    with pytest.raises(LTBenchError) as e:
        split_dir("cub200-lt10-authors", tmp_path)
    assert "ltbench build cub200 --ir 10 --protocol authors" in e.value.fix


def test_datasets_table_lists_authors_builds(tmp_path):
    d, _ = build_fx("dtd", tmp_path, protocol="authors")
    r = CliRunner().invoke(cli, ["datasets", "--data", str(d.parent)])
    n = manifest(d)["splits"]
    assert r.exit_code == 0 and f"(authors {n['train']['num_rows']}/{n['test']['num_rows']})" in r.output
