"""Grey conversion, flow quantisation, flow stacks and dynamic images as torch ops (any device).

The same results as the numpy/OpenCV functions they stand in for, so prepare can upload a
video's decoded uint8 frames once and copy back only uint8 results when TV-L1 runs on a GPU:

- :func:`to_gray` equals ``cv2.cvtColor(RGB2GRAY)`` bit for bit on uint8 (OpenCV's 15-bit
  fixed-point weights and rounding, in int32).
- :func:`quantize_flow` equals :func:`optical_flow.quantize_flow` bit for bit on float32 flow
  (the same float32 clip, scale and ``floor(x + 0.5)``).
- :func:`dynamic_images` equals :func:`dynamic_image.dynamic_images` within one grey level
  (float32 instead of float64; a static window is exactly flat 128, short videos are padded
  with their last frame, the same windows and weights).

Frame resizing stays in the decoder (``featcache.media.video``): OpenCV's INTER_AREA shrink has no
cheap torch equivalent that matches it, and resizing first makes the upload smaller.
"""

from __future__ import annotations

import numpy as np
import torch

from featcache.representations import dynamic_image, optical_flow
from featcache.representations.tvl1_torch import TVL1Params, choose_batch, tvl1_flow
from featcache.cache.schema import FLOW_BOUND, FLOW_STACK

# cv2 5.x RGB2GRAY on uint8: Y = (9798 R + 19235 G + 3735 B + 2**14) >> 15 (0.299, 0.587, 0.114 in
# 15-bit fixed point); equal to cvtColor for all 2**24 colours (checked with OpenCV 5.1).
GRAY_SHIFT = 15
GRAY_WEIGHTS = (9798, 19235, 3735)


def to_gray(frames: torch.Tensor) -> torch.Tensor:
    """uint8 RGB ``[..., 3]`` -> grey float32 ``[...]`` on 0..255, equal to OpenCV's."""
    rgb = frames.to(torch.int32)
    weighted = rgb[..., 0] * GRAY_WEIGHTS[0] + rgb[..., 1] * GRAY_WEIGHTS[1] + rgb[..., 2] * GRAY_WEIGHTS[2]
    return ((weighted + (1 << (GRAY_SHIFT - 1))) >> GRAY_SHIFT).to(torch.float32)


def quantize_flow(flow: torch.Tensor, bound: float = FLOW_BOUND) -> torch.Tensor:
    """Clip to ``[-bound, bound]`` and map linearly to uint8 0..255 (0 -> 128), as the CPU does."""
    scaled = (torch.clamp(flow, -bound, bound) + bound) * (255.0 / (2.0 * bound))
    return torch.floor(scaled + 0.5).to(torch.uint8)


def quantized_flows(gray: torch.Tensor, bound: float = FLOW_BOUND, *, params: TVL1Params | None = None, batch: int | None = None) -> np.ndarray:
    """uint8 flow ``[T-1, H, W, 2]`` between consecutive grey frames ``[T, H, W]`` (on their device).

    The pairs go through the solver ``batch`` at a time (chosen from the free memory when
    None); only the quantised uint8 flow is copied back.
    """
    size = choose_batch(*gray.shape[-2:], gray.device, override=batch)
    out = []
    for start in range(0, len(gray) - 1, size):
        stop = min(start + size, len(gray) - 1)
        flow = tvl1_flow(gray[start:stop], gray[start + 1 : stop + 1], params)
        out.append(quantize_flow(flow, bound).cpu().numpy())
    return np.concatenate(out)


def flow_stacks(
    frames: torch.Tensor, num_frames: int = optical_flow.NUM_FLOWS, stack: int = FLOW_STACK, bound: float = FLOW_BOUND,
    *, batch: int | None = None,
) -> np.ndarray:
    """:func:`optical_flow.flow_stacks` with ``tvl1-torch`` from uint8 frames (RGB or grey) on any device."""
    if frames.dim() not in (3, 4) or len(frames) < 2:
        raise ValueError(f"optical flow needs at least two frames, got shape {tuple(frames.shape)}")
    start, stop = optical_flow.middle_range(len(frames), num_frames + 1)
    middle = frames[start:stop]
    gray = middle.to(torch.float32) if middle.dim() == 3 else to_gray(middle)
    return optical_flow.stack_flows(quantized_flows(gray, bound, batch=batch), stack)


def window_index(num_frames: int, window: int, stride: int, count: int) -> list[list[int]]:
    """Frame indices of each window (the CPU's windows; a short video repeats its last frame)."""
    starts = dynamic_image.window_starts(num_frames, window, stride, count)
    return [[min(s + k, num_frames - 1) for k in range(window)] for s in starts]


def dynamic_images(
    frames: torch.Tensor, window: int = dynamic_image.WINDOW, stride: int = dynamic_image.STRIDE, count: int = dynamic_image.COUNT
) -> np.ndarray:
    """:func:`dynamic_image.dynamic_images` from uint8 frames ``[T, H, W, C]`` on any device.

    Pooled in float32 as ``sum_t alpha_t (frame_t - frame_1)``: the weights sum to zero, so
    this equals the CPU's float64 sum, and a static window gives exactly 0 (flat 128) without
    float64, which consumer GPUs run slowly.
    """
    if frames.dim() != 4 or len(frames) < 2:
        raise ValueError(f"dynamic images need frames [T>=2, H, W, C], got shape {tuple(frames.shape)}")
    index = torch.tensor(window_index(len(frames), window, stride, count), device=frames.device)
    windows = frames[index]  # [K, window, H, W, C] uint8
    weights = torch.as_tensor(dynamic_image.rank_pool_weights(window), dtype=torch.float32, device=frames.device)
    change = windows.to(torch.float32) - windows[:, :1].to(torch.float32)
    pooled = torch.einsum("t,kthwc->khwc", weights, change)
    return _to_uint8(pooled, windows, weights).cpu().numpy()


def _to_uint8(pooled: torch.Tensor, windows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-window min-max to 0..255 (:func:`dynamic_image.to_uint8`), flat windows -> 128."""
    flat = pooled.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    span = (windows.flatten(1).amax(dim=1).float() - windows.flatten(1).amin(dim=1).float()).clamp(min=1.0)
    flat_below = dynamic_image.FLAT_TOLERANCE * span * weights.abs().sum()
    moving = (high - low) > flat_below
    scale = torch.where(moving, 255.0 / (high - low).clamp(min=1e-30), torch.zeros_like(high))
    shape = (-1,) + (1,) * (pooled.dim() - 1)
    image = torch.round((pooled - low.view(shape)) * scale.view(shape))
    image = torch.where(moving.view(shape), image, torch.full_like(image, 128.0))
    return image.to(torch.uint8)
