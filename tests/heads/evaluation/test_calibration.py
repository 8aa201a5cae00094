"""heads.evaluation.calibration (temperature scaling, ECE) and heads.evaluation.class_metrics (top-5, mAP,
confusion) against simulations with a known answer and brute-force references."""

from __future__ import annotations

import numpy as np
import pytest

from heads.evaluation.calibration import apply_temperature, expected_calibration_error, fit_temperature, temperature_nll
from heads.evaluation.class_metrics import confusion, mean_average_precision, top_k_accuracy, top_k_correct
from heads.evaluation.metrics import softmax


def _sample_labels(rng, probs):
    cumulative = probs.cumsum(axis=1)
    return (rng.random((probs.shape[0], 1)) > cumulative).sum(axis=1).clip(0, probs.shape[1] - 1)


@pytest.mark.parametrize("true_t", [0.5, 2.0, 4.0])
def test_temperature_scaling_recovers_a_known_temperature(true_t):
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=3.0, size=(6000, 8))
    labels = _sample_labels(rng, softmax(logits / true_t))  # truth: calibrated at T = true_t
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.08)
    # The same from probabilities (log-probs are the logits up to a per-row constant).
    assert fit_temperature(softmax(logits), labels) == pytest.approx(fitted, rel=1e-3)
    assert temperature_nll(logits, labels, fitted) <= temperature_nll(logits, labels, 1.0) + 1e-9


def test_temperature_keeps_top1_answers_and_has_no_effect_without_rows():
    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(size=(50, 5)))
    assert (apply_temperature(probs, 3.0).argmax(1) == probs.argmax(1)).all()
    assert np.allclose(apply_temperature(probs, 1.0), probs)
    assert fit_temperature(np.zeros((0, 5)), np.zeros(0)) == 1.0


def test_ece_is_near_zero_for_a_calibrated_model_and_large_for_an_overconfident_one():
    rng = np.random.default_rng(5)
    probs = softmax(rng.normal(scale=2.0, size=(20000, 6)))
    labels = _sample_labels(rng, probs)  # labels drawn from the model's own probabilities
    assert expected_calibration_error(probs, labels) < 1.5
    sharp = apply_temperature(probs, 0.2)  # same answers, far too sure
    assert expected_calibration_error(sharp, labels) > 15.0


def test_ece_by_hand():
    # Confidences 0.9 (right), 0.9 (wrong), 0.6 (right): bin (0.8667, 0.9333]: |0.5 - 0.9| * 2/3,
    # bin (0.5333, 0.6]: |1 - 0.6| * 1/3 -> ECE = (0.8 + 0.4) / 3 = 40%.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6]])
    assert expected_calibration_error(probs, [0, 1, 1]) == pytest.approx(40.0)


def _brute_force_ap(scores, positives):
    order = np.argsort(-scores, kind="stable")
    hits, precisions = 0, []
    for rank, index in enumerate(order, start=1):
        if positives[index]:
            hits += 1
            precisions.append(hits / rank)
    return np.mean(precisions)


def test_top5_map_and_confusion_against_brute_force():
    rng = np.random.default_rng(9)
    classes, rows = 8, 200
    probs = softmax(rng.normal(size=(rows, classes)))  # continuous: no ties
    labels = rng.integers(0, classes - 1, rows)  # the last class has no image
    hits = np.array([labels[i] in np.argsort(-probs[i])[:5] for i in range(rows)])
    assert (top_k_correct(probs, labels) == hits).all()
    assert top_k_accuracy(probs, labels) == pytest.approx(hits.mean() * 100)
    # A label tied for the 5th place is a hit (4 classes above it); one that 5 classes beat strictly is not.
    tied = np.array([[0.2, 0.2, 0.2, 0.2, 0.1, 0.1], [0.3, 0.2, 0.2, 0.1, 0.1, 0.1]])
    assert top_k_correct(tied, np.array([4, 5])).tolist() == [True, True]
    assert top_k_correct(np.array([[0.3, 0.2, 0.2, 0.15, 0.1, 0.05]]), np.array([5])).tolist() == [False]
    aps = [_brute_force_ap(probs[:, c], labels == c) for c in range(classes) if (labels == c).any()]
    assert mean_average_precision(probs, labels) == pytest.approx(np.mean(aps) * 100)
    matrix = np.zeros((classes, classes), dtype=int)
    for true, predicted in zip(labels, probs.argmax(1)):
        matrix[true, predicted] += 1
    assert confusion(probs, labels) == matrix.tolist()
    assert top_k_accuracy(probs[:, :5] / probs[:, :5].sum(1, keepdims=True), labels % 5) is None
