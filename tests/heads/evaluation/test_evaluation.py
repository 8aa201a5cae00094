"""heads.evaluation.metrics: hand-computed accuracies, fusion math, per-class values, metrics.json."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from featcache.errors import FeatcacheError
from heads.evaluation.metrics import (
    accuracy,
    build_metrics,
    fuse,
    per_class_accuracy,
    print_metrics,
    read_metrics,
    selection_score,
    softmax,
    write_metrics,
)

CLASSES = ["run", "jump", "throw"]

# 5 samples; argmax = [0, 1, 2, 2, 0]; labels = [0, 1, 1, 2, 2] -> 3/5 correct.
PROBS = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.8, 0.1],
        [0.2, 0.3, 0.5],
        [0.1, 0.1, 0.8],
        [0.5, 0.1, 0.4],
    ]
)
LABELS = np.array([0, 1, 1, 2, 2])


def test_accuracy_hand_computed():
    assert accuracy(PROBS, LABELS) == pytest.approx(60.0)
    assert accuracy(torch.tensor(PROBS), torch.tensor(LABELS)) == pytest.approx(60.0)
    assert math.isnan(accuracy(np.zeros((0, 3)), np.zeros(0)))


def test_accuracy_rejects_bad_shapes():
    with pytest.raises(ValueError):
        accuracy(PROBS, LABELS[:4])
    with pytest.raises(ValueError):
        accuracy(PROBS, np.array([0, 1, 1, 2, 3]))


def test_per_class_accuracy_hand_computed_and_omits_empty_classes():
    acc = per_class_accuracy(PROBS, LABELS, CLASSES)
    assert acc == pytest.approx({"run": 100.0, "jump": 50.0, "throw": 50.0})
    only_run = per_class_accuracy(PROBS[:1], LABELS[:1], CLASSES)
    assert only_run == {"run": 100.0}


def test_softmax_matches_torch_and_is_stable():
    logits = np.array([[1000.0, 1001.0, 999.0], [0.0, 0.0, 0.0]])
    ref = torch.tensor(logits).softmax(-1).numpy()
    assert np.allclose(softmax(logits), ref)
    assert torch.allclose(softmax(torch.tensor(logits)), torch.tensor(ref))
    assert np.allclose(softmax(logits, temperature=2.0), torch.tensor(logits / 2).softmax(-1).numpy())


def test_fuse_is_mean_of_softmaxes_not_of_logits():
    a = np.array([[4.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    b = np.array([[0.0, 0.0, 9.0], [0.0, 2.0, 0.0]])
    fused = fuse(softmax(a), softmax(b))
    assert np.allclose(fused, (softmax(a) + softmax(b)) / 2)
    # Averaging logits (then softmax) is a different fusion: the probabilities differ.
    assert not np.allclose(fused, softmax((a + b) / 2))
    assert np.allclose(fused.sum(1), 1.0)
    with pytest.raises(ValueError, match="softmax"):
        fuse(a, b)
    with pytest.raises(ValueError, match="shape"):
        fuse(softmax(a), softmax(b[:1]))
    three = fuse(softmax(a), softmax(b), softmax(a))
    assert np.allclose(three, (2 * softmax(a) + softmax(b)) / 3)
    t = fuse(torch.tensor(softmax(a), dtype=torch.float32), torch.tensor(softmax(b), dtype=torch.float32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32


def _streams():
    rng = np.random.default_rng(0)
    y_val, y_test = rng.integers(0, 3, 20), rng.integers(0, 3, 30)
    still = {"val": softmax(rng.normal(size=(20, 3))), "test": softmax(rng.normal(size=(30, 3)))}
    derived = {"val": softmax(rng.normal(size=(20, 3))), "test": softmax(rng.normal(size=(30, 3)))}
    return still, derived, {"val": y_val, "test": y_test}


def test_build_metrics_schema_and_values(tmp_path):
    still, derived, labels = _streams()
    config = {"lr": 0.001, "lambda": 1.0, "seed": 0}
    m = build_metrics("gan", "flow", config, still, derived, labels, CLASSES, seconds=3.21)
    assert set(m) == {"method", "temporal", "config", "experiment", "classes", "still", "derived", "fused", "per_class", "seconds",
                      "fused_calibrated", "gain", "temperatures", "images"}
    assert m["method"] == "gan" and m["temporal"] == "flow" and m["experiment"] == "main"
    assert m["config"] == config and m["seconds"] == pytest.approx(3.21)
    for stream in ("still", "derived", "fused", "fused_calibrated"):
        assert set(m[stream]) == {"val", "test", "val_ci", "test_ci", "top5", "top5_ci", "map", "confusion", "ece",
                                  "ci_too_narrow"}
        assert m[stream]["ci_too_narrow"] == "one seed: seed variance not covered"
        assert m[stream]["top5"] is None and m[stream]["top5_ci"] is None  # 3 classes: top-5 is meaningless
        for split in ("val", "test"):
            assert m[stream][f"{split}_ci"][0] <= m[stream][split] <= m[stream][f"{split}_ci"][1]
    assert set(m["gain"]) == {"derived", "fused", "fused_calibrated"}
    for split in ("val", "test"):
        assert m["still"][split] == pytest.approx(accuracy(still[split], labels[split]), abs=1e-3)
        assert m["derived"][split] == pytest.approx(accuracy(derived[split], labels[split]), abs=1e-3)
        fused = (still[split] + derived[split]) / 2
        assert m["fused"][split] == pytest.approx(accuracy(fused, labels[split]), abs=1e-3)
        assert set(m["per_class"][split]) == {"still", "derived", "fused", "fused_calibrated"}
        assert m["per_class"][split]["fused"] == pytest.approx(per_class_accuracy(fused, labels[split], CLASSES), abs=1e-3)
    path = write_metrics(tmp_path / "run" / "nested", m)
    assert path.name == "metrics.json" and not list(path.parent.glob("*.tmp"))
    assert json.loads(path.read_text()) == m
    assert read_metrics(path.parent) == m


def test_build_metrics_still_only_has_null_derived_and_fused():
    still, _, labels = _streams()
    m = build_metrics("classifier", None, {}, still, None, labels, CLASSES, 1.0, experiment="midframe")
    assert m["derived"] is None and m["fused"] is None and m["experiment"] == "midframe"
    assert m["per_class"]["val"]["derived"] is None
    assert selection_score(m) == (m["still"]["val"], "still/val")


def test_build_metrics_missing_val_split_is_null_and_not_ranked_on_test():
    still, _, labels = _streams()
    m = build_metrics("classifier", "flow", {}, {"test": still["test"]}, None, {"test": labels["test"]}, CLASSES, 0.5)
    assert m["still"]["val"] is None
    json.dumps(m, allow_nan=False)
    assert selection_score(m) == (None, "none")  # never a fall-back to test


def test_selection_score_prefers_fused_val():
    still, derived, labels = _streams()
    m = build_metrics("embed", "dynamic", {}, still, derived, labels, CLASSES, 0.5)
    assert selection_score(m) == (m["fused"]["val"], "fused/val")


def test_read_metrics_errors_are_one_line(tmp_path):
    with pytest.raises(FeatcacheError, match="not found"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.json").write_text("{broken")
    with pytest.raises(FeatcacheError, match="not a readable"):
        read_metrics(tmp_path)


def test_print_metrics_renders_rows(capsys):
    from rich.console import Console

    still, derived, labels = _streams()
    m = build_metrics("gan", "flow", {}, still, derived, labels, CLASSES, 2.0)
    console = Console(width=100, force_terminal=False)
    print_metrics(m, console=console)
    out = capsys.readouterr().out
    assert "gan (flow)" in out and "fused" in out and f"{m['fused']['val']:.1f}" in out
