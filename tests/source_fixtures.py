"""Writers of synthetic source folders in the EXACT official layouts (file names, list/mat/json formats, folder
structure), with tiny JPEGs, for the reader tests. Per-class counts are arguments, so the same writer makes a
few-images-per-class fixture and a full-size one with the real per-class pool counts.

Real per-class counts embedded below come from the official annotation files (CUB-200-2011
``train_test_split.txt`` + ``images.txt``; Stanford Cars devkit annotations as CSV). Where the real per-class
split was not available (Caltech-101 folder sizes, Dogs/Flowers/Aircraft test sizes, Fruits-360), the
fixtures use synthetic per-class counts with the official totals; the pool counts that the Table 6 numbers
depend on are the official ones (30 per Caltech folder draw, 100 per Dogs class, 40/40 per DTD class, 66-67
per Aircraft class, 10+10 per Flowers class), except Fruits-360 (only total 6,231 and max 326 are known).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

# CUB-200-2011: official per-class train counts are 30 except these classes (1-based id → count).
CUB_TRAIN_EXCEPTIONS = {107: 29, 126: 29, 135: 29, 141: 29, 190: 29, 196: 29}


def _words(text: str) -> list[str]:
    return text.split()


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split()]


# CUB-200-2011 official per-class test counts (class 1..200), sum 5,794.
CUB_TEST = _ints(
    "30 30 28 30 14 11 23 18 29 30 30 26 30 30 28 28 27 15 29 29 30 26 29 22 30 30 30 29 30 30 30 23 29 29 30 "
    "30 29 30 29 30 30 30 29 30 30 30 30 30 30 30 30 30 30 30 30 30 30 28 30 29 30 30 30 30 20 30 30 30 30 30 "
    "30 30 30 30 27 30 30 29 30 30 30 30 30 23 30 30 30 30 30 30 30 30 30 30 30 30 29 30 30 30 20 30 30 30 19 "
    "30 30 30 30 30 30 30 20 30 29 30 29 30 29 30 30 30 30 29 29 30 30 30 30 30 30 30 30 30 30 30 30 30 30 30 "
    "29 30 30 30 30 30 30 30 29 30 21 30 29 30 30 30 29 30 30 29 30 30 30 30 30 29 30 29 29 30 30 30 30 30 30 "
    "30 30 26 29 30 29 30 30 30 30 30 20 30 30 29 30 30 30 30 30 30 30 30 30 30"
)
# Stanford Cars official per-class train / test counts (class 1..196), sums 8,144 / 8,041.
CARS_TRAIN = _ints(
    "45 32 43 42 41 45 39 45 41 33 38 37 41 43 43 44 41 43 41 46 42 43 40 45 40 34 36 41 43 42 44 42 42 45 41 "
    "41 39 41 37 39 36 35 46 45 33 44 35 43 38 42 43 41 45 40 40 47 38 44 45 37 43 37 44 30 45 42 39 40 38 43 "
    "35 45 45 44 44 44 41 38 49 43 45 45 41 42 44 43 44 40 44 41 39 40 39 44 46 41 42 46 28 34 42 39 40 43 44 "
    "42 45 44 45 43 42 46 43 45 45 38 43 42 68 43 45 40 45 39 44 42 41 39 39 41 42 44 42 34 42 24 44 40 43 42 "
    "34 33 40 47 44 43 45 45 43 36 44 36 45 43 43 39 37 29 36 44 48 46 37 44 45 41 48 42 39 44 46 44 44 41 31 "
    "39 44 42 45 43 38 46 42 41 39 39 44 44 41 43 46 43 42 46 43 40"
)
CARS_TEST = _ints(
    "44 32 43 42 40 44 39 45 41 33 38 36 41 42 43 43 40 42 40 46 42 42 39 45 39 34 35 41 42 41 44 41 42 44 41 "
    "41 38 40 36 39 35 34 46 44 32 43 35 42 37 42 43 41 44 40 39 46 37 44 44 36 43 37 44 29 45 41 38 40 38 42 "
    "35 45 44 43 44 43 40 37 48 43 45 45 40 42 43 42 44 39 44 41 38 40 39 43 45 41 42 46 27 33 42 39 39 42 43 "
    "41 44 44 44 43 42 45 42 45 45 37 42 41 68 42 44 40 44 39 43 42 41 39 38 41 42 43 42 33 42 24 43 39 42 42 "
    "34 32 40 46 44 43 44 45 42 36 43 35 44 42 42 39 36 29 36 44 48 45 36 43 44 41 47 42 38 44 46 44 43 41 30 "
    "38 44 41 45 42 38 46 42 40 38 38 43 43 40 43 46 42 41 45 43 40"
)
DTD_CLASSES = _words(
    "banded blotchy braided bubbly bumpy chequered cobwebbed cracked crosshatched crystalline dotted fibrous "
    "flecked freckled frilly gauzy grid grooved honeycombed interlaced knitted lacelike lined marbled "
    "matted meshed paisley perforated pitted pleated polka-dotted porous potholed scaly smeared spiralled "
    "sprinkled stained stratified striped studded swirly veined waffled woven wrinkled zigzagged"
)
FRUITS_CLASSES = _words(
    "apple_6 apple_braeburn_1 apple_crimson_snow_1 apple_golden_1 apple_golden_2 apple_golden_3 "
    "apple_granny_smith_1 apple_hit_1 apple_pink_lady_1 apple_red_1 apple_red_2 apple_red_3 "
    "apple_red_delicios_1 apple_red_yellow_1 apple_rotten_1 cabbage_white_1 carrot_1 cucumber_1 "
    "cucumber_3 eggplant_violet_1 pear_1 pear_3 zucchini_1 zucchini_dark_1"
)


@cache
def jpeg(i: int = 0) -> bytes:
    """A distinct tiny JPEG for each ``i`` (colour from i); cached so big fixtures write one byte string."""
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)).save(buf, format="JPEG")
    return buf.getvalue()


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def spread(total: int, n: int, minimum: int) -> list[int]:
    """``n`` deterministic, uneven per-class counts >= ``minimum`` summing to ``total``."""
    rng = np.random.RandomState(0)
    w = rng.rand(n)
    extra = total - n * minimum
    counts = np.floor(w / w.sum() * extra).astype(int)
    counts[: extra - counts.sum()] += 1
    return (counts + minimum).tolist()


def savemat(path: Path, data: dict) -> None:
    from scipy.io import savemat as _savemat

    path.parent.mkdir(parents=True, exist_ok=True)
    _savemat(str(path), data)


def cell(strings: Sequence[str], column: bool = True) -> np.ndarray:
    arr = np.empty(len(strings), dtype=object)
    arr[:] = list(strings)
    return arr.reshape(-1, 1) if column else arr.reshape(1, -1)


# ----------------------------------------------------------------------------------------------- Caltech-101
def write_caltech101(root: Path, per_folder: Sequence[int], distinct: bool = True) -> list[str]:
    """``root/caltech101/101_ObjectCategories/<class>/image_NNNN.jpg``; folder 0 is BACKGROUND_Google."""
    names = ["BACKGROUND_Google"] + [f"class_{k:03d}" for k in range(1, len(per_folder))]
    base = Path(root) / "caltech101" / "101_ObjectCategories"
    k = 0
    for name, n in zip(names, per_folder, strict=True):
        for j in range(1, n + 1):
            _put(base / name / f"image_{j:04d}.jpg", jpeg(k if distinct else 0))
            k += 1
    return names


# ------------------------------------------------------------------------------------------------------- CUB
def write_cub200(root: Path, train: Sequence[int], test: Sequence[int], distinct: bool = True) -> None:
    """``root/CUB_200_2011/{images.txt, image_class_labels.txt, train_test_split.txt, classes.txt, images/}``;
    images of a class alternate test/train like the official files."""
    base = Path(root) / "CUB_200_2011"
    images, labels, split, classes = [], [], [], []
    i = 0
    for c, (ntr, nte) in enumerate(zip(train, test, strict=True), 1):
        folder = f"{c:03d}.Bird_{c}"
        classes.append(f"{c} {folder}")
        flags = [1] * ntr + [0] * nte
        np.random.RandomState(c).shuffle(flags)  # train and test images interleaved, as in the real files
        for j, flag in enumerate(flags):
            i += 1
            rel = f"{folder}/Bird_{c}_{j:04d}_{i}.jpg"
            images.append(f"{i} {rel}")
            labels.append(f"{i} {c}")
            split.append(f"{i} {flag}")
            _put(base / "images" / rel, jpeg(i if distinct else 0))
    for name, lines in (
        ("images.txt", images),
        ("image_class_labels.txt", labels),
        ("train_test_split.txt", split),
        ("classes.txt", classes),
    ):
        (base / name).write_text("\n".join(lines) + "\n")


def cub_real_counts() -> tuple[list[int], list[int]]:
    train = [CUB_TRAIN_EXCEPTIONS.get(c, 30) for c in range(1, 201)]
    return train, list(CUB_TEST)


# ------------------------------------------------------------------------------------------------------ Dogs
def write_dogs(root: Path, train: Sequence[int], test: Sequence[int], distinct: bool = True) -> None:
    """``root/stanford_dogs/{Images/<wnid-name>/<wnid>_<n>.jpg, train_list.mat, test_list.mat}``."""
    base = Path(root) / "stanford_dogs"
    lists: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "test": ([], [])}
    k = 0
    for c, (ntr, nte) in enumerate(zip(train, test, strict=True), 1):
        wnid = f"n02{85620 + c:06d}"
        folder = f"{wnid}-Breed_{c}"
        for split, n in (("train", ntr), ("test", nte)):
            for _ in range(n):
                k += 1
                rel = f"{folder}/{wnid}_{k}.jpg"
                lists[split][0].append(rel)
                lists[split][1].append(c)
                _put(base / "Images" / rel, jpeg(k if distinct else 0))
    for split, (files, labels) in lists.items():
        savemat(
            base / f"{split}_list.mat",
            {
                "file_list": cell(files),
                "annotation_list": cell([f.rsplit(".", 1)[0] for f in files]),
                "labels": np.asarray(labels, dtype=np.float64).reshape(-1, 1),
            },
        )


# ------------------------------------------------------------------------------------------------------ Cars
def write_cars(root: Path, train: Sequence[int], test: Sequence[int], distinct: bool = True) -> None:
    """torchvision's layout: ``root/stanford_cars/{devkit/{cars_meta.mat, cars_train_annos.mat},
    cars_train/NNNNN.jpg, cars_test/NNNNN.jpg, cars_test_annos_withlabels.mat}``."""
    base = Path(root) / "stanford_cars"
    fields = [
        ("bbox_x1", "O"),
        ("bbox_y1", "O"),
        ("bbox_x2", "O"),
        ("bbox_y2", "O"),
        ("class", "O"),
        ("fname", "O"),
    ]
    for split, counts, mat in (
        ("train", train, base / "devkit" / "cars_train_annos.mat"),
        ("test", test, base / "cars_test_annos_withlabels.mat"),
    ):
        labels = [c for c, n in enumerate(counts, 1) for _ in range(n)]
        order = np.random.RandomState(len(labels)).permutation(len(labels))  # classes interleaved
        annos = np.zeros((1, len(labels)), dtype=fields)
        for j, o in enumerate(order, 1):
            fname = f"{j:05d}.jpg"
            annos[0, j - 1] = (np.uint8(1), np.uint8(2), np.uint8(3), np.uint8(4), np.uint8(labels[o]), fname)
            _put(base / f"cars_{split}" / fname, jpeg(j if distinct else 0))
        savemat(mat, {"annotations": annos})
    savemat(
        base / "devkit" / "cars_meta.mat",
        {"class_names": cell([f"Make {c} Model 20{c % 13:02d}" for c in range(1, len(train) + 1)], False)},
    )


# ------------------------------------------------------------------------------------------------------- DTD
def write_dtd(
    root: Path, per_split: int = 40, classes: Sequence[str] = DTD_CLASSES, distinct: bool = True
) -> None:
    """``root/dtd/dtd/{images/<class>/<class>_NNNN.jpg, labels/{train,val,test}{1..10}.txt}``."""
    base = Path(root) / "dtd" / "dtd"
    files = {c: [f"{c}/{c}_{j:04d}.jpg" for j in range(3 * per_split)] for c in classes}
    k = 0
    for rels in files.values():
        for rel in rels:
            k += 1
            _put(base / "images" / rel, jpeg(k if distinct else 0))
    (base / "labels").mkdir(parents=True, exist_ok=True)
    for p in range(1, 11):
        rng = np.random.RandomState(p)
        parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for c in classes:
            perm = rng.permutation(files[c])
            for s, split in enumerate(("train", "val", "test")):
                parts[split] += sorted(perm[s * per_split : (s + 1) * per_split])
        for split, lines in parts.items():
            (base / "labels" / f"{split}{p}.txt").write_text("\n".join(lines) + "\n")


# -------------------------------------------------------------------------------------------------- Aircraft
def write_aircraft(
    root: Path, trainval: Sequence[int], test: Sequence[int], distinct: bool = True
) -> list[str]:
    """``root/fgvc-aircraft-2013b/data/{images/NNNNNNN.jpg, variants.txt, images_variant_*.txt}``; variant
    names contain spaces and slashes as the real ones do (``F/A-18``, ``Boeing 717``)."""
    data = Path(root) / "fgvc-aircraft-2013b" / "data"
    names = [f"Model {c}/A-{c}" if c % 3 == 0 else f"V-{c:03d}" for c in range(len(trainval))]
    (data / "images").mkdir(parents=True, exist_ok=True)
    (data / "variants.txt").write_text("\n".join(names) + "\n")
    lines: dict[str, list[str]] = {"train": [], "val": [], "trainval": [], "test": []}
    image_id = 1000000
    for c, (ntv, nte) in enumerate(zip(trainval, test, strict=True)):
        for j in range(ntv + nte):
            image_id += 1
            line = f"{image_id:07d} {names[c]}"
            if j < ntv:
                lines["trainval"].append(line)
                lines["train" if j % 2 == 0 else "val"].append(line)
            else:
                lines["test"].append(line)
            _put(data / "images" / f"{image_id:07d}.jpg", jpeg(image_id if distinct else 0))
    for split, ls in lines.items():
        (data / f"images_variant_{split}.txt").write_text("\n".join(sorted(ls)) + "\n")
    return names


# --------------------------------------------------------------------------------------------------- Flowers
def write_flowers102(root: Path, per_class: Sequence[int], distinct: bool = True) -> None:
    """``root/flowers-102/{jpg/image_NNNNN.jpg, imagelabels.mat, setid.mat}``: 10 trnid + 10 valid per class,
    the rest tstid (image ids 1-based, labels 1-based as in the official files)."""
    base = Path(root) / "flowers-102"
    labels = [c for c, n in enumerate(per_class, 1) for _ in range(n)]
    order = np.random.RandomState(1).permutation(len(labels))
    labels = [labels[o] for o in order]
    ids: dict[str, list[int]] = {"trnid": [], "valid": [], "tstid": []}
    seen: dict[int, int] = {}
    for image_id, y in enumerate(labels, 1):
        k = seen[y] = seen.get(y, 0) + 1
        ids["trnid" if k <= 10 else "valid" if k <= 20 else "tstid"].append(image_id)
        _put(base / "jpg" / f"image_{image_id:05d}.jpg", jpeg(image_id if distinct else 0))
    savemat(base / "imagelabels.mat", {"labels": np.asarray(labels, dtype=np.uint8).reshape(1, -1)})
    savemat(base / "setid.mat", {k: np.asarray(v, dtype=np.uint16).reshape(1, -1) for k, v in ids.items()})


# ---------------------------------------------------------------------------------------------------- Fruits
def write_fruits360(
    root: Path,
    train: Sequence[int],
    test: Sequence[int],
    classes: Sequence[str] = FRUITS_CLASSES,
    distinct=True,
) -> Path:
    """``root/fruits-360-original-size/{Training,Validation,Test}/<class>/r?_<index>.jpg``."""
    base = Path(root) / "fruits-360-original-size"
    k = 0
    for c, ntr, nte in zip(classes, train, test, strict=True):
        for folder, n, offset in (("Training", ntr, 0), ("Validation", max(1, nte), 1), ("Test", nte, 3)):
            for j in range(n):
                k += 1
                prefix = ("r0", "r1", "r2")[j % 3]
                _put(base / folder / c / f"{prefix}_{4 * j + offset}.jpg", jpeg(k if distinct else 0))
    return base


# ------------------------------------------------------------------------------------------------- LT lists
def write_list_set(
    base: Path, lists: dict[str, list[tuple[str, int]]], distinct: bool = True, link: bool = False
) -> None:
    """List files ``base/<name>`` (``relative/path label`` per line) and the images they name under ``base``.
    ``link`` hard-links every image to one file (for the 100k-entry streaming test)."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    first = None
    k = 0
    for name, rows in lists.items():
        (base / name).write_text("".join(f"{p} {y}\n" for p, y in rows))
        for p, _ in rows:
            k += 1
            target = base / p
            target.parent.mkdir(parents=True, exist_ok=True)
            if link and first is not None:
                target.hardlink_to(first)
            else:
                target.write_bytes(jpeg(k if distinct else 0))
                first = target


