"""Synthetic feature caches in the CONTRACT schema, for tests and benchmarks of the heads.

Still and temporal features are class-dependent Gaussians that share a latent relation
(paper, Assumption 1): each instance draws a latent ``u = z_class + sd * e``; its still
features are ``A_s u`` and its temporal features ``A_t u``, each plus isotropic noise.
So a still -> temporal mapping exists (Assumption 2) and every head can learn the task.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from featcache.cache.schema import SPLIT_CODE, feature_cache_path, mark_complete, write_checksums, write_root_attrs, write_rows

from featcache.utils.atomic import atomic_path


def write_feature_cache(path: str | os.PathLike, *, modality: str, backbone: str, classes: list[str],
                        features: np.ndarray, labels: np.ndarray, split: np.ndarray,
                        logits: np.ndarray | None = None, dtype: str = "float32") -> Path:
    """One finished ``<modality>-<backbone>.h5`` (written under a temporary name, renamed)."""
    path = Path(path)
    rows = len(labels)
    features = np.asarray(features, dtype=dtype)
    with atomic_path(path, "feature cache", reserve=features.nbytes + 64 * rows + 2**20) as tmp:
        with h5py.File(tmp, "w") as f:
            write_root_attrs(f, modality=modality, backbone=backbone, weights="random",
                             preprocessing={"synthetic": True}, classes=list(classes),
                             input={"from": "synthetic"})
            write_checksums(f.create_dataset("features", data=features))
            write_rows(f, labels=labels, split=split,
                       source=[f"synthetic/{modality}/{i:06d}" for i in range(rows)], instance=np.zeros(rows))
            if logits is not None:
                write_checksums(f.create_dataset("logits", data=np.asarray(logits, dtype=dtype)))
            mark_complete(f)
    return path


def _split_codes(counts: dict[str, int]) -> np.ndarray:
    return np.concatenate([np.full(n, SPLIT_CODE[name], dtype=np.int8) for name, n in counts.items()])


def write_synthetic_caches(cache_dir: str | os.PathLike, *, num_classes: int = 6, dim: int = 64,
                           still_rows: dict[str, int] | None = None, temporal_rows: dict[str, int] | None = None,
                           temporal: tuple[str, ...] = ("flow", "dynamic"), latent_dim: int = 16,
                           instance_sd: float = 0.6, feature_sd: float = 0.5, backbone: str = "synthetic",
                           seed: int = 0, dtype: str = "float32") -> dict[str, Path]:
    """Still and temporal caches over the same classes; returns ``{modality: path}``. ``dtype``
    (float32 or float16) is the storage type: the same ``seed`` gives the same values, rounded."""
    rng = np.random.default_rng(seed)
    still_rows = still_rows or {"train": 40 * num_classes, "val": 10 * num_classes, "test": 20 * num_classes}
    temporal_rows = temporal_rows or {"train": 60 * num_classes, "test": 20 * num_classes}
    classes = [f"action_{c:02d}" for c in range(num_classes)]
    centres = rng.normal(size=(num_classes, latent_dim)).astype(np.float32)

    def draw(counts: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        split = _split_codes(counts)
        labels = rng.integers(0, num_classes, size=len(split))
        latent = centres[labels] + instance_sd * rng.normal(size=(len(split), latent_dim)).astype(np.float32)
        return latent, labels, split

    paths = {}
    mixing = rng.normal(size=(latent_dim, dim)).astype(np.float32) / np.sqrt(latent_dim)
    latent, labels, split = draw(still_rows)
    features = latent @ mixing + feature_sd * rng.normal(size=(len(labels), dim)).astype(np.float32)
    paths["still"] = write_feature_cache(feature_cache_path(cache_dir, "still", backbone), modality="still",
                                         backbone=backbone, classes=classes, features=features, labels=labels,
                                         split=split, dtype=dtype)
    for kind in temporal:
        mixing = rng.normal(size=(latent_dim, dim)).astype(np.float32) / np.sqrt(latent_dim)
        latent, labels, split = draw(temporal_rows)
        features = latent @ mixing + feature_sd * rng.normal(size=(len(labels), dim)).astype(np.float32)
        paths[kind] = write_feature_cache(feature_cache_path(cache_dir, kind, backbone), modality=kind,
                                          backbone=backbone, classes=classes, features=features, labels=labels,
                                          split=split, dtype=dtype)
    return paths
