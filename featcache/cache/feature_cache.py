"""Reader API over finished feature caches (``<modality>-<backbone>.h5``), used by stage 2.

One call loads a whole cache into memory as tensors, split by split::

    cache = FeatureCache.open("cache/still-efficientnet-lite0.h5")
    train = cache.split("train")          # SplitData(features [N, D], labels [N], ...)
    check_same_classes(still_cache, dynamic_cache)

Caches with augmented views (``features`` of shape ``[N, V, D]``) keep view 0 as the
centre crop; ``split(name, all_views=True)`` flattens every view into rows (for training).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featcache.errors import CacheError
from featcache.cache.lineage import check_input
from featcache.cache.schema import (MODALITIES, SPLIT_CODE, feature_cache_path, open_complete, read_checked,
                                    read_root_attrs, read_rows)


@dataclass
class SplitData:
    """Rows of one split: features ``[n, D]`` float32, labels ``[n]`` int64, and provenance."""

    features: torch.Tensor
    labels: torch.Tensor
    source: list[str]
    instance: torch.Tensor
    logits: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def read_sources(arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> list[str]:
    """Every source a cache read: its rows' and those it skipped (the files its lineage covers)."""
    skipped = attrs.get("skipped", "[]")
    return [str(s) for s in arrays["source"]] + [str(s) for s, _ in json.loads(skipped)]


