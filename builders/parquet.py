"""Streaming Parquet writer in the Hugging Face ``datasets`` layout (Image + ClassLabel features).

Rows are read in batches of ``ROWS_PER_GROUP``, each batch is written as one row group and dropped, and a
shard is closed once it passes ``max_shard_bytes``: memory holds two batches (the one written, the next being
read), whatever the number of images.
Pools whose reader is thread-safe (``Pool.thread_safe``) are read by a thread pool, results kept in index order
(file reads, zlib and NumPy release the GIL), each batch in one chunk per worker (``Pool.read_batch``: raw-pixel
sources encode a chunk as one stack, :func:`~ltbench.builders.images.png_batch`) while the previous batch is
written. Shards are named ``<split>-0000k-of-0000N.parquet`` as
``push_to_hub`` names them. Output depends only on the inputs: the same pool and indices give the same bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from ltbench.builders.spec import Pool

from ltbench.progress import make_progress

ROWS_PER_GROUP = 256
MAX_SHARD_BYTES = 256 * 1024 * 1024


def hf_schema(class_names: Sequence[str]) -> pa.Schema:
    features = {
        "image": {"_type": "Image"},
        "label": {"_type": "ClassLabel", "names": list(class_names)},
    }
    schema = pa.schema(
        [
            pa.field("image", pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])),
            pa.field("label", pa.int64()),
        ]
    )
    return schema.with_metadata({"huggingface": json.dumps({"info": {"features": features}})})


def default_workers() -> int:
    """Reader threads: ``LTBENCH_BUILD_WORKERS`` or min(8, CPU count); 1 reads in the calling thread."""
    env = os.environ.get("LTBENCH_BUILD_WORKERS")
    return max(1, int(env)) if env else min(8, os.cpu_count() or 1)


def _submit(
    ex: ThreadPoolExecutor, read: Callable[[list[int]], list[bytes]], batch: list[int], workers: int
) -> list[Future]:
    """Read ``batch`` as ``workers`` contiguous chunks (one task each, not one per image: a task costs tens of
    µs of GIL-held bookkeeping, and a stack encodes faster than its images one by one); the futures in order."""
    step = -(-len(batch) // workers)
    return [ex.submit(read, batch[i : i + step]) for i in range(0, len(batch), step)]


def write_split(
    out_dir: Path,
    split: str,
    pool: Pool,
    indices: np.ndarray,
    class_names: Sequence[str],
    max_shard_bytes: int = MAX_SHARD_BYTES,
    workers: int | None = None,
) -> list[str]:
    """Write ``pool[indices]`` as Parquet shards under ``out_dir``; return the shard file names in order."""
    out_dir = Path(out_dir)
    schema = hf_schema(class_names)
    image_type = schema.field("image").type
    workers = default_workers() if workers is None else max(1, workers)
    parallel = workers > 1 and getattr(pool, "thread_safe", False)
    parts: list[Path] = []

    def open_shard() -> pq.ParquetWriter:
        path = out_dir / f".{split}-{len(parts):05d}.parquet"
        parts.append(path)
        return pq.ParquetWriter(path, schema, compression="none", write_statistics=False)

    indices = np.asarray(indices, dtype=np.int64)
    batches = [
        [int(i) for i in indices[s : s + ROWS_PER_GROUP]] for s in range(0, len(indices), ROWS_PER_GROUP)
    ]
    executor = ThreadPoolExecutor(workers, thread_name_prefix="ltbench-read") if parallel else nullcontext()
    writer = open_shard()
    shard_bytes = 0
    try:
        with executor as ex, make_progress() as prog:
            task = prog.add_task(f"writing {split}", total=len(indices), info="")
            pending = _submit(ex, pool.read_batch, batches[0], workers) if parallel and batches else None
            for k, batch in enumerate(batches):
                if parallel:  # the next batch is read while this one is turned into a row group and written
                    images = [b for f in pending for b in f.result()]
                    pending = (
                        _submit(ex, pool.read_batch, batches[k + 1], workers)
                        if k + 1 < len(batches)
                        else None
                    )
                else:
                    images = pool.read_batch(batch)
                paths = [pool.paths[i] for i in batch] if pool.paths is not None else [None] * len(batch)
                image = pa.StructArray.from_arrays(  # column-wise: no Python dict per row
                    [pa.array(images, pa.binary()), pa.array(paths, pa.string())], fields=list(image_type)
                )
                labels = pa.array(np.asarray(pool.labels, dtype=np.int64)[batch], pa.int64())
                table = pa.Table.from_arrays([image, labels], schema=schema)
                if shard_bytes >= max_shard_bytes:
                    writer.close()
                    writer, shard_bytes = open_shard(), 0
                writer.write_table(table)
                shard_bytes += sum(len(b) for b in images)
                prog.advance(task, len(batch))
    finally:
        writer.close()

    names = []
    for k, tmp in enumerate(parts):
        name = f"{split}-{k:05d}-of-{len(parts):05d}.parquet"
        os.replace(tmp, out_dir / name)
        names.append(name)
    return names
