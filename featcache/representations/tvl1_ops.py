"""Image operators of the Dual TV-L1 solver, discretised as OpenCV's ``tvl1flow.cpp`` does.

Every function works on a batch (leading dimensions), float32, on any device, and only uses
element-wise arithmetic, gathers and comparisons, so the value at one pixel of one pair never
depends on the other pairs of the batch. Where OpenCV has a quirk that changes the numbers
(the halved one-sided gradient at the border, the zero border of the warp) it is reproduced on purpose: the goal is OpenCV's flow, not a cleaner one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CUBIC_A = -0.75  # OpenCV's bicubic kernel parameter


def cv_round(value: float) -> int:
    """OpenCV's cvRound: nearest integer, halves to even (Python's round does the same)."""
    return int(round(value))


def pyramid_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """Size of the next pyramid level, as ``cv::resize(src, dst, Size(), scale, scale)`` gives it."""
    return cv_round(size[0] * scale), cv_round(size[1] * scale)


def _linear_taps(in_size: int, out_size: int, inv_scale: float, device, clamp_weight: bool):
    """Source indices and weights of INTER_LINEAR along one axis (OpenCV's resizeGeneric).

    Coordinates are computed in double and cast to float before the floor, as OpenCV does.
    Along x a tap outside the image gets weight 0 (``fx = 0``); along y OpenCV only clamps
    the row index and keeps the weight (``clamp_weight=False``).
    """
    dst = torch.arange(out_size, dtype=torch.float64, device=device)
    src = ((dst + 0.5) * (1.0 / inv_scale) - 0.5).to(torch.float32)
    first = torch.floor(src)
    frac = src - first
    first = first.to(torch.int64)
    if clamp_weight:
        low, high = first < 0, first >= in_size - 1
        frac = torch.where(low | high, torch.zeros_like(frac), frac)
        first = torch.where(low, torch.zeros_like(first), torch.where(high, torch.full_like(first, in_size - 1), first))
    i0 = first.clamp(0, in_size - 1)
    i1 = (first + 1).clamp(0, in_size - 1)
    return i0, i1, 1.0 - frac, frac


def resize_linear(images: torch.Tensor, size: tuple[int, int], scale: float | None = None) -> torch.Tensor:
    """``cv::resize(..., INTER_LINEAR)`` of ``[..., H, W]`` to ``size`` (h, w).

    ``scale`` is the factor OpenCV was given (``fx = fy = scale``); without it the factor is
    the size ratio per axis, as when OpenCV is given a destination size.
    """
    in_h, in_w = images.shape[-2:]
    out_h, out_w = size
    sy = scale if scale is not None else out_h / in_h
    sx = scale if scale is not None else out_w / in_w
    x0, x1, ax0, ax1 = _linear_taps(in_w, out_w, sx, images.device, clamp_weight=True)
    y0, y1, by0, by1 = _linear_taps(in_h, out_h, sy, images.device, clamp_weight=False)
    rows = images[..., x0] * ax0 + images[..., x1] * ax1  # horizontal pass first, like OpenCV
    return rows[..., y0, :] * by0[:, None] + rows[..., y1, :] * by1[:, None]


def centered_gradient(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences ``0.5 (I[x+1] - I[x-1])``; OpenCV halves the one-sided border difference too."""
    dx = torch.empty_like(image)
    dy = torch.empty_like(image)
    dx[..., 1:-1] = 0.5 * (image[..., 2:] - image[..., :-2])
    dx[..., 0] = 0.5 * (image[..., 1] - image[..., 0])
    dx[..., -1] = 0.5 * (image[..., -1] - image[..., -2])
    dy[..., 1:-1, :] = 0.5 * (image[..., 2:, :] - image[..., :-2, :])
    dy[..., 0, :] = 0.5 * (image[..., 1, :] - image[..., 0, :])
    dy[..., -1, :] = 0.5 * (image[..., -1, :] - image[..., -2, :])
    return dx, dy


def forward_gradient(field: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences with zero at the last column (x) and last row (y)."""
    dx = torch.zeros_like(field)
    dy = torch.zeros_like(field)
    torch.sub(field[..., 1:], field[..., :-1], out=dx[..., :-1])
    torch.sub(field[..., 1:, :], field[..., :-1, :], out=dy[..., :-1, :])
    return dx, dy


def divergence(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Backward-difference divergence, the negative adjoint of :func:`forward_gradient` (OpenCV's)."""
    div = px.clone()
    div[..., 1:] -= px[..., :-1]
    div += py
    div[..., 1:, :] -= py[..., :-1, :]
    return div


def cubic_weights(frac: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` bicubic weights of taps x-1..x+2 at fractional offsets ``frac`` (OpenCV's, A = -0.75)."""
    a = CUBIC_A
    x1 = frac + 1
    c0 = ((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a
    c1 = ((a + 2) * frac - (a + 3)) * frac * frac + 1
    x2 = 1 - frac
    c2 = ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1
    c3 = 1.0 - c0 - c1 - c2
    return torch.stack([c0, c1, c2, c3], dim=-1)


def remap_cubic(images: torch.Tensor, map_x: torch.Tensor, map_y: torch.Tensor) -> torch.Tensor:
    """``cv::remap(INTER_CUBIC, BORDER_CONSTANT 0)`` of ``[B, K, H, W]`` at maps ``[B, H, W]``.

    The K images of a pair share its map (I1 and its two derivatives are warped together).
    Taps outside the image read 0, as with OpenCV's default constant border. (OpenCV 5 samples
    at the exact float coordinate; OpenCV 4 first snapped it to 1/32 pixel.)
    """
    batch, channels, height, width = images.shape
    limit = float(max(height, width) + 8)  # far outside is all zeros; keeps the indices small
    map_x = map_x.clamp(-limit, limit)
    map_y = map_y.clamp(-limit, limit)
    floor_x, floor_y = torch.floor(map_x), torch.floor(map_y)
    wx = cubic_weights(map_x - floor_x)  # [B, H, W, 4]
    wy = cubic_weights(map_y - floor_y)
    # Zero padding of 2 on each side: a clamped tap index then always lands on a zero.
    padded = F.pad(images, (2, 2, 2, 2)).reshape(batch, channels, -1)
    pw = width + 4
    col0 = floor_x.long() + 1  # leftmost tap (x - 1) in padded coordinates
    row0 = floor_y.long() + 1
    out = None
    for k in range(4):
        rows = (row0 + k).clamp(0, height + 3) * pw
        row_sum = None
        for j in range(4):
            index = (rows + (col0 + j).clamp(0, width + 3)).reshape(batch, 1, -1).expand(-1, channels, -1)
            tap = padded.gather(2, index).reshape(batch, channels, height, width)
            term = tap * (wy[..., k] * wx[..., j]).unsqueeze(1)
            row_sum = term if row_sum is None else row_sum + term
        out = row_sum if out is None else out + row_sum
    return out


def _drop_min_max(values: list[torch.Tensor]) -> list[torch.Tensor]:
    """The values without their pointwise minimum and maximum (about 1.5 n compare-exchanges)."""
    lows, highs = [], []
    for a, b in zip(values[0::2], values[1::2]):
        lows.append(torch.minimum(a, b))
        highs.append(torch.maximum(a, b))
    odd = values[-1] if len(values) % 2 else None
    kept = []
    smallest = lows[0]
    for low in lows[1:]:
        kept.append(torch.maximum(smallest, low))
        smallest = torch.minimum(smallest, low)
    if odd is not None:
        # The unpaired value may be the maximum too: what it does not beat in the minimum chain
        # goes on to the maximum chain instead of being kept.
        highs.append(torch.maximum(smallest, odd))
    largest = highs[0]
    for high in highs[1:]:
        kept.append(torch.minimum(largest, high))
        largest = torch.maximum(largest, high)
    return kept


def median_blur5(field: torch.Tensor) -> torch.Tensor:
    """``cv::medianBlur(src, dst, 5)`` (replicated border) of ``[..., H, W]``, exact.

    Forgetful selection over the 25 shifted views: of any n/2 + 2 values the smallest and
    largest cannot be the median, so they are dropped and the next value joins, until one is
    left. Only min/max of whole images: fast on any device, and exact.
    """
    height, width = field.shape[-2:]
    lead = field.shape[:-2]
    padded = F.pad(field.reshape(-1, 1, height, width), (2, 2, 2, 2), mode="replicate").reshape(*lead, height + 4, width + 4)
    views = [padded[..., dy : dy + height, dx : dx + width] for dy in range(5) for dx in range(5)]
    live, rest = views[:14], views[14:]
    while True:
        live = _drop_min_max(live)
        if not rest:
            return live[0].contiguous()
        live.append(rest.pop(0))
