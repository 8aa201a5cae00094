"""Throughput of the temporal representations, side by side on the same clips.

    python benchmarks/prepare.py [--clips 3] [--size 256x340] [--frames 61] [--threads 1]
                                 [--device cpu|cuda[:N]] [--batches 1,8,60] [--compile]
                                 [--preprocessing-only]

Decodes the middle ``--frames`` frames of a few real clips (``../shared/data/real`` or
``$FEATCACHE_REAL_DATA``; generated clips when absent), then times optical flow with each
method (OpenCV's TV-L1, our PyTorch TV-L1 at each ``--batches`` size on ``--device``,
farneback, dis) and dynamic images on exactly those frames, then prepare's other per-clip
work (grey, quantisation, dynamic images) in numpy/OpenCV against the torch ops on ``--device``. Prints frames per second (flow:
frame pairs per second; dynamic images: input frames per second), by wall clock and by this
process's CPU time (fair on a shared machine; meaningless for a GPU run), and the ratio to
OpenCV's TV-L1. A clip's pairs go through the torch solver ``batch`` at a time, as in prepare.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featcache.representations import dynamic_image, optical_flow, torch_preprocessing, tvl1_torch  # noqa: E402
from featcache.media.video import read_middle_frames  # noqa: E402

REAL_DATA = Path(os.environ.get("FEATCACHE_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real"))
DEFAULT_CLIPS = (
    "videos/apply_eye_makeup/ucf101_v_ApplyEyeMakeup_g01_c01.avi",
    "videos/fencing/ucf101_v_Fencing_g01_c06.mp4",
    "videos/riding_segway/kinetics400_R6llTwEh07w.mp4",
)


def generated_clip(frames: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """A textured scene panning right with a bright square crossing it (RGB uint8)."""
    height, width = size
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (height, width + 2 * frames, 3), dtype=np.uint8), (9, 9), 3)
    clip = np.stack([scene[:, 2 * t : 2 * t + width] for t in range(frames)])
    for t in range(frames):
        y, x = height // 3, (5 * t) % (width - 40)
        clip[t, y : y + 40, x : x + 40] = 255
    return clip


def load_clips(count: int, size: tuple[int, int], frames: int) -> list[tuple[str, np.ndarray]]:
    if (REAL_DATA / "manifest.csv").exists():
        paths = [REAL_DATA / c for c in DEFAULT_CLIPS if (REAL_DATA / c).exists()][:count]
        return [(p.name, read_middle_frames(p, frames, size=size)[0]) for p in paths]
    return [(f"generated-{i}", generated_clip(frames, size, i)) for i in range(count)]


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): CPU time stays fair on a busy machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def total(times) -> tuple[float, float]:
    times = list(times)
    return sum(t[0] for t in times), sum(t[1] for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--size", default="256x340", help="HxW the frames are resized to")
    parser.add_argument("--frames", type=int, default=61, help="middle frames per clip (61 -> 60 flow fields)")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV and torch CPU threads (prepare uses 1 per worker)")
    parser.add_argument("--device", default="cpu", help="where the torch TV-L1 runs: cpu, cuda or cuda:N")
    parser.add_argument("--batches", default="1,8,60", help="torch TV-L1 batch sizes to time (pairs per solver call)")
    parser.add_argument("--compile", action="store_true", help="torch TV-L1 through torch.compile (opt-in; warm-up compiles)")
    parser.add_argument("--preprocessing-only", action="store_true", help="time only grey/quantisation/dynamic images, CPU vs torch")
    args = parser.parse_args()
    if args.compile:
        tvl1_torch.use_torch_compile()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)

    clips = load_clips(args.clips, size, args.frames)
    print(f"{len(clips)} clips ({', '.join(name for name, _ in clips)}), {args.frames} frames each at {size[0]}x{size[1]}, "
          f"{args.threads} OpenCV thread(s)")
    if args.preprocessing_only:
        for name, count, (wall, cpu) in preprocessing_runs(clips, args.device):
            print(f"  {name}: {count / wall:.1f} frames/s wall, {count / cpu:.1f} frames/CPU-s ({wall:.3f} s, {cpu:.3f} CPU-s)")
        return
    results = []  # (name, frames processed, (wall s, CPU s))
    pairs = sum(len(c) - 1 for _, c in clips)
    optical_flow.flow_stacks(clips[0][1][:3], "tvl1-torch", device=args.device)  # warm-up (CUDA context, allocator)
    for method, batch in flow_runs(args.batches):
        estimator = optical_flow.create_flow_method(method, device=args.device, batch=batch)
        seconds = total(timed(lambda c=c: optical_flow.flow_stacks(c, estimator, num_frames=args.frames - 1)) for _, c in clips)
        label = f"flow {method}" + (f" b{batch} {args.device}" if batch else "")
        results.append((label, pairs, seconds))
        peak = ""
        if batch and args.device.startswith("cuda"):
            peak = f", peak {torch.cuda.max_memory_allocated(args.device) / 2**30:.2f} GiB"
            torch.cuda.reset_peak_memory_stats(args.device)
        print(f"  {label}: {pairs / seconds[0]:.2f} pairs/s wall, {pairs / seconds[1]:.2f} pairs/CPU-s{peak}", flush=True)
    consumed = sum(min(len(c), dynamic_image.frames_needed()) for _, c in clips)
    seconds = total(timed(lambda c=c: dynamic_image.dynamic_images(c)) for _, c in clips)
    results.append(("dynamic images", consumed, seconds))
    results += preprocessing_runs(clips, args.device)

    tvl1_wall, tvl1_cpu = results[0][1] / results[0][2][0], results[0][1] / results[0][2][1]
    print(f"{'representation':<26}{'frames':>7}{'wall s':>9}{'frames/s':>10}{'x ocv':>8}{'CPU s':>9}{'frames/CPU s':>14}{'x ocv':>8}")
    for name, count, (wall, cpu) in results:
        print(
            f"{name:<26}{count:>7}{wall:>9.2f}{count / wall:>10.2f}{count / wall / tvl1_wall:>8.2f}"
            f"{cpu:>9.2f}{count / cpu:>14.2f}{count / cpu / tvl1_cpu:>8.2f}"
        )
    torch_rows = [r for r in results if r[0].startswith("flow tvl1-torch")]
    best = max(torch_rows, key=lambda r: r[1] / r[2][0])
    print(f"torch TV-L1 best: {best[0]} at {best[1] / best[2][0]:.2f} pairs/s wall "
          f"({best[1] / best[2][0] / tvl1_wall:.2f}x OpenCV TV-L1 by wall clock, same run)")


def preprocessing_runs(clips, device: str) -> list[tuple[str, int, tuple[float, float]]]:
    """Everything prepare does to a clip besides decoding and the TV-L1 solver, both ways.

    CPU: grey (cv2), quantisation and dynamic images in numpy (prepare's CPU path). Torch on
    ``device`` (prepare's CUDA path): upload the uint8 frames, grey, quantisation and dynamic
    images as torch ops, copy back the uint8 results. The flow to quantise is random (its cost
    does not depend on the values); on the device path it is already there, as after the solver.
    """
    rng = np.random.default_rng(0)
    flows = [(rng.standard_normal((len(c) - 1, *c.shape[1:3], 2)) * 5).astype(np.float32) for _, c in clips]
    on_device = [torch.from_numpy(f).to(device) for f in flows]

    def cpu(clip, flow):
        optical_flow.to_gray(clip)
        optical_flow.quantize_flow(flow)
        dynamic_image.dynamic_images(clip)

    def on_torch(clip, flow):
        frames = torch.from_numpy(clip).to(device)
        torch_preprocessing.to_gray(frames)
        torch_preprocessing.quantize_flow(flow).cpu()
        torch_preprocessing.dynamic_images(frames)  # ends with a copy back, so the timing includes the device work

    on_torch(clips[0][1], on_device[0])  # warm-up (kernels, allocator)
    frames = sum(len(c) for _, c in clips)
    rows = [
        ("preprocess numpy/cv2 cpu", frames, total(timed(lambda c=c, f=f: cpu(c, f)) for (_, c), f in zip(clips, flows))),
        (f"preprocess torch {device}", frames, total(timed(lambda c=c, f=f: on_torch(c, f)) for (_, c), f in zip(clips, on_device))),
    ]
    ratio = (rows[0][2][0] / rows[1][2][0], rows[0][2][1] / rows[1][2][1])
    print(f"  grey + quantisation + dynamic images, {frames} frames: torch on {device} {ratio[0]:.2f}x the CPU path by wall "
          f"clock, {ratio[1]:.2f}x by CPU time (same run)", flush=True)
    return rows


def flow_runs(batches: str) -> list[tuple[str, int | None]]:
    """(method, torch batch) to time: OpenCV's TV-L1 first (the reference), then ours per batch."""
    runs: list[tuple[str, int | None]] = [("tvl1-opencv", None)]
    runs += [("tvl1-torch", int(b)) for b in batches.split(",")]
    return runs + [("farneback", None), ("dis", None)]

if __name__ == "__main__":
    main()