class FeatureCache:
    """A finished feature cache, fully loaded in memory."""

    def __init__(self, path: Path, attrs: dict[str, Any], arrays: dict[str, np.ndarray]):
        self.path = path
        self.attrs = attrs
        self._arrays = arrays

    @classmethod
    def open(cls, path: str | os.PathLike) -> "FeatureCache":
        path = Path(path)
        with open_complete(path, what="feature cache") as f:
            attrs = read_root_attrs(f)
            if "features" not in f:
                raise CacheError(f"{path}: no 'features' dataset; not a feature cache")
            arrays = read_rows(f)
            arrays["features"] = read_checked(f["features"])  # checksums verified: a damaged row stops here
            if "logits" in f:
                arrays["logits"] = read_checked(f["logits"])
        check_input(path, attrs, read_sources(arrays, attrs))
        return cls(path, attrs, arrays)

    # -- metadata -------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self.attrs["classes"])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def modality(self) -> str:
        return str(self.attrs["modality"])

    @property
    def backbone(self) -> str:
        return str(self.attrs.get("backbone", "?"))

    @property
    def feature_dim(self) -> int:
        return int(self._arrays["features"].shape[-1])

    @property
    def num_views(self) -> int:
        features = self._arrays["features"]
        return int(features.shape[1]) if features.ndim == 3 else 1

    @property
    def has_logits(self) -> bool:
        return "logits" in self._arrays and self._arrays["logits"].shape[-1] == self.num_classes

    def record(self) -> dict[str, Any]:
        """What a model trained on this cache keeps of it, to featurise new images the same way
        (``featcache.extraction.image_features``): the file, backbone, weights (sha256 and the file
        they were read from), preprocessing, feature dtype and whether it holds the backbone's logits."""
        return {"path": str(self.path.resolve()), "modality": self.modality, "backbone": self.backbone,
                "weights": str(self.attrs.get("weights", "")), "weights_path": self.attrs.get("weights_path"),
                "preprocessing": self.attrs.get("preprocessing"), "dtype": str(self._arrays["features"].dtype),
                "logits": self.has_logits}

    def rows(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(row indices, labels, sources)`` of one split, one row per stored row (views not flattened)."""
        index = np.flatnonzero(self._arrays["split"] == SPLIT_CODE[split])
        return index, self._arrays["labels"][index], self._arrays["source"][index]

    def move_rows(self, index: np.ndarray, split: str) -> None:
        """Put rows ``index`` in ``split``, in memory only (the file is unchanged): how a val share
        carved from train rows is applied to a cache that has no val rows of its own."""
        self._arrays["split"] = self._arrays["split"].copy()
        self._arrays["split"][np.asarray(index, dtype=np.int64)] = SPLIT_CODE[split]

    def split_names(self) -> list[str]:
        present = set(np.unique(self._arrays["split"]).tolist())
        return [name for name, code in SPLIT_CODE.items() if code in present]

    # -- data -----------------------------------------------------------------
    def split(self, name: str, all_views: bool = False, dtype: Any = np.float32) -> SplitData:
        """Rows of split ``name`` ('train', 'val', 'test') as tensors.

        With augmented views, ``all_views=False`` returns view 0 (the centre crop) and
        ``all_views=True`` returns every view as its own row (labels repeated). Features and
        logits come as ``dtype`` (float32, whatever the file stores); ``dtype=None`` keeps the
        stored type (a float16 cache stays half, e.g. to move to a GPU at half the bytes).
        """
        if name not in SPLIT_CODE:
            raise CacheError(f"unknown split {name!r}; expected one of {', '.join(SPLIT_CODE)}")
        mask = self._arrays["split"] == SPLIT_CODE[name]
        features = self._arrays["features"][mask]
        features = features if dtype is None else features.astype(dtype, copy=False)
        labels = self._arrays["labels"][mask].astype(np.int64)
        source = [str(s) for s in self._arrays["source"][mask]]
        instance = self._arrays["instance"][mask].astype(np.int64)
        logits = self._arrays["logits"][mask] if self.has_logits else None
        logits = logits if logits is None or dtype is None else logits.astype(dtype, copy=False)
        if features.ndim == 3:
            if all_views:
                views = features.shape[1]
                features = features.reshape(-1, features.shape[-1])
                labels = np.repeat(labels, views)
                instance = np.repeat(instance, views)
                source = [s for s in source for _ in range(views)]
                if logits is not None and logits.ndim == 3:
                    logits = logits.reshape(-1, logits.shape[-1])
            else:
                features = features[:, 0]
                if logits is not None and logits.ndim == 3:
                    logits = logits[:, 0]
        return SplitData(
            features=torch.from_numpy(np.ascontiguousarray(features)),
            labels=torch.from_numpy(labels),
            source=source,
            instance=torch.from_numpy(instance),
            logits=None if logits is None else torch.from_numpy(np.ascontiguousarray(logits)),
        )

    def splits(self, all_views_for_train: bool = False) -> dict[str, SplitData]:
        """Every split present, in one call."""
        return {
            name: self.split(name, all_views=all_views_for_train and name == "train")
            for name in self.split_names()
        }

    def __repr__(self) -> str:
        return (
            f"FeatureCache({str(self.path)!r}, modality={self.modality}, backbone={self.backbone}, "
            f"rows={len(self._arrays['labels'])}, dim={self.feature_dim}, views={self.num_views})"
        )


def check_same_classes(*caches: FeatureCache) -> None:
    """Raise CacheError unless every cache has the same class list in the same order."""
    first = caches[0]
    for other in caches[1:]:
        if other.classes != first.classes:
            raise CacheError(
                f"{other.path} and {first.path} have different classes "
                f"({len(other.classes)} vs {len(first.classes)}); build both from the same dataset"
            )


def find_cache(cache_dir: str | os.PathLike, modality: str, backbone: str | None = None) -> Path:
    """The cache file for ``modality`` in ``cache_dir``: the one for ``backbone`` if given,
    else the only one present (an error if none or several)."""
    if modality not in MODALITIES:
        raise CacheError(f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}")
    cache_dir = Path(cache_dir)
    if backbone:
        path = feature_cache_path(cache_dir, modality, backbone)
        if not path.exists():
            raise CacheError(f"no {modality} cache for backbone {backbone!r}: {path} not found; "
                             f"run: featcache extract ROOT --modality {modality} --backbone {backbone} --cache {cache_dir}")
        return path
    found = sorted(cache_dir.glob(f"{modality}-*.h5"))
    if not found:
        raise CacheError(f"no {modality} feature cache in {cache_dir}; run: featcache extract ROOT --modality {modality} --cache {cache_dir}")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise CacheError(f"several {modality} caches in {cache_dir} ({names}); choose one with --backbone")
    return found[0]
