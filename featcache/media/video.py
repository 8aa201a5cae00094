"""Decoding videos to RGB frames, with one clear :class:`MediaError` per broken file.

OpenCV (its FFmpeg backend) is the first decoder: on the real clips it reads every file
that PyAV reads and grabs frames a little faster. PyAV is the fallback when OpenCV
cannot open a file or decodes nothing from it. Container frame counts are not trusted
blindly: raw MPEG-4 (.m4v-in-.mp4) streams report garbage and some AVI indexes count one
frame too many, so :func:`probe_video` counts by decoding when the metadata is implausible
(or when asked to with ``exact=True``), and :func:`read_frames` clips ``stop`` to the
frames really present, like slicing.

A video may also be a folder of frames (mmaction2 / denseflow rawframes,
``<video>/img_00001.jpg ...``, see :func:`featcache.media.files.frame_files`): its frames are the
images, decoded with :func:`featcache.media.images.read_image`; it has no frame rate (fps 0).
Animated GIFs are read by both decoders like any other container.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Broken files are reported by us, one line each; silence FFmpeg's own stderr chatter.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from featcache.errors import MediaError  # noqa: E402
from featcache.media.files import frame_files  # noqa: E402
from featcache.media.images import read_image

MAX_PLAUSIBLE_FRAMES = 10_000_000


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    height: int
    width: int
    fps: float


# -- helpers ------------------------------------------------------------------
def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError(f"{path}: video not found")
    if not path.is_file():
        raise MediaError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file (0 bytes)")


def _resize(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    height, width = size
    # INTER_AREA avoids aliasing when shrinking; INTER_LINEAR is the usual choice when enlarging.
    shrinking = width * height < frame.shape[0] * frame.shape[1]
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _check_range(start: int, stop: int | None) -> None:
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"bad frame range start={start} stop={stop}")


# -- OpenCV -------------------------------------------------------------------
def _open_cv2(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise MediaError(f"{path}: OpenCV cannot open it (unknown container or corrupt header)")
    return capture


def _probe_cv2(path: Path, exact: bool) -> VideoInfo:
    capture = _open_cv2(path)
    try:
        ok, frame = capture.read()
        if not ok or frame is None:
            raise MediaError(f"{path}: no decodable frame (OpenCV)")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if exact or not 0 < count < MAX_PLAUSIBLE_FRAMES:
            count = 1
            while capture.grab():
                count += 1
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        return VideoInfo(count, frame.shape[0], frame.shape[1], fps)
    finally:
        capture.release()


def _read_cv2(path: Path, size, start: int, stop: int | None) -> np.ndarray:
    capture = _open_cv2(path)
    frames = []
    try:
        # Grab (decode without colour conversion) up to `start`: CAP_PROP_POS_FRAMES seeks
        # to key frames and lands on the wrong frame for many codecs.
        for _ in range(start):
            if not capture.grab():
                return np.empty((0, 0, 0, 3), np.uint8)
        index = start
        while stop is None or index < stop:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            frames.append(_resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), size))
            index += 1
    finally:
        capture.release()
    return np.stack(frames) if frames else np.empty((0, 0, 0, 3), np.uint8)


# -- PyAV ---------------------------------------------------------------------
def _av_frames(path: Path):
    # PyAV: the fallback decoder, loaded only when OpenCV cannot read a video
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise MediaError(f"{path}: cannot open: {reason.lower()} (corrupt, truncated or not a video)") from None
    if not container.streams.video:
        container.close()
        raise MediaError(f"{path}: no video stream")
    stream = container.streams.video[0]
    return container, stream


def _decode_av(container, stream):
    # PyAV: the fallback decoder, loaded only when OpenCV cannot read a video
    import av

    try:
        yield from container.decode(stream)
    except (av.error.FFmpegError, OSError, ValueError):
        return  # a truncated stream ends at its last good frame


def _probe_av(path: Path, exact: bool) -> VideoInfo:
    container, stream = _av_frames(path)
    try:
        frames = _decode_av(container, stream)
        first = next(frames, None)
        if first is None:
            raise MediaError(f"{path}: no decodable frame (PyAV)")
        count = int(stream.frames or 0)
        if exact or not 0 < count < MAX_PLAUSIBLE_FRAMES:
            count = 1 + sum(1 for _ in frames)
        fps = float(stream.average_rate or 0.0)
        return VideoInfo(count, first.height, first.width, fps)
    finally:
        container.close()


def _read_av(path: Path, size, start: int, stop: int | None) -> np.ndarray:
    container, stream = _av_frames(path)
    frames = []
    try:
        for index, frame in enumerate(_decode_av(container, stream)):
            if stop is not None and index >= stop:
                break
            if index >= start:
                frames.append(_resize(frame.to_ndarray(format="rgb24"), size))
    finally:
        container.close()
    return np.stack(frames) if frames else np.empty((0, 0, 0, 3), np.uint8)


# -- frame folders --------------------------------------------------------------
def _folder_frames(path: Path) -> list[Path]:
    frames = frame_files(path)
    if not frames:
        raise MediaError(f"{path}: folder holds no frame images (expected img_00001.jpg ...)")
    return frames


def _probe_folder(path: Path) -> VideoInfo:
    frames = _folder_frames(path)
    first = read_image(frames[0])
    return VideoInfo(len(frames), first.shape[0], first.shape[1], 0.0)


def _read_folder(path: Path, size, start: int, stop: int | None) -> np.ndarray:
    frames = [_resize(read_image(frame), size) for frame in _folder_frames(path)[start:stop]]
    return np.stack(frames) if frames else np.empty((0, 0, 0, 3), np.uint8)


# -- public API ---------------------------------------------------------------
def probe_video(path: str | os.PathLike, exact: bool = False) -> VideoInfo:
    """Frame count, size and fps of a video; ``exact=True`` counts frames by decoding.

    Raises MediaError for a missing, empty, corrupt or one-frame video.
    """
    path = Path(path)
    if path.is_dir():
        info = _probe_folder(path)
    else:
        info = _probe_file(path, exact)
    if info.num_frames < 2:
        raise MediaError(f"{path}: only one frame; a video needs at least two")
    return info


def _probe_file(path: Path, exact: bool) -> VideoInfo:
    _check_file(path)
    try:
        info = _probe_cv2(path, exact)
    except MediaError:
        info = _probe_av(path, exact)  # the fallback; its error names FFmpeg's reason
    return info


def read_frames(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """Frames ``start:stop`` as uint8 RGB ``[T, H, W, 3]`` (``size=(H, W)`` resizes each frame).

    ``stop`` past the end is clipped, like slicing. Raises MediaError for a missing, empty,
    corrupt or one-frame video, or when no frame of the range can be decoded.
    """
    path = Path(path)
    _check_range(start, stop)
    frames = _read_folder(path, size, start, stop) if path.is_dir() else _read_file(path, size, start, stop)
    if len(frames) == 0:
        probe_video(path)  # names the real problem (cannot open, one frame...) if the whole file is bad
        if start > 0:
            raise MediaError(f"{path}: no frames in range {start}:{stop}")
        raise MediaError(f"{path}: no decodable frames (corrupt or unsupported codec)")
    if start == 0 and (stop is None or stop > 1) and len(frames) < 2:
        raise MediaError(f"{path}: only one frame; a video needs at least two")
    return frames


def _read_file(path: Path, size, start: int, stop: int | None) -> np.ndarray:
    _check_file(path)
    try:
        frames = _read_cv2(path, size, start, stop)
    except MediaError:
        frames = np.empty((0, 0, 0, 3), np.uint8)
    if len(frames) == 0:
        try:
            frames = _read_av(path, size, start, stop)
        except MediaError:
            pass
    return frames


def read_middle_frames(
    path: str | os.PathLike, count: int, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, int]:
    """The middle ``count`` frames (all of them if the video is shorter) and the video's length.

    Only frames up to the end of the middle part are decoded. When the container overstates
    its length (a truncated file, an AVI index one frame long), the length is counted by
    decoding and the middle is taken again, so the frames really are the middle ones.
    """
    info = probe_video(path)
    start = max(0, (info.num_frames - count) // 2)
    stop = start + min(count, info.num_frames)
    frames = read_frames(path, size, start, stop)
    if len(frames) == stop - start:
        return frames, info.num_frames
    exact = probe_video(path, exact=True)
    start = max(0, (exact.num_frames - count) // 2)
    frames = read_frames(path, size, start, start + min(count, exact.num_frames))
    if len(frames) < 2:
        raise MediaError(f"{path}: fewer than two decodable frames")
    return frames, exact.num_frames
