"""Dual TV-L1 optical flow in PyTorch: batched, on the CPU or a GPU, matching OpenCV's.

The algorithm of Zach, Pock & Bischof (2007) as OpenCV's ``cv::optflow::DualTVL1OpticalFlow``
implements it, after Sanchez Perez, Meinhardt-Llopis & Facciolo, "TV-L1 Optical Flow
Estimation", IPOL 2013: a coarse-to-fine pyramid (bilinear, factor ``scale_step``); at each
scale ``warps`` times: warp I1 and its centred gradient by the current flow (bicubic), then
alternate the pointwise thresholding step (v), the flow update ``u = v + theta div p`` and the
dual step on p, with a 5x5 median filter of the flow before each block of ``inner_iterations``,
until the mean squared change of u falls below ``epsilon**2`` or ``outer_iterations`` blocks ran.

Batched: ``tvl1_flow(I0 [B, H, W], I1 [B, H, W]) -> [B, H, W, 2]``. The stopping rule is per
pair: a pair that has converged is frozen (masked) and dropped from the working set, so a
pair's flow never depends on its batch neighbours (bitwise on the CPU, tested; on CUDA the
per-pair error sum may be reduced in another order for another batch size, which could flip
a stopping decision that lies within float rounding of the threshold). Inputs are grey levels 0..255 (OpenCV's
uint8 scale); the flow is (x, y) with OpenCV's sign: I0(x) ~ I1(x + u(x)).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from featcache.representations.tvl1_ops import (
    centered_gradient,
    divergence,
    forward_gradient,
    median_blur5,
    pyramid_size,
    remap_cubic,
    resize_linear,
)

MIN_PYRAMID_SIDE = 16  # OpenCV stops adding scales below 16 pixels
CPU_MEMORY_BUDGET = 2 << 30  # bytes the CPU solver may use when choosing its batch
# On the CPU a batch only adds cache misses (the per-operation overhead it saves is small at
# 256x340): benchmarks/prepare.py, 36 pairs at 256x340, one thread, pairs per CPU-second:
# batch 1 0.79, batch 4 0.66, batch 12 0.53 (OpenCV 0.63), 2026-12-02 on this 2-core machine.
CPU_BATCH = 1
# float32 values alive per pair and finest-scale pixel at the peak, counted (not measured):
# ~30 of solver state and warped images, ~70 transient inside the median filter.
BYTES_PER_PIXEL = 4 * 100


@dataclass(frozen=True)
class TVL1Params:
    """OpenCV's ``DualTVL1OpticalFlow_create()`` parameters, with its defaults."""

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5

    def __post_init__(self):
        if self.median_filtering not in (0, 1, 5):
            raise ValueError(f"median_filtering must be 0/1 (off) or 5, got {self.median_filtering}")
        if self.nscales < 1 or self.warps < 1 or self.inner_iterations < 1 or self.outer_iterations < 1:
            raise ValueError("nscales, warps, inner_iterations and outer_iterations must be at least 1")
        if not 0.0 < self.scale_step < 1.0:
            raise ValueError(f"scale_step must lie in (0, 1), got {self.scale_step}")

    def as_dict(self) -> dict[str, Any]:
        """The parameters under OpenCV's names (what ``temporal.h5`` records)."""
        out = dataclasses.asdict(self)
        out["lambda"] = out.pop("lambda_")
        return out


# -- one scale ------------------------------------------------------------------
def _dual_step(u, px, py, slope, grad, rho_c, params: TVL1Params):
    """One inner iteration (v, then u, then p) for the working set; returns (u, px, py, error).

    ``slope`` is the data term's gradient per flow channel ([Ix, Iy] or [Ix, Iy, gamma]).
    """
    lt = params.lambda_ * params.theta
    taut = params.tau / params.theta
    rho = (slope * u).sum(dim=1).add_(rho_c)
    # OpenCV's three cases (rho < -lt |grad I|^2, > lt |grad I|^2, in between) are one clamp.
    step = rho.div_(grad).clamp_(-lt, lt).unsqueeze(1)
    v = u - step * slope
    u_new = divergence(px, py).mul_(params.theta).add_(v)
    error = torch.sub(u_new, u, out=v).square_().sum(dim=(1, 2, 3))
    ux, uy = forward_gradient(u_new)
    # In-place and without fused multiply-adds: fewer passes over memory, and the same
    # rounding in vectorised and scalar loops, so batch position never changes a bit.
    norm = ux.square().add_(uy.square()).sqrt_().mul_(taut).add_(1.0)
    px = ux.mul_(taut).add_(px).div_(norm)
    py = uy.mul_(taut).add_(py).div_(norm)
    return u_new, px, py, error


