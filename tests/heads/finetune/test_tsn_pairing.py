"""TSN's instance pairing (``--pairing instance``): each still with its own video, the unlabelled
stills distilled from the teacher on their video; ``--targets labels`` (no teacher)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from featcache.backbones.preprocessing import build_transform
from featcache.data.dataset import FolderDataset
from featcache.data.still_videos import write_still_videos
from featcache.errors import DatasetError, FeatcacheError
from heads.finetune import tsn
from heads.finetune.defaults import TSNSettings
from heads.finetune.datasets import InstancePairs, StillImages, UnlabelledStills, own_video_rows
from tests.heads.finetune.test_finetune import CLASSES, CROP, RESIZE, TINY, make_dataset, run_finetune
from tests.heads.finetune.test_tsn import run_tsn, teacher_and_instances


@pytest.fixture(scope="module")
def linked_root(tmp_path_factory) -> Path:
    """The tiny TSN dataset, its first train still per class linked to video v0 of its class, and
    two unlabelled stills per class (copies of val stills) linked to v1 and v2."""
    root = make_dataset(tmp_path_factory.mktemp("tsn-instance"))
    models = root / "cache" / "models"
    for modality in ("still", "dynamic"):
        run_finetune(root, modality, root, epochs=2, out=models / f"{modality}-{TINY}.pt", run_dir=root / f"ft-{modality}")
    links = {f"stills/train/{name}/0.png": f"videos/train/{name}/v0.avi" for name in CLASSES}
    (root / "stills" / "unlabelled").mkdir()
    for name in CLASSES:
        for i in (1, 2):
            target = root / "stills" / "unlabelled" / f"{name[0]}{i}.png"
            shutil.copy(root / "stills" / "val" / name / f"{i}.png", target)
            links[f"stills/unlabelled/{target.name}"] = f"videos/train/{name}/v{i}.avi"
    write_still_videos(root, links)
    return root


def instance_pairs(root: Path, seed: int = 0) -> tuple[InstancePairs, list[str], object]:
    from featcache.data.still_videos import read_still_videos

    _, instances = teacher_and_instances(root)
    dataset = FolderDataset(root)
    transform = build_transform("still", train=False, crop=CROP, resize=RESIZE)
    stills, unlabelled = StillImages(dataset, "train", transform), UnlabelledStills(dataset, transform)
    links = read_still_videos(root)
    rows = own_video_rows(stills.sources + unlabelled.sources, links, instances.sources, where="t",
                          required=False)
    return InstancePairs(stills, instances.labels, instances.labels, rows, unlabelled, seed=seed), links, instances


def test_loader_keeps_unlabelled_stills_apart(linked_root):
    dataset = FolderDataset(linked_root)
    assert "unlabelled" not in dataset.splits("stills")
    assert len(dataset.unlabelled_stills()) == 2 * len(CLASSES)
    assert all(s.label >= 0 for s in dataset.stills())


def test_each_linked_still_draws_from_its_own_video_and_the_rest_co_class(linked_root):
    pairs, links, instances = instance_pairs(linked_root)
    sources = pairs.stills.sources + pairs.unlabelled.sources
    assert len(pairs) == len(pairs.stills) + 2 * len(CLASSES)
    for epoch in range(3):
        pairs.set_epoch(epoch)
        for i, still in enumerate(sources):
            partner = int(pairs.partners[i])
            if still in links:
                assert instances.sources[partner] == links[still]
            else:  # an unlinked labelled still: a co-class draw, as in the paper
                assert instances.labels[partner] == pairs.stills.labels[i]
    again, _, _ = instance_pairs(linked_root)
    again.set_epoch(2)
    assert np.array_equal(again.partners, pairs.partners)


def test_an_unlabelled_still_without_a_video_is_a_one_line_error(linked_root, tmp_path):
    dataset = FolderDataset(linked_root)
    _, instances = teacher_and_instances(linked_root)
    with pytest.raises(DatasetError, match="has no video in still-videos.csv"):
        own_video_rows(["stills/unlabelled/x.png"], {}, instances.sources, where="t", required=True)
    # A still of a test (or val) video has no training rows: it stays out of training.
    assert own_video_rows(["stills/unlabelled/x.png"], {"stills/unlabelled/x.png": "videos/test/jump/v0.avi"},
                          instances.sources, where="t", required=True) == [None]
    assert dataset.unlabelled_stills()


def test_tsn_with_instance_pairing_trains_on_the_unlabelled_stills(linked_root, tmp_path):
    metrics = run_tsn(linked_root, tmp_path / "instance", pairing="instance")
    config = json.loads((tmp_path / "instance" / "metrics.json").read_text())["config"]
    assert config["pairing"] == "instance" and config["unlabelled_stills"] == 2 * len(CLASSES)
    assert metrics["fused"]["val"] is not None
    co_class = run_tsn(linked_root, tmp_path / "co-class")
    assert co_class["config"]["pairing"] == "co-class" and co_class["config"]["unlabelled_stills"] == 0


def test_labels_targets_need_no_teacher_output(linked_root, tmp_path):
    metrics = run_tsn(linked_root, tmp_path / "labels", targets="labels", pairing="instance")
    assert metrics["config"]["targets"] == "labels"
    assert not (tmp_path / "labels" / tsn.TARGETS_FILE).exists()  # the teacher never ran


def test_instance_pairing_without_links_says_what_to_run(tmp_path):
    root = make_dataset(tmp_path / "plain")
    models = root / "cache" / "models"
    for modality in ("still", "dynamic"):
        run_finetune(root, modality, root, epochs=1, out=models / f"{modality}-{TINY}.pt", run_dir=root / f"ft-{modality}")
    with pytest.raises(FeatcacheError, match="still-videos.csv"):
        run_tsn(root, tmp_path / "run", pairing="instance")
    with pytest.raises(FeatcacheError, match="pairing"):
        TSNSettings(pairing="random")
