"""Torch datasets for end-to-end fine-tuning (``featcache finetune``, ``featcache tsn``).

- :class:`StillImages`: the still images of one split of a folder-layout dataset, decoded with
  ``featcache.media.images.read_image``.
- :class:`TemporalInstances`: dynamic images or flow stacks of one split of ``temporal.h5``,
  read through ``featcache.cache.temporal_cache.read_temporal``.
- :class:`CoClassPairs`: each still image paired with a randomly sampled temporal instance of the
  same class (paper, Remark 2), resampled every epoch, deterministic under a seed.
- :class:`UnlabelledStills`: the stills under ``stills/unlabelled/`` (label -1: unknown).
- :class:`InstancePairs` (``--pairing instance``): each still paired with a random instance of its own
  video (``ROOT/still-videos.csv``), the unlabelled stills after the labelled ones; a labelled still
  with no video keeps a co-class draw.

Every item is ``(input, target)``; the transform (``featcache.backbones.preprocessing.build_transform``)
turns a uint8 ``[H, W, C]`` array into a float tensor ``[C, crop, crop]``.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from featcache.cache.temporal_cache import read_temporal
from featcache.data.dataset import FolderDataset
from featcache.data.val_split import DEFAULT_VAL_FRACTION, DEFAULT_VAL_SEED, carve_val, carved_record
from featcache.errors import DatasetError
from featcache.cache.schema import SPLIT_CODE
from featcache.media.images import read_image
from heads.samplers.co_class import draw_co_class

Transform = Callable[[np.ndarray], torch.Tensor]


class StillImages(Dataset):
    """Still images of one split, in the dataset's canonical order; items are ``(image, label)``."""

    def __init__(self, dataset: FolderDataset, split: str, transform: Transform):
        self.dataset = dataset
        self.split = split
        self.samples = dataset.stills(split)
        if not self.samples:
            raise DatasetError(f"{dataset.root / 'stills' / split}: no still images in split {split!r}")
        self.transform = transform
        self.labels = np.array([s.label for s in self.samples], dtype=np.int64)
        self.sources = [s.path for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def subset(self, keep: np.ndarray, transform: Transform) -> "StillImages":
        """These images where ``keep`` is true, with another transform (a carved val share)."""
        out = copy.copy(self)
        out.samples = [s for s, k in zip(self.samples, keep) if k]
        out.labels, out.sources = self.labels[keep], [p for p, k in zip(self.sources, keep) if k]
        out.transform = transform
        return out

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        return self.transform(read_image(self.dataset.path(sample))), int(sample.label)


class TemporalInstances(Dataset):
    """Dynamic images or flow stacks of one split of ``temporal.h5``; items are ``(input, label)``.

    The HDF5 data stays on disk; each process (DataLoader workers included) opens its own handle,
    because h5py handles do not survive a fork.
    """

    def __init__(self, path: str | os.PathLike, kind: str, split: str, transform: Transform):
        self.path = Path(path)
        self.kind = kind
        self.split = split
        self.transform = transform
        temporal = read_temporal(self.path, kind)
        split_codes = np.asarray(temporal.split)
        self.rows = np.flatnonzero(split_codes == SPLIT_CODE[split])
        if self.rows.size == 0:
            raise DatasetError(f"{self.path}: no {kind} instances in split {split!r}; rerun featcache prepare ROOT --cache {self.path.parent}")
        self.labels = np.asarray(temporal.labels, dtype=np.int64)[self.rows]
        self.sources = [str(s) for s in np.asarray(temporal.source, dtype=object)[self.rows]]
        self.instances = np.asarray(temporal.instance, dtype=np.int64)[self.rows]
        self.classes = temporal.classes
        self._temporal = temporal  # keeps the HDF5 file open
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self.rows.size)

    @property
    def temporal(self):
        if self._pid != os.getpid():
            self._temporal = read_temporal(self.path, self.kind)
            self._pid = os.getpid()
        return self._temporal

    @property
    def data(self):
        return self.temporal.data

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_temporal"] = None
        state["_pid"] = None  # reopen in the worker
        return state

    def subset(self, keep: np.ndarray, transform: Transform) -> "TemporalInstances":
        """These instances where ``keep`` is true, with another transform (carved val videos)."""
        out = copy.copy(self)
        out.rows, out.labels, out.instances = self.rows[keep], self.labels[keep], self.instances[keep]
        out.sources = [s for s, k in zip(self.sources, keep) if k]
        out.transform = transform
        return out

    def raw(self, index: int) -> np.ndarray:
        """One row, its checksum verified: a damaged row stops training with one line naming it."""
        return self.temporal.row(int(self.rows[index]))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.raw(index)), int(self.labels[index])

    def keys(self) -> list[tuple[str, int]]:
        """``(source, instance)`` of every row: how feature caches are matched to these instances."""
        return list(zip(self.sources, self.instances.tolist()))


