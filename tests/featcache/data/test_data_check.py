"""featcache.data.check / ``featcache data check``: counts, and every problem reported with its path."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featcache.data.check import check_dataset, check_file
from tests.media_fixtures import make_image, make_video




@pytest.fixture
def dataset_root(tmp_path) -> Path:
    """Two classes, stills in train/val/test, videos in train/test, all decodable."""
    root = tmp_path / "data"
    for c, name in enumerate(("clap", "wave")):
        for split, count in (("train", 3), ("val", 1), ("test", 2)):
            for i in range(count):
                make_image(root / "stills" / split / name / f"{name}_{split}_{i}.jpg", seed=10 * c + i)
        for split, count in (("train", 2), ("test", 1)):
            for i in range(count):
                make_video(root / "videos" / split / name / f"{name}_{split}_{i}.avi", seed=c + i)
    (root / "classes.txt").write_text("wave\nclap\n")
    return root


def test_clean_dataset_counts(dataset_root):
    report = check_dataset(dataset_root, deep=True, progress=False)
    assert report.ok, report.problems
    assert report.classes == ["wave", "clap"]
    assert report.counts["stills"] == {
        "train": {"wave": 3, "clap": 3}, "val": {"wave": 1, "clap": 1}, "test": {"wave": 2, "clap": 2}
    }  # fmt: skip
    assert report.counts["videos"] == {"train": {"wave": 2, "clap": 2}, "test": {"wave": 1, "clap": 1}}
    assert report.checked == 12 + 6
    assert report.split_totals("videos") == {"train": 4, "test": 2}
    assert report.warnings == []


def test_corrupt_image_and_broken_video_are_both_reported(dataset_root):
    bad_image = dataset_root / "stills" / "train" / "wave" / "wave_train_1.jpg"
    data = bad_image.read_bytes()
    bad_image.write_bytes(data[: len(data) // 3])  # truncated
    bad_video = dataset_root / "videos" / "train" / "clap" / "clap_train_0.avi"
    bad_video.write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 20)
    one_frame = make_video(dataset_root / "videos" / "test" / "wave" / "wave_test_1.avi", frames=1)
    empty = dataset_root / "stills" / "test" / "clap" / "clap_test_9.png"
    empty.write_bytes(b"")

    shallow = check_dataset(dataset_root, progress=False)
    assert [p.path for p in shallow.problems] == [str(empty)]  # without --deep only existence/size

    report = check_dataset(dataset_root, deep=True, workers=2, progress=False)
    by_path = {p.path: p.reason for p in report.problems}
    assert set(by_path) == {str(bad_image), str(bad_video), str(one_frame), str(empty)}
    # featcache's wording, with PIL's own reason (its text varies by PIL version) in the brackets
    assert re.fullmatch(r"cannot decode image: truncated image data \(.+\)", by_path[str(bad_image)])
    assert "frame" in by_path[str(one_frame)]
    assert by_path[str(empty)] == "empty file (0 bytes)"
    assert all(not reason.startswith(str(dataset_root)) for reason in by_path.values())  # path not repeated
    assert not report.ok


def test_broken_symlink_is_reported_without_deep(dataset_root, tmp_path):
    gone = make_image(tmp_path / "elsewhere" / "gone.jpg")
    link = dataset_root / "stills" / "val" / "clap" / "link.jpg"
    os.symlink(gone, link)
    gone.unlink()
    report = check_dataset(dataset_root, progress=False)
    assert [str(p) for p in report.problems] == [f"{link}: file not found (broken link to {gone})"]


def test_structure_errors_are_reported_not_raised(dataset_root):
    (dataset_root / "stills" / "holdout").mkdir()
    report = check_dataset(dataset_root, progress=False)
    assert not report.ok and report.classes == []
    assert "unknown split 'holdout'" in report.problems[0].reason
    empty = check_dataset(dataset_root / "missing", progress=False)
    assert "dataset root not found" in str(empty.problems[0])


def test_coverage_warnings(dataset_root):
    (dataset_root / "classes.txt").write_text("wave\nclap\njump\n")
    for path in (dataset_root / "videos" / "test" / "clap").iterdir():
        path.unlink()
    (dataset_root / "videos" / "test" / "clap").rmdir()
    report = check_dataset(dataset_root, progress=False)
    assert report.ok
    assert "1 class(es) in classes.txt have no files: jump" in report.warnings
    assert "videos/test has no files for 1 class(es): clap" in report.warnings


def test_check_file_on_single_files(tmp_path):
    assert check_file("stills", make_image(tmp_path / "a.png"), deep=True) is None
    assert check_file("videos", make_video(tmp_path / "v.avi"), deep=True, exact_frames=True) is None
    problem = check_file("videos", tmp_path / "nope.avi", deep=True)
    assert problem.path == str(tmp_path / "nope.avi") and problem.reason == "file not found"


def test_cli_check(dataset_root):
    from cli.app import app

    runner = CliRunner()
    result = runner.invoke(app, ["data", "check", str(dataset_root), "--deep"])
    assert result.exit_code == 0, result.output
    assert "stills" in result.output and "videos" in result.output
    # Row per class: stills train/val/test, videos train/test.
    assert re.search(r"wave\s*│\s*3\s*│\s*1\s*│\s*2\s*│\s*2\s*│\s*1\s*│", result.output)
    assert re.search(r"total\s*│\s*6\s*│\s*2\s*│\s*4\s*│\s*4\s*│\s*2\s*│", result.output)
    assert "ok: 18 files decoded, 2 classes" in result.output

    bad_image = dataset_root / "stills" / "val" / "wave" / "wave_val_0.jpg"
    bad_image.write_bytes(b"not a jpeg")
    bad_video = dataset_root / "videos" / "test" / "wave" / "wave_test_0.avi"
    bad_video.write_bytes(b"\x00" * 100)
    result = runner.invoke(app, ["data", "check", str(dataset_root), "--deep"])
    assert result.exit_code == 1
    output = result.output.replace("\n", "")
    assert str(bad_image) in output and str(bad_video) in output
    assert "2 problem(s)" in output


def test_real_files_pass_deep_check(real_data, tmp_path):
    root = tmp_path / "real"
    picks = {
        "stills": sorted((real_data / "stills" / "baseball").iterdir())[:2],
        "videos": sorted((real_data / "videos" / "wave").iterdir())[:2],
    }
    for kind, paths in picks.items():
        for path in paths:
            link = root / kind / "train" / "x" / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, link)
    report = check_dataset(root, deep=True, progress=False)
    assert report.ok, report.problems
    assert report.checked == 4
