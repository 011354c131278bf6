"""Streaming Parquet writer in the Hugging Face ``datasets`` layout (Image + ClassLabel features).

Rows are written in small row groups and the shard is closed once it passes ``max_shard_bytes``, so memory
stays bounded whatever the number of images. Shards are named ``<split>-0000k-of-0000N.parquet`` as
``push_to_hub`` names them. Output depends only on the inputs: the same pool and indices give the same bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from ltbench.builders.spec import Pool

from ltbench.progress import track

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


def write_split(
    out_dir: Path,
    split: str,
    pool: Pool,
    indices: np.ndarray,
    class_names: Sequence[str],
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> list[str]:
    """Write ``pool[indices]`` as Parquet shards under ``out_dir``; return the shard file names in order."""
    schema = hf_schema(class_names)
    parts: list[Path] = []
    writer: pq.ParquetWriter | None = None
    shard_bytes = 0
    images: list[bytes] = []
    paths: list[str | None] = []
    labels: list[int] = []

    def flush() -> None:
        nonlocal shard_bytes
        if not labels:
            return
        table = pa.table(
            {
                "image": pa.array(
                    [{"bytes": b, "path": p} for b, p in zip(images, paths, strict=True)],
                    type=schema.field(0).type,
                ),
                "label": pa.array(labels, type=pa.int64()),
            },
            schema=schema,
        )
        writer.write_table(table)
        shard_bytes += sum(len(b) for b in images)
        images.clear(), paths.clear(), labels.clear()

    def open_shard() -> pq.ParquetWriter:
        path = out_dir / f".{split}-{len(parts):05d}.parquet"
        parts.append(path)
        return pq.ParquetWriter(path, schema, compression="none", write_statistics=False)

    writer = open_shard()
    for i in track(indices, total=len(indices), description=f"writing {split}"):
        i = int(i)
        images.append(pool.read(i))
        paths.append(pool.paths[i] if pool.paths is not None else None)
        labels.append(int(pool.labels[i]))
        if len(labels) >= ROWS_PER_GROUP:
            flush()
            if shard_bytes >= max_shard_bytes:
                writer.close()
                writer, shard_bytes = open_shard(), 0
    flush()
    writer.close()

    names = []
    for k, tmp in enumerate(parts):
        name = f"{split}-{k:05d}-of-{len(parts):05d}.parquet"
        os.replace(tmp, out_dir / name)
        names.append(name)
    return names