def carve_stills_val(train: StillImages, eval_transform: Transform) -> tuple[StillImages, StillImages, dict]:
    """(train stills, val stills, record) when the dataset has no stills/val: a seeded,
    class-stratified share of the train stills (each still its own group), the one rule of
    :mod:`featcache.data.val_split`."""
    keep = carve_val(train.labels, train.sources, DEFAULT_VAL_FRACTION, DEFAULT_VAL_SEED)
    record = carved_record(DEFAULT_VAL_FRACTION, DEFAULT_VAL_SEED, int(keep.sum()), "train stills (no stills/val)")
    return train.subset(~keep, train.transform), train.subset(keep, eval_transform), record


def temporal_train_val(path: str | os.PathLike, kind: str, train_transform: Transform,
                       eval_transform: Transform) -> tuple[TemporalInstances, TemporalInstances, dict]:
    """(train instances, val instances, where val came from) of ``temporal.h5``: its val videos, or
    for a file built before the val split, a seeded class-stratified share of its train videos
    carved here (whole videos), never the test videos."""
    train = TemporalInstances(path, kind, "train", train_transform)
    split_codes = np.asarray(train._temporal.split)
    if (split_codes == SPLIT_CODE["val"]).any():
        record = train._temporal.video_split or {"val": "temporal.h5"}
        return train, TemporalInstances(path, kind, "val", eval_transform), record
    keep = carve_val(train.labels, train.sources, DEFAULT_VAL_FRACTION, DEFAULT_VAL_SEED)
    if not keep.any():
        raise DatasetError(f"{path}: no val videos and too few train videos per class to carve any; "
                           "add ROOT/videos/val or more train videos, then rerun featcache prepare")
    record = carved_record(DEFAULT_VAL_FRACTION, DEFAULT_VAL_SEED, len({s for s, k in zip(train.sources, keep) if k}),
                           f"the train videos of {Path(path).name} (it has no val videos: built before the val "
                           "split; rebuild with featcache prepare --restart to record the split)")
    return train.subset(~keep, train_transform), train.subset(keep, eval_transform), record


def sample_co_class_partners(still_labels: np.ndarray, temporal_labels: np.ndarray, *, seed: int, epoch: int,
                             where: str = "temporal data") -> np.ndarray:
    """For every still image, the index of a uniformly drawn temporal instance of the same class.

    Deterministic in ``(seed, epoch)``, so a resumed run draws the same pairs as an unbroken one.
    """
    partners = draw_co_class(still_labels, temporal_labels, np.random.default_rng([int(seed), int(epoch)]))
    if (partners < 0).any():
        label = int(np.min(np.asarray(still_labels)[partners < 0]))
        raise DatasetError(f"{where}: no temporal training instance of class index {label} to pair with")
    return partners


