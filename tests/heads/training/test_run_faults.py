"""Faults in stage 2: write failures in train-head, grid, fine-tuning and report give one line;
half-written or damaged run folders are named and skipped (report) or trained again (grid)."""

from __future__ import annotations

import os

import pytest
import torch

from cli.app import main
from featcache.errors import FeatcacheError, WriteError
from featcache.utils import atomic
from heads.experiments.report.runs import collect_runs
from heads.finetune.engine import save_training_state
from heads.training.run_dir import RunFolderError, find_run_folders, read_run_folder
from tests.cli.test_heads_cli import FAST_SETS, PLAIN_EPOCHS, sets
from tests.fault_fixtures import assert_one_line_error, no_space, read_only_fs  # noqa: F401
from tests.heads.experiments.test_report import metrics, write_run
from tests.heads_fixtures import synthetic_cache_dir  # noqa: F401

HEAD = [*sets(*PLAIN_EPOCHS, "min_steps=1", *FAST_SETS), "--device", "cpu"]


def cli(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return done.value.code, capsys.readouterr().err


def test_train_head_full_disk_is_one_line_and_the_unfinished_folder_is_skipped(synthetic_cache_dir, tmp_path,
                                                                                 monkeypatch, capsys):
    run = tmp_path / "runs" / "gan"
    monkeypatch.setattr(atomic.os, "fsync", no_space)  # the run's first file (its dim-reduction network)
    code, err = cli(capsys, "train-head", "gan", "--cache", str(synthetic_cache_dir), "--temporal", "flow",
                    "--out", str(run), *HEAD)
    assert code == 1
    assert_one_line_error(err, f"could not write head checkpoint {run}/", ": no space left on device",
                          f"{run} is unfinished (no metrics.json: reports skip it)", "rerun the same command")
    assert not (run / "metrics.json").exists() and not list(run.glob("*.tmp"))
    with pytest.raises(RunFolderError, match=f"{run}: no metrics.json: the run is unfinished"):
        read_run_folder(run)


def test_grid_write_failure_keeps_finished_configurations(synthetic_cache_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "grid"
    real, calls = atomic.os.fsync, {"n": 0}

    def second_model_fails(fd):
        if "model.pt" in os.readlink(f"/proc/self/fd/{fd}"):
            calls["n"] += 1
            if calls["n"] == 2:  # the second configuration's model.pt
                no_space()
        return real(fd)

    monkeypatch.setattr(atomic.os, "fsync", second_model_fails)
    args = ["grid", "gan", "--cache", str(synthetic_cache_dir), "--temporal", "flow", "--out", str(out),
            "--set", "lr=0.001,0.002", "--max-group", "1", *HEAD]
    code, err = cli(capsys, *args)
    assert code == 1
    assert_one_line_error(err, "could not write head checkpoint", "no space left on device",
                          f"configurations finished so far are kept in {out}", "finished ones are reused")
    assert len(list(out.glob("*/metrics.json"))) == 1
    monkeypatch.undo()
    main(args)
    assert len(list(out.glob("*/metrics.json"))) == 2 and "1 reused" in capsys.readouterr().out


def test_report_names_every_half_written_or_damaged_run_and_counts_them(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "still", metrics("still", None, (88.2, 84.2)))
    write_run(runs, "gan", metrics("gan", "flow", (88.2, 84.2), (89.3, 83.7), (89.0, 84.0)))
    torch.save({"w": torch.zeros(4)}, runs / "gan" / "model.pt")
    write_run(runs, "embed", metrics("embed", "flow", (88.2, 84.2), (89.0, 83.6), (89.4, 84.4)))
    (runs / "embed" / "model.pt").write_bytes((runs / "gan" / "model.pt").read_bytes()[:-40])  # truncated
    (runs / "killed").mkdir()
    (runs / "killed" / "config.yaml").write_text("lr: 0.1\n")  # a run killed before its metrics.json
    (runs / "broken").mkdir()
    (runs / "broken" / "metrics.json").write_text("{not json")
    assert [p.name for p in find_run_folders(runs)] == ["broken", "embed", "gan", "killed", "still"]
    report = collect_runs([runs])
    assert sorted(r.path.name for r in report.runs) == ["gan", "still"]
    skipped = sorted(report.skipped)
    assert len(skipped) == 3
    assert skipped[0].startswith(f"{runs / 'broken' / 'metrics.json'}: not a readable metrics.json")
    assert skipped[1].startswith(f"{runs / 'embed' / 'model.pt'}: does not load")
    assert skipped[2].startswith(f"{runs / 'killed'}: no metrics.json: the run is unfinished")


def test_predict_stops_on_a_half_written_or_damaged_run(tmp_path):
    from heads.inference.loaded_run import load_run

    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "model.pt").write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(FeatcacheError, match="cut/model.pt: not a readable model file"):
        load_run(tmp_path / "cut", device="cpu")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{")
    with pytest.raises(RunFolderError, match="broken/metrics.json: not a readable metrics.json"):
        load_run(tmp_path / "broken", device="cpu")
    write_run(tmp_path, "damaged", metrics("gan", "flow", (88.2, 84.2), (89.3, 83.7), (89.0, 84.0)))
    (tmp_path / "damaged" / "model.pt").write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(RunFolderError, match="damaged/model.pt: does not load"):
        load_run(tmp_path / "damaged", device="cpu")


def test_report_command_lists_skipped_runs_and_its_count(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_run(runs, "still", metrics("still", None, (88.2, 84.2)))
    (runs / "broken").mkdir()
    (runs / "broken" / "metrics.json").write_text("[]")
    main(["report", str(runs), "--out", str(tmp_path / "report"), "--no-plots"])
    err = capsys.readouterr().err
    assert f"skipped: {runs / 'broken' / 'metrics.json'}: not a featcache metrics.json" in err
    assert "1 run folder(s) read; 1 skipped (half-written or damaged, listed under Notes)" in err
    text = (tmp_path / "report" / "report.md").read_text()
    assert "1 run folder(s) read; 1 skipped" in text and "Skipped: " in text


def test_report_into_a_read_only_folder_is_one_line(tmp_path, read_only_fs, capsys):
    runs = tmp_path / "runs"
    write_run(runs, "still", metrics("still", None, (88.2, 84.2)))
    code, err = cli(capsys, "report", str(runs), "--out", str(read_only_fs / "report"), "--no-plots")
    assert code == 1
    assert_one_line_error(err, f"could not write", "read-only file system",
                          "no run folder was changed", "rerun featcache report")


def test_a_full_disk_while_saving_a_training_state_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "run" / "checkpoint.pt"
    save_training_state(path, {"epoch": 1})
    monkeypatch.setattr(atomic.os, "fsync", no_space)
    with pytest.raises(WriteError) as caught:
        save_training_state(path, {"epoch": 2})
    assert str(caught.value) == (f"could not write training checkpoint {path}: no space left on device; the previous "
                                 f"epoch's training state is kept in {path}; free space there, then rerun the same "
                                 "command to resume from it")
    assert torch.load(path, weights_only=True) == {"epoch": 1}
