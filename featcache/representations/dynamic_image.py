"""Dynamic images by approximate rank pooling (Bilen et al., CVPR 2016 / TPAMI 2017).

A window of T frames collapses into one image ``sum_t alpha_t * frame_t`` with

    alpha_t = 2 (T - t + 1) - (T + 1) (H_T - H_{t-1}),   t = 1..T,   H_t = sum_{i<=t} 1/i.

The weights sum to zero, so a static scene gives a flat (zero) image and only change
survives. (A popular PyTorch port uses ``(2t - T) / t`` and drops the ``H_{t-1}`` shift;
its weights do not sum to zero. Not that one.)
"""

from __future__ import annotations

import numpy as np

WINDOW = 10
STRIDE = 6
COUNT = 6


def rank_pool_weights(num_frames: int) -> np.ndarray:
    """The approximate rank pooling coefficients ``alpha_1..alpha_T`` as float64 ``[T]``."""
    if num_frames < 1:
        raise ValueError(f"rank pooling needs at least one frame, got {num_frames}")
    t = np.arange(1, num_frames + 1, dtype=np.float64)
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / t)])  # H_0 .. H_T
    return 2.0 * (num_frames - t + 1) - (num_frames + 1) * (harmonic[-1] - harmonic[:-1])


def rank_pool(frames: np.ndarray) -> np.ndarray:
    """One dynamic image, float32 ``[H, W, C]``, from frames ``[T, H, W, C]``."""
    weights = rank_pool_weights(len(frames)).astype(np.float32)
    return np.tensordot(weights, frames.astype(np.float32), axes=1)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Min-max map (jointly over channels, keeping their balance) to 0..255.

    A flat image (no motion at all) maps to mid-grey 128.
    """
    low, high = float(image.min()), float(image.max())
    if high - low < 1e-6:
        return np.full(image.shape, 128, np.uint8)
    return np.rint((image - low) * (255.0 / (high - low))).astype(np.uint8)


def window_starts(num_frames: int, window: int = WINDOW, stride: int = STRIDE, count: int = COUNT) -> list[int]:
    """First frame of each window: the ``count`` windows nearest the middle of the video.

    A video shorter than one window gives one window over all its frames.
    """
    if num_frames < window:
        return [0]
    available = (num_frames - window) // stride + 1
    used = min(count, available)
    # Centre the used windows' span inside the video.
    span = (used - 1) * stride + window
    first = (num_frames - span) // 2
    return [first + k * stride for k in range(used)]


def frames_needed(window: int = WINDOW, stride: int = STRIDE, count: int = COUNT) -> int:
    """How many consecutive frames ``count`` full windows cover."""
    return (count - 1) * stride + window


def dynamic_images(frames: np.ndarray, window: int = WINDOW, stride: int = STRIDE, count: int = COUNT) -> np.ndarray:
    """Up to ``count`` dynamic images, uint8 ``[k, H, W, C]``, from the middle of ``frames``.

    Fewer than ``count`` when the video is short (k = 1 below one window of frames).
    """
    if frames.ndim != 4 or len(frames) < 2:
        raise ValueError(f"dynamic images need frames [T>=2, H, W, C], got shape {frames.shape}")
    starts = window_starts(len(frames), window, stride, count)
    return np.stack([to_uint8(rank_pool(frames[s : s + window])) for s in starts])