_KERNELS = {"step": _dual_step, "median": median_blur5}


def use_torch_compile(enabled: bool = True) -> None:
    """Opt-in: run the inner iteration and the median through ``torch.compile`` (fused kernels).

    Off by default. Measured on this 2-core CPU at 256x340 (CPU time, one pair): the compiled
    inner step was within 10% of eager and the median 1.2-2x faster, for about a minute of
    compiling per process and shape, and rounding changes (up to 1e-4 px per step). On a GPU,
    where eager is bound by one memory pass per operation, fusion should pay more, but that
    was not measured: time it with ``benchmarks/prepare.py --device cuda --compile`` first.
    Also ``FEATCACHE_TVL1_COMPILE=1``.
    """
    if enabled:
        _KERNELS["step"] = torch.compile(_dual_step, dynamic=True)
        _KERNELS["median"] = torch.compile(median_blur5, dynamic=True)
    else:
        _KERNELS.update(step=_dual_step, median=median_blur5)


if os.environ.get("FEATCACHE_TVL1_COMPILE") == "1":
    use_torch_compile()


def _iterate(u, px, py, slope, grad, rho_c, params: TVL1Params, sync_every: int) -> None:
    """All inner/outer iterations of one warp, in place on ``u, px, py`` (full batch).

    Pairs run in lockstep on a shrinking working set; between syncs a converged pair is frozen
    by masks, at a sync it is written back and dropped.
    """
    height, width = u.shape[-2:]
    threshold = params.epsilon**2 * height * width
    index = torch.arange(u.shape[0], device=u.device)
    wu, wpx, wpy, wslope, wgrad, wrho = u, px, py, slope, grad, rho_c
    running = torch.ones(u.shape[0], dtype=torch.bool, device=u.device)
    all_running = True  # known without a device sync
    total = params.outer_iterations * params.inner_iterations
    for k in range(total):
        if k % params.inner_iterations == 0 and params.median_filtering > 1:
            filtered = _KERNELS["median"](wu[:, :2])
            wu = wu.clone()
            wu[:, :2] = filtered if all_running else torch.where(running[:, None, None, None], filtered, wu[:, :2])
        nu, npx, npy, error = _KERNELS["step"](wu, wpx, wpy, wslope, wgrad, wrho, params)
        if all_running:
            wu, wpx, wpy = nu, npx, npy
        else:
            mask = running[:, None, None, None]
            wu, wpx, wpy = torch.where(mask, nu, wu), torch.where(mask, npx, wpx), torch.where(mask, npy, wpy)
        running = running & (error > threshold)
        all_running = False
        if (k + 1) % sync_every and k + 1 < total:
            continue
        keep = running.nonzero().squeeze(1)
        if len(keep) < len(running):
            done = (~running).nonzero().squeeze(1)
            for full, part in ((u, wu), (px, wpx), (py, wpy)):
                full.index_copy_(0, index[done], part[done])
            index = index[keep]
            wu, wpx, wpy, wslope, wgrad, wrho = (t[keep] for t in (wu, wpx, wpy, wslope, wgrad, wrho))
            running = running[keep]
        all_running = True
        if len(index) == 0:
            return
    for full, part in ((u, wu), (px, wpx), (py, wpy)):
        full.index_copy_(0, index, part)


def _solve_scale(i0, i1, u, params: TVL1Params, sync_every: int) -> torch.Tensor:
    """Refine the flow ``u [B, C, h, w]`` at one scale (OpenCV's procOneScale)."""
    batch, channels, height, width = u.shape
    i1x, i1y = centered_gradient(i1)
    warped_sources = torch.stack([i1, i1x, i1y], dim=1)
    px = torch.zeros_like(u)
    py = torch.zeros_like(u)
    grid_y, grid_x = torch.meshgrid(
        torch.arange(height, dtype=u.dtype, device=u.device), torch.arange(width, dtype=u.dtype, device=u.device), indexing="ij"
    )
    for _ in range(params.warps):
        warped = remap_cubic(warped_sources, grid_x + u[:, 0], grid_y + u[:, 1])
        i1w, i1wx, i1wy = warped.unbind(1)
        grad = i1wx * i1wx + i1wy * i1wy
        rho_c = i1w - i1wx * u[:, 0] - i1wy * u[:, 1] - i0
        parts = [i1wx, i1wy] + ([torch.full_like(i1wx, params.gamma)] if channels == 3 else [])
        slope = torch.stack(parts, dim=1)
        # grad == 0 only where the slope is 0 too: any finite step then changes nothing.
        safe_grad = grad.clamp_min(torch.finfo(grad.dtype).tiny)
        _iterate(u, px, py, slope, safe_grad, rho_c, params, sync_every)
    return u


