"""ImageNet-LT / Places-LT / iNat-LT importers on fixtures in the official list/json formats, and (slow) a
100k-entry iNat-style build showing that memory stays bounded (images are streamed, never all held)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import source_fixtures as fx
from ltbench.builders.build import build
from ltbench.builders.sources.places_lt import places365_path

from ltbench.errors import LTBenchError
from ltbench.registry import DATASETS


def manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text())


def stored(d: Path, split: str) -> list[dict]:
    return [r for f in sorted(d.glob(f"{split}-*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_imagenet_lt_lists(tmp_path):
    base = tmp_path / "src" / "ImageNet_LT"
    fx.write_list_set(
        base, fx.imagenet_lt_lists({"train": [130, 40, 7], "val": [2, 2, 2], "test": [5, 5, 5]})
    )
    spec = DATASETS.get("imagenet-lt")
    assert spec.irs == () and spec.default_grouping == "shots" and not spec.redistributable
    with pytest.raises(LTBenchError, match="no --ir"):
        build(spec, 10, tmp_path / "out", source_dir=tmp_path / "src")
    d = build(spec, None, tmp_path / "out", source_dir=tmp_path / "src")
    assert d.name == "imagenet-lt"
    m = manifest(d)
    assert m["profile"] is None
    assert {s: v["num_rows"] for s, v in m["splits"].items()} == {"train": 177, "val": 6, "test": 15}
    assert m["class_names"][:3] == ["n01440764", "n01440765", "n01440766"] and len(m["class_names"]) == 1000
    assert m["groups"]["head"] == [0] and m["groups"]["medium"] == [1]
    assert 2 in m["groups"]["tail"]
    rows = stored(d, "test")
    assert rows[0]["image"]["path"].startswith("val/n01440764/ILSVRC2012_val_")
    assert all(r["image"]["bytes"] == (base / r["image"]["path"]).read_bytes() for r in rows)
    assert m["expected"] == {"train": 115846, "test": 50000, "val": 20000}
    assert "train count" in m["notes"]  # the fixture is not the official list: recorded, not forced
    card = (d / "README.md").read_text()
    assert "may not be republished" in card


def test_places_lt_test_is_places_lt_val(tmp_path):
    base = tmp_path / "src" / "Places_LT"
    lists = {
        "Places_LT_train.txt": [(f"train/airfield/{j:08d}.jpg", 0) for j in range(3)]
        + [(f"train/apartment_building-outdoor/{j:08d}.jpg", 1) for j in range(2)],
        "Places_LT_val.txt": [(f"train/airfield/{100 + j:08d}.jpg", 0) for j in range(2)]
        + [(f"train/apartment_building-outdoor/{100 + j:08d}.jpg", 1) for j in range(2)],
        "Places_LT_test.txt": [(f"val/airfield/Places365_val_{j:08d}.jpg", 0) for j in range(5)]
        + [(f"val/apartment_building-outdoor/Places365_val_{9 + j:08d}.jpg", 1) for j in range(5)],
    }
    fx.write_list_set(base, lists)
    d = build(DATASETS.get("places-lt"), None, tmp_path / "out", source_dir=tmp_path / "src")
    m = manifest(d)
    assert {s: v["num_rows"] for s, v in m["splits"].items()} == {"train": 5, "test": 4, "oltr_test": 10}
    assert m["class_names"][:2] == ["airfield", "apartment_building/outdoor"]
    assert m["splits"]["test"]["source_keys"][0] == "train/airfield/00000100.jpg"


def test_places_lt_on_places365_layout(tmp_path):
    base = tmp_path / "src" / "Places_LT"
    train = [("train/airfield/00000001.jpg", 0), ("train/apartment_building-outdoor/00000002.jpg", 1)]
    test = [("val/airfield/Places365_val_00000003.jpg", 0)]
    for name, rows in (
        ("Places_LT_train.txt", train),
        ("Places_LT_val.txt", train),
        ("Places_LT_test.txt", test),
    ):
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text("".join(f"{p} {y}\n" for p, y in rows))
        for p, _ in rows:
            target = base / places365_path(p)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(fx.jpeg(len(p)))
    assert places365_path(train[1][0]) == "data_256/a/apartment_building/outdoor/00000002.jpg"
    assert places365_path(test[0][0]) == "val_256/Places365_val_00000003.jpg"
    d = build(DATASETS.get("places-lt"), None, tmp_path / "out", source_dir=tmp_path / "src")
    m = manifest(d)
    assert m["splits"]["oltr_test"]["source_keys"] == ["val_256/Places365_val_00000003.jpg"]
    assert "mapped" in m["notes"]["layout"]


def test_inat_lt_json(tmp_path):
    base = tmp_path / "src" / "iNat2018"
    fx.write_inat(base, {"train2018": [120, 30, 2, 5], "val2018": [3, 3, 3, 3]})
    d = build(DATASETS.get("inat-lt"), None, tmp_path / "out", source_dir=tmp_path / "src")
    m = manifest(d)
    assert {s: v["num_rows"] for s, v in m["splits"].items()} == {"train": 157, "test": 12}
    assert len(m["class_names"]) == 8142 and m["class_names"][1] == "species_1"
    assert m["splits"]["train"]["class_counts"][:5] == [120, 30, 2, 5, 0]
    rows = stored(d, "test")
    assert rows[0]["image"]["path"].startswith("train_val2018/Animalia/0/")
    assert all(r["image"]["bytes"] == (base / r["image"]["path"]).read_bytes() for r in rows)


def test_lt_errors(tmp_path):
    with pytest.raises(LTBenchError, match="ImageNet_LT_train.txt"):
        build(DATASETS.get("imagenet-lt"), None, tmp_path / "o", source_dir=tmp_path)
    base = tmp_path / "ImageNet_LT"
    base.mkdir()
    for s in ("train", "val", "test"):
        (base / f"ImageNet_LT_{s}.txt").write_text("train/n01440764/a.JPEG 0\n")
    with pytest.raises(LTBenchError, match="source image not found"):
        build(DATASETS.get("imagenet-lt"), None, tmp_path / "o", source_dir=tmp_path)
    (base / "ImageNet_LT_val.txt").write_text("train/n01440764/a.JPEG zero\n")
    with pytest.raises(LTBenchError, match="expected 'relative/path label'"):
        build(DATASETS.get("imagenet-lt"), None, tmp_path / "o", source_dir=tmp_path)
    (tmp_path / "iNat2018").mkdir()
    (tmp_path / "iNat2018" / "train2018.json").write_text('{"images": [')
    with pytest.raises(LTBenchError, match="cannot read"):
        build(DATASETS.get("inat-lt"), None, tmp_path / "o", source_dir=tmp_path)


@pytest.mark.slow
def test_inat_style_100k_build_streams_in_bounded_memory(tmp_path):
    """101,278 train + 8,142 test entries (hard links to a ~7 KB JPEG, ~750 MB of image bytes written): the
    build's Python-side peak (tracemalloc; mostly the json and the manifest's source keys) stays far below the
    image bytes, so neither the reader nor the writer holds them all."""
    import io

    from PIL import Image

    per_class = [13] * 7000 + [9] * 1142  # 91,000 + 10,278 = 101,278 train entries, 8,142 classes
    big = io.BytesIO()
    Image.effect_noise((80, 80), 64).convert("RGB").save(big, format="JPEG", quality=95)
    base = tmp_path / "src" / "iNat2018"
    fx.write_inat(base, {"train2018": per_class, "val2018": [1] * 8142}, link=True, image=big.getvalue())
    image_bytes = len(big.getvalue()) * (sum(per_class) + 8142)
    assert image_bytes > 500e6
    tracemalloc.start()
    d = build(DATASETS.get("inat-lt"), None, tmp_path / "out", source_dir=tmp_path / "src")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    m = manifest(d)
    assert m["splits"]["train"]["num_rows"] == sum(per_class)
    print(f"traced peak {peak / 1e6:.1f} MB while writing {image_bytes / 1e6:.0f} MB of image bytes")
    assert peak < image_bytes / 4, (peak, image_bytes)
