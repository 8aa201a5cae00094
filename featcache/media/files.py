"""Which files are media, and the layout of a frame-folder video (light: no decoder imported)."""

from __future__ import annotations

import re
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv", ".3gp", ".gif"})
FRAME_PREFIX = "img_"  # mmaction2 / denseflow rawframes: img_00001.jpg, ...


def _natural_key(path: Path) -> tuple:
    """img_2.jpg before img_10.jpg (zero-padded names sort the same either way)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name))


def frame_files(folder: Path) -> list[Path]:
    """The frames of a frame-folder video in order: its ``img_*`` images if any, else all its images."""
    images = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]
    frames = [p for p in images if p.name.startswith(FRAME_PREFIX)] or images
    return sorted(frames, key=_natural_key)


def is_frame_folder(path: Path) -> bool:
    """A folder holding image files directly: one video given as its frames."""
    return path.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() for p in path.iterdir())
