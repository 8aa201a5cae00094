"""Still -> video links (ROOT/still-videos.csv), unlabelled stills, and the synth set that writes both."""

from __future__ import annotations

from pathlib import Path

import pytest

from featcache.data.dataset import FolderDataset
from featcache.data.still_videos import STILL_VIDEOS_FILE, read_still_videos, write_still_videos
from featcache.data.synth.generate import SynthConfig, generate, read_manifest
from featcache.errors import DatasetError

TINY = dict(classes=2, stills={"train": 1, "val": 1, "test": 1}, videos={"train": 2, "test": 1},
            frames=40, still_size=(64, 64), video_size=(48, 64))


def test_links_round_trip_and_bad_files_name_the_line(tmp_path):
    links = {"stills/unlabelled/a.jpg": "videos/train/run/v1.avi", "stills/train/run/b.jpg": "videos/train/run/v0.avi"}
    write_still_videos(tmp_path, links)
    assert read_still_videos(tmp_path) == links
    assert read_still_videos(tmp_path / "elsewhere") == {}
    path = tmp_path / STILL_VIDEOS_FILE
    path.write_text("image,clip\na,b\n")
    with pytest.raises(DatasetError, match="header"):
        read_still_videos(tmp_path)
    path.write_text("still,video\na,b\nc\n")
    with pytest.raises(DatasetError, match="line 3"):
        read_still_videos(tmp_path)
    path.write_text("still,video\na,b\na,c\n")
    with pytest.raises(DatasetError, match="two videos"):
        read_still_videos(tmp_path)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth-unlabelled") / "ds"
    generate(root, SynthConfig(seed=1, still_motion_cue=0.5, unlabelled_stills=2, **TINY), show_progress=False)
    return root


def test_synth_unlabelled_stills_are_linked_to_their_train_videos(synth_root):
    dataset = FolderDataset(synth_root)
    unlabelled = dataset.unlabelled_stills()
    assert len(unlabelled) == 2 * 2 * 2  # 2 per train video, 2 train videos a class, 2 classes
    assert "unlabelled" not in dataset.splits("stills")
    links = read_still_videos(synth_root)
    assert sorted(links) == unlabelled
    train_videos = {v.path for v in dataset.videos("train")}
    assert set(links.values()) == train_videos
    assert not any(name in path for path in unlabelled for name in dataset.classes)  # names hide the class
    manifest = read_manifest(synth_root)
    assert manifest["counts"]["stills"]["unlabelled"] == 8 and manifest["config"]["unlabelled_stills"] == 2


def test_an_unlabelled_still_shows_its_videos_figure():
    from featcache.data.synth.generate import Job, video_action
    from featcache.data.synth.samples import Figure

    config = SynthConfig(seed=1, unlabelled_stills=1, **TINY)
    job = Job("unlabelled", "train", config.actions[0].name, 1, 0)
    action, video_rng = video_action(config, job.video)
    drawn_by_video = Figure.sample(action, video_rng)
    action_again, rng_again = video_action(config, job.video)
    assert Figure.sample(action_again, rng_again) == drawn_by_video
    other = Job("unlabelled", "train", config.actions[0].name, 0, 0)
    assert Figure.sample(*video_action(config, other.video)) != drawn_by_video
