"""``featcache predict``: the table, the CSV and JSONL formats, unreadable files skipped with one line,
one-line refusals, and real photos (skipped when ../shared/data/real is absent)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from heads import load_run
from tests.cli.test_cli_consistency import run_main

STREAMS = ["still", "derived", "fused", "fused_calibrated"]


@pytest.fixture
def inputs(trained_runs, tmp_path) -> Path:
    """A folder of three test stills, one unreadable file and a nested folder with one more still."""
    folder = tmp_path / "inputs"
    (folder / "more").mkdir(parents=True)
    stills = trained_runs.test_stills()
    for i, path in enumerate(stills[:3]):
        (folder / f"{i}.png").write_bytes(path.read_bytes())
    (folder / "more" / "3.png").write_bytes(stills[3].read_bytes())
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("not an image, not an input")
    return folder


def test_table_of_a_folder_and_a_file_skips_the_unreadable_one(trained_runs, inputs, capsys):
    code, out, err = run_main(capsys, ["predict", str(trained_runs.gan.run_dir), str(inputs),
                                       str(trained_runs.test_stills()[5]), "--top-k", "2", "--device", "cpu"])
    assert code == 0, err
    assert [line for line in err.splitlines() if "broken.jpg" in line] == [
        f"skipped {inputs / 'broken.jpg'}: not a recognised image format (corrupt or not an image)"]
    assert "1 of 6 inputs unreadable, skipped" in err
    for name in ("0.png", "3.png", "#1", "#2", *STREAMS):
        assert name in out, name
    assert "notes.txt" not in out + err


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_csv_has_one_row_per_input_stream_and_rank(trained_runs, inputs, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    code, stdout, err = run_main(capsys, ["predict", str(trained_runs.gan.run_dir), str(inputs), "--top-k", "2",
                                          "--out", str(out), "--device", "cpu"])
    assert code == 0, err
    assert out.read_text().splitlines()[0] == "path,stream,rank,class,probability"
    rows = read_csv(out)
    files = sorted({r["path"] for r in rows})
    assert files == sorted(str(p) for p in [inputs / "0.png", inputs / "1.png", inputs / "2.png", inputs / "more" / "3.png"])
    assert len(rows) == len(files) * len(STREAMS) * 2
    run = load_run(trained_runs.gan.run_dir, "cpu")
    predicted = run.predict(files)
    for i, path in enumerate(files):
        for stream in STREAMS:
            mine = [r for r in rows if r["path"] == path and r["stream"] == stream]
            assert [r["rank"] for r in mine] == ["1", "2"]
            order = np.argsort(-predicted[stream][i], kind="stable")[:2]
            assert [r["class"] for r in mine] == [run.classes[c] for c in order]
            assert [float(r["probability"]) for r in mine] == pytest.approx(predicted[stream][i][order], abs=1e-6)
    assert f"wrote 4 inputs x 4 streams x top-2 to {out}" in stdout


def test_jsonl_has_one_record_per_input(trained_runs, inputs, tmp_path, capsys):
    out = tmp_path / "preds.jsonl"
    code, _, err = run_main(capsys, ["predict", str(trained_runs.tsn), str(inputs), "--out", str(out), "--device", "cpu"])
    assert code == 0, err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4 and records[0]["path"] == str(inputs / "0.png") and records[0]["method"] == "tsn"
    for record in records:
        assert list(record["streams"]) == STREAMS
        for stream, ranked in record["streams"].items():
            assert [r["rank"] for r in ranked] == [1, 2, 3]
            assert ranked[0]["class"] == record["top"][stream]
            probabilities = [r["probability"] for r in ranked]
            assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-5


def test_refusals_are_one_line(trained_runs, inputs, tmp_path, capsys):
    cases = [
        (["predict", str(trained_runs.gan.run_dir), str(inputs), "--out", str(tmp_path / "p.txt")],
         "--out {}: expected a .csv or .jsonl file".format(tmp_path / "p.txt")),
        (["predict", str(tmp_path), str(inputs)], f"{tmp_path}: holds no model"),
        (["predict", str(trained_runs.gan.run_dir), str(tmp_path / "nothing")], "no such file or folder"),
        (["predict", str(trained_runs.gan.run_dir), str(inputs / "broken.jpg")], "none of the 1 inputs could be read"),
    ]
    for args, message in cases:
        code, _, err = run_main(capsys, [*args, "--device", "cpu"])
        last = err.strip().splitlines()[-1]
        assert code == 1 and last.startswith("featcache: error: ") and message in last, err


def test_real_photos_are_labelled(trained_runs, real_data, tmp_path, capsys):
    photos = sorted((real_data / "stills").rglob("*.jpg"))[:3]
    assert photos, f"no photos under {real_data / 'stills'}"
    out = tmp_path / "real.csv"
    for run in (trained_runs.gan.run_dir, trained_runs.tsn):
        code, _, err = run_main(capsys, ["predict", str(run), str(photos[0]), str(photos[0].parent), "--out", str(out),
                                         "--top-k", "1", "--device", "cpu"])
        assert code == 0, err
        rows = read_csv(out)
        assert {r["stream"] for r in rows} == set(STREAMS) and {r["path"] for r in rows} >= {str(photos[0])}
        assert all(0.0 <= float(r["probability"]) <= 1.0 for r in rows)


def test_a_temporal_model_labels_a_folder_of_videos(video_run, tmp_path, capsys):
    root, run_dir = video_run
    folder = tmp_path / "clips"
    folder.mkdir()
    for video in sorted((root / "videos" / "test").rglob("*.avi"))[:2]:
        (folder / f"{video.parent.name}-{video.name}").write_bytes(video.read_bytes())
    (folder / "broken.avi").write_bytes(b"not a video")
    out = tmp_path / "videos.csv"
    code, _, err = run_main(capsys, ["predict", str(run_dir), str(folder), "--out", str(out), "--top-k", "2",
                                     "--device", "cpu"])
    assert code == 0, err
    assert len([line for line in err.splitlines() if line.startswith(f"skipped {folder / 'broken.avi'}: ")]) == 1
    rows = read_csv(out)
    assert len(rows) == 2 * 2 and {r["stream"] for r in rows} == {"temporal"}
    predicted = load_run(run_dir, "cpu").predict(sorted({r["path"] for r in rows}))["temporal"]
    assert sorted(float(r["probability"]) for r in rows) == pytest.approx(
        sorted(np.sort(predicted, axis=1)[:, -2:].ravel()), abs=1e-6)
