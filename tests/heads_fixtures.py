"""Fixtures shared by the tests of the stage-2 heads (imported by tests/test_heads_*.py)."""

from __future__ import annotations

import pytest
import torch

from heads.training.methods import default_config
from heads.training.head_data import HeadData
from featcache.cache.synthetic import write_synthetic_caches

# Small schedules: the synthetic task is learnable in a few epochs (plain epochs: no step minimum).
FAST = {"still_epochs": 15, "still_batch_size": 32, "dimred_epochs": 5, "dimred_batch_size": 32, "d0": 32,
        "d1": 32, "d2": 32, "classifier_epochs": 5, "still_min_steps": 1, "dimred_min_steps": 1, "min_steps": 1,
        "classifier_min_steps": 1}


def fast_config(method: str, temporal: str = "flow", **overrides):
    config = default_config(method, temporal)
    config.update({k: v for k, v in FAST.items() if k in config})
    if method == "gan":
        config.update(epochs=10, batch_size=16)
    if method == "embed":
        config.update(epochs=6, lr=5e-3)
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def synthetic_cache_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("heads-cache")
    write_synthetic_caches(directory, num_classes=6, dim=48, seed=3)
    return directory


@pytest.fixture(scope="module")
def head_data(synthetic_cache_dir):
    return HeadData.load(synthetic_cache_dir, "flow")


@pytest.fixture
def head_data64(synthetic_cache_dir):
    """The same data in float64, with float64 weights: a group must equal single runs to
    double rounding. (In float32 RMSProp's near-sign steps on near-zero gradients turn
    rounding differences between batched and single matrix products into ~lr changes.)"""
    data = HeadData.load(synthetic_cache_dir, "flow")
    for splits in (data.still, data.temporal):
        for split in splits.values():
            split.features = split.features.double()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield data
    torch.set_default_dtype(previous)
