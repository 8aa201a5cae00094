"""Optical-flow stacks: dense flow between consecutive grey frames, quantised as in TSN.

Each flow field is clipped to ``[-bound, bound]`` pixels and mapped linearly to 0..255
(zero flow -> 127.5, rounded to 128). From the middle ``num_frames`` flow fields
(``num_frames + 1`` frames) consecutive groups of ``stack`` fields form one stack of
``2 * stack`` channels ordered ``x1, y1, x2, y2, ...``.

Methods: ``tvl1`` (Dual TV-L1, the flow of the two-stream/TSN literature, slow),
``farneback`` and ``dis`` (DIS, medium preset) as faster options. TV-L1 has two
implementations: ``tvl1-opencv`` (OpenCV's, one pair at a time) and ``tvl1-torch`` (ours,
batched, CPU or GPU, see ``tvl1_torch``); ``tvl1`` resolves to the faster one for the device
(:func:`resolve_flow_method`). The estimator is created once per video (or passed in) and
reused for every frame pair of it.
"""

from __future__ import annotations

import cv2
import numpy as np

from featcache.representations.tvl1_torch import TorchTVL1
from featcache.cache.schema import FLOW_BOUND, FLOW_STACK

FLOW_METHODS = ("tvl1", "tvl1-torch", "tvl1-opencv", "farneback", "dis")
NUM_FLOWS = 60
# TV-L1 on the CPU: whichever implementation benchmarks/prepare.py measured faster there.
# 2026-12-02, 2-core CPU shared with other jobs, 3 real clips x 12 pairs at 256x340, one thread,
# side by side in one run, by CPU time (wall clock was set by the other jobs): tvl1-torch at
# batch 1 0.79 pairs/CPU-s, tvl1-opencv 0.63 (1.24x); at 48x64 (prepare of 48 synthetic
# videos) both took 127 CPU-s. Rerun `python benchmarks/prepare.py` on your machine to check.
CPU_TVL1 = "tvl1-torch"


def resolve_flow_method(name: str, device="cpu") -> str:
    """``tvl1`` -> the implementation for ``device`` (torch on a GPU, CPU_TVL1 on the CPU)."""
    if name != "tvl1":
        return name
    return "tvl1-torch" if str(device).startswith("cuda") else CPU_TVL1


def create_flow_method(name: str, *, device="cpu", batch: int | None = None):
    """A dense-flow estimator: ``estimator.calc(prev, next, None) -> [H, W, 2]``.

    OpenCV's for ``tvl1-opencv``, ``farneback`` and ``dis``; for ``tvl1-torch`` a
    :class:`TorchTVL1` on ``device`` that also has ``calc_batch`` (all pairs of a video at once,
    ``batch`` pairs per solver call). Reuse one within a video, not across videos: DIS keeps
    state from its previous call, so a shared estimator would make a video's flow depend on the
    video computed before it.
    """
    name = resolve_flow_method(name, device)
    if name == "tvl1-torch":
        return TorchTVL1(device=device, batch=batch)
    if name == "tvl1-opencv":
        return cv2.optflow.DualTVL1OpticalFlow_create()
    if name == "farneback":
        return cv2.FarnebackOpticalFlow_create()
    if name == "dis":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    raise ValueError(f"unknown flow method {name!r}; expected one of {', '.join(FLOW_METHODS)}")


def quantize_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Clip to ``[-bound, bound]`` and map linearly to uint8 0..255 (0 -> 128)."""
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2.0 * bound))
    return np.floor(scaled + 0.5).astype(np.uint8)


def to_gray(frames: np.ndarray) -> np.ndarray:
    if frames.ndim == 3:
        return frames
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def middle_range(num_frames: int, wanted: int) -> tuple[int, int]:
    """``(start, stop)`` of the middle ``wanted`` items out of ``num_frames`` (all if fewer)."""
    used = min(wanted, num_frames)
    start = (num_frames - used) // 2
    return start, start + used


def compute_flows(frames: np.ndarray, method="tvl1", *, device="cpu", batch: int | None = None) -> np.ndarray:
    """Float32 flow ``[T-1, H, W, 2]`` between consecutive frames (RGB or grey)."""
    estimator = create_flow_method(method, device=device, batch=batch) if isinstance(method, str) else method
    gray = to_gray(frames)
    if hasattr(estimator, "calc_batch"):
        return estimator.calc_batch(gray[:-1], gray[1:])
    return np.stack([estimator.calc(gray[i], gray[i + 1], None) for i in range(len(gray) - 1)])


def stack_flows(flows: np.ndarray, stack: int = FLOW_STACK) -> np.ndarray:
    """uint8 flows ``[F, H, W, 2]`` -> stacks ``[F // stack, H, W, 2 * stack]`` (x1, y1, x2, y2, ...).

    Fewer than ``stack`` fields give one stack padded by repeating the last field.
    """
    if len(flows) == 0:
        raise ValueError("no flow fields to stack")
    if len(flows) < stack:
        pad = np.repeat(flows[-1:], stack - len(flows), axis=0)
        flows = np.concatenate([flows, pad])
    count = len(flows) // stack
    groups = flows[: count * stack].reshape(count, stack, *flows.shape[1:])  # [k, stack, H, W, 2]
    # [k, H, W, stack, 2] -> [k, H, W, 2*stack]: channel 2i is x_i, 2i+1 is y_i.
    return np.ascontiguousarray(groups.transpose(0, 2, 3, 1, 4)).reshape(count, *flows.shape[1:3], 2 * stack)


def flow_stacks(
    frames: np.ndarray,
    method="tvl1",
    num_frames: int = NUM_FLOWS,
    stack: int = FLOW_STACK,
    bound: float = FLOW_BOUND,
    *,
    device="cpu",
    batch: int | None = None,
) -> np.ndarray:
    """uint8 ``[k, H, W, 2 * stack]`` flow stacks from the middle ``num_frames`` flow fields."""
    if frames.ndim not in (3, 4) or len(frames) < 2:
        raise ValueError(f"optical flow needs at least two frames, got shape {frames.shape}")
    start, stop = middle_range(len(frames), num_frames + 1)
    flows = compute_flows(frames[start:stop], method, device=device, batch=batch)
    return stack_flows(quantize_flow(flows, bound), stack)
