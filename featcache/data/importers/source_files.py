"""Helpers shared by the importers: finding folders of a public layout and reading its lists."""

from __future__ import annotations

import os
from pathlib import Path

from featcache.media.files import VIDEO_EXTENSIONS, is_frame_folder
from featcache.errors import DatasetError


NUM_SPLITS = 3  # UCF-101 and HMDB-51 both ship three train/test splits


def check_video_source(src: str | os.PathLike, dataset: str, split: int) -> Path:
    """The source folder of a video dataset with official splits 1..3, or a DatasetError."""
    if split not in range(1, NUM_SPLITS + 1):
        raise DatasetError(f"{dataset} split must be 1, 2 or 3, not {split}")
    src = Path(src).expanduser()
    if not src.is_dir():
        raise DatasetError(f"{src}: {dataset} source folder not found")
    return src


def find_folder(
    src: Path, candidates: list[str], *, what: str, marker: str | None = None, explicit: Path | None = None
) -> Path:
    """The first ``src/<candidate>`` holding ``marker`` (a file name; None: any sub-folder).

    ``"."`` is ``src`` itself; ``".."`` steps up, for split lists kept beside the videos.
    """
    if explicit is not None:
        explicit = Path(explicit).expanduser()
        if not explicit.is_dir():
            raise DatasetError(f"{explicit}: {what} folder not found")
        return explicit
    for candidate in candidates:
        folder = (src / candidate) if candidate != "." else src
        if folder.is_dir() and _looks_like(folder, marker):
            return folder
    tried = ", ".join(os.path.normpath(src / c) for c in candidates)
    holding = f" holding {marker}" if marker else ""
    raise DatasetError(f"{src}: no {what} folder{holding} found (looked in {tried})")


def _looks_like(folder: Path, marker: str | None) -> bool:
    if marker is None:
        return any(p.is_dir() for p in folder.iterdir())
    return any(folder.glob(marker))


def read_lines(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, whitespace-split fields)`` of the non-blank lines of a list file."""
    if not path.is_file():
        raise DatasetError(f"{path}: split file not found")
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    return [(n, line.split()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


class VideoLocator:
    """Finds a listed clip in a class folder, tolerating case and re-encoded extensions.

    Split files name ``clip.avi``; copies often differ in case (UCF-101's
    ``HandStandPushups``), were re-encoded to ``clip.mp4`` or ``clip.gif``, or were
    extracted to a folder of frames ``clip/img_00001.jpg ...`` (mmaction2 rawframes).
    """

    def __init__(self, root: Path):
        self.root = root
        self._folders: dict[str, dict[str, Path]] = {}

    def find(self, class_folder: str, name: str) -> Path | None:
        exact = self.root / class_folder / name
        if exact.is_file() or is_frame_folder(exact):
            return exact
        files = self._index(class_folder)
        hit = files.get(name.lower())
        if hit is not None:
            return hit
        stem = Path(name).stem.lower()
        for ext in sorted(VIDEO_EXTENSIONS) + [""]:  # "": a frame folder named after the clip
            hit = files.get(stem + ext)
            if hit is not None:
                return hit
        return None

    def _index(self, class_folder: str) -> dict[str, Path]:
        key = class_folder.lower()
        if key not in self._folders:
            folders = [p for p in self.root.iterdir() if p.is_dir() and p.name.lower() == key]
            self._folders[key] = {
                f.name.lower(): f for folder in folders for f in folder.iterdir() if f.is_file() or is_frame_folder(f)
            }
        return self._folders[key]
