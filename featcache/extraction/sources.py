"""The rows `featcache extract` reads: still images from a folder-layout dataset, or dynamic
images / flow stacks from ``temporal.h5``, each item turned into its views.

Each item is ``(row, views [V, C, crop, crop], error)``: view 0 is the centre crop, views
1.. are random crops + flips seeded by (seed, source, instance, view), so a resumed run
makes exactly the same inputs. A row that cannot be decoded comes back as zeros with the
reason in ``error`` (the extractor drops it and reports it).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from featcache.cache.temporal_cache import read_temporal
from featcache.data.dataset import FolderDataset
from featcache.errors import CacheError, DatasetError, FeatcacheError
from featcache.backbones.preprocessing import build_transform
from featcache.cache.schema import SPLIT_CODE, temporal_cache_path
from featcache.media.images import read_image


@dataclass
class SourceRows:
    """Every row to extract, in cache order, with the dataset's class list."""

    classes: list[str]
    labels: np.ndarray
    split: np.ndarray
    source: list[str]
    instance: np.ndarray
    unsupported: list[tuple[str, str]] = field(default_factory=list)  # files of other types, skipped
    video_split: dict | None = None  # temporal rows: where temporal.h5's val videos came from (carried into the cache)

    def __len__(self) -> int:
        return len(self.source)

    def digest(self) -> str:
        """sha256 over (source, instance, label, split) of every row: the file list's identity."""
        h = hashlib.sha256()
        for row in zip(self.source, self.instance.tolist(), self.labels.tolist(), self.split.tolist()):
            h.update(repr(row).encode("utf-8"))
        return h.hexdigest()


def still_rows(root: str | os.PathLike) -> SourceRows:
    dataset = FolderDataset(root)
    samples = dataset.stills()
    if not samples:
        raise DatasetError(f"{dataset.root}: no still images under stills/")
    return SourceRows(
        classes=list(dataset.classes),
        labels=np.array([s.label for s in samples], dtype=np.int64),
        split=np.array([SPLIT_CODE[s.split] for s in samples], dtype=np.int8),
        source=[s.path for s in samples],
        instance=np.zeros(len(samples), dtype=np.int32),
        unsupported=list(dataset.skipped),
    )


def temporal_rows(root: str | os.PathLike, cache_dir: str | os.PathLike, kind: str) -> SourceRows:
    """Rows of ``kind`` in ``DIR/temporal.h5``; its classes must be the dataset's."""
    path = temporal_cache_path(cache_dir)
    if not path.exists():
        raise CacheError(f"{path} not found; run first: featcache prepare {root} --cache {cache_dir}")
    with read_temporal(path, kind) as temporal:
        rows = SourceRows(
            classes=temporal.classes,
            labels=np.asarray(temporal.labels, dtype=np.int64),
            split=np.asarray(temporal.split, dtype=np.int8),
            source=[str(s) for s in temporal.source],
            instance=np.asarray(temporal.instance, dtype=np.int32),
            video_split=temporal.video_split,
        )
    classes = FolderDataset(root).classes
    if classes != rows.classes:
        raise CacheError(f"{path}: classes differ from dataset {root} ({len(rows.classes)} vs {len(classes)}); rerun featcache prepare {root} --cache {cache_dir} --restart")
    if not len(rows):
        raise CacheError(f"{path}: /{kind} has no rows; nothing to extract")
    return rows


def view_seed(seed: int, source: str, instance: int, view: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{source}:{instance}:{view}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class ViewDataset(Dataset):
    """Base class: decode row ``i`` with ``load(i)`` and turn it into ``views`` crops."""

    def __init__(self, rows: SourceRows, modality: str, *, views: int = 1, crop: int = 224, resize: int = 256,
                 interpolation: str = "bilinear", seed: int = 0):
        self.rows, self.views, self.seed = rows, int(views), int(seed)
        size = dict(crop=crop, resize=resize, interpolation=interpolation)
        self.center = build_transform(modality, train=False, **size)
        self.augment = build_transform(modality, train=True, **size)
        self.shape = (self.views, self.center.channels, crop, crop)

    def load(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        try:
            array = self.load(index)
            views = [self.center(array)]
            for v in range(1, self.views):
                g = torch.Generator().manual_seed(view_seed(self.seed, self.rows.source[index], int(self.rows.instance[index]), v))
                views.append(self.augment(array, g))
            return index, torch.stack(views), ""
        except (FeatcacheError, OSError, ValueError) as exc:
            return index, torch.zeros(self.shape), str(exc).splitlines()[0] or type(exc).__name__


class StillImageViews(ViewDataset):
    """Still images decoded with featcache.media.images.read_image (MediaError names the path)."""

    def __init__(self, root: str | os.PathLike, rows: SourceRows, **kwargs):
        super().__init__(rows, "still", **kwargs)
        self.root = Path(root)

    def load(self, index: int) -> np.ndarray:
        return read_image(self.root / self.rows.source[index])


class TemporalImageViews(ViewDataset):
    """Dynamic images or flow stacks from temporal.h5, opened once per (worker) process."""

    def __init__(self, path: str | os.PathLike, kind: str, rows: SourceRows, **kwargs):
        super().__init__(rows, kind, **kwargs)
        self.path, self.kind = Path(path), kind
        self._set, self._pid = None, None

    def load(self, index: int) -> np.ndarray:
        if self._pid != os.getpid():  # h5py handles must not cross a fork
            self._set, self._pid = read_temporal(self.path, self.kind), os.getpid()
        return self._set.row(index)

    def close(self) -> None:
        if self._set is not None and self._pid == os.getpid():
            self._set.close()
        self._set, self._pid = None, None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_set"], state["_pid"] = None, None
        return state
