"""Features of new images computed as the cache computed its rows: same backbone and weights (found by
sha256), same centre crop, same forward pass and dtype; the weights' search and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featcache.backbones import create_backbone, save_checkpoint
from featcache.backbones.preprocessing import build_transform, transform_from_config
from featcache.cache.feature_cache import FeatureCache, find_cache
from featcache.errors import FeatcacheError
from featcache.extraction.image_features import ImageFeatures, locate_weights
from featcache.media.images import read_image
from tests.heads.finetune.test_finetune import CLASSES, CROP, RESIZE, TINY


@pytest.fixture(scope="module")
def still_cache(trained_runs) -> FeatureCache:
    return FeatureCache.open(find_cache(trained_runs.root / "cache", "still", TINY))


def test_the_cache_records_where_its_weights_came_from(still_cache, trained_runs):
    record = still_cache.record()
    weights = trained_runs.root / "cache" / "models" / f"still-{TINY}.pt"
    assert record["weights_path"] == str(weights.resolve()) and record["logits"] and record["dtype"] == "float32"
    assert record["preprocessing"]["crop"] == CROP and locate_weights(record) == weights.resolve()


def test_new_images_get_the_cached_features_and_logits(still_cache, trained_runs):
    test = still_cache.split("test")
    images = [read_image(trained_runs.root / source) for source in test.source]
    features, logits = ImageFeatures(still_cache.record(), "cpu")(images)
    np.testing.assert_allclose(features.numpy(), test.features.numpy(), atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), test.logits.numpy(), atol=1e-5)
    half, _ = ImageFeatures({**still_cache.record(), "dtype": "float16"}, "cpu")(images)  # rounded as stored
    assert torch.equal(half, features.half().float())


def test_transform_from_config_is_the_extractors_centre_crop(still_cache):
    mine = transform_from_config(still_cache.record()["preprocessing"])
    theirs = build_transform("still", train=False, crop=CROP, resize=RESIZE)
    image = np.random.default_rng(0).integers(0, 256, (41, 57, 3), dtype=np.uint8)
    assert torch.equal(mine(image), theirs(image))


def test_weights_are_searched_by_sha256_and_refused_when_they_differ(still_cache, tmp_path):
    record = {**still_cache.record(), "weights_path": str(tmp_path / "moved.pt")}
    original = still_cache.record()["weights_path"]
    assert str(locate_weights(record, search=[original])) == original  # found in the search list
    other = save_checkpoint(tmp_path / "moved.pt", create_backbone(TINY, weights="random", num_classes=3),
                            classes=CLASSES, modality="still")
    with pytest.raises(FeatcacheError, match=f"{other}: sha256 .* differs from"):
        locate_weights(record)
    with pytest.raises(FeatcacheError, match="never saved"):
        locate_weights({**record, "weights": "random"})
