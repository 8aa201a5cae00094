"""The reader of ``temporal.h5`` (written by :mod:`featcache.representations.prepare`).

One group per kind (``/dynamic``, ``/flow``) with ``data`` and the row datasets, and a
``/videos`` index (one row per video: source, stamp, frame count, error).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from featcache.cache.schema import SPLIT_CODE, TEMPORAL_KINDS, open_complete, read_checked, read_root_attrs, read_rows
from featcache.errors import CacheError

INDEX_GROUP = "videos"  # per-video bookkeeping (source, stamp, frames, error)


@dataclass
class TemporalSet:
    """One kind of ``temporal.h5``: ``data`` stays on disk (h5py), rows are in memory."""

    data: h5py.Dataset
    labels: np.ndarray
    split: np.ndarray
    source: np.ndarray
    instance: np.ndarray
    attrs: dict[str, Any]
    file: h5py.File

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> list[str]:
        return list(self.attrs["classes"])

    @property
    def video_split(self) -> dict | None:
        """Where the val videos came from (``prepare``), or None for a file built before the val split."""
        return self.attrs.get("video_split")

    def indices(self, split: str) -> np.ndarray:
        """Row indices of one split ('train', 'val' or 'test')."""
        return np.flatnonzero(self.split == SPLIT_CODE[split])

    def row(self, index: int) -> np.ndarray:
        """``data[index]``, its checksum verified: a damaged row raises a CacheError naming file, dataset and row."""
        return read_checked(self.data, int(index))

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "TemporalSet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_temporal(path: str | os.PathLike, kind: str) -> TemporalSet:
    """Open a finished ``temporal.h5`` and return its ``kind`` ('dynamic' or 'flow') group."""
    if kind not in TEMPORAL_KINDS:
        raise CacheError(f"unknown temporal kind {kind!r}; expected {', '.join(TEMPORAL_KINDS)}")
    path = Path(path)
    f = open_complete(path, what="temporal cache")
    if kind not in f:
        f.close()
        raise CacheError(f"{path}: no /{kind} group (prepared without it); rerun featcache prepare ROOT --cache {path.parent} --restart"
                         + ("" if kind == "flow" else " (without --only flow)"))
    group = f[kind]
    attrs = read_root_attrs(f)
    attrs.update(read_root_attrs(group))
    rows = read_rows(group)
    return TemporalSet(data=group["data"], attrs=attrs, file=f, **rows)


def root_preprocessing(path: str | os.PathLike) -> dict[str, Any]:
    """The root ``preprocessing`` of a finished ``temporal.h5`` (size, kinds, and each kind's settings)."""
    with open_complete(path, what="temporal cache") as f:
        return dict(read_root_attrs(f).get("preprocessing") or {})


def read_index(f: h5py.File) -> dict[str, list]:
    """The ``/videos`` index of an open ``temporal.h5``: source, stamp, frames and error per video."""
    index = f[INDEX_GROUP]
    out = {name: [s.decode() if isinstance(s, bytes) else s for s in index[name][()]] for name in ("source", "stamp", "error")}
    out["frames"] = list(index["frames"][()])
    return out


def read_failed(path: Path) -> list[tuple[str, str]]:
    """(source, error) of every video a ``temporal.h5`` could not prepare."""
    with h5py.File(path, "r") as f:
        index = read_index(f)
    return [(s, e) for s, e in zip(index["source"], index["error"]) if e]
