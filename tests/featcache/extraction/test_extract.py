"""`featcache extract`: schema, resume after a crash, cache identity, bad input, logits.

Small random images, efficientnet-lite0 with random weights (fast on CPU), small crops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from featcache.backbones import create_backbone, save_checkpoint
from featcache.errors import CacheError
import featcache.extraction.extract as extract_module
from featcache.extraction.extract import ExtractSettings, extract
from featcache.cache.feature_cache import FeatureCache
from featcache.backbones.preprocessing import build_transform
from featcache.cache.schema import SPLIT_CODE, write_checksums, mark_complete, read_root_attrs, write_root_attrs, write_rows

REPO = Path(__file__).resolve().parents[3]
CLASSES = ["jump", "run", "wave"]


def make_stills(root: Path, per_class: int = 2, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split in ("train", "val", "test"):
        for c in CLASSES:
            folder = root / "stills" / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                size = (30 + 2 * i, 40)
                Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(folder / f"{i}.png")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def make_temporal(cache: Path, kinds=("flow", "dynamic"), per_class: int = 3, seed: int = 0) -> Path:
    """temporal.h5 in the CONTRACT layout, built by hand with the schema helpers."""
    rng = np.random.default_rng(seed)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "temporal.h5"
    with h5py.File(path, "w") as f:
        write_root_attrs(f, modality="temporal", classes=CLASSES, preprocessing={"size": [24, 32]})
        for kind in kinds:
            channels = 20 if kind == "flow" else 3
            n = per_class * len(CLASSES)
            group = f.create_group(kind)
            write_root_attrs(group, modality=kind, classes=CLASSES, preprocessing={"kind": kind})
            group.create_dataset("data", data=rng.integers(0, 256, (n, 24, 32, channels), dtype=np.uint8))
            labels = np.repeat(np.arange(len(CLASSES)), per_class)
            write_rows(
                group,
                labels=labels,
                split=np.where(np.arange(n) % 3 == 0, SPLIT_CODE["test"], SPLIT_CODE["train"]),
                source=[f"videos/train/{CLASSES[l]}/v{i // 2}.avi" for i, l in enumerate(labels)],
                instance=np.arange(n) % 2,
            )
        mark_complete(f)
    return path


def settings(**kw) -> ExtractSettings:
    base = dict(backbone="efficientnet-lite0", weights="random", crop=24, resize=28, batch_size=2, workers=0, device="cpu", shard_size=4)
    base.update(kw)
    return ExtractSettings(**base)


def quiet(_message: str) -> None:
    pass


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)  # random weights: same for every run of a test


ONE_THREAD_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run(root, cache, **kw):
    torch.manual_seed(0)
    restart = kw.pop("restart", False)
    return extract(root, cache, settings(**kw), restart=restart, on_event=quiet)


class Crash(Exception):
    """Stands for a kill between shards (test_resume_after_sigkill_gives_identical_file kills a real process)."""


def crash_after_shards(monkeypatch, count: int) -> None:
    """Make the run stop right after writing its ``count``-th shard, as if killed there."""
    written = []

    def write_then_maybe_crash(*args, **kwargs):
        original(*args, **kwargs)
        written.append(args[0])
        if len(written) >= count:
            raise Crash(f"crashed after {count} shards")

    original = extract_module.flush_shard
    monkeypatch.setattr(extract_module, "flush_shard", write_then_maybe_crash)


def test_still_cache_schema_and_attributes(tmp_path):
    root = make_stills(tmp_path / "ds")
    report = run(root, tmp_path / "cache", views=3, dtype="float16")
    assert report.written == report.rows == 18 and not report.skipped
    with h5py.File(report.path, "r") as f:
        attrs = read_root_attrs(f)
        assert f["features"].shape == (18, 3, 1280) and f["features"].dtype == np.float16
        assert f["labels"].dtype == np.int64 and f["split"].dtype == np.int8 and f["instance"].dtype == np.int32
        assert "logits" not in f  # the ImageNet head is not a head for these classes
    assert attrs["complete"] is True and attrs["modality"] == "still" and attrs["backbone"] == "efficientnet-lite0"
    assert attrs["weights"] == "random" and attrs["classes"] == CLASSES and attrs["version"]
    assert attrs["preprocessing"]["crop"] == 24 and attrs["preprocessing"]["views"] == 3
    assert report.path.name == "still-efficientnet-lite0.h5"
    assert not Path(str(report.path) + ".parts").exists()
    cache = FeatureCache.open(report.path)
    train = cache.split("train")
    assert len(train) == 6 and train.features.shape == (6, 1280) and cache.num_views == 3
    assert train.source[0] == "stills/train/jump/0.png"
    # view 0 is the centre crop: recompute one row by hand
    torch.manual_seed(0)
    backbone = create_backbone("efficientnet-lite0", weights="random").eval()
    from featcache.media.images import read_image

    x = build_transform("still", train=False, crop=24, resize=28)(read_image(root / train.source[0]))
    with torch.inference_mode():
        expected = backbone.forward_features(x[None])[0]
    torch.testing.assert_close(train.features[0], expected.half().float(), rtol=2e-3, atol=2e-3)
    # augmented views differ from the centre crop
    views = cache.split("train", all_views=True)
    assert len(views) == 18 and not torch.equal(views.features[0], views.features[1])


def test_resume_after_stop_gives_identical_file(tmp_path, monkeypatch):
    root = make_stills(tmp_path / "ds")
    full = run(root, tmp_path / "full", views=2)
    with monkeypatch.context() as patch, pytest.raises(Crash):
        crash_after_shards(patch, 2)
        run(root, tmp_path / "resumed", views=2)
    parts = tmp_path / "resumed" / "still-efficientnet-lite0.h5.parts"
    assert sorted(p.name for p in parts.glob("shard-*")) == ["shard-000000.npz", "shard-000001.npz"]
    assert not (tmp_path / "resumed" / "still-efficientnet-lite0.h5").exists()
    stale = tmp_path / "resumed" / "still-efficientnet-lite0.h5.4194305.tmp"  # a dead run's half-assembled file
    stale.write_bytes(b"half")
    resumed = run(root, tmp_path / "resumed", views=2)
    assert not stale.exists()
    assert resumed.resumed_shards == 2 and resumed.computed_rows == 18 - 8
    assert_same_cache(full.path, resumed.path)


def assert_same_cache(a: Path, b: Path) -> None:
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names: list[str] = []
        fa.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        assert set(fa) == set(fb) and "checksums/features" in names  # the block checksums too
        for name in names:
            assert np.array_equal(fa[name][()], fb[name][()]), name
        assert read_root_attrs(fa) == read_root_attrs(fb)


SLOW_RUN = """
import sys, time, torch
import featcache.extraction.extract as ex
from featcache.extraction.extract import ExtractSettings, extract
original = ex.flush_shard
def slow_write(*args, **kwargs):
    original(*args, **kwargs)
    time.sleep(0.3)  # leave time to be killed between (and during) shards
