import csv

import cv2
import numpy as np
import pytest

from featcache.errors import MediaError
from featcache.media.video import VideoInfo, probe_video, read_frames, read_middle_frames


def write_video(path, num_frames, height=48, width=64, fourcc="MJPG", fps=25):
    """A video whose frame t is a flat grey of value 10 * t (easy to recognise after decoding)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened()
    for t in range(num_frames):
        frame = np.full((height, width, 3), (10 * t) % 250, np.uint8)
        frame[:, :, 2] = 200  # BGR red channel: checks RGB conversion
        writer.write(frame)
    writer.release()
    return path


@pytest.mark.parametrize("suffix,fourcc", [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_probe_and_read(tmp_path, suffix, fourcc):
    path = write_video(tmp_path / f"clip{suffix}", 20, fourcc=fourcc)
    info = probe_video(path)
    assert isinstance(info, VideoInfo)
    assert (info.num_frames, info.height, info.width) == (20, 48, 64)
    assert info.fps == pytest.approx(25, abs=0.1)
    assert probe_video(path, exact=True).num_frames == 20
    frames = read_frames(path)
    assert frames.shape == (20, 48, 64, 3) and frames.dtype == np.uint8
    assert abs(int(frames[0, 0, 0, 0]) - 200) <= 3  # red first: RGB order
    part = read_frames(path, size=(24, 40), start=5, stop=9)
    assert part.shape == (4, 24, 40, 3)
    assert abs(int(part[0, 5, 5, 1]) - 50) <= 4 and abs(int(part[-1, 5, 5, 1]) - 80) <= 4
    assert len(read_frames(path, start=15, stop=100)) == 5  # stop past the end is clipped


def test_read_middle_frames(tmp_path):
    path = write_video(tmp_path / "clip.avi", 25)
    frames, n = read_middle_frames(path, 11)
    assert n == 25 and len(frames) == 11
    assert abs(int(frames[0, 0, 0, 1]) - 70) <= 4  # starts at frame (25 - 11) // 2 = 7
    frames, n = read_middle_frames(path, 61)
    assert n == 25 and len(frames) == 25


def test_bad_videos_raise_media_error_naming_path(tmp_path):
    missing = tmp_path / "missing.avi"
    empty = tmp_path / "empty.avi"
    empty.touch()
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"definitely not a video " * 100)
    good = write_video(tmp_path / "good.mp4", 30, fourcc="mp4v")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    one = write_video(tmp_path / "one.avi", 1)
    for path, reason in [
        (missing, "not found"), (empty, "empty"), (garbage, "cannot open"),
        (truncated, ""), (one, "one frame"),
    ]:
        for call in (probe_video, read_frames):
            with pytest.raises(MediaError) as info:
                call(path)
            assert str(path) in str(info.value) and reason in str(info.value)


def test_real_clips_all_decode(real_data):
    rows = [r for r in csv.DictReader(open(real_data / "manifest.csv")) if r["kind"] == "videos"]
    assert rows
    for row in rows:
        path = real_data / row["path"]
        info = probe_video(path)
        assert (info.width, info.height) == (int(row["width"]), int(row["height"])), path
        frames, n = read_middle_frames(path, 8, size=(32, 40))
        assert frames.shape == (8, 32, 40, 3), path
        assert abs(n - int(row["frames"])) <= 1, path  # some AVI indexes count one frame too many
