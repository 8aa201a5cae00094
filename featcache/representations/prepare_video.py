"""One video of ``featcache prepare``: decode its middle frames, compute its representations,
write them as one part (:mod:`featcache.cache.parts`), named by its source and stamp."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featcache.cache.parts import read_part, write_part
from featcache.errors import MediaError
from featcache.media.files import frame_files
from featcache.media.video import read_middle_frames
from featcache.representations import dynamic_image, optical_flow, torch_preprocessing
from featcache.representations.prepare_settings import PrepareSettings


def file_stamp(path: Path) -> str:
    """Size and mtime (of a frame folder: its frames' total size, latest mtime and count):
    a changed video is computed again."""
    if path.is_dir():
        stats = [f.stat() for f in frame_files(path)]
        return f"{sum(s.st_size for s in stats)}:{max((s.st_mtime_ns for s in stats), default=0)}:{len(stats)}"
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def decode_video(path: Path, settings: PrepareSettings) -> tuple[np.ndarray, int]:
    """The middle frames a video's representations need, resized, and its frame count."""
    return read_middle_frames(path, settings.frames_to_read(), size=settings.size)


def compute_video(path: Path, settings: PrepareSettings, decoded=None) -> tuple[dict[str, np.ndarray], int, list[str]]:
    """Representations of one video, its frame count, and notes about short videos.

    ``decoded``: a future of :func:`decode_video` started earlier (decoding overlaps the flow).
    """
    frames, num_frames = decoded.result() if decoded is not None else decode_video(path, settings)
    return compute_frames(frames, num_frames, settings)


def video_representations(path: Path, settings: PrepareSettings, kind: str) -> np.ndarray:
    """One kind of a new video's representations as ``prepare`` with ``settings`` stores them: the same
    middle frames (those every recorded kind needs), then ``kind`` alone (``featcache predict``)."""
    frames, num_frames = decode_video(path, settings)
    arrays, _, _ = compute_frames(frames, num_frames, dataclasses.replace(settings, kinds=(kind,)))
    return arrays[kind]


def compute_frames(frames: np.ndarray, num_frames: int, settings: PrepareSettings):
    """:func:`compute_video` from decoded frames."""
    if on_device(settings):
        return compute_on_device(frames, num_frames, settings)
    arrays: dict[str, np.ndarray] = {}
    notes = []
    if "dynamic" in settings.kinds:
        arrays["dynamic"] = dynamic_image.dynamic_images(frames, settings.window, settings.stride, settings.count)
    if "flow" in settings.kinds:
        # A fresh estimator per video (flow_stacks creates it once, outside its frame loop):
        # DIS carries state from one call to the next, so sharing one across videos would make
        # a video's flow depend on which videos its worker happened to process before it.
        arrays["flow"] = optical_flow.flow_stacks(
            frames, settings.flow_method, settings.flow_frames, settings.stack, settings.bound,
            device=settings.flow_device, batch=settings.flow_batch or None,
        )
    return arrays, num_frames, notes + short_video_notes(arrays, num_frames, settings)


def short_video_notes(arrays: dict[str, np.ndarray], num_frames: int, settings: PrepareSettings) -> list[str]:
    notes = []
    if "dynamic" in arrays and len(arrays["dynamic"]) < settings.count:
        notes.append(f"{num_frames} frames -> {len(arrays['dynamic'])}/{settings.count} dynamic images")
    wanted = settings.flow_frames // settings.stack
    if "flow" in arrays and len(arrays["flow"]) < wanted:
        padded = " (padded)" if num_frames - 1 < settings.stack else ""
        notes.append(f"{num_frames} frames -> {len(arrays['flow'])}/{wanted} flow stacks{padded}")
    return notes


def on_device(settings: PrepareSettings) -> bool:
    """Grey, TV-L1, quantisation and dynamic images as torch ops on the flow device: for
    tvl1-torch on CUDA only, unless ``settings.preprocess_on_device`` says. On the CPU the numpy/OpenCV path stays: it is faster there
    (benchmarks/prepare.py --preprocessing-only, 3 real clips x 61 frames at 256x340, 2026-12-02:
    torch 0.36-0.42x its speed by wall clock, 0.54-0.59x by CPU time, 3 runs)."""
    tvl1_torch_run = "flow" in settings.kinds and settings.flow_method == "tvl1-torch"
    if settings.preprocess_on_device is not None:
        return tvl1_torch_run and settings.preprocess_on_device
    return tvl1_torch_run and settings.flow_device.startswith("cuda")


def compute_on_device(frames: np.ndarray, num_frames: int, settings: PrepareSettings):
    """:func:`compute_video` with the frames uploaded once; only uint8 results come back."""
    uploaded = torch.from_numpy(frames).to(settings.flow_device)
    arrays = {}
    if "dynamic" in settings.kinds:
        arrays["dynamic"] = torch_preprocessing.dynamic_images(uploaded, settings.window, settings.stride, settings.count)
    arrays["flow"] = torch_preprocessing.flow_stacks(
        uploaded, settings.flow_frames, settings.stack, settings.bound, batch=settings.flow_batch or None
    )
    return arrays, num_frames, short_video_notes(arrays, num_frames, settings)


def write_video_part(part: Path, source: str, stamp: str, num_frames: int, arrays: dict[str, np.ndarray]) -> None:
    """One video's result, with what identifies the video file it came from."""
    write_part(part, {"source": np.array(source), "stamp": np.array(stamp), "frames": np.array(num_frames), **arrays}, compressed=True)


def read_video_part(part: Path, source: str, stamp: str, kinds, arrays: bool = True) -> dict[str, Any] | None:
    """A finished part for this exact video file, or None (missing, stale, torn or unreadable).

    ``arrays=False`` only checks it (reads the small fields, not the representations).
    """
    found = read_part(part, ("source", "stamp", "frames", *(kinds if arrays else ())), require=kinds)
    if found is None or str(found["source"]) != source or str(found["stamp"]) != stamp:
        return None
    return {"frames": int(found["frames"]), **{kind: found[kind] for kind in kinds if arrays}}


def prepare_one(path: str, source: str, stamp: str, part: str, settings: PrepareSettings, decoded=None):
    """Worker entry point: compute one video and write its part. Returns (source, error, notes)."""
    try:
        arrays, num_frames, notes = compute_video(Path(path), settings, decoded)
    except MediaError as exc:
        return source, str(exc), []
    except Exception as exc:  # noqa: BLE001  -- e.g. cv2.error on garbage frames: report it, keep going
        reason = (str(exc).strip().splitlines() or [""])[-1]
        return source, f"{path}: {type(exc).__name__}: {reason}", []
    write_video_part(Path(part), source, stamp, num_frames, arrays)
    return source, None, notes
