"""``featcache train-head`` end to end on a synthetic cache."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cli.app import app
from featcache.cache.feature_cache import FeatureCache, find_cache
from heads.training.checkpoint import load_head_checkpoint
from tests.heads_fixtures import synthetic_cache_dir  # noqa: F401

FAST_SETS = ["still_epochs=5", "still_batch_size=32", "dimred_epochs=3", "dimred_batch_size=32", "d0=32",
             "d1=16", "d2=32", "epochs=2", "batch_size=32"]
PLAIN_EPOCHS = ["still_min_steps=1", "dimred_min_steps=1"]  # the epochs above as given (no step minimum)


def sets(*items):
    return [arg for item in items for arg in ("--set", item)]


def assert_test_accuracy(entry: dict, labels) -> None:
    """A stream's test accuracy is what its confusion matrix counts (right / all), the matrix
    covers exactly the cache's test stills (rows = each class's count), and it beats chance."""
    counts = np.asarray(entry["confusion"])
    assert counts.sum(axis=1).tolist() == np.bincount(np.asarray(labels), minlength=len(counts)).tolist()
    assert entry["test"] == pytest.approx(100 * np.trace(counts) / counts.sum(), abs=1e-4)
    assert entry["test"] > 100 / len(counts)


def test_train_head_gan_writes_metrics_and_checkpoint(synthetic_cache_dir, tmp_path):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["train-head", "gan", "--cache", str(synthetic_cache_dir), "--temporal", "flow",
                                      "--out", str(run_dir), "--device", "cpu", *sets(*PLAIN_EPOCHS, "min_steps=1", *FAST_SETS)])
    assert result.exit_code == 0, result.output
    assert "derived" in result.output and "wrote" in result.output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"method", "temporal", "config", "still", "derived", "fused", "per_class", "seconds"} <= set(metrics)
    assert metrics["method"] == "gan" and metrics["temporal"] == "flow" and metrics["config"]["epochs"] == 2
    test_labels = FeatureCache.open(find_cache(synthetic_cache_dir, "still")).split("test").labels
    for stream in ("still", "derived", "fused"):
        assert_test_accuracy(metrics[stream], test_labels)
    checkpoint = load_head_checkpoint(run_dir / "model.pt")
    assert checkpoint["method"] == "gan" and checkpoint["classes"] == sorted(metrics["per_class"]["test"]["still"])
    assert isinstance(checkpoint["state"]["generator"]["layers.0.weight"], torch.Tensor)
    assert list((synthetic_cache_dir / "heads").glob("dimred-flow-*.pt"))  # reused by later runs


def test_train_head_classifier_reports_temporal_classifier(synthetic_cache_dir, tmp_path):
    result = CliRunner().invoke(app, ["train-head", "classifier", "--cache", str(synthetic_cache_dir), "--temporal",
                                      "flow", "--out", str(tmp_path / "c"), *sets(*PLAIN_EPOCHS, *FAST_SETS[:4], "d1=16")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert metrics["derived"] is None and metrics["fused"] is None
    assert metrics["temporal_classifier"]["test"] > 50


def test_bad_set_is_one_line_error_without_traceback(synthetic_cache_dir, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "cli", "train-head", "embed", "--cache", str(synthetic_cache_dir), "--temporal", "flow",
         "--set", "lambda=2", "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode != 0
    assert run.stderr.strip().startswith("featcache: error: --set lambda: unknown key for train-head embed; valid keys:")
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
