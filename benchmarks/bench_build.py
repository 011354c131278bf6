"""Builder benchmark: CIFAR-10-LT100 build throughput, and peak memory against the number of images.

Memory is measured first, while this parent process is still small (Linux keeps ``ru_maxrss`` across exec).

1. Throughput: a full-size CIFAR-10 source (5,000 train / 1,000 test per class, random pixels) is generated in
   the exact official pickle layout (extracted folder), then ``cifar10 --ir 100`` is built twice in this run:
   reads in one thread, and with the default thread pool. Prints images/s of each and their ratio.
   B1: the thread-pool build against a naive ``datasets`` writer measured in the same run
   (``Dataset.from_dict`` of the same number of PIL images per split with ``Image``/``ClassLabel`` features,
   then ``to_parquet``; the CIFAR rows it encodes are the first ones of each split, the same pixels source);
   written as case ``B1`` to ``benchmarks/results/<device>.json``.
2. Memory: a synthetic source of N generated 32×32 PNG images (all written to one split) is built in a fresh
   subprocess for N = 5,000 and N = 50,000; each reports its peak RSS (``ru_maxrss``). Prints the ratio
   RSS(50k) / RSS(5k); the streaming writer keeps it ≤ 1.2 (it would be ≈ 2 if the 50k PNGs were held).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("LTBENCH_NO_PROGRESS", "1")

RSS_CHILD = """
import json, resource, sys
import numpy as np
from pathlib import Path
from ltbench.builders.build import build
from ltbench.builders.images import png_bytes
from ltbench.builders.spec import Pool, SourceData, SourceSpec

n, out = int(sys.argv[1]), Path(sys.argv[2])
labels = np.arange(n, dtype=np.int64) % 10

def read(i):
    return png_bytes(np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8))

def source(opts):
    pool = Pool(labels, [str(i) for i in range(n)], read, thread_safe=True)
    return SourceData([f"c{c}" for c in range(10)], None, {"train": pool})

spec = SourceSpec(name="synthetic", title="Synthetic", num_classes=10, read=source, irs=())
path = build(spec, None, out)
rows = json.loads((path / "manifest.json").read_text())["splits"]["train"]["num_rows"]
size = sum(p.stat().st_size for p in path.glob("*.parquet"))
print(json.dumps({"rows": rows, "bytes": size, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def naive_datasets_writer(fx, rows: dict[str, int], out: Path) -> float:
    """Seconds for the naive ``datasets`` writer on ``rows[split]`` images of each split (PNG encoding included,
    as ``datasets`` encodes PIL images on ``from_dict``)."""
    import datasets
    from PIL import Image

    names = [f"c{c}" for c in range(10)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    t0 = time.perf_counter()
    for split, n in rows.items():
        images = [Image.fromarray(fx.image(split, i)) for i in range(n)]
        labels = [int(v) for v in (fx.train_labels if split == "train" else fx.test_labels)[:n]]
        ds = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
        ds.to_parquet(str(out / f"{split}.parquet"))
    return time.perf_counter() - t0


def throughput(tmp: Path) -> None:
    import torchvision.datasets  # noqa: F401 - imported before timing (the reader's import is not build work)
    from cifar_fixtures import write_cifar
    from ltbench.builders.build import build

    from ltbench.registry import DATASETS

    t0 = time.perf_counter()
    fx = write_cifar(tmp / "src", "cifar10", train_per_class=5000, test_per_class=1000)
    print(f"generated full-size CIFAR-10 source (official layout) in {time.perf_counter() - t0:.1f} s")
    results, times = {}, {}
    for label, workers in (("1 thread", 1), ("thread pool", None)):
        t0 = time.perf_counter()
        path = build(
            DATASETS.get("cifar10"),
            100,
            tmp / label.replace(" ", "-"),
            source_dir=fx.source_dir,
            verify_checksums=False,
            workers=workers,
        )
        dt = time.perf_counter() - t0
        m = json.loads((path / "manifest.json").read_text())
        n = sum(s["num_rows"] for s in m["splits"].values())
        results[label] = n / dt
        times[label] = dt
        rows = {k: v["num_rows"] for k, v in m["splits"].items()}
        print(
            f"cifar10-lt100 build ({label}): {n:,} images (train {m['splits']['train']['num_rows']:,}) "
            f"in {dt:.1f} s = {n / dt:,.0f} images/s"
        )
    from ltbench.builders.parquet import default_workers

    print(
        f"thread pool ({default_workers()} workers) / 1 thread: {results['thread pool'] / results['1 thread']:.2f}x"
    )
    (tmp / "naive").mkdir()
    t_naive = naive_datasets_writer(fx, rows, tmp / "naive")
    ratio = t_naive / times["thread pool"]
    print(f"B1  naive datasets writer (from_dict + to_parquet, same rows): {t_naive:.1f} s; "
          f"thread-pool build ×{ratio:.2f} (target ≥ 2)")  # fmt: skip
    from bench_kernels import merge_cases, results_path

    n = sum(rows.values())
    case = {"id": "B1", "shape": f"cifar10-lt100 build, {n} images", "threads": default_workers()}
    case |= {"ours_s": times["thread pool"], "baseline": "naive-datasets-from_dict+to_parquet"}
    case |= {"baseline_s": t_naive, "ratio": ratio, "serial_s": times["1 thread"], "source": "fixture"}
    case["load_average"] = os.getloadavg()[0]
    merge_cases(results_path(), [case], {})


def peak_rss(tmp: Path) -> None:
    rss = {}
    for n in (5_000, 50_000):
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-c", RSS_CHILD, str(n), str(tmp / f"rss-{n}")],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "LTBENCH_NO_PROGRESS": "1"},
        )
        info = json.loads(res.stdout.strip().splitlines()[-1])
        rss[n] = info["maxrss_kib"] / 1024
        print(
            f"synthetic {n:>6,} images ({info['bytes'] / 2**20:.0f} MiB of Parquet) in "
            f"{time.perf_counter() - t0:.1f} s: peak RSS {rss[n]:.0f} MiB"
        )
    ratio = rss[50_000] / rss[5_000]
    print(
        f"peak RSS ratio 50k / 5k images: {ratio:.3f} (target <= 1.2) {'OK' if ratio <= 1.2 else 'TOO HIGH'}"
    )
    if ratio > 1.2:
        sys.exit(1)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ltbench-bench-") as d:
        peak_rss(Path(d))  # first: ru_maxrss survives exec, so the parent must still be small here
        throughput(Path(d))


if __name__ == "__main__":
    main()
