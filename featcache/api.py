"""Stage 1 from Python: prepare temporal representations, extract features, read the caches.

The same code paths as ``featcache prepare`` and ``featcache extract`` (resumable, atomic
files, progress bars), with settings as keyword arguments::

    from featcache import prepare_dataset, extract_features, open_cache, read_temporal
    prepare_dataset("data/ucf", "cache", flow_method="farneback")           # cache/temporal.h5
    flow = read_temporal("cache/temporal.h5", "flow")                        # data [N, H, W, 20] uint8
    extract_features("data/ucf", "cache", modality="flow", device="cuda")   # cache/flow-<backbone>.h5
    train = open_cache("cache", "flow").split("train")                      # features [n, D], labels [n]

Stage 2 (heads, grids) is :mod:`heads`: ``from heads import fit_head``.
"""

from __future__ import annotations

import os
from typing import Any

from featcache.extraction.extract import ExtractReport, ExtractSettings, extract
from featcache.cache.feature_cache import FeatureCache, find_cache
from featcache.representations.prepare import PrepareReport, PrepareSettings, prepare


def open_cache(path: str | os.PathLike, modality: str | None = None, backbone: str | None = None) -> FeatureCache:
    """A finished feature cache, loaded: ``open_cache("cache/still-resnet50.h5")``, or a cache folder
    and a modality (``open_cache("cache", "still")``; ``backbone`` when the folder holds several)."""
    return FeatureCache.open(find_cache(path, modality, backbone) if modality is not None else path)


def prepare_dataset(root: str | os.PathLike, cache: str | os.PathLike = "cache", *, restart: bool = False,
                    workers: int | None = None, keep_parts: bool = False, **settings: Any) -> PrepareReport:
    """Dynamic images and optical-flow stacks of every video of ``root`` into ``cache/temporal.h5``.

    ``settings`` are :class:`~featcache.representations.prepare_settings.PrepareSettings` fields (``size=(256, 340)``,
    ``kinds=("flow",)``, ``flow_method="farneback"``, ...). Finished videos are reused;
    ``restart`` starts over.
    """
    return prepare(root, cache, PrepareSettings(**settings), workers=workers, restart=restart,
                   keep_parts=keep_parts)


def extract_features(root: str | os.PathLike, cache: str | os.PathLike = "cache", *, modality: str = "still",
                     restart: bool = False, **settings: Any) -> ExtractReport:
    """Backbone features (+ logits) of ``modality`` into ``cache/<modality>-<backbone>.h5``.

    ``settings`` are :class:`~featcache.extraction.extract_settings.ExtractSettings` fields (``backbone``, ``weights``,
    ``device``, ``views``, ``batch_size``, ...). Finished shards are reused; ``restart`` starts over.
    """
    return extract(root, cache, ExtractSettings(modality=modality, **settings), restart=restart)
