import dataclasses
import os

import cv2
import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from featcache.errors import CacheError, MediaError
from featcache.cache.temporal_cache import read_temporal
from featcache.cache.parts import part_path
from featcache.representations.prepare import PrepareSettings, prepare
from featcache.cache.schema import SPLIT_CODE, has_checksums, read_root_attrs, read_rows

SETTINGS = PrepareSettings(size=(32, 40), flow_method="dis")


def write_moving_video(path, num_frames, speed, fourcc="MJPG", seed=0):
    """A blurred random texture sliding right by ``speed`` pixels a frame."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (48, 64 + speed * num_frames, 3), dtype=np.uint8), (5, 5), 1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (64, 48))
    for t in range(num_frames):
        x = speed * (num_frames - 1 - t)
        writer.write(np.ascontiguousarray(texture[:, x : x + 64]))
    writer.release()


@pytest.fixture
def dataset(tmp_path):
    """2 classes x {train, test}; one short video (30 frames); .avi and .mp4."""
    root = tmp_path / "ds"
    specs = [
        ("train", "jump", "a.avi", 70, 1), ("train", "jump", "b.mp4", 30, 2),
        ("train", "wave", "c.avi", 66, 3), ("test", "jump", "d.mp4", 64, 1), ("test", "wave", "e.avi", 62, 2),
    ]
    for i, (split, cls, name, frames, speed) in enumerate(specs):
        folder = root / "videos" / split / cls
        folder.mkdir(parents=True, exist_ok=True)
        write_moving_video(folder / name, frames, speed, "mp4v" if name.endswith(".mp4") else "MJPG", seed=i)
    return root


def load(path):
    with h5py.File(path, "r") as f:
        out = {"attrs": read_root_attrs(f)}
        for kind in ("dynamic", "flow"):
            if kind in f:
                out[kind] = {"data": f[kind]["data"][()], **read_rows(f[kind]), "attrs": read_root_attrs(f[kind])}
    return out


def assert_same(a, b):
    for kind in ("dynamic", "flow"):
        np.testing.assert_array_equal(a[kind]["data"], b[kind]["data"])
        for name in ("labels", "split", "source", "instance"):
            assert list(a[kind][name]) == list(b[kind][name])


def test_end_to_end_contract_schema(dataset, tmp_path):
    report = prepare(dataset, tmp_path / "cache", dataclasses.replace(SETTINGS, val_videos=0.0), workers=1)
    assert (report.videos, report.computed, report.failed) == (5, 5, [])
    out = load(tmp_path / "cache" / "temporal.h5")
    attrs = out["attrs"]
    assert attrs["complete"] is True and attrs["modality"] == "temporal" and attrs["version"] == "1"
    assert attrs["classes"] == ["jump", "wave"]
    pre = attrs["preprocessing"]
    assert pre["size"] == [32, 40] and pre["dynamic"] == {"window": 10, "stride": 6, "count": 6}
    assert pre["flow"] == {"method": "dis", "frames": 60, "stack": 10, "bound": 20.0}
    dyn, flow = out["dynamic"], out["flow"]
    # 4 long videos x 6 + the 30-frame one: 4 dynamic images, 2 flow stacks (29 flows).
    assert dyn["data"].shape == (28, 32, 40, 3) and dyn["data"].dtype == np.uint8
    assert flow["data"].shape == (26, 32, 40, 20) and flow["data"].dtype == np.uint8
    assert dyn["attrs"]["modality"] == "dynamic" and flow["attrs"]["modality"] == "flow"
    assert flow["attrs"]["classes"] == ["jump", "wave"] and flow["attrs"]["preprocessing"]["method"] == "dis"
    with h5py.File(tmp_path / "cache" / "temporal.h5", "r") as f:  # every row's chunk checksummed
        assert all(f[kind]["data"].fletcher32 and has_checksums(f[kind]["labels"]) for kind in ("dynamic", "flow"))
    assert dyn["labels"].dtype == np.int64 and dyn["split"].dtype == np.int8 and dyn["instance"].dtype == np.int32
    assert list(dyn["source"][:10]) == ["videos/train/jump/a.avi"] * 6 + ["videos/train/jump/b.mp4"] * 4
    assert list(dyn["instance"][:10]) == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3]
    assert list(flow["split"]) == [SPLIT_CODE["train"]] * 14 + [SPLIT_CODE["test"]] * 12
    assert list(flow["labels"][:14]) == [0] * 8 + [1] * 6
    assert [s for s, _ in report.notes] == ["videos/train/jump/b.mp4", "videos/train/jump/b.mp4"]
    # Texture moving right: flow x channels above 128, y channels near 128.
    inner = flow["data"][:, 8:-8, 8:-8].astype(float)
    assert inner[..., 0::2].mean() > 133 and abs(inner[..., 1::2].mean() - 128) < 3
    with read_temporal(tmp_path / "cache" / "temporal.h5", "dynamic") as temporal:
        assert len(temporal) == 28 and temporal.data.shape == (28, 32, 40, 3)
        assert temporal.attrs["modality"] == "dynamic" and temporal.classes == ["jump", "wave"]
        assert len(temporal.indices("train")) == 16 and len(temporal.indices("test")) == 12
    assert not (tmp_path / "cache" / "temporal.h5.parts").exists()


def test_val_videos_carved_recorded_and_resplit_without_recomputing(dataset, tmp_path):
    cache = tmp_path / "cache"
    report = prepare(dataset, cache, SETTINGS, workers=1)
    assert report.video_split == {"val": "carved", "fraction": 0.2, "seed": 0, "count": 1, "from": "train videos"}
    with read_temporal(cache / "temporal.h5", "flow") as temporal:
        val_sources = set(temporal.source[temporal.indices("val")])
        assert temporal.video_split == report.video_split
    assert len(val_sources) == 1 and next(iter(val_sources)).startswith("videos/train/jump/")  # jump has 2 train videos
    again = prepare(dataset, cache, dataclasses.replace(SETTINGS, val_videos=0.0), workers=1)
    assert again.computed == 0 and again.reused == 5 and not again.up_to_date  # only the split codes change
    with read_temporal(cache / "temporal.h5", "flow") as temporal:
        assert len(temporal.indices("val")) == 0


def test_rerun_is_noop_and_new_video_is_added(dataset, tmp_path):
    cache = tmp_path / "cache"
    prepare(dataset, cache, SETTINGS, workers=1)
    first = load(cache / "temporal.h5")
    again = prepare(dataset, cache, SETTINGS, workers=1)
    assert again.up_to_date and again.computed == 0
    write_moving_video(dataset / "videos" / "test" / "wave" / "f.avi", 64, 1, seed=9)
    grown = prepare(dataset, cache, SETTINGS, workers=1)
    assert grown.computed == 1 and grown.reused == 5 and not grown.up_to_date
    after = load(cache / "temporal.h5")
    assert len(after["dynamic"]["data"]) == len(first["dynamic"]["data"]) + 6
    np.testing.assert_array_equal(after["flow"]["data"][:26], first["flow"]["data"])


def test_resume_after_crash_equals_uninterrupted_run(dataset, tmp_path):
    reference = tmp_path / "reference"
    prepare(dataset, reference, SETTINGS, workers=1)
    crashed = tmp_path / "crashed"
    prepare(dataset, crashed, SETTINGS, workers=1, keep_parts=True)
    # Simulate kill -9 before assembly: no final file, one video unfinished, stray temp files.
    parts = crashed / "temporal.h5.parts"
    (crashed / "temporal.h5").unlink()
    (part_path(parts, "videos/test/jump/d.mp4")).unlink()
    (parts / (part_path(parts, "videos/test/jump/d.mp4").name + ".123.tmp")).write_bytes(b"half a part")
    (crashed / "temporal.h5.999.tmp").write_bytes(b"half a file")
    torn = part_path(parts, "videos/train/wave/c.avi")  # a part torn by a crash mid-write
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    report = prepare(dataset, crashed, SETTINGS, workers=1)
    assert report.computed == 2 and report.reused == 3
    assert_same(load(crashed / "temporal.h5"), load(reference / "temporal.h5"))


def test_parallel_workers_give_identical_file(dataset, tmp_path):
    prepare(dataset, tmp_path / "serial", SETTINGS, workers=1)
    prepare(dataset, tmp_path / "parallel", SETTINGS, workers=2)
    assert_same(load(tmp_path / "serial" / "temporal.h5"), load(tmp_path / "parallel" / "temporal.h5"))


def test_other_settings_are_not_mixed_with_old_parts(dataset, tmp_path):
    cache = tmp_path / "cache"
    prepare(dataset, cache, SETTINGS, workers=1, keep_parts=True)
    (cache / "temporal.h5").unlink()
    farneback = PrepareSettings(size=(32, 40), flow_method="farneback")
    with pytest.raises(CacheError, match="other settings.*flow=dis.*--restart"):
        prepare(dataset, cache, farneback, workers=1)
    report = prepare(dataset, cache, farneback, workers=1, restart=True)
    assert report.computed == 5
    assert load(cache / "temporal.h5")["attrs"]["preprocessing"]["flow"]["method"] == "farneback"
    # A complete file with other settings is never silently replaced: refused, rebuilt with --restart.
    only_dynamic = PrepareSettings(size=(32, 40), kinds=("dynamic",))
    with pytest.raises(CacheError, match="other settings.*rerun with no --only --flow farneback to keep it, or pass --restart"):
        prepare(dataset, cache, only_dynamic, workers=1)
    report = prepare(dataset, cache, only_dynamic, workers=1, restart=True)
    assert report.computed == 5
    out = load(cache / "temporal.h5")
    assert "flow" not in out and out["attrs"]["preprocessing"]["kinds"] == ["dynamic"]
    with pytest.raises(CacheError, match="no /flow group"):
        read_temporal(cache / "temporal.h5", "flow")


def test_broken_videos_are_named_and_the_rest_finish(dataset, tmp_path):
    from cli.app import app

    bad = dataset / "videos" / "train" / "wave"
    (bad / "empty.avi").touch()
    good = dataset / "videos" / "test" / "jump" / "d.mp4"
    (bad / "truncated.mp4").write_bytes(good.read_bytes()[:300])
    result = CliRunner().invoke(
        app, ["prepare", str(dataset), "--cache", str(tmp_path / "cache"), "--flow", "dis", "--size", "32x40", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "prepared 5/7 videos" in result.output and "2 failed" in result.output
    assert "empty.avi: empty file" in result.output and "truncated.mp4: cannot open" in result.output
    out = load(tmp_path / "cache" / "temporal.h5")
    assert out["attrs"]["complete"] is True and out["attrs"]["failed"] == 2
    assert not any("empty" in s or "truncated" in s for s in out["flow"]["source"])


def test_nothing_preparable_fails(tmp_path):
    folder = tmp_path / "ds" / "videos" / "train" / "jump"
    folder.mkdir(parents=True)
    (folder / "x.avi").touch()
    with pytest.raises(MediaError, match="no video could be prepared.*x.avi: empty file"):
        prepare(tmp_path / "ds", tmp_path / "cache", SETTINGS, workers=1)
    assert not (tmp_path / "cache" / "temporal.h5").exists()


def test_real_clips_prepare(real_data, tmp_path):
    clips = [
        "videos/wave/hmdb51_TrumanShow_wave_f_nm_np1_fr_med_26.avi",
        "videos/riding_bike/ucf101_v_Biking_g01_c01.mp4",  # raw MPEG-4 stream: no frame count in the container
        "videos/walk/opencv_vtest_part1.mp4",  # H.264
    ]
    for i, clip in enumerate(clips):
        target = tmp_path / "ds" / "videos" / ("train" if i < 2 else "test") / clip.split("/")[1]
        target.mkdir(parents=True, exist_ok=True)
        os.symlink(real_data / clip, target / clip.split("/")[-1])
    settings = PrepareSettings(size=(64, 80), flow_method="dis")
    report = prepare(tmp_path / "ds", tmp_path / "cache", settings, workers=1)
    assert report.failed == [] and report.prepared == 3
    assert report.rows == {"dynamic": 18, "flow": 4 + 6 + 6}  # the wave clip has 48 frames
