"""Videos in the forms datasets ship them: .avi, .mp4, animated .gif and frame folders
(mmaction2 / denseflow rawframes); a stray file of another type is named and skipped."""

from __future__ import annotations

import os
import shutil

import cv2
import h5py
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from featcache.data.check import check_dataset
from featcache.data.dataset import FolderDataset
from featcache.media.files import frame_files
from featcache.errors import MediaError
from featcache.media.images import read_image
from featcache.data.importers.class_mapping import ClassMapping
from featcache.data.importers.ucf101 import import_ucf101
from featcache.representations.prepare import PrepareSettings, prepare
from featcache.representations.prepare_video import file_stamp
from featcache.media.video import probe_video, read_frames
from tests.featcache.data.test_importers import synthetic_sources  # noqa: F401  (fixture)

SETTINGS = PrepareSettings(size=(32, 40), flow_method="dis")


def moving_frames(count: int, seed: int) -> list[np.ndarray]:
    """RGB frames of a blurred texture sliding right, 48x64."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (48, 64 + 2 * count, 3), dtype=np.uint8), (5, 5), 1)
    return [np.ascontiguousarray(texture[:, 2 * (count - 1 - t): 2 * (count - 1 - t) + 64]) for t in range(count)]


def write_container(path, frames, fourcc: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (64, 48))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def write_gif(path, frames) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=40, loop=0)


def write_frame_folder(folder, frames, *, flow_beside: bool = False) -> None:
    """``folder/img_00001.jpg ...`` (and denseflow's flow_x/flow_y images beside, to be ignored)."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(folder / f"img_{t:05d}.jpg", quality=95)
        if flow_beside:
            Image.fromarray(frame[..., 0]).save(folder / f"flow_x_{t:05d}.jpg")


@pytest.fixture
def mixed(tmp_path):
    root = tmp_path / "ds"
    v = root / "videos"
    write_container(v / "train" / "jump" / "a.avi", moving_frames(20, 0), "MJPG")
    write_container(v / "train" / "wave" / "b.mp4", moving_frames(20, 1), "mp4v")
    write_gif(v / "train" / "jump" / "c.gif", moving_frames(12, 2))
    write_frame_folder(v / "train" / "wave" / "d", moving_frames(15, 3), flow_beside=True)
    write_gif(v / "test" / "jump" / "e.gif", moving_frames(10, 4))
    write_frame_folder(v / "test" / "wave" / "f", moving_frames(11, 5))
    (v / "train" / "jump" / "notes.txt").write_text("not a video\n")
    return root


def test_layout_accepts_gif_and_frame_folders_and_skips_the_stray_file(mixed):
    dataset = FolderDataset(mixed)
    assert [s.path for s in dataset.videos()] == [
        "videos/train/jump/a.avi", "videos/train/jump/c.gif", "videos/train/wave/b.mp4", "videos/train/wave/d",
        "videos/test/jump/e.gif", "videos/test/wave/f",
    ]
    assert len(dataset.skipped) == 1
    path, reason = dataset.skipped[0]
    assert path == "videos/train/jump/notes.txt" and "unsupported file type .txt" in reason


def test_decoders_read_gif_and_frame_folders(mixed):
    gif = mixed / "videos" / "train" / "jump" / "c.gif"
    info = probe_video(gif)
    assert (info.num_frames, info.height, info.width) == (12, 48, 64)
    frames = read_frames(gif, start=2, stop=5)
    assert frames.shape == (3, 48, 64, 3)
    np.testing.assert_allclose(frames[0].astype(float), moving_frames(12, 2)[2].astype(float), atol=40)  # a palette

    folder = mixed / "videos" / "train" / "wave" / "d"
    assert [p.name for p in frame_files(folder)][:2] == ["img_00001.jpg", "img_00002.jpg"]  # flow_x_* left out
    info = probe_video(folder)
    assert (info.num_frames, info.height, info.width, info.fps) == (15, 48, 64, 0.0)
    frames = read_frames(folder, size=(24, 32), start=13, stop=99)  # clipped like slicing
    assert frames.shape == (2, 24, 32, 3)
    np.testing.assert_array_equal(read_frames(folder, start=3, stop=4)[0], read_image(folder / "img_00004.jpg"))


def test_frame_folder_order_stamp_and_errors(tmp_path):
    folder = tmp_path / "clip"
    write_frame_folder(folder, moving_frames(3, 0))
    for t in (2, 3):  # unpadded names: img_10 must come after img_2
        os.rename(folder / f"img_{t:05d}.jpg", folder / f"img_{t * 5}.jpg")
    assert [p.name for p in frame_files(folder)] == ["img_00001.jpg", "img_10.jpg", "img_15.jpg"]
    stamp = file_stamp(folder)
    Image.fromarray(moving_frames(1, 9)[0]).save(folder / "img_20.jpg")
    assert file_stamp(folder) != stamp  # a new frame: the video is computed again
    (folder / "img_20.jpg").write_bytes(b"garbage")
    with pytest.raises(MediaError, match="img_20.jpg"):
        read_frames(folder)
    one = tmp_path / "one"
    write_frame_folder(one, moving_frames(1, 0))
    with pytest.raises(MediaError, match="only one frame"):
        probe_video(one)


def test_mixed_tree_prepares_every_video_and_names_the_stray_file(mixed, tmp_path):
    from cli.app import app

    cache = tmp_path / "cache"
    result = CliRunner().invoke(app, ["prepare", str(mixed), "--cache", str(cache), "--flow", "dis", "--size", "32x40", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "prepared 6/6 videos" in result.output and "0 failed" in result.output
    assert "1 file(s) of an unsupported type skipped" in result.output
    assert "videos/train/jump/notes.txt: unsupported file type .txt" in result.output
    with h5py.File(cache / "temporal.h5", "r") as f:
        sources = {s.decode() if isinstance(s, bytes) else s for s in f["dynamic"]["source"][()]}
        assert f.attrs["failed"] == 0
    assert sources == {s.path for s in FolderDataset(mixed).videos()}
    again = prepare(mixed, cache, SETTINGS, workers=1)  # frame-folder stamps are stable: nothing to redo
    assert again.up_to_date and again.unsupported[0][0] == "videos/train/jump/notes.txt"


def test_data_check_counts_and_lists_skipped_files(mixed):
    from cli.app import app

    report = check_dataset(mixed, deep=True, progress=False)
    assert report.ok and report.checked == 6, report.problems
    assert [p.path for p in report.skipped] == ["videos/train/jump/notes.txt"]
    result = CliRunner().invoke(app, ["data", "check", str(mixed), "--deep"])
    assert result.exit_code == 0, result.output
    assert "skipped: videos/train/jump/notes.txt: unsupported file type .txt" in result.output
    assert "1 file(s) of an unsupported type skipped" in result.output
    empty_frame = mixed / "videos" / "test" / "wave" / "f" / "img_00001.jpg"
    empty_frame.write_bytes(b"")
    problems = check_dataset(mixed, progress=False).problems
    assert [p.path for p in problems] == [str(empty_frame)] and "empty file" in problems[0].reason


def test_ucf101_rawframes_import(synthetic_sources, tmp_path):  # noqa: F811
    """mmaction2's rawframes/<Class>/<clip>/img_*.jpg stand in for the clips the split lists name."""
    src = synthetic_sources["ucf101"]
    os.rename(src / "UCF-101", src / "rawframes")
    clip = src / "rawframes" / "Fencing" / "v_Fencing_g01_c01.avi"
    frames = read_frames(clip)
    clip.unlink()
    write_frame_folder(clip.with_suffix(""), list(frames))
    mapping = ClassMapping.load(synthetic_sources["mapping"])
    out = tmp_path / "root"
    summary = import_ucf101(src, out, mapping=mapping, progress=False)
    assert summary.counts["fencing"] == {"train": 2, "test": 2}
    linked = out / "videos" / "train" / "fencing" / "v_Fencing_g01_c01"
    assert linked.is_symlink() and linked.is_dir()
    assert "videos/train/fencing/v_Fencing_g01_c01" in {s.path for s in FolderDataset(out).videos()}
    assert probe_video(linked).num_frames == len(frames)
    shutil.rmtree(out)


def test_extract_names_a_stray_file_among_the_stills(tmp_path):
    from featcache.extraction.extract import ExtractSettings, extract
    from tests.featcache.extraction.test_extract import make_stills

    root = make_stills(tmp_path / "ds", per_class=1)
    (root / "stills" / "train" / "jump" / "readme.md").write_text("x")
    said = []
    settings = ExtractSettings(backbone="efficientnet-lite0", weights="random", crop=24, resize=28, workers=0, device="cpu")
    report = extract(root, tmp_path / "cache", settings, on_event=said.append)
    assert report.written == 9 and any("stills/train/jump/readme.md" in m and "unsupported file type .md" in m for m in said)
