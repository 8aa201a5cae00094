"""Accuracy of the PyTorch TV-L1 (tvl1-torch) against OpenCV's (tvl1-opencv) and against known motion.

    python benchmarks/flow_accuracy.py [--pairs 20] [--size 256x340] [--device cpu] [--threads 1]

Real pairs: the Middlebury basketball pair (native 480x640) and ``--pairs`` consecutive frame
pairs from the middle of three real clips at ``--size`` (``../shared/data/real`` or
``$FEATCACHE_REAL_DATA``; skipped when absent). For each: the mean end-point error between the
two implementations (target <= 0.1 px) and the share of quantised uint8 flow values (the
project's clip +-20 -> 0..255) within one level of OpenCV's (target >= 95%). Generated pairs
(a blurred texture translated, rotated, zoomed; true flow known): the EPE of each against the
truth, 16 border pixels left out (content enters and leaves there).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from prepare import REAL_DATA, load_clips  # noqa: E402  (benchmarks/prepare.py: the clips it times)

from featcache.representations.optical_flow import create_flow_method, quantize_flow, to_gray  # noqa: E402
from featcache.representations.tvl1_torch import tvl1_flow  # noqa: E402

MIDDLEBURY = REAL_DATA / "precomputed" / "middlebury_basketball_frame_pair"
BORDER = 16


def end_point_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a - b) ** 2).sum(-1))


def both_flows(first: np.ndarray, second: np.ndarray, device: str) -> tuple[np.ndarray, np.ndarray]:
    """(torch, OpenCV) flow ``[N, H, W, 2]`` of grey uint8 pairs ``[N, H, W]``."""
    ours = tvl1_flow(torch.from_numpy(first).to(device, torch.float32), torch.from_numpy(second).to(device, torch.float32))
    opencv = create_flow_method("tvl1-opencv")
    theirs = np.stack([opencv.calc(a, b, None) for a, b in zip(first, second)])
    return ours.cpu().numpy(), theirs


def agreement_row(name: str, ours: np.ndarray, theirs: np.ndarray) -> str:
    epe = end_point_error(ours, theirs).mean(axis=(1, 2))  # per pair
    within = (np.abs(quantize_flow(ours).astype(np.int16) - quantize_flow(theirs)) <= 1).mean() * 100
    return (f"{name:<34}{len(ours):>6}{epe.mean():>11.4f}{epe.max():>10.4f}{within:>12.2f}"
            f"{np.abs(theirs).mean():>10.3f}")


def real_pairs(count: int, size: tuple[int, int]):
    """(name, first frames, second frames) of the Middlebury pair and of each clip."""
    if (MIDDLEBURY / "basketball1.png").exists():
        a, b = (cv2.imread(str(MIDDLEBURY / f"basketball{i}.png"), cv2.IMREAD_GRAYSCALE) for i in (1, 2))
        yield "middlebury basketball 480x640", a[None], b[None]
    for name, clip in load_clips(3, size, count + 1):
        gray = to_gray(clip)
        yield f"{name[:24]} {size[0]}x{size[1]}", gray[:-1], gray[1:]


def generated_pairs(size: tuple[int, int]):
    """(name, I0, I1, true flow): I1(T x) = I0(x) for an affine T, so the flow is T x - x."""
    height, width = size
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.uniform(0, 255, size).astype(np.float32), (0, 0), 2.0)
    centre = (width / 2, height / 2)
    transforms = {
        "translation (2.5, -1.5)": np.float32([[1, 0, 2.5], [0, 1, -1.5]]),
        "rotation 2 deg": cv2.getRotationMatrix2D(centre, 2.0, 1.0),
        "zoom x1.03": cv2.getRotationMatrix2D(centre, 0.0, 1.03),
    }
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    for name, t in transforms.items():
        moved = cv2.warpAffine(scene, t, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        true = np.stack([t[0, 0] * xs + t[0, 1] * ys + t[0, 2] - xs, t[1, 0] * xs + t[1, 1] * ys + t[1, 2] - ys], -1)
        as_uint8 = lambda im: np.uint8(np.clip(np.rint(im), 0, 255))  # noqa: E731
        yield name, as_uint8(scene), as_uint8(moved), true.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20, help="consecutive pairs per clip")
    parser.add_argument("--size", default="256x340", help="HxW the clip frames are resized to")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV CPU threads")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)

    print("torch TV-L1 vs OpenCV TV-L1 on real pairs (targets: mean EPE <= 0.1 px, >= 95% within 1 level)")
    print(f"{'pairs':<34}{'n':>6}{'mean EPE':>11}{'max pair':>10}{'% <=1 lvl':>12}{'|flow|':>10}")
    for name, first, second in real_pairs(args.pairs, size):
        print(agreement_row(name, *both_flows(first, second, args.device)), flush=True)

    print(f"\nknown motion at {size[0]}x{size[1]} (EPE to the truth, {BORDER} border pixels left out)")
    print(f"{'motion':<26}{'torch EPE':>11}{'OpenCV EPE':>12}{'torch-OpenCV':>14}")
    inner = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    for name, a, b, true in generated_pairs(size):
        ours, theirs = (f[0][inner] for f in both_flows(a[None], b[None], args.device))
        print(f"{name:<26}{end_point_error(ours, true[inner]).mean():>11.4f}{end_point_error(theirs, true[inner]).mean():>12.4f}"
              f"{end_point_error(ours, theirs).mean():>14.4f}", flush=True)


if __name__ == "__main__":
    main()