class CoClassPairs(Dataset):
    """Still image ``i`` paired with a random co-class temporal instance; items are ``(image, target)``.

    ``targets`` holds what the loss needs from temporal instance ``j``: a dataset whose items are
    ``(input, label)`` (the centre-crop input, for a live teacher) or a tensor whose row ``j`` is
    the teacher's cached logits. Call :meth:`set_epoch` to redraw the pairs.
    """

    def __init__(self, stills: StillImages, temporal_labels: np.ndarray, targets: Dataset | torch.Tensor,
                 *, seed: int = 0, where: str = "temporal data"):
        if len(targets) != len(temporal_labels):
            raise ValueError(f"{len(targets)} targets for {len(temporal_labels)} temporal instances")
        self.stills = stills
        self.temporal_labels = np.asarray(temporal_labels, dtype=np.int64)
        self.targets = targets
        self.seed = seed
        self.where = where
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.partners = sample_co_class_partners(
            self.stills.labels, self.temporal_labels, seed=self.seed, epoch=epoch, where=self.where
        )

    def __len__(self) -> int:
        return len(self.stills)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, _ = self.stills[index]
        target = self.targets[int(self.partners[index])]
        return image, target[0] if isinstance(target, tuple) else target


class UnlabelledStills(Dataset):
    """The stills under ``ROOT/stills/unlabelled/`` (sorted; or those of ``sources``); items are
    ``(image, -1)``: labels unknown."""

    def __init__(self, dataset: FolderDataset, transform: Transform, sources: list[str] | None = None):
        self.dataset = dataset
        self.sources = dataset.unlabelled_stills() if sources is None else list(sources)
        self.labels = np.full(len(self.sources), -1, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(read_image(self.dataset.root / self.sources[index])), -1


def own_video_rows(stills: list[str], links: dict[str, str], instance_sources: list[str], *, where: str,
                   required: bool) -> list[np.ndarray | None]:
    """For each still path, the temporal training rows of its own video (``links``: still -> video);
    None for a still with no video, or whose video has no training rows (a val or test video: its
    stills must not train). ``required``: a still with no link at all (an unlabelled still) is a DatasetError."""
    rows_of: dict[str, list[int]] = {}
    for row, source in enumerate(instance_sources):
        rows_of.setdefault(source, []).append(row)
    found: list[np.ndarray | None] = []
    for still in stills:
        video = links.get(still)
        if video is None and required:
            raise DatasetError(f"{where}: {still} has no video in still-videos.csv; instance pairing needs one")
        found.append(np.asarray(rows_of[video], dtype=np.int64) if video in rows_of else None)
    return found


class InstancePairs(CoClassPairs):
    """Still ``i`` (the labelled stills, then ``unlabelled``) paired with a random instance of its own
    video, redrawn each epoch; a labelled still without a video gets a co-class draw."""

    def __init__(self, stills: StillImages, temporal_labels: np.ndarray, targets: Dataset | torch.Tensor,
                 own_rows: list[np.ndarray | None], unlabelled: UnlabelledStills | None = None,
                 *, seed: int = 0, where: str = "temporal data"):
        self.unlabelled = unlabelled
        self.own_rows = own_rows
        if len(own_rows) != len(stills) + (len(unlabelled) if unlabelled is not None else 0):
            raise ValueError(f"{len(own_rows)} own-video row sets for the stills")
        super().__init__(stills, temporal_labels, targets, seed=seed, where=where)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)  # co-class draws for the labelled stills (kept where a still has no video)
        rng = np.random.default_rng([int(self.seed), int(epoch), 1])
        partners = np.concatenate([self.partners, np.full(len(self) - len(self.stills), -1, dtype=np.int64)])
        for i, rows in enumerate(self.own_rows):
            if rows is not None:
                partners[i] = rows[rng.integers(len(rows))]
        self.partners = partners

    def __len__(self) -> int:
        return len(self.stills) + (len(self.unlabelled) if self.unlabelled is not None else 0)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        labelled = index < len(self.stills)
        image, _ = self.stills[index] if labelled else self.unlabelled[index - len(self.stills)]
        target = self.targets[int(self.partners[index])]
        return image, target[0] if isinstance(target, tuple) else target
