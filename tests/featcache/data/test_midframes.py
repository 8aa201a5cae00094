"""The mid-frame dataset: middle frames of tiny generated videos as a loadable FolderDataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from featcache.data.dataset import FolderDataset
from featcache.errors import DatasetError
from featcache.media.images import read_image
from featcache.data.midframes import build_midframes, val_carve_out

NUM_FRAMES = 9
SIZE = (32, 48)  # H, W


def frame_value(video_index: int, t: int) -> int:
    return 10 + 20 * t + video_index  # each frame a distinct flat grey level


def write_video(path: Path, video_index: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (SIZE[1], SIZE[0]))
    for t in range(NUM_FRAMES):
        writer.write(np.full((*SIZE, 3), frame_value(video_index, t), np.uint8))
    writer.release()


@pytest.fixture
def video_root(tmp_path) -> Path:
    root = tmp_path / "root"
    index = 0
    for split, per_class in (("train", 4), ("test", 2)):
        for name in ("clap", "wave"):
            for i in range(per_class):
                write_video(root / "videos" / split / name / f"v{index:02d}.avi", index)
                index += 1
    (root / "classes.txt").write_text("wave\nclap\n")
    return root


def test_midframes_dataset_holds_the_middle_frames(video_root, tmp_path):
    out = tmp_path / "mid"
    dataset = build_midframes(video_root, out, val_fraction=0.25, seed=0)
    assert isinstance(dataset, FolderDataset)
    assert dataset.classes == ["wave", "clap"]
    # 4 train videos a class: one carved out to val, three left for train; test mirrors test.
    assert dataset.summary()["stills"] == {"train": 6, "val": 2, "test": 4}
    assert dataset.summary()["videos"] == {"train": 8, "test": 4}
    for sample in dataset.stills():
        video_index = int(Path(sample.path).stem[1:])
        pixels = read_image(dataset.path(sample))
        expected = frame_value(video_index, NUM_FRAMES // 2)
        assert abs(float(pixels.mean()) - expected) < 4  # MJPG is lossy, grey levels 20 apart
    # Each still is linked to its video (still-videos.csv), whichever split the still went to.
    from featcache.data.still_videos import read_still_videos

    links = read_still_videos(out)
    assert sorted(links) == sorted(s.path for s in dataset.stills())
    assert all(Path(v).stem == Path(s).stem and (out / v).exists() for s, v in links.items())
    # Videos are links to the originals, not copies.
    link = out / "videos" / "train" / "clap" / "v00.avi"
    assert link.is_symlink() and link.resolve() == (video_root / "videos/train/clap/v00.avi").resolve()


def test_midframes_resume_skips_finished_frames(video_root, tmp_path):
    out = tmp_path / "mid"
    build_midframes(video_root, out)
    still = next((out / "stills" / "test").rglob("*.png"))
    stamp = still.stat().st_mtime_ns
    (out / "stills" / "test" / "clap" / "x.png.123.tmp").write_bytes(b"half")  # a killed run's leftover
    dataset = build_midframes(video_root, out)
    assert still.stat().st_mtime_ns == stamp
    assert dataset.summary()["stills"]["test"] == 4


def test_val_carve_out_is_per_class_and_never_empties_a_class():
    from featcache.data.dataset import Sample

    videos = [Sample(f"videos/train/c{c}/v{i}.avi", c, "train") for c in range(3) for i in range(c + 1)]
    chosen = val_carve_out(videos, 0.5, seed=1)
    for c in range(3):
        members = {v.path for v in videos if v.label == c}
        assert len(members & chosen) == {1: 0, 2: 1, 3: 2}[len(members)]  # round(n/2), at most n-1


def test_midframes_needs_videos(tmp_path):
    (tmp_path / "stills" / "train" / "a").mkdir(parents=True)
    (tmp_path / "stills" / "train" / "a" / "x.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="no videos/ folder"):
        build_midframes(tmp_path, tmp_path / "out")