def tvl1_flow(
    frame0: torch.Tensor, frame1: torch.Tensor, params: TVL1Params | None = None, *, sync_every: int | None = None
) -> torch.Tensor:
    """Dual TV-L1 flow ``[B, H, W, 2]`` (x, y) from grey frames ``[B, H, W]`` (or ``[H, W]``) on 0..255.

    ``sync_every``: iterations between checks for converged pairs (1 on the CPU, where a check
    is free; 10 on a GPU, where it waits for the device). Results do not depend on it.
    """
    params = params or TVL1Params()
    single = frame0.dim() == 2
    i0 = (frame0[None] if single else frame0).to(torch.float32)
    i1 = (frame1[None] if single else frame1).to(torch.float32)
    if i0.shape != i1.shape or i0.dim() != 3:
        raise ValueError(f"tvl1_flow needs two [B, H, W] batches of one shape, got {tuple(frame0.shape)} and {tuple(frame1.shape)}")
    if min(i0.shape[-2:]) < 3:
        raise ValueError(f"frames of {tuple(i0.shape[-2:])} pixels are too small for TV-L1")
    if sync_every is None:
        sync_every = 1 if i0.device.type == "cpu" else 10
    pyramid = [(i0, i1)]
    for _ in range(1, params.nscales):
        size = pyramid_size(pyramid[-1][0].shape[-2:], params.scale_step)
        if min(size) < MIN_PYRAMID_SIDE:
            break
        pyramid.append(tuple(resize_linear(im, size, params.scale_step) for im in pyramid[-1]))
    channels = 3 if params.gamma != 0 else 2
    u = torch.zeros(i0.shape[0], channels, *pyramid[-1][0].shape[-2:], dtype=torch.float32, device=i0.device)
    for level in range(len(pyramid) - 1, -1, -1):
        u = _solve_scale(*pyramid[level], u, params, sync_every)
        if level:
            u = resize_linear(u, tuple(pyramid[level - 1][0].shape[-2:]))
            u[:, :2] *= 1.0 / params.scale_step  # the illumination channel is not a length
    flow = u[:, :2].permute(0, 2, 3, 1).contiguous()
    return flow[0] if single else flow


# -- memory bound ---------------------------------------------------------------
def free_memory(device: torch.device) -> int:
    """Bytes the solver may use on ``device``: free CUDA memory, or a fixed RAM budget on the CPU."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.8)  # headroom for the allocator's fragmentation and other tensors
    return CPU_MEMORY_BUDGET


def choose_batch(height: int, width: int, device: torch.device, *, override: int | None = None, limit: int = 256) -> int:
    """Pairs per solver call for frames of ``height x width`` on ``device`` (``override`` wins).

    As many as fit in the free memory on a GPU (up to ``limit``), CPU_BATCH on the CPU.
    """
    if override:
        return max(1, int(override))
    device = torch.device(device)
    per_pair = BYTES_PER_PIXEL * height * width
    fits = int(np.clip(free_memory(device) // per_pair, 1, limit))
    return min(fits, CPU_BATCH) if device.type == "cpu" else fits


def tvl1_flow_batched(frames0, frames1, params: TVL1Params | None = None, *, device="cpu", batch: int | None = None) -> np.ndarray:
    """float32 ``[N, H, W, 2]`` flow of N pairs (numpy or tensors), in batches that fit ``device``."""
    device = torch.device(device)
    frames0, frames1 = torch.as_tensor(frames0), torch.as_tensor(frames1)
    size = choose_batch(*frames0.shape[-2:], device, override=batch)
    out = []
    for start in range(0, len(frames0), size):
        a = frames0[start : start + size].to(device, torch.float32)
        b = frames1[start : start + size].to(device, torch.float32)
        out.append(tvl1_flow(a, b, params).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *frames0.shape[-2:], 2), np.float32)


class TorchTVL1:
    """An estimator with OpenCV's ``calc`` interface, plus ``calc_batch`` for many pairs at once."""

    def __init__(self, params: TVL1Params | None = None, *, device="cpu", batch: int | None = None):
        self.params = params or TVL1Params()
        self.device = torch.device(device)
        self.batch = batch

    def calc(self, prev: np.ndarray, next_: np.ndarray, flow=None) -> np.ndarray:
        return self.calc_batch(prev[None], next_[None])[0]

    def calc_batch(self, prev: np.ndarray, next_: np.ndarray) -> np.ndarray:
        """Grey uint8 (or 0..255 float) ``[N, H, W]`` pairs -> float32 flow ``[N, H, W, 2]``."""
        return tvl1_flow_batched(prev, next_, self.params, device=self.device, batch=self.batch)
