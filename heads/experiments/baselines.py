"""The paper's two baselines (section 5, Table 1), on cached features.

- ``still``: the still model of the heads (:func:`heads.training.still_model.fit_still_models`:
  linear softmax on still features, or the backbone's logits) on the still train split.
- ``aug-frames`` (Aug. Still+Frame): the same linear still model trained on the still
  train rows plus the key frames mined from the training videos
  (``keyframes-<backbone>.h5``, :mod:`featcache.extraction.keyframes`).

Both are evaluated on the still val/test splits and write ``metrics.json`` + ``model.pt``.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from featcache.errors import CacheError, FeatcacheError
from featcache.extraction.keyframes import keyframes_cache_path
from featcache.utils.device import resolve_device
from featcache.utils.progress import optional_progress
from featcache.cache.feature_cache import FeatureCache, SplitData, check_same_classes, find_cache
from heads.evaluation.history import History, MemberHistories
from heads.training.config import STILL_DEFAULTS
from heads.evaluation.metrics import build_metrics
from heads.training.head_data import HeadData
from heads.training.loop import Phases
from heads.training.resolve import resolve
from heads.training.run_dir import write_head_run
from heads.training.seeds import combine_seed_metrics, seed_configs
from heads.training.still_model import fit_still_models

BASELINES = ("still", "aug-frames")

def still_config(assignments: Iterable[str] = (), config_file: str | os.PathLike | None = None,
                 values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The heads' still-model defaults, then a config file's keys, then ``values``, then ``KEY=VALUE``
    overrides (still keys only; the one resolver, :func:`heads.training.resolve.resolve`)."""
    return resolve(STILL_DEFAULTS, "baseline", config_file=config_file, values=values, sets=assignments)

def still_only_data(still_cache: FeatureCache) -> HeadData:
    """HeadData with the still stream only (the still model needs nothing temporal)."""
    if still_cache.modality != "still":
        raise CacheError(f"{still_cache.path}: modality is {still_cache.modality!r}, expected 'still'")
    missing = [s for s in ("train", "test") if s not in still_cache.split_names()]
    if missing:
        raise CacheError(f"{still_cache.path}: no {' or '.join(missing)} rows; the still baseline needs train and test")
    still = {name: still_cache.split(name, all_views=name == "train") for name in still_cache.split_names()}
    return HeadData(None, still_cache.classes, still, {}, still_cache, None)

def concat_rows(a: SplitData, b: SplitData) -> SplitData:
    return SplitData(
        features=torch.cat([a.features, b.features]),
        labels=torch.cat([a.labels, b.labels]),
        source=list(a.source) + list(b.source),
        instance=torch.cat([a.instance, b.instance]),
        logits=None,
    )

def train_baseline(method: str, cache_dir: str | os.PathLike = "cache", *, backbone: str | None = None,
                   config: dict | None = None, device: str = "cpu", out: str | os.PathLike | None = None,
                   experiment: str = "main", progress: bool = True, seeds: int = 1) -> dict:
    """Train baseline ``method`` ('still' or 'aug-frames') under ``seeds`` seeds (stacked members,
    ``heads.training.seeds``); returns its metrics (written to ``out``)."""
    if method not in BASELINES:
        raise FeatcacheError(f"unknown baseline {method!r}; expected one of {', '.join(BASELINES)}")
    config = still_config(values=config)
    start = time.perf_counter()
    still_cache = FeatureCache.open(find_cache(cache_dir, "still", backbone))
    data = still_only_data(still_cache)
    config["num_train"] = len(data.still["train"])
    if method == "aug-frames":
        path = keyframes_cache_path(cache_dir, still_cache.backbone)
        if not path.exists():
            raise CacheError(f"no key-frame cache {path}; run: featcache keyframes ROOT --cache {cache_dir}")
        keyframes = FeatureCache.open(path)
        check_same_classes(still_cache, keyframes)
        if keyframes.feature_dim != still_cache.feature_dim:
            raise CacheError(f"{path}: {keyframes.feature_dim}-d features, the still cache has {still_cache.feature_dim}-d")
        extra = keyframes.split("train")
        data.still["train"] = concat_rows(data.still["train"], extra)
        config["num_keyframes"] = len(extra)
        config["still_model"] = "linear"  # key frames have features, not the still backbone's logits
    configs = seed_configs(config, seeds)
    with optional_progress(progress) as bar, (History(out) if out is not None else contextlib.nullcontext()) as history:
        phases = Phases(bar, MemberHistories([history] + [None] * (len(configs) - 1), len(configs)))  # the first seed's curves
        stream = fit_still_models(data, configs, resolve_device(device), phases)
    labels = {s: data.still[s].labels if s in data.still else None for s in ("val", "test")}
    seconds = (time.perf_counter() - start) / len(configs)
    members = [{split: None if p is None else p[g].cpu() for split, p in stream.probs.items()} for g in range(len(configs))]
    metrics = combine_seed_metrics(
        [build_metrics(method, None, c, probs, None, labels, data.classes, seconds, experiment=experiment)
         for c, probs in zip(configs, members)],
        [{"still": probs, "derived": None, "labels": labels} for probs in members],
    )
    metrics["still_model"] = stream.mode
    metrics["backbones"] = {"still": still_cache.backbone}
    if out is not None:
        checkpoint = {
            "method": method, "config": config, "classes": data.classes, "still_model": stream.mode,
            "still_cache": str(still_cache.path), "still_record": still_cache.record(),
            "dims": {"still": still_cache.feature_dim, "classes": data.num_classes},
            "state": {"still": stream.states[0]},
        }
        write_head_run(Path(out), checkpoint, {k: config[k] for k in STILL_DEFAULTS},
                       f"featcache baseline {method}: the still model's resolved configuration; rerun it with "
                       "--config this-file", metrics)
    return metrics
