import numpy as np
import pytest

from featcache.representations.dynamic_image import (
    dynamic_images,
    frames_needed,
    rank_pool,
    rank_pool_weights,
    to_uint8,
    window_starts,
)


def direct_weights(T):
    """alpha_t = 2(T - t + 1) - (T + 1)(H_T - H_{t-1}), straight from the formula, with loops."""
    def harmonic(n):
        return sum(1.0 / i for i in range(1, n + 1))

    return np.array([2 * (T - t + 1) - (T + 1) * (harmonic(T) - harmonic(t - 1)) for t in range(1, T + 1)])


@pytest.mark.parametrize("T", [1, 2, 3, 5, 10, 17, 40])
def test_weights_match_direct_formula_and_sum_to_zero(T):
    weights = rank_pool_weights(T)
    np.testing.assert_allclose(weights, direct_weights(T), rtol=1e-12, atol=1e-12)
    assert abs(weights.sum()) < 1e-9


def test_weights_are_not_the_popular_port():
    # The (2t - T)/t variant does not sum to zero; ours must differ from it.
    T = 10
    t = np.arange(1, T + 1)
    port = (2 * t - T) / t
    assert abs(port.sum()) > 1
    assert not np.allclose(rank_pool_weights(T), port)
    # Early frames weigh negative, late ones positive (the weights peak before the end).
    w = rank_pool_weights(T)
    assert w[0] < 0 < w[-1] and np.all(w[2:] > 0)


def test_rank_pool_matches_loop():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(10, 6, 7, 3), dtype=np.uint8)
    weights = direct_weights(10)
    expected = sum(weights[i] * frames[i].astype(np.float64) for i in range(10))
    np.testing.assert_allclose(rank_pool(frames), expected, rtol=1e-4, atol=1e-2)


def test_static_video_gives_flat_grey():
    frames = np.full((10, 8, 8, 3), 77, np.uint8)
    di = dynamic_images(frames, count=1)
    assert di.shape == (1, 8, 8, 3) and np.all(di == 128)


@pytest.mark.parametrize("window", [10, 7, 40])
def test_static_textured_window_is_flat_128(window):
    # Identical frames of a busy texture: float32 pooling left per-pixel residue that the
    # min-max stretch blew up to full-contrast noise; float64 and a relative threshold give flat grey.
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    frames = np.repeat(frame[None], window, axis=0)
    di = dynamic_images(frames, window=window, count=1)
    assert np.all(di == 128)


def test_short_video_is_padded_with_its_last_frame():
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 256, size=(7, 6, 5, 3), dtype=np.uint8)
    padded = np.concatenate([frames, np.repeat(frames[-1:], 3, axis=0)])
    np.testing.assert_array_equal(dynamic_images(frames, window=10, count=1),
                                  dynamic_images(padded, window=10, count=1))
    # Not the same as pooling the 7 frames with 7-frame weights.
    assert not np.array_equal(dynamic_images(frames, window=10, count=1)[0], to_uint8(rank_pool(frames)))


def test_moving_bar_shows_direction():
    # A bright vertical bar moving right: where it ends up is bright, where it started is dark.
    T, W = 10, 40
    frames = np.zeros((T, 16, W, 3), np.uint8)
    for t in range(T):
        frames[t, :, 5 + 3 * t : 8 + 3 * t] = 255
    di = dynamic_images(frames, window=10, stride=6, count=1)[0].astype(int)
    assert di.dtype == np.int64 and di.min() == 0 and di.max() == 255
    start, end = di[:, 5:8].mean(), di[:, 5 + 27 : 8 + 27].mean()
    untouched = di[:, 38:].mean()
    assert end > untouched > start


def test_to_uint8_min_max():
    image = np.array([[-3.0, 0.0], [1.0, 5.0]])
    out = to_uint8(image)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    assert out[0, 1] == round(3 / 8 * 255)


def test_window_selection_middle_and_short_videos():
    assert frames_needed() == 40
    starts = window_starts(100)
    assert len(starts) == 6 and np.all(np.diff(starts) == 6)
    assert starts[0] + (starts[-1] + 10) == 100  # centred: equal margins
    assert window_starts(40) == [0, 6, 12, 18, 24, 30]
    assert len(window_starts(28)) == 4  # (28 - 10) // 6 + 1
    assert window_starts(7) == [0]  # shorter than one window: one image (padded to the window)
    rng = np.random.default_rng(1)
    assert dynamic_images(rng.integers(0, 255, (28, 4, 4, 3), dtype=np.uint8)).shape == (4, 4, 4, 3)
    assert dynamic_images(rng.integers(0, 255, (7, 4, 4, 3), dtype=np.uint8)).shape == (1, 4, 4, 3)
    with pytest.raises(ValueError):
        dynamic_images(np.zeros((1, 4, 4, 3), np.uint8))