def imagenet_lt_lists(counts: dict[str, Sequence[int]]) -> dict[str, list[tuple[str, int]]]:
    """``ImageNet_LT_{train,val,test}.txt`` rows for per-class counts (train/val from ILSVRC train, test
    from ILSVRC val re-foldered by class)."""
    out = {}
    for split, per_class in counts.items():
        rows = []
        for c, n in enumerate(per_class):
            wnid = f"n{1440764 + c:08d}"
            for j in range(n):
                if split == "test":
                    rows.append((f"val/{wnid}/ILSVRC2012_val_{c * 1000 + j:08d}.JPEG", c))
                else:
                    rows.append((f"train/{wnid}/{wnid}_{(10000 if split == 'val' else 0) + j}.JPEG", c))
        out[f"ImageNet_LT_{split}.txt"] = rows
    return out


def write_inat(
    base: Path,
    counts: dict[str, Sequence[int]],
    distinct: bool = True,
    link: bool = False,
    image: bytes | None = None,
) -> None:
    """``base/{train2018.json, val2018.json, train_val2018/<kingdom>/<id>/<hash>.jpg}`` (COCO style).
    ``image`` replaces the tiny JPEGs; ``link`` hard-links files to a few written ones (50,000 links each)."""
    base = Path(base)
    first = None
    image_id = 0
    for split, per_class in counts.items():
        images, annos = [], []
        for c, n in enumerate(per_class):
            for _ in range(n):
                image_id += 1
                rel = f"train_val2018/{'Plantae' if c % 2 else 'Animalia'}/{c}/{image_id:032x}.jpg"
                images.append({"id": image_id, "file_name": rel, "width": 4, "height": 4, "license": 1})
                annos.append({"id": image_id, "image_id": image_id, "category_id": c})
                target = base / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if link and first is not None and image_id % 50_000:
                    target.hardlink_to(first)
                else:
                    target.write_bytes(image or jpeg(image_id if distinct else 0))
                    first = target
        cats = [{"id": c, "name": f"species_{c}", "supercategory": "Plantae"} for c in range(len(per_class))]
        doc = {
            "info": {"year": 2018},
            "images": images,
            "annotations": annos,
            "categories": cats,
            "licenses": [],
        }
        (base / f"{split}.json").write_text(json.dumps(doc))