ex.flush_shard = slow_write
torch.manual_seed(0)
extract(sys.argv[1], sys.argv[2], ExtractSettings(backbone="efficientnet-lite0", weights="random", crop=24, resize=28,
        batch_size=2, workers=0, device="cpu", shard_size=4, views=2), on_event=lambda m: None)
"""


def test_resume_after_sigkill_gives_identical_file(tmp_path):
    root = make_stills(tmp_path / "ds")
    cache = tmp_path / "killed"
    parts = cache / "still-efficientnet-lite0.h5.parts"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(root), str(cache)], cwd=REPO, stderr=subprocess.PIPE, env=ONE_THREAD_ENV)
    deadline = time.time() + 120
    while not (parts / "shard-000001.npz").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "the subprocess never wrote a shard"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cache / "still-efficientnet-lite0.h5").exists()
    resumed = run(root, cache, views=2)
    assert resumed.resumed_shards >= 2
    full = run(root, tmp_path / "full", views=2)
    assert_same_cache(full.path, resumed.path)


def test_same_settings_is_a_noop_and_other_settings_are_refused(tmp_path):
    root = make_stills(tmp_path / "ds")
    cache = tmp_path / "cache"
    first = run(root, cache)
    mtime = first.path.stat().st_mtime_ns
    again = run(root, cache)
    assert again.up_to_date and again.written == first.written and first.path.stat().st_mtime_ns == mtime
    with pytest.raises(CacheError, match="other preprocessing.*--restart"):
        run(root, cache, crop=20)
    with pytest.raises(CacheError, match="other weights"):
        run(root, cache, weights=None)  # the shipped ImageNet weights, same file name
    with pytest.raises(CacheError, match="other dtype"):
        run(root, cache, dtype="float16")
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(root / "stills" / "val" / "run" / "new.png")
    with pytest.raises(CacheError, match="other file list"):
        run(root, cache)
    replaced = run(root, cache, restart=True)
    assert replaced.written == 19 and FeatureCache.open(replaced.path).split("val").features.shape[0] == 7
    # another backbone goes into its own file, next to the first
    other = run(root, cache, backbone="resnet50", crop=16, resize=16)
    assert other.path.name == "still-resnet50.h5" and replaced.path.exists()


def test_unfinished_parts_of_other_settings_are_refused(tmp_path, monkeypatch):
    root = make_stills(tmp_path / "ds")
    with monkeypatch.context() as patch, pytest.raises(Crash):
        crash_after_shards(patch, 1)
        run(root, tmp_path / "cache")
    with pytest.raises(CacheError, match="unfinished extraction with other settings.*--restart"):
        run(root, tmp_path / "cache", views=2)
    report = run(root, tmp_path / "cache", views=2, restart=True)
    assert report.resumed_shards == 0 and report.written == 18


def test_unreadable_image_is_reported_and_skipped(tmp_path):
    root = make_stills(tmp_path / "ds")
    bad = root / "stills" / "test" / "wave" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    messages = []
    torch.manual_seed(0)
    report = extract(root, tmp_path / "cache", settings(), on_event=messages.append)
    assert report.rows == 19 and report.written == 18
    assert [s for s, _ in report.skipped] == ["stills/test/wave/broken.png"]
    assert any(str(bad) in m for m in messages)
    with h5py.File(report.path, "r") as f:
        sources = [s.decode() for s in f["source"][()]]
        assert "stills/test/wave/broken.png" not in sources and len(sources) == 18
        assert "broken.png" in f.attrs["skipped"]


@pytest.mark.parametrize("modality, channels", [("flow", 20), ("dynamic", 3)])
def test_temporal_rows_from_temporal_h5(tmp_path, modality, channels):
    root = make_stills(tmp_path / "ds", per_class=1)
    cache = tmp_path / "cache"
    make_temporal(cache)
    report = run(root, cache, modality=modality, views=2)
    assert report.path.name == f"{modality}-efficientnet-lite0.h5" and report.written == 9
    cache_file = FeatureCache.open(report.path)
    assert cache_file.modality == modality and cache_file.split_names() == ["train", "test"]
    with h5py.File(report.path, "r") as f:
        assert list(f["instance"][()]) == [i % 2 for i in range(9)]
        pre = read_root_attrs(f)["preprocessing"]
    assert (pre.get("center") == 128.0) == (modality == "flow")


def test_missing_temporal_h5_says_run_prepare(tmp_path):
    root = make_stills(tmp_path / "ds", per_class=1)
    with pytest.raises(CacheError, match="featcache prepare"):
        run(root, tmp_path / "cache", modality="flow")


def test_checkpoint_with_head_for_the_classes_gives_logits(tmp_path):
    root = make_stills(tmp_path / "ds", per_class=1)
    tuned = create_backbone("efficientnet-lite0", weights="random", num_classes=3).eval()
    path = save_checkpoint(tmp_path / "ft.pt", tuned, classes=CLASSES, modality="still")
    report = run(root, tmp_path / "cache", weights=str(path))
    assert report.logits
    cache = FeatureCache.open(report.path)
    test = cache.split("test")
    assert cache.has_logits and test.logits.shape == (3, 3)
    torch.testing.assert_close(test.logits, tuned.forward_head(test.features).detach(), rtol=1e-4, atol=1e-4)
    # a head for other classes yields no logits (and says so)
    other = save_checkpoint(tmp_path / "other.pt", tuned, classes=["a", "b", "c"], modality="still")
    report = run(root, tmp_path / "cache2", weights=str(other))
    assert not report.logits and not FeatureCache.open(report.path).has_logits


def test_cli_extract_and_one_line_error(tmp_path):
    root = make_stills(tmp_path / "ds", per_class=1)
    cmd = [sys.executable, "-m", "cli", "extract", str(root), "--modality", "still", "--backbone", "efficientnet-lite0",
           "--weights", "random", "--cache", str(tmp_path / "cache"), "--resize", "28", "--crop", "24", "--workers", "1"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=ONE_THREAD_ENV)
    assert done.returncode == 0, done.stderr
    assert "extracted 9/9 rows" in done.stdout and "efficientnet-lite0" in done.stderr
    again = subprocess.run([a if a != "24" else "20" for a in cmd], cwd=REPO, capture_output=True, text=True, env=ONE_THREAD_ENV)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.strip().splitlines()[-1].startswith("featcache: error: ") and "--restart" in again.stderr


def test_val_videos_and_their_record_are_carried_into_the_feature_cache(tmp_path):
    import json

    root = make_stills(tmp_path / "ds", per_class=1)
    cache = tmp_path / "cache"
    path = make_temporal(cache, kinds=("flow",))
    record = {"val": "carved", "fraction": 0.2, "seed": 0, "count": 1, "from": "train videos"}
    with h5py.File(path, "r+") as f:
        f.attrs["video_split"] = json.dumps(record)
        split = f["flow"]["split"][()]
        split[np.flatnonzero(split == SPLIT_CODE["train"])[:2]] = SPLIT_CODE["val"]  # one video's two rows
        f["flow"]["split"][...] = split
        write_checksums(f["flow"]["split"])  # changed in place: its block checksums follow
    report = run(root, cache, modality="flow")
    cache_file = FeatureCache.open(report.path)
    assert cache_file.split_names() == ["train", "val", "test"] and len(cache_file.split("val")) == 2
    assert cache_file.attrs["video_split"] == record
