"""scikit-learn's bundled digits: the embedded, offline default (1,797 grey 8×8 images, 10 classes).

Split procedure (fixed; part of ltbench's contract): the numpy legacy RNG is seeded with the build seed; for
each class in label order its indices are shuffled once, the first 40 go to ``test``, the next 30 to
``pretrain`` (a balanced, disjoint set standing in for a teacher's pretraining data), and the rest form the
LT pool. The LT train split is then drawn from the pool with the standard profile (n_max = 100) and LDAM's
selection, seeded again with the build seed. Pixels 0–16 are scaled to 0–255 (round(v·255/16)), stored as PNG.
"""

from __future__ import annotations

import numpy as np
from ltbench.builders.images import png_batch, png_bytes
from ltbench.builders.spec import Pool, ReadOptions, SourceData, SourceSpec

from ltbench.registry import DATASETS

TEST_PER_CLASS = 40
PRETRAIN_PER_CLASS = 30


def read_digits(opts: ReadOptions) -> SourceData:
    from sklearn.datasets import load_digits

    d = load_digits()
    pixels = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    labels = d.target.astype(np.int64)
    rng = np.random.RandomState(opts.seed)
    parts: dict[str, list[np.ndarray]] = {"test": [], "pretrain": [], "pool": []}
    for c in range(10):
        idx = np.where(labels == c)[0]
        rng.shuffle(idx)
        parts["test"].append(idx[:TEST_PER_CLASS])
        parts["pretrain"].append(idx[TEST_PER_CLASS : TEST_PER_CLASS + PRETRAIN_PER_CLASS])
        parts["pool"].append(idx[TEST_PER_CLASS + PRETRAIN_PER_CLASS :])

    def pool_of(name: str) -> Pool:
        src = np.concatenate(parts[name])
        return Pool(
            labels=labels[src],
            keys=[str(int(i)) for i in src],
            read=lambda i, src=src: png_bytes(pixels[src[i]]),
            read_many=lambda idx, src=src: png_batch(pixels[src[np.asarray(idx, dtype=np.int64)]]),
        )

    return SourceData(
        class_names=[str(c) for c in range(10)],
        pool=pool_of("pool"),
        fixed={"test": pool_of("test"), "pretrain": pool_of("pretrain")},
        notes={"source_keys": "row index into sklearn.datasets.load_digits()"},
    )


DIGITS = DATASETS.register("digits")(
    SourceSpec(
        name="digits",
        title="scikit-learn digits",
        num_classes=10,
        read=read_digits,
        grouping="thirds",
        scale="digits",
        irs=(10, 100),
        n_max_rule=100,
        expected={
            10: {"train": 403, "test": 400, "pretrain": 300},
            100: {"train": 242, "test": 400, "pretrain": 300},
        },
        license="cc-by-4.0",
        citation="Alpaydin & Kaynak, Optical Recognition of Handwritten Digits, UCI ML Repository (1998)",
        homepage="https://archive.ics.uci.edu/dataset/80",
        layout="bundled with scikit-learn; no files needed",
        pool_definition="per class, after 40 test and 30 pretrain images (seeded), the remaining 104-113 images",
    )
)