# ------------------------------------------------------------------------------------- small fixtures per source
def write_small(name: str, root: Path) -> dict:
    """A small source of ``name`` in its official layout under ``root``; returns the build keyword arguments
    (``ir``, ``verify_checksums``). Classes hold more than 16 images and some pool counts tie, so that numpy's
    quicksort (introsort) partitions, which is where the authors' unstable sorts are decided."""
    root = Path(root)
    if name == "cifar10" or name == "cifar100":
        from cifar_fixtures import write_cifar

        per_class = 20 if name == "cifar10" else 10
        write_cifar(root, name, train_per_class=per_class, test_per_class=2, seed=3)
        return {"ir": 10, "verify_checksums": False}
    writers = {
        "caltech101": lambda: write_caltech101(root, [40, 31, 35, 33, 52, 30]),
        "cub200": lambda: write_cub200(root, [30, 29, 30, 28, 30, 30, 29, 30], [3, 2, 4, 1, 2, 3, 2, 2]),
        "dogs": lambda: write_dogs(root, [6] * 20, [2] * 20),
        "cars": lambda: write_cars(root, [9, 12, 9, 7, 12, 9, 8, 9, 11, 9] * 2, [2] * 20),
        "dtd": lambda: write_dtd(root, per_split=9, classes=DTD_CLASSES[:5]),
        "aircraft": lambda: write_aircraft(root, [21, 20, 21, 20, 21, 20], [3, 4, 3, 4, 3, 4]),
        "flowers102": lambda: write_flowers102(root, [25, 22, 30, 24, 27]),
        "fruits360": lambda: write_fruits360(
            root, [30, 26, 26, 33, 22, 26, 30, 26, 21, 26] * 2, [2] * 20, classes=FRUITS_CLASSES[:20]
        ),
    }
    writers[name]()
    return {"ir": 100 if name == "fruits360" else 10, "verify_checksums": False}


SMALL_SOURCES = (
    "aircraft",
    "caltech101",
    "cars",
    "cifar10",
    "cifar100",
    "cub200",
    "dogs",
    "dtd",
    "flowers102",
    "fruits360",
)


def split_fingerprint(manifest: dict) -> str:
    """sha256 over what a build selected and wrote: per split its shard hashes, source keys and class counts."""
    import hashlib

    files = manifest["files"]
    doc = {
        s: {
            "shards": {f: files[f] for f in v["files"]},
            "source_keys": v["source_keys"],
            "class_counts": v["class_counts"],
        }
        for s, v in sorted(manifest["splits"].items())
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
