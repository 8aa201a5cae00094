"""No pickle from disk: a crafted file whose unpickling would run code is refused by every
loader, with one clear line, and nothing executes (the marker file never appears)."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from featcache.backbones import create_backbone
from featcache.errors import CacheError, FeatcacheError
from featcache.extraction.shards import read_shard
from featcache.representations.prepare_video import read_video_part as read_prepare_part
from featcache.extraction.keyframes import read_video_part as read_keyframes_part
from heads.training.checkpoint import load_head_checkpoint
from heads.finetune.engine import capture_rng, load_training_state, restore_rng, save_training_state
from heads.finetune.tsn import cached_teacher_targets


class RunsCode:
    """Unpickling this calls os.system, which creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code-ran"


def crafted_torch_file(path: Path, marker: Path, **plain) -> Path:
    torch.save({**plain, "payload": RunsCode(marker)}, path)
    return path


def crafted_raw_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"payload": RunsCode(marker)}, protocol=2))
    return path


def assert_refused(call, marker: Path, path: Path) -> None:
    with pytest.raises(FeatcacheError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "refused" in message, message
    assert not marker.exists()


def test_the_crafted_file_really_runs_code_when_unpickled(tmp_path, marker):
    path = crafted_torch_file(tmp_path / "x.pt", marker)
    torch.load(path, weights_only=False)  # what the loaders used to do
    assert marker.exists()


@pytest.mark.parametrize("make", [crafted_torch_file, crafted_raw_pickle])
def test_backbone_weights_refused(tmp_path, marker, make):
    path = make(tmp_path / "weights.pth", marker)
    assert_refused(lambda: create_backbone("efficientnet-lite0", weights=path), marker, path)


def test_head_checkpoint_refused(tmp_path, marker):
    path = crafted_torch_file(tmp_path / "model.pt", marker, format="featcache-head")
    assert_refused(lambda: load_head_checkpoint(path), marker, path)


def test_training_checkpoint_refused(tmp_path, marker):
    path = crafted_torch_file(tmp_path / "training_state.pt", marker, format="featcache-training-state")
    assert_refused(lambda: load_training_state(path), marker, path)


def test_teacher_targets_store_refused(tmp_path, marker):
    store = crafted_torch_file(tmp_path / "teacher_targets.pt", marker)
    instances = SimpleNamespace(keys=lambda: [("videos/train/a/x.avi", 0)])
    teacher = SimpleNamespace(weights_id="abc")
    call = lambda: cached_teacher_targets(  # noqa: E731
        teacher, instances, cache_file=tmp_path / "missing.h5", store=store, crop=24, resize=28, classes=["a"],
        device="cpu", env=None, batch_size=2, workers=0, amp=False, channels_last=False)
    assert_refused(call, marker, store)


def test_npz_parts_and_shards_with_pickled_objects_are_not_unpickled(tmp_path, marker):
    path = tmp_path / "part.npz"
    with open(path, "wb") as f:
        np.savez(f, source=np.array("videos/train/a/x.avi"), stamp=np.array("1:2"), frames=np.array(5),
                 dynamic=np.array([RunsCode(marker)], dtype=object), indices=np.array([RunsCode(marker)], dtype=object),
                 rows=np.array([RunsCode(marker)], dtype=object))
    assert read_prepare_part(path, "videos/train/a/x.avi", "1:2", ("dynamic",)) is None  # recomputed instead
    assert read_keyframes_part(path, "videos/train/a/x.avi") is None
    with pytest.raises(CacheError, match="damaged shard"):
        read_shard(path)
    assert not marker.exists()


def test_training_state_with_rng_round_trips_under_weights_only(tmp_path):
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
    state = {"format": "featcache-training-state", "run_key": {"lr": 0.1, "classes": ["a", "b"]}, "epoch": 1,
             "best_score": -float("inf"), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "rng": [capture_rng()], "history": [{"epoch": 1, "loss": 0.5}]}
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)), float(np.random.randn()))
    path = tmp_path / "training_state.pt"
    save_training_state(path, state)
    loaded = load_training_state(path)  # weights_only=True inside
    restore_rng(loaded["rng"][0])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1)), float(np.random.randn())) == expected
    assert loaded["run_key"] == state["run_key"] and loaded["best_score"] == -float("inf")
    torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).load_state_dict(loaded["optimizer"])
