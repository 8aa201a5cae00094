"""Small-set honesty and what each interval covers: warnings for small val/test splits, intervals
that stay honest on 3 images, the ``ci_too_narrow`` flag with its † mark, ``mde`` and ``p_holm``."""

from __future__ import annotations

import numpy as np
import pytest

from heads.evaluation.metrics import build_metrics, format_accuracy, format_gain, temporal_classifier_entry
from heads.evaluation.uncertainty import small_split_warnings, split_sizes


def _onehot(pred, classes=4):
    p = np.full((len(pred), classes), 0.1 / (classes - 1))
    p[np.arange(len(pred)), pred] = 0.9
    return p


def test_small_splits_get_one_line_warnings():
    classes = ["a", "b", "c", "d"]
    sizes = split_sizes({"val": np.array([0, 1]), "test": np.array([0, 1, 1])}, classes)
    assert sizes == {"val": {"images": 2, "empty_classes": ["c", "d"]},
                     "test": {"images": 3, "empty_classes": ["c", "d"]}}
    lines = small_split_warnings(sizes, 4)
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert lines[1] == ("warning: the test split has only 3 images (fewer than 30) and no image of 2 of 4 classes "
                        "(c, d): its accuracies are uncertain (wide intervals) and say nothing of the missing classes")
    big = split_sizes({"test": np.arange(40) % 4}, classes)
    assert small_split_warnings(big, 4) == []


def test_three_test_stills_all_right_are_not_certainty():
    y = {"val": np.array([0, 1]), "test": np.array([0, 1, 1])}
    still = {"val": _onehot([0, 1]), "test": _onehot([0, 1, 1])}
    derived = {"val": _onehot([0, 0]), "test": _onehot([2, 2, 2])}
    m = build_metrics("gan", "flow", {"seed": 0}, still, derived, y, ["a", "b", "c", "d"])
    assert m["still"]["test"] == 100.0
    low, high = m["still"]["test_ci"]
    assert high == 100.0 and low < 50.0  # Wilson on 3 images, not [100.0, 100.0]
    assert m["images"]["test"] == {"images": 3, "empty_classes": ["c", "d"]}
    gain = m["gain"]["derived"]  # -100 points on 3 images
    assert gain["test"] == -100.0 and gain["mde"] > 50
    assert (gain["test_ci"][1] < 0) == (gain["p_value"] < 0.05)
    assert set(m["gain"]) == {"derived", "fused", "fused_calibrated"} and all("p_holm" in g for g in m["gain"].values())
    assert all(g["p_holm"] >= g["p_value"] for g in m["gain"].values())
    assert m["still"]["ci_too_narrow"] == gain["ci_too_narrow"] == "one seed: seed variance not covered"
    assert format_accuracy(m["still"], "test").endswith("]†")
    assert "†" in format_gain(gain)


def test_temporal_classifier_resamples_videos():
    correct = np.array([1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1] * 3, dtype=bool)
    videos = np.repeat(np.arange(12), 3)  # three instances per video, alike within a video
    clustered = temporal_classifier_entry(correct, videos)
    independent = temporal_classifier_entry(correct)
    assert clustered["test"] == independent["test"]
    width = lambda e: e["test_ci"][1] - e["test_ci"][0]  # noqa: E731
    assert width(clustered) > width(independent)
    assert clustered["ci_too_narrow"] == "one seed: seed variance not covered"
    assert "instances of one video counted as independent" in independent["ci_too_narrow"]
    over_seeds = temporal_classifier_entry(np.stack([correct, correct]), videos)
    assert "ci_too_narrow" not in over_seeds


@pytest.mark.parametrize("seeds", [2])
def test_seed_combination_drops_the_one_seed_flag(seeds):
    from heads.training.seeds import combine_seed_metrics

    y = {"val": np.arange(40) % 4, "test": np.arange(60) % 4}
    rng = np.random.default_rng(0)
    metrics, probs = [], []
    for seed in range(seeds):
        still = {s: rng.dirichlet(np.ones(4), size=len(v)) for s, v in y.items()}
        derived = {s: rng.dirichlet(np.ones(4), size=len(v)) for s, v in y.items()}
        metrics.append(build_metrics("gan", "flow", {"seed": seed}, still, derived, y, list("abcd")))
        probs.append({"still": still, "derived": derived, "labels": y, "temporal_correct": None})
    combined = combine_seed_metrics(metrics, probs)
    assert "ci_too_narrow" not in combined["still"] and "ci_too_narrow" not in combined["gain"]["fused"]
    assert combined["gain"]["fused"]["mde"] > 0 and "p_holm" in combined["gain"]["fused"]
