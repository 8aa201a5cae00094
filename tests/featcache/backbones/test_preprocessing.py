"""Preprocessing per modality, checked against brute-force numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featcache.backbones.preprocessing import build_transform, preprocessing_config

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def test_center_crop_of_already_sized_image_is_plain_normalisation():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)  # short side already 40
    out = build_transform("still", train=False, crop=32, resize=40)(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    top, left = (40 - 32) // 2, (50 - 32) // 2
    expected = (image[top : top + 32, left : left + 32] / 255.0 - MEAN) / STD
    np.testing.assert_allclose(out.numpy(), expected.transpose(2, 0, 1), rtol=1e-5, atol=1e-5)


def test_resize_short_side_keeps_aspect_ratio():
    image = np.full((100, 300, 3), 200, dtype=np.uint8)
    out = build_transform("dynamic", train=False, crop=40, resize=50)(image)
    assert out.shape == (3, 40, 40)
    np.testing.assert_allclose(out.numpy(), ((200 / 255 - MEAN) / STD)[:, None, None] * np.ones((3, 40, 40)), rtol=1e-4, atol=1e-4)


def test_flow_is_centred_at_128_and_flip_negates_x():
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 256, (24, 24, 20), dtype=np.uint8)
    center = build_transform("flow", train=False, crop=24, resize=24)(stack)
    np.testing.assert_allclose(center.numpy(), (stack.transpose(2, 0, 1) - 128.0) / 128.0, rtol=1e-6)
    train = build_transform("flow", train=True, crop=24, resize=24)
    # find a seed that flips (crop is the whole image, so only the flip varies)
    for seed in range(20):
        out = train(stack, torch.Generator().manual_seed(seed)).numpy()
        if not np.allclose(out, center.numpy()):
            break
    # The flipped stack is the mirror image with the normalised x flow negated exactly
    # (x -> 256 - x: zero flow, 128, stays zero; 255 - x would shift every x by -1/128).
    mirrored = (stack[:, ::-1].astype(np.float64).transpose(2, 0, 1) - 128) / 128
    mirrored[0::2] = -mirrored[0::2]
    np.testing.assert_allclose(out, mirrored, rtol=1e-6, atol=1e-7)
    still = train(np.full((24, 24, 20), 128, np.uint8), torch.Generator().manual_seed(seed))
    assert torch.equal(still, torch.zeros_like(still))  # no motion mirrors to no motion


def test_random_views_are_reproducible_and_consistent_across_a_stack():
    rng = np.random.default_rng(2)
    plane = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    stack = np.repeat(plane[..., None], 20, axis=2)  # every channel the same picture
    train = build_transform("flow", train=True, crop=20, resize=30)
    a = train(stack, torch.Generator().manual_seed(7))
    b = train(stack, torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)
    # one crop/flip for the whole stack: all y channels identical, all x channels identical
    assert torch.equal(a[1::2], a[1:2].expand(10, -1, -1))
    assert torch.equal(a[0::2], a[0:1].expand(10, -1, -1))


def test_config_records_what_was_done_and_rejects_bad_sizes():
    config = preprocessing_config("still", crop=112, resize=128, views=3)
    assert config["crop"] == 112 and config["resize_short_side"] == 128 and config["views"] == 3
    assert config["mean"] == list(MEAN)
    assert preprocessing_config("flow")["center"] == 128.0
    with pytest.raises(ValueError):
        build_transform("still", train=False, crop=300, resize=256)
    with pytest.raises(ValueError, match="\\[H, W, 20\\]"):
        build_transform("flow", train=False)(np.zeros((10, 10, 3), np.uint8))
