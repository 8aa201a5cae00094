"""Shards of ``featcache extract``: fixed-size runs of rows, each written as one part
(:mod:`featcache.cache.parts`) when its last batch is done, and their assembly into the
feature cache (temporary name, ``complete`` last, rename)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from featcache.cache.parts import read_part, write_part
from featcache.cache.schema import mark_complete, write_checksums, write_root_attrs, write_rows
from featcache.errors import CacheError, MediaError
from featcache.extraction.sources import SourceRows
from featcache.utils.atomic import atomic_path


def shard_ranges(num_rows: int, shard_size: int) -> list[range]:
    return [range(start, min(start + shard_size, num_rows)) for start in range(0, num_rows, shard_size)]


def shard_path(parts: Path, k: int) -> Path:
    return parts / f"shard-{k:06d}.npz"


def write_shard(path: Path, rows: np.ndarray, features: np.ndarray, logits: np.ndarray | None, failed: list[tuple[int, str]]) -> None:
    arrays = {
        "rows": rows.astype(np.int64),
        "features": features,
        "failed_rows": np.array([i for i, _ in failed], dtype=np.int64),
        "failed_reasons": np.array([r for _, r in failed], dtype=np.str_),
    }
    if logits is not None:
        arrays["logits"] = logits
    write_part(path, arrays)


def read_shard(path: Path) -> dict[str, np.ndarray]:
    shard = read_part(path)
    if shard is None:
        raise CacheError(f"{path}: damaged shard; delete it and rerun to compute it again")
    return shard


class ShardBatches:
    """Batch sampler over the pending shards: batches never cross a shard boundary, so a
    shard's values do not depend on which shards were done before (resume = same values)."""

    def __init__(self, shards: list[range], batch_size: int):
        self.batches = [list(shard[i : i + batch_size]) for shard in shards for i in range(0, len(shard), batch_size)]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def flush_shard(parts: Path, k: int, buf: dict, dtype: str, logits: bool, dim: int, views: int) -> None:
    shape = (0, views, dim) if views > 1 else (0, dim)
    features = np.stack(buf["features"]).astype(dtype) if buf["features"] else np.zeros(shape, dtype)
    scores = None
    if logits:
        scores = np.stack(buf["logits"]).astype(dtype) if buf["logits"] else np.zeros((0,), dtype)
    write_shard(shard_path(parts, k), np.array(buf["rows"], dtype=np.int64), features, scores, buf["failed"])


def assemble(path: Path, parts: Path, shards: list[range], rows: SourceRows, identity: dict,
             weights_path: str | None = None) -> tuple[int, list, tuple]:
    """Shards -> the final cache file (temporary name, ``complete`` last, rename). ``weights_path``:
    where the weights were read from (root attribute, beside their sha256 ``weights``; not identity)."""
    kept, skipped, first = [], [], None
    for k in range(len(shards)):
        shard = read_shard(shard_path(parts, k))
        kept.append(shard["rows"])
        skipped.extend((rows.source[int(i)], str(r)) for i, r in zip(shard["failed_rows"], shard["failed_reasons"]))
        if first is None and len(shard["rows"]):
            first = shard
    kept_rows = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    if not len(kept_rows):
        raise MediaError(f"no row could be read ({len(skipped)} failed, first: {skipped[0][1] if skipped else '?'}); no cache written")
    n = len(kept_rows)
    feature_shape = (n,) + first["features"].shape[1:]
    logit_shape = (n,) + first["logits"].shape[1:] if identity["logits"] else None
    size = np.prod(feature_shape) * np.dtype(identity["dtype"]).itemsize + (np.prod(logit_shape) * 4 if logit_shape else 0)
    with atomic_path(path, "feature cache", reserve=int(size) + 64 * n + 2**20) as tmp:
        with h5py.File(tmp, "w") as f:
            attrs = {k: identity[k] for k in ("modality", "backbone", "weights", "preprocessing", "classes", "rows_sha256", "input")}
            write_root_attrs(f, **attrs, weights_path=weights_path, skipped=json.dumps(skipped),
                             video_split=rows.video_split)
            features = f.create_dataset("features", shape=feature_shape, dtype=identity["dtype"])  # contiguous: loads fastest
            scores = None
            if logit_shape:
                scores = f.create_dataset("logits", shape=logit_shape, dtype=identity["dtype"])
            at = 0
            for k in range(len(shards)):  # stream shard by shard: memory stays one shard
                shard = read_shard(shard_path(parts, k))
                m = len(shard["rows"])
                if m:
                    features[at : at + m] = shard["features"]
                    if scores is not None:
                        scores[at : at + m] = shard["logits"]
                at += m
            for dataset in (features, scores):  # block checksums, verified on every read
                if dataset is not None:
                    write_checksums(dataset)
            write_rows(
                f,
                labels=rows.labels[kept_rows],
                split=rows.split[kept_rows],
                source=[rows.source[i] for i in kept_rows],
                instance=rows.instance[kept_rows],
            )
            mark_complete(f)
    return n, skipped, feature_shape
