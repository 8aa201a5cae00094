"""Reading every byte of a cache folder's HDF5 files back: ``featcache data check --deep CACHE``.

Each dataset is read a block (or chunk) at a time and checked against its block checksums (or
HDF5's Fletcher-32 and gzip verify the chunk), so damage is named by its rows; datasets written
before checksums existed are read too (a codec error is still caught) and listed as unchecked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py

from featcache.cache.schema import CHECKSUM_GROUP, damage_error, damaged_rows, has_checksums, open_complete, rebuild_hint
from featcache.errors import CacheError


@dataclass
class FileCheck:
    """What reading one cache file back found."""

    path: Path
    datasets: int = 0  # datasets read
    rows: int = 0  # rows of the largest dataset
    unchecked: list[str] = field(default_factory=list)  # datasets without checksums
    problems: list[str] = field(default_factory=list)  # one line each

    @property
    def ok(self) -> bool:
        return not self.problems


def cache_files(folder: str | os.PathLike) -> list[Path]:
    """The finished HDF5 files of a cache folder (feature caches, key frames, temporal.h5)."""
    return sorted(p for p in Path(folder).glob("*.h5") if p.is_file())


def verify_file(path: str | os.PathLike, *, deep: bool = True) -> FileCheck:
    """Open ``path`` as a finished cache and (``deep``) read every chunk of every dataset."""
    check = FileCheck(Path(path))
    try:
        f = open_complete(path, what="cache file")
    except CacheError as exc:
        check.problems.append(str(exc))
        return check
    with f:
        datasets: list[h5py.Dataset] = []
        f.visititems(lambda name, item: datasets.append(item) if isinstance(item, h5py.Dataset)
                     and not name.startswith(CHECKSUM_GROUP + "/") else None)  # the sums are read with their data
        for dataset in datasets:
            check.datasets += 1
            check.rows = max(check.rows, dataset.shape[0] if dataset.shape else 1)
            if dataset.dtype.kind in "iuf" and not has_checksums(dataset) and dataset.size:
                check.unchecked.append(dataset.name)
            if deep:
                _read_all(dataset, check)
    return check


def _read_all(dataset: h5py.Dataset, check: FileCheck) -> None:
    rows = damaged_rows(dataset)  # a block or chunk at a time: its own checksums, Fletcher-32, gzip
    if rows:
        check.problems.append(str(damage_error(dataset, rows)))
