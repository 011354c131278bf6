"""Generated CIFAR sources in the exact official python layout (random pixels), for the CIFAR tests.

The official files are Python 2 pickles (protocol 2): dict keys and strings are Python 2 ``str`` (opcodes
``SHORT_BINSTRING``/``BINSTRING``), so ``pickle.load(f, encoding="bytes")`` gives ``b"data"`` keys and
``encoding="latin1"`` (torchvision) gives ``"data"``; the pixel array is a numpy ``uint8`` (N, 3072) array
(1,024 red, then green, then blue values per row) pickled through ``numpy.core.multiarray._reconstruct``.
:class:`Py2Pickler` writes exactly that from Python 3.

CIFAR-10: ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``, batch dicts
``{batch_label, labels, data, filenames}``, meta ``{num_cases_per_batch, label_names, num_vis}``.
CIFAR-100: ``cifar-100-python/{train, test, meta}``, dicts ``{filenames, batch_label, fine_labels,
coarse_labels, data}``, meta ``{fine_label_names, coarse_label_names}``.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR100_FINE = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
]
CIFAR100_COARSE = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
]
assert len(CIFAR100_FINE) == 100 and len(CIFAR100_COARSE) == 20


class Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler writing ``bytes`` as Python 2 ``str`` and numpy globals under ``numpy.core``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None) -> None:
        module = getattr(obj, "__module__", None) or "__main__"
        name = name or obj.__qualname__
        if module.startswith("numpy._core"):
            module = "numpy.core" + module[len("numpy._core") :]
        self.write(pickle.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n")
        self.memoize(obj)


def py2_dump(obj, path: Path) -> None:
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


@dataclass
class CifarFixture:
    path: Path  # the folder's parent (the --source-dir) or the archive
    source_dir: Path
    train_data: np.ndarray  # (N, 3072) uint8, file order
    train_labels: np.ndarray
    test_data: np.ndarray
    test_labels: np.ndarray
    md5: dict[str, str]  # file name -> md5 (and the archive's name when one was written)

    def image(self, split: str, i: int) -> np.ndarray:
        """Row ``i`` of a split as HxWxC, as torchvision returns it."""
        data = self.train_data if split == "train" else self.test_data
        return data[i].reshape(3, 32, 32).transpose(1, 2, 0)


def _balanced_labels(per_class: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(num_classes, dtype=np.int64), per_class))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(
    root: Path,
    which: str = "cifar10",
    train_per_class: int = 20,
    test_per_class: int = 4,
    archive: bool = False,
    seed: int = 0,
) -> CifarFixture:
    """Write a CIFAR-10/100 source under ``root`` (the folder, or the ``.tar.gz`` holding it)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    C = 10 if which == "cifar10" else 100
    y_train = _balanced_labels(train_per_class, C, rng)
    y_test = _balanced_labels(test_per_class, C, rng)
    x_train = rng.integers(0, 256, (len(y_train), 3072), dtype=np.uint8)
    x_test = rng.integers(0, 256, (len(y_test), 3072), dtype=np.uint8)
    base = "cifar-10-batches-py" if which == "cifar10" else "cifar-100-python"
    folder = root / base
    folder.mkdir(parents=True, exist_ok=True)

    def names(n: int, offset: int) -> list[bytes]:
        return [f"fixture_image_s_{offset + i:06d}.png".encode() for i in range(n)]

    if which == "cifar10":
        bounds = np.linspace(0, len(y_train), 6).astype(int)
        for k in range(5):
            a, b = bounds[k], bounds[k + 1]
            py2_dump(
                {
                    b"batch_label": f"training batch {k + 1} of 5".encode(),
                    b"labels": [int(v) for v in y_train[a:b]],
                    b"data": x_train[a:b],
                    b"filenames": names(b - a, a),
                },
                folder / f"data_batch_{k + 1}",
            )
        py2_dump(
            {
                b"batch_label": b"testing batch 1 of 1",
                b"labels": [int(v) for v in y_test],
                b"data": x_test,
                b"filenames": names(len(y_test), 0),
            },
            folder / "test_batch",
        )
        py2_dump(
            {
                b"num_cases_per_batch": 10000,
                b"label_names": [n.encode() for n in CIFAR10_CLASSES],
                b"num_vis": 3072,
            },
            folder / "batches.meta",
        )
    else:
        coarse = rng.integers(0, 20, C)  # a fixed fine -> coarse map (random, like the pixels)
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            py2_dump(
                {
                    b"filenames": names(len(y), 0),
                    b"batch_label": f"{'training' if split == 'train' else 'testing'} batch 1 of 1".encode(),
                    b"fine_labels": [int(v) for v in y],
                    b"coarse_labels": [int(coarse[v]) for v in y],
                    b"data": x,
                },
                folder / split,
            )
        py2_dump(
            {
                b"fine_label_names": [n.encode() for n in CIFAR100_FINE],
                b"coarse_label_names": [n.encode() for n in CIFAR100_COARSE],
            },
            folder / "meta",
        )
    md5 = {p.name: _md5(p) for p in folder.iterdir()}
    path = root
    if archive:
        path = root / ("cifar-10-python.tar.gz" if which == "cifar10" else "cifar-100-python.tar.gz")
        with tarfile.open(path, "w:gz") as tf:
            tf.add(folder, arcname=base)
        shutil.rmtree(folder)
        md5[path.name] = _md5(path)
    return CifarFixture(path, root, x_train, y_train, x_test, y_test, md5)


