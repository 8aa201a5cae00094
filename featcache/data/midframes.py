"""The mid-frame dataset of the paper's section 5.4: video middle frames as the stills.

``featcache data midframes ROOT OUT`` writes a folder-layout dataset in which the still
images are the middle frames of ROOT's videos, so there is no still/video domain shift::

    OUT/stills/train/<class>/<video stem>.png   # middle frames of train videos (minus the val carve-out)
    OUT/stills/val/<class>/<video stem>.png     # a per-class carve-out of train videos, for model selection
    OUT/stills/test/<class>/<video stem>.png    # middle frames of test videos
    OUT/videos/{train,test}/<class>/<video>     # symlinks to ROOT's videos (temporal data unchanged)
    OUT/classes.txt                             # ROOT's class order
    OUT/still-videos.csv                        # each still's video (``featcache.data.still_videos``)

Every file is written under a temporary name and renamed into place, so a rerun after a
crash skips the finished frames and redoes only the missing ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from featcache.data.val_split import carve_val
from featcache.data.dataset import FolderDataset, Sample
from featcache.data.still_videos import write_still_videos
from featcache.errors import DatasetError
from featcache.media.video import probe_video, read_frames
from featcache.utils.progress import make_progress
from featcache.utils.atomic import atomic_path

FRAME_SUFFIX = ".png"  # lossless: the frame is exactly what the decoder returned


@dataclass(frozen=True)
class MidframePlan:
    """Where one video's middle frame goes (``still_split``) and where its video is linked."""

    video: Sample
    still_split: str
    still_path: Path
    video_link: Path


def val_carve_out(videos: list[Sample], val_fraction: float, seed: int) -> set[str]:
    """Paths of train videos whose middle frames become val stills: ``val_fraction`` of each
    class (rounded, at least one when the class has two or more videos, never all), chosen with
    ``seed`` by the one carving rule (:func:`featcache.data.val_split.carve_val`)."""
    mask = carve_val([s.label for s in videos], [s.path for s in videos], val_fraction, seed)
    return {s.path for s, m in zip(videos, mask) if m}


def plan_midframes(dataset: FolderDataset, out: Path, val_fraction: float = 0.1, seed: int = 0) -> list[MidframePlan]:
    if not dataset.has("videos"):
        raise DatasetError(f"{dataset.root}: no videos/ folder; the mid-frame dataset is built from videos")
    train_videos = dataset.videos("train") if "train" in dataset.splits("videos") else []
    to_val = val_carve_out(train_videos, val_fraction, seed)
    plans = []
    for video in dataset.videos():
        still_split = "val" if video.path in to_val else video.split
        class_name = dataset.classes[video.label]
        relative = Path(video.path)
        # Keep sub-folders below the class folder in the name so two videos never collide.
        inner = relative.relative_to(Path("videos", video.split, class_name))
        stem = "__".join(inner.with_suffix("").parts)
        plans.append(
            MidframePlan(
                video=video,
                still_split=still_split,
                still_path=out / "stills" / still_split / class_name / f"{stem}{FRAME_SUFFIX}",
                video_link=out / relative,
            )
        )
    return plans


def middle_frame(path: Path) -> np.ndarray:
    """The middle frame of a video as ``uint8 [H, W, 3]`` RGB (MediaError if unreadable)."""
    info = probe_video(path)
    middle = max(int(info.num_frames) // 2, 0)
    frames = read_frames(path, start=middle, stop=middle + 1)
    if len(frames) == 0:  # container frame counts can overstate; fall back to decoding all
        frames = read_frames(path)
        return frames[len(frames) // 2]
    return frames[0]


def write_frame(frame: np.ndarray, path: Path) -> None:
    ok, encoded = cv2.imencode(FRAME_SUFFIX, np.ascontiguousarray(frame[:, :, ::-1]))
    if not ok:
        raise DatasetError(f"{path}: could not encode the middle frame")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


def link_video(source: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(source.resolve(), link)


def build_midframes(root: str | os.PathLike, out: str | os.PathLike, val_fraction: float = 0.1, seed: int = 0) -> FolderDataset:
    """Write the mid-frame dataset of ``root`` into ``out`` (resumable); returns it loaded."""
    dataset = FolderDataset(root)
    out = Path(out).expanduser()
    if out.resolve() == dataset.root.resolve():
        raise DatasetError(f"{out}: the output folder must differ from the dataset root")
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"val fraction must be in [0, 1), got {val_fraction}")
    plans = plan_midframes(dataset, out, val_fraction, seed)
    for stale in (out / "stills").rglob("*.tmp") if (out / "stills").is_dir() else []:
        stale.unlink()  # left by a killed run; the loader would reject it
    todo = [p for p in plans if not p.still_path.exists()]
    with make_progress(rate_unit="videos/s") as progress:
        task = progress.add_task("middle frames", total=len(plans), completed=len(plans) - len(todo), rate=0.0)
        for plan in todo:
            write_frame(middle_frame(dataset.path(plan.video)), plan.still_path)
            progress.update(task, advance=1, rate=progress.tasks[task].speed or 0.0)
    for plan in plans:
        link_video(dataset.path(plan.video), plan.video_link)
    with atomic_path(out / "classes.txt") as tmp:
        tmp.write_text("\n".join(dataset.classes) + "\n", encoding="utf-8")
    write_still_videos(out, {p.still_path.relative_to(out).as_posix(): p.video_link.relative_to(out).as_posix()
                             for p in plans})
    return FolderDataset(out)
