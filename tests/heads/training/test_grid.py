"""featcache grid: stacked training equals one-by-one training; resume; csv; CLI."""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cli.app import app
from featcache.cache.schema import feature_cache_path, mark_complete, write_root_attrs, write_rows
from featcache.utils.atomic import atomic_path
from heads.training import grid as grid_module
from heads.training.checkpoint import load_head_checkpoint
from heads.training.grid import GridSpec, run_grid
from heads.training.methods import head_grid


def expand_grid(method, temporal, sets):
    return head_grid(method, temporal, sets=sets)
from heads.training.grid_report import write_grid_csv

CLASSES = ["clap", "jump", "run", "wave"]
STILL_NOISE, FLOW_NOISE = 3.0, 2.0
# Small and quick: every part of every head trains for a couple of epochs.
TINY = ["still_epochs=3", "still_batch_size=16", "dimred_epochs=3", "dimred_batch_size=16", "dimred_lr=0.01", "d1=8",
        "still_min_steps=1", "dimred_min_steps=1"]
TINY_GAN = TINY + ["still_lr=0.01", "d0=16", "d2=16", "epochs=2", "dropout=0.1", "min_steps=1"]


def with_sets(base, *extra):
    """``base`` with the keys of ``extra`` replaced by ``extra``."""
    keys = {e.split("=")[0] for e in extra}
    return [b for b in base if b.split("=")[0] not in keys] + list(extra)


TINY_EMBED = TINY + ["still_lr=0.01", "d0=16", "epochs=2", "dropout=0.1", "classifier_epochs=3", "classes_per_batch=2",
                      "min_steps=1", "classifier_min_steps=1"]


