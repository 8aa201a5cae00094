"""The cached features a head trains on: still train/val/test and temporal train/val/test.

Temporal val rows (val videos) are where the dim-reduction network, the embedding's classifier
and the oracle's temperatures are chosen. A temporal cache built before the val split has none:
a seeded, class-stratified 20% of its train videos is carved out here (the rule of
:mod:`featcache.data.val_split`, in memory; ``temporal_val`` says so), never the test rows.

Training splits keep every augmented view as its own row; val and test use view 0 (the
centre crop). Still and temporal caches may come from different backbones (the paper's
Resnet-Still and Resnet-Dyn.), but must share the class list.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from featcache.data.still_videos import read_still_videos
from featcache.errors import CacheError
from featcache.cache.feature_cache import FeatureCache, SplitData, check_same_classes, find_cache
from featcache.cache.schema import feature_cache_path
from featcache.data.val_split import DEFAULT_VAL_FRACTION, DEFAULT_VAL_SEED, carve_val, carved_record
from heads.samplers.instance_sampler import InstanceSampler, video_groups


@dataclass
class HeadData:
    temporal_kind: str
    classes: list[str]
    still: dict[str, SplitData]  # "train" (all views), "val" (may be absent), "test"
    temporal: dict[str, SplitData]  # "train" (all views), "val", "test"
    still_cache: FeatureCache
    temporal_cache: FeatureCache
    temporal_val: dict | None = None  # where the temporal val rows came from (recorded in run configs)
    still_videos: dict[str, str] = field(default_factory=dict)  # still -> its video (ROOT/still-videos.csv)

    @classmethod
    def from_caches(cls, still_cache: FeatureCache, temporal_cache: FeatureCache) -> "HeadData":
        if still_cache.modality != "still":
            raise CacheError(f"{still_cache.path}: modality is {still_cache.modality!r}, expected 'still'")
        kind = temporal_cache.modality
        if kind not in ("flow", "dynamic"):
            raise CacheError(f"{temporal_cache.path}: modality is {kind!r}, expected 'flow' or 'dynamic'")
        check_same_classes(still_cache, temporal_cache)
        still_splits, temporal_splits = still_cache.split_names(), temporal_cache.split_names()
        for cache, present, needed in ((still_cache, still_splits, ("train", "test")),
                                       (temporal_cache, temporal_splits, ("train", "test"))):
            missing = [s for s in needed if s not in present]
            if missing:
                raise CacheError(f"{cache.path}: no {' or '.join(missing)} rows; heads need train and test splits")
        still = {name: still_cache.split(name, all_views=name == "train") for name in still_splits}
        origin = temporal_val_rows(temporal_cache)
        temporal = {name: temporal_cache.split(name, all_views=name == "train") for name in ("train", "val", "test")}
        return cls(kind, still_cache.classes, still, temporal, still_cache, temporal_cache, origin)

    @classmethod
    def load(cls, cache_dir: str | os.PathLike, temporal: str, backbone: str | None = None,
             temporal_backbone: str | None = None, root: str | os.PathLike | None = None) -> "HeadData":
        """Find and open ``still-<backbone>.h5`` and ``<temporal>-<temporal_backbone>.h5``.

        ``temporal_backbone`` defaults to ``backbone`` when that cache exists, else to the
        only temporal cache of the kind. ``root``: the dataset, whose ``still-videos.csv`` links
        stills to their videos (``pairing=instance``).
        """
        still_path = find_cache(cache_dir, "still", backbone)
        if temporal_backbone is None and backbone and feature_cache_path(cache_dir, temporal, backbone).exists():
            temporal_backbone = backbone
        temporal_path = find_cache(cache_dir, temporal, temporal_backbone)
        data = cls.from_caches(FeatureCache.open(still_path), FeatureCache.open(temporal_path))
        if root is not None:
            data.still_videos = read_still_videos(root)
        return data

    def instance_sampler(self):
        """The own-video draw of ``pairing=instance`` for the still train rows (FeatcacheError when none is linked)."""
        still_group, temporal_group = video_groups(self.still["train"].source, self.temporal["train"].source,
                                                   self.still_videos)
        return InstanceSampler(still_group, temporal_group, self.temporal["train"].labels,
                               where=f"{self.still_cache.path}: ")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def temporal_identity(self) -> str:
        """A short fingerprint of the temporal cache (backbone, weights, rows, content sample) and of
        the labels and split of the rows a dim-reduction network learns and is chosen on (train and
        val: a relabelled cache written in place gets a new network, test labels play no part)."""
        return self._identity(self.temporal_cache, self.temporal)

    def still_identity(self) -> str:
        """The same fingerprint of the still cache and its train and val rows (a still model's)."""
        return self._identity(self.still_cache, self.still)

    def _identity(self, cache: FeatureCache, splits: dict[str, SplitData]) -> str:
        train, val = splits["train"], splits.get("val")
        labels = hashlib.sha256()
        for name, rows in (("train", train), ("val", val)):
            if rows is not None:
                labels.update(name.encode() + rows.labels.numpy().astype("<i8").tobytes())
                labels.update("\n".join(rows.source).encode())
        summary = {
            "modality": cache.modality,
            "backbone": cache.backbone,
            "weights": str(cache.attrs.get("weights", "")),
            "classes": self.classes,
            "rows": [len(splits[s]) if splits.get(s) is not None else 0 for s in ("train", "val", "test")],
            "dim": cache.feature_dim,
            "sample": [round(float(v), 5) for v in train.features[:: max(1, len(train) // 64)].sum(dim=1)[:64]],
            "labels": labels.hexdigest(),
        }
        return hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()[:16]


def temporal_val_rows(cache: FeatureCache) -> dict:
    """Make sure ``cache`` has temporal val rows: its own (val videos of ``prepare``), else a share of
    its train videos carved in memory by the one rule; returns where they came from."""
    recorded = cache.attrs.get("video_split")
    if "val" in cache.split_names():
        return recorded if isinstance(recorded, dict) else {"val": "cache"}
    index, labels, sources = cache.rows("train")
    mask = carve_val(labels, sources, DEFAULT_VAL_FRACTION, DEFAULT_VAL_SEED)
    if not mask.any():
        raise CacheError(f"{cache.path}: no val rows and too few train videos to carve any (a class needs two); "
                         "rerun featcache prepare with videos/val, then extract")
    cache.move_rows(index[mask], "val")
    return carved_record(DEFAULT_VAL_FRACTION, DEFAULT_VAL_SEED, len(set(sources[mask].tolist())),
                         f"the train rows of {cache.path.name} (it has no val videos: built before the val split; "
                         "rebuild with featcache prepare --restart and extract to record the split)")
