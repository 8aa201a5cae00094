import cv2
import numpy as np
import pytest

from featcache.representations.optical_flow import (
    FLOW_METHODS,
    compute_flows,
    create_flow_method,
    flow_stacks,
    middle_range,
    quantize_flow,
    stack_flows,
)


def textured(height=64, width=80, seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width + 40), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (7, 7), 2)


def translated_frames(dx, dy, count=3, height=64, width=80):
    """Grey frames of a texture translating by (dx, dy) pixels per frame."""
    base = np.tile(textured(height + 40, width), (1, 1))
    frames = []
    for t in range(count):
        y0, x0 = 20 - t * dy, 20 - t * dx
        frames.append(base[y0 : y0 + height, x0 : x0 + width])
    return np.stack(frames)


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_translation_sign_and_magnitude_after_mapping(method):
    frames = translated_frames(dx=3, dy=-2, count=3)
    flows = compute_flows(frames, method)
    assert flows.shape == (2, 64, 80, 2) and flows.dtype == np.float32
    inner = flows[:, 12:-12, 12:-12]
    assert np.median(inner[..., 0]) == pytest.approx(3, abs=0.5)
    assert np.median(inner[..., 1]) == pytest.approx(-2, abs=0.5)
    q = quantize_flow(flows)[:, 12:-12, 12:-12]
    # (3 + 20) * 255 / 40 = 146.6 ; (-2 + 20) * 255 / 40 = 114.75
    assert np.median(q[..., 0]) == pytest.approx(146.6, abs=4)
    assert np.median(q[..., 1]) == pytest.approx(114.75, abs=4)


def test_quantize_clips_and_maps_linearly():
    flow = np.array([-100.0, -20.0, -10.0, 0.0, 10.0, 20.0, 55.0], np.float32)
    assert quantize_flow(flow).tolist() == [0, 0, 64, 128, 191, 255, 255]  # 0 -> 127.5 rounded


def test_stacking_channel_order_and_count():
    # Flow k has x = 2k, y = 2k + 1 everywhere, so channel c must hold value c.
    flows = np.zeros((25, 3, 4, 2), np.uint8)
    for k in range(25):
        flows[k, ..., 0], flows[k, ..., 1] = 2 * k, 2 * k + 1
    stacks = stack_flows(flows, stack=10)
    assert stacks.shape == (2, 3, 4, 20)
    assert stacks[0, 1, 2].tolist() == list(range(20))
    assert stacks[1, 0, 0].tolist() == list(range(20, 40))
    short = stack_flows(flows[:4], stack=10)  # padded with the last field
    assert short.shape == (1, 3, 4, 20)
    assert short[0, 0, 0, 8:10].tolist() == [6, 7] and short[0, 0, 0, -2:].tolist() == [6, 7]


def test_flow_stacks_use_middle_frames():
    assert middle_range(100, 61) == (19, 80)
    assert middle_range(30, 61) == (0, 30)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (70, 16, 20, 3), dtype=np.uint8)
    stacks = flow_stacks(frames, "dis")
    assert stacks.shape == (6, 16, 20, 20) and stacks.dtype == np.uint8
    assert flow_stacks(frames[:35], "dis").shape == (3, 16, 20, 20)  # 34 flows -> 3 stacks


def test_static_frames_map_to_128_and_estimator_reuse():
    frames = np.repeat(textured(32, 40)[None, :, :40], 12, axis=0)
    estimator = create_flow_method("farneback")
    stacks = flow_stacks(frames, estimator)
    assert stacks.shape == (1, 32, 40, 20)
    assert np.all(np.abs(stacks.astype(int) - 128) <= 1)
    with pytest.raises(ValueError):
        create_flow_method("raft")


def test_same_video_same_flow_whatever_came_before():
    # DIS is stateful; flow_stacks with a method name must not leak state between videos.
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (12, 24, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (12, 24, 32, 3), dtype=np.uint8)
    first = flow_stacks(a, "dis")
    flow_stacks(b, "dis")
    np.testing.assert_array_equal(flow_stacks(a, "dis"), first)