def write_cache(path, modality, features, labels, split):
    """A finished feature cache in the CONTRACT schema."""
    n = len(labels)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("features", data=features.astype(np.float32))
        write_rows(f, labels=labels, split=split, source=[f"{modality}/{i}.x" for i in range(n)],
                   instance=np.zeros(n, dtype=np.int32))
        write_root_attrs(f, modality=modality, backbone="fake", weights="random",
                         preprocessing={"size": 8}, classes=CLASSES)
        mark_complete(f)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """Learnable task: class centres shared (through a random map) by stills and flow."""
    root = tmp_path_factory.mktemp("cache")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(CLASSES), 24)) * 3.0
    mix = rng.normal(size=(24, 20))

    def rows(counts, noise, project):
        labels = np.concatenate([np.full(c, i % len(CLASSES)) for i, c in enumerate(counts)])
        split = np.concatenate([np.full(c, i // len(CLASSES)) for i, c in enumerate(counts)])
        x = centres[labels] + rng.normal(size=(len(labels), 24)) * noise
        return (x @ mix if project else x), labels, split

    still = rows([24] * 4 + [10] * 4 + [10] * 4, STILL_NOISE, False)  # train / val / test per class
    flow_counts = [30] * 4 + [0] * 4 + [10] * 4  # videos: train and test only
    flow = rows(flow_counts, FLOW_NOISE, True)
    write_cache(feature_cache_path(root, "still", "fake"), "still", *still)
    write_cache(feature_cache_path(root, "flow", "fake"), "flow", *flow)
    return root


def one_by_one(method, cache_dir, configs):
    from heads.training.head_data import HeadData
    from heads.training.train_head import train_head

    data = HeadData.load(cache_dir, "flow")
    return [train_head(method, data, c, "cpu") for c in configs]


def assert_same_states(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_states(a[key], b[key])
    else:
        assert torch.allclose(a, b, atol=1e-5), "stacked and single training diverged"


def accuracies(metrics):
    """Top-1 values, their CIs and confusions (exact); ECE and mAP read the probabilities
    themselves, which stacked and single products round differently (compared approximately)."""
    exact = ("val", "test", "val_ci", "test_ci", "confusion")
    return {s: metrics[s] and {k: metrics[s][k] for k in exact} for s in ("still", "derived", "fused")}


@pytest.mark.parametrize("method, sets", [
    ("gan", TINY_GAN + ["lr=0.003,0.001", "lambda=0.5,1.0", "batch_size=16"]),
    ("embed", TINY_EMBED + ["alpha=0.5,1.0", "seed=0,1", "lr=0.003"]),
])
def test_grid_equals_one_by_one_and_resumes(tmp_path, cache_dir, method, sets):
    configs, varied = expand_grid(method, "flow", sets)
    assert len(configs) == 4 and set(varied) == {s.split("=")[0] for s in sets if "," in s}
    spec = GridSpec(method, "flow", cache_dir, tmp_path / "grid", varied=varied)
    groups = []
    runs = run_grid(spec, configs, show_progress=False, on_group_done=groups.append)
    assert [len(g) for g in groups] == [4]  # one shape: one stacked model
    expected = one_by_one(method, cache_dir, configs)
    by_config = {repr(sorted(r.config.items())): r for r in runs}
    for config, single in zip(configs, expected):
        run = by_config[repr(sorted(config.items()))]
        assert accuracies(run.metrics) == accuracies(single.metrics)
        for stream in ("still", "derived", "fused"):
            for key in ("ece", "map"):
                assert (run.metrics[stream] or {}).get(key) == pytest.approx((single.metrics[stream] or {}).get(key), abs=0.05)
        assert run.metrics["per_class"] == single.metrics["per_class"]
        assert_same_states(load_head_checkpoint(run.run_dir / "model.pt")["state"], single.checkpoint["state"])
        assert (run.run_dir / "metrics.json").is_file() and (run.run_dir / "model.pt").is_file()
    assert max(r.metrics["fused"]["val"] for r in runs) > 50  # learnable: well above chance (25%)
    scores = [r.score[0] for r in runs]
    assert scores == sorted(scores, reverse=True) and runs[0].score[1] == "fused/val"

    # Resume: nothing is retrained, the same ranking comes back.
    again = run_grid(spec, configs, show_progress=False, on_group_done=lambda g: pytest.fail("retrained"))
    assert all(r.reused for r in again)
    assert [r.run_dir for r in again] == [r.run_dir for r in runs]


def test_grid_splits_shapes_into_groups_and_writes_csv(tmp_path, cache_dir):
    configs, varied = expand_grid("classifier", "flow", with_sets(TINY, "still_epochs=2,3", "still_lr=0.001,0.01"))
    spec = GridSpec("classifier", "flow", cache_dir, tmp_path / "grid", varied=varied)
    groups = []
    runs = run_grid(spec, configs, show_progress=False, on_group_done=groups.append)
    assert sorted(len(g) for g in groups) == [2, 2]
    assert all(r.metrics["derived"] is None and r.score[1] == "still/val" for r in runs)
    path = write_grid_csv(spec.out_dir, runs)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and rows[0]["rank"] == "1"
    assert {"still_epochs", "still_lr", "still_val", "fused_test", "seconds", "run_dir"} <= set(rows[0])
    assert float(rows[0]["score"]) == max(float(r["still_val"]) for r in rows)
    # One finished run removed: only that one is retrained.
    (runs[-1].run_dir / "metrics.json").unlink()
    groups.clear()
    again = run_grid(spec, configs, show_progress=False, on_group_done=groups.append)
    assert [len(g) for g in groups] == [1] and sum(not r.reused for r in again) == 1


def test_max_group_splits_without_changing_results(tmp_path, cache_dir):
    configs, varied = expand_grid("classifier", "flow", TINY + ["still_lr=0.001,0.003,0.01"])
    whole = run_grid(GridSpec("classifier", "flow", cache_dir, tmp_path / "a"), configs, show_progress=False)
    groups = []
    split = run_grid(GridSpec("classifier", "flow", cache_dir, tmp_path / "b"), configs, show_progress=False,
                     max_group=2, on_group_done=groups.append)
    assert [len(g) for g in groups] == [2, 1]
    assert [accuracies(r.metrics) for r in whole] == [accuracies(r.metrics) for r in split]


def test_expand_grid_errors():
    from featcache.errors import FeatcacheError

    with pytest.raises(FeatcacheError, match="unknown key"):
        expand_grid("gan", "flow", ["nope=1,2"])
    with pytest.raises(FeatcacheError, match="lr"):
        expand_grid("gan", "flow", ["lr=0.1,-1"])
    with pytest.raises(FeatcacheError, match="KEY=V1"):
        expand_grid("gan", "flow", ["lr"])
    configs, _ = expand_grid("gan", "flow", ["lr=0.1,0.1,0.2", "lambda=1"])
    assert [c["lr"] for c in configs] == [0.1, 0.2]


def test_cli_grid_runs_and_reports_errors_in_one_line(tmp_path, cache_dir):
    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["grid", "classifier", "--cache", str(cache_dir), "--out", str(out),
            *sum((["--set", s] for s in TINY + ["still_lr=0.001,0.01"]), [])]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "grid.csv").is_file() and "2 configurations (2 trained, 0 reused)" in result.output
    result = runner.invoke(app, args)
    assert "(0 trained, 2 reused)" in result.output
    bad = runner.invoke(app, ["grid", "gan", "--cache", str(tmp_path / "missing"), "--set", "lr=0.1,0.2"])
    assert bad.exit_code != 0 and isinstance(bad.exception, grid_module.FeatcacheError)


def test_jobs_pool_gives_the_same_results(tmp_path, cache_dir):
    configs, _ = expand_grid("classifier", "flow", with_sets(TINY, "still_epochs=2,3"))
    serial = run_grid(GridSpec("classifier", "flow", cache_dir, tmp_path / "s"), configs, show_progress=False)
    pooled = run_grid(GridSpec("classifier", "flow", cache_dir, tmp_path / "p"), configs, jobs=2,
                      show_progress=False)
    assert {r.run_dir.name: accuracies(r.metrics) for r in serial} == {r.run_dir.name: accuracies(r.metrics) for r in pooled}
