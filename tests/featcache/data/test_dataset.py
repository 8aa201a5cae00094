"""The folder-layout loader: class list, splits, file lists, and exact validation errors."""

from pathlib import Path

import pytest

from featcache.data.dataset import FolderDataset
from featcache.errors import DatasetError


def touch(root: Path, rel: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel in [
        "stills/train/wave/a.jpg", "stills/train/wave/b.jpg", "stills/train/jump/c.png",
        "stills/val/wave/d.jpg", "stills/test/jump/e.jpg",
        "videos/train/wave/v1.avi", "videos/test/jump/v2.mp4",
    ]:
        touch(tmp_path, rel)
    return tmp_path


def test_classes_sorted_without_classes_file(tree):
    ds = FolderDataset(tree)
    assert ds.classes == ["jump", "wave"]
    assert [s.path for s in ds.stills("train")] == [
        "stills/train/jump/c.png", "stills/train/wave/a.jpg", "stills/train/wave/b.jpg"]
    assert [s.label for s in ds.stills("train")] == [0, 1, 1]
    assert ds.summary() == {"stills": {"train": 3, "val": 1, "test": 1}, "videos": {"train": 1, "test": 1}}
    assert [s.split for s in ds.videos()] == ["train", "test"]


def test_classes_file_fixes_order(tree):
    (tree / "classes.txt").write_text("wave\njump\nrun\n")
    ds = FolderDataset(tree)
    assert ds.classes == ["wave", "jump", "run"]
    assert ds.stills("test")[0].label == 1


def test_class_missing_from_classes_file(tree):
    (tree / "classes.txt").write_text("wave\n")
    with pytest.raises(DatasetError, match="not listed in classes.txt: jump"):
        FolderDataset(tree)


def test_empty_class_folder_named(tree):
    (tree / "stills/val/jump").mkdir()
    with pytest.raises(DatasetError, match=r"stills/val/jump: empty class folder"):
        FolderDataset(tree)


def test_unknown_split_named(tree):
    touch(tree, "videos/dev/wave/x.avi")
    with pytest.raises(DatasetError, match=r"unknown split 'dev' under videos/"):
        FolderDataset(tree)


def test_videos_val_folder_decides_the_val_videos(tree):
    touch(tree, "videos/val/wave/x.avi")
    samples, record = FolderDataset(tree).videos_with_val(0.5, seed=3)
    assert [(s.path, s.split) for s in samples] == [
        ("videos/train/wave/v1.avi", "train"), ("videos/val/wave/x.avi", "val"), ("videos/test/jump/v2.mp4", "test")]
    assert record == {"val": "folder", "count": 1}


def test_val_videos_carved_from_train_by_class(tmp_path):
    for c in ("jump", "wave"):
        for i in range(10):
            touch(tmp_path, f"videos/train/{c}/{c}{i}.avi")
        touch(tmp_path, f"videos/test/{c}/{c}_t.avi")
    dataset = FolderDataset(tmp_path)
    samples, record = dataset.videos_with_val(0.2, seed=1)
    val = [s for s in samples if s.split == "val"]
    assert sorted(dataset.classes[s.label] for s in val) == ["jump", "jump", "wave", "wave"]  # 20% of each class
    assert all(s.path.startswith("videos/train/") for s in val) and {s.split for s in samples} == {"train", "val", "test"}
    assert record == {"val": "carved", "fraction": 0.2, "seed": 1, "count": 4, "from": "train videos"}
    assert dataset.videos_with_val(0.2, seed=1)[0] == samples  # seeded: the same split every time
    assert [s.path for s in dataset.videos_with_val(0.2, seed=2)[0] if s.split == "val"] != [s.path for s in val]


def test_unsupported_file_named_and_skipped(tree):
    touch(tree, "stills/train/wave/notes.txt")
    dataset = FolderDataset(tree)
    assert dataset.skipped == [("stills/train/wave/notes.txt", dataset.skipped[0][1])]
    assert "unsupported file type .txt" in dataset.skipped[0][1]
    assert "stills/train/wave/notes.txt" not in {s.path for s in dataset.stills()}


def test_missing_root_and_empty_root(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        FolderDataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no stills/ or videos/"):
        FolderDataset(tmp_path)


def test_unknown_split_query(tree):
    with pytest.raises(DatasetError, match="unknown split 'dev'"):
        FolderDataset(tree).stills("dev")
