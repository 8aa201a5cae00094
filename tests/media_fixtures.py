"""Tiny generated media for tests that need real files but no real data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def make_video(path: Path, frames: int = 6, seed: int = 0) -> Path:
    """An MJPG .avi of random 32x24 frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    writer.release()
    return path


def make_image(path: Path, seed: int = 0) -> Path:
    """A random 24x20 RGB image, in the format its suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path)
    return path
