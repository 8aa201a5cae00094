"""What train-head and the oracle say, once per event, and the epochs they record (issue 25):
``selected_epoch`` in metrics.json counts from 1 as history.jsonl does; one line per trained
dim-reduction network (it was printed once per folder it was saved to); a reused network is said."""

from __future__ import annotations

import json

from featcache.cache.synthetic import write_synthetic_caches
from featcache.utils import progress
from heads.api import fit_head
from heads.experiments.oracle import run_oracle
from tests.heads_fixtures import fast_config


def history(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def test_selected_epochs_count_from_one_like_the_history(tmp_path):
    write_synthetic_caches(tmp_path / "cache", num_classes=4, dim=24, seed=1)
    config = fast_config("gan", still_epochs=6, dimred_epochs=4, epochs=5)
    run = fit_head(tmp_path / "cache", "gan", "flow", config=config, out=tmp_path / "run", device="cpu")
    selected = json.loads((tmp_path / "run" / "metrics.json").read_text())["selected_epoch"]
    entries = history(tmp_path / "run")
    for phase, key in (("still", "val_still"), ("dimred", "temporal_val")):
        curve = [e for e in entries if e["phase"] == phase]
        assert [e["epoch"] for e in curve] == list(range(1, len(curve) + 1))
        best = max(e[key] for e in curve)
        first_best = next(e["epoch"] for e in curve if e[key] == best)  # ties keep the earlier epoch
        assert selected[phase if phase == "still" else "dimred"] == first_best, (phase, selected, curve)
    assert 1 <= selected["gan"] <= len([e for e in entries if e["phase"] == "gan"])
    assert run.metrics["selected_epoch"] == selected


def test_one_line_per_dimred_training_and_a_reuse_is_said(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    write_synthetic_caches(cache, num_classes=4, dim=24, seed=1)
    config = fast_config("classifier", still_epochs=2, dimred_epochs=2)
    lines = []
    fit_head(cache, "classifier", "flow", config=config, out=tmp_path / "run", device="cpu", log=lines.append)
    dimred = [line for line in lines if line.startswith("dim-reduction network")]
    assert len(dimred) == 1 and "trained, saved" in dimred[0]
    assert str(tmp_path / "run") in dimred[0] and str(cache / "heads") in dimred[0]  # both folders, one line

    said = []
    monkeypatch.setattr(progress.console, "print", lambda text="", *a, **k: said.append(str(text)))
    run_oracle(cache, "flow", runs=2, config=config, device="cpu", progress=True)
    reused = [line for line in said if line.startswith("dim-reduction network")]
    assert len(reused) == 1 and "reused" in reused[0] and str(cache / "heads") in reused[0]
