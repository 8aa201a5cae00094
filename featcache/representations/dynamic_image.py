"""Dynamic images by approximate rank pooling (Bilen et al., CVPR 2016 / TPAMI 2017).

A window of T frames collapses into one image ``sum_t alpha_t * frame_t`` with

    alpha_t = 2 (T - t + 1) - (T + 1) (H_T - H_{t-1}),   t = 1..T,   H_t = sum_{i<=t} 1/i.

The weights sum to zero, so a static scene gives a flat (zero) image and only change
survives. (A popular PyTorch port uses ``(2t - T) / t`` and drops the ``H_{t-1}`` shift;
its weights do not sum to zero. Not that one.)

Numerics: pooling runs in float64 and flatness is judged relative to the frames' own
range, so a window without motion (identical frames, however textured) gives flat 128
rather than float32 rounding residue stretched to full contrast.

Short videos: a window needs ``WINDOW`` frames; a video shorter than that is padded by
repeating its last frame, as the reference implementation does (Bilen et al.'s
dynamic-image-nets pad a short clip with its last frame), so every dynamic image is
pooled with the same ``WINDOW`` weights.
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


# A dynamic image whose spread is below this share of (frames' range x sum |alpha|), the
# largest spread any change could give, is rounding residue: it maps to flat grey.
FLAT_TOLERANCE = 1e-9


def rank_pool(frames: np.ndarray) -> np.ndarray:
    """One dynamic image, float64 ``[H, W, C]``, from frames ``[T, H, W, C]``."""
    weights = rank_pool_weights(len(frames))
    return np.tensordot(weights, frames.astype(np.float64), axes=1)


def flat_threshold(frames: np.ndarray) -> float:
    """The spread below which the dynamic image of ``frames`` counts as flat (no motion)."""
    span = float(frames.max()) - float(frames.min())
    return FLAT_TOLERANCE * max(span, 1.0) * float(np.abs(rank_pool_weights(len(frames))).sum())


def to_uint8(image: np.ndarray, flat_below: float = 1e-6) -> np.ndarray:
    """Min-max map (jointly over channels, keeping their balance) to 0..255.

    A flat image (spread below ``flat_below``: no motion at all) maps to mid-grey 128.
    """
    low, high = float(image.min()), float(image.max())
    if high - low <= flat_below:
        return np.full(image.shape, 128, np.uint8)
    return np.rint((image - low) * (255.0 / (high - low))).astype(np.uint8)


def pad_window(frames: np.ndarray, window: int) -> np.ndarray:
    """``frames`` padded to ``window`` frames by repeating the last one (the reference's rule)."""
    missing = window - len(frames)
    if missing <= 0:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], missing, axis=0)])


def dynamic_image(frames: np.ndarray) -> np.ndarray:
    """One uint8 dynamic image of one window of frames."""
    return to_uint8(rank_pool(frames), flat_threshold(frames))


def window_starts(num_frames: int, window: int = WINDOW, stride: int = STRIDE, count: int = COUNT) -> list[int]:
    """First frame of each window: the ``count`` windows nearest the middle of the video.

    A video shorter than one window gives one window (padded, see :func:`pad_window`).
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

    Fewer than ``count`` when the video is short (k = 1 below one window of frames, the
    video padded to ``window`` frames by repeating its last frame).
    """
    if frames.ndim != 4 or len(frames) < 2:
        raise ValueError(f"dynamic images need frames [T>=2, H, W, C], got shape {frames.shape}")
    starts = window_starts(len(frames), window, stride, count)
    return np.stack([dynamic_image(pad_window(frames[s : s + window], window)) for s in starts])