def official_md5_patch(monkeypatch, which: str, md5: dict[str, str]) -> None:
    """Make torchvision's md5 lists name the fixture's files (to exercise the verified path)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if which == "cifar10" else CIFAR100
    monkeypatch.setattr(cls, "train_list", [[f, md5[f]] for f, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[f, md5[f]] for f, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5[cls.meta["filename"]]})
    if cls.filename in md5:
        monkeypatch.setattr(cls, "tgz_md5", md5[cls.filename])


def truncated_copy(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * keep)])
    return Path(dst)


def pickle_keys(path: Path) -> tuple[list, list]:
    """Keys of an official-layout pickle loaded with ``encoding="bytes"`` and with ``encoding="latin1"``."""
    raw = Path(path).read_bytes()
    return list(pickle.load(io.BytesIO(raw), encoding="bytes")), list(
        pickle.load(io.BytesIO(raw), encoding="latin1")
    )


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run ``ltbench ARGS`` in-process through :func:`ltbench.cli.main`: (exit code, stdout, stderr)."""
    import sys

    from ltbench.cli import main

    old = sys.argv
    sys.argv = ["ltbench", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def ldam_reference(
    targets, cls_num: int, imb_factor: float, rand_number: int = 0
) -> tuple[np.ndarray, list[int]]:
    """LDAM-DRW's ``IMBALANCECIFAR10`` selection (``get_img_num_per_cls('exp')`` + ``gen_imbalanced_data``),
    re-implemented here independently of ltbench: the source indices it keeps, in its order, and the counts."""
    np.random.seed(rand_number)
    img_max = int(len(targets) / cls_num)
    per_cls = [int(img_max * (imb_factor ** (k / (cls_num - 1.0)))) for k in range(cls_num)]
    targets_np = np.array(targets, dtype=np.int64)
    kept = []
    for the_class, the_img_num in zip(np.unique(targets_np), per_cls, strict=True):
        idx = np.where(targets_np == the_class)[0]
        np.random.shuffle(idx)
        kept.append(idx[:the_img_num])
    return np.concatenate(kept), per_cls


def synthetic_spec(
    n: int = 600,
    num_classes: int = 10,
    side: int = 8,
    fail_after: int | None = None,
    delay: float = 0.0,
    marker: Path | None = None,
    marker_after: int = 0,
    thread_safe: bool = True,
):
    """A registered-like source of ``n`` generated images (deterministic pixels), for builder tests.

    ``fail_after`` raises inside ``read`` after that many images (an interrupted build); ``marker`` is created
    once ``marker_after`` images were read, and ``delay`` slows each read (to kill a build mid-write)."""
    import threading
    import time

    from ltbench.builders.images import png_bytes
    from ltbench.builders.spec import Pool, SourceData, SourceSpec

    labels = np.arange(n, dtype=np.int64) % num_classes
    lock = threading.Lock()
    done = [0]

    def read(i: int) -> bytes:
        with lock:
            done[0] += 1
            count = done[0]
        if fail_after is not None and count > fail_after:
            raise RuntimeError("injected failure mid-write")
        if marker is not None and count == marker_after:
            Path(marker).touch()
        if delay:
            time.sleep(delay)
        rng = np.random.default_rng(i)
        return png_bytes(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))

    def read_source(opts):
        pool = Pool(
            labels,
            [f"img{i}" for i in range(n)],
            read,
            paths=[f"img{i}.png" for i in range(n)],
            thread_safe=thread_safe,
        )
        test_idx = np.arange(num_classes * 2)
        test = Pool(labels[test_idx], [f"t{i}" for i in test_idx], read, thread_safe=thread_safe)
        return SourceData([f"class{c}" for c in range(num_classes)], pool, {"test": test})

    return SourceSpec(
        name="synthetic", title="Synthetic", num_classes=num_classes, read=read_source, n_max_rule="max"
    )
