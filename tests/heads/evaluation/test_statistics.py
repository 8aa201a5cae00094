"""heads.evaluation.statistics: interval coverage, paired tests (power and false positives), seeds.

Simulations are seeded, so each figure below is fixed; tolerances are about 3 binomial
standard errors of the simulated rate (e.g. 300 sets at 95%: SE = 1.26 points).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from heads.evaluation.statistics import (
    accuracy_ci,
    correct,
    gain_over_baseline,
    mcnemar_p,
    mean_std,
    paired_comparison,
    per_image,
    significance_mark,
)


def test_accuracy_ci_is_the_wilson_interval_for_one_seed():
    c = np.array([1] * 70 + [0] * 50, dtype=bool)
    low, high = accuracy_ci(c)
    assert accuracy_ci(c) == (low, high)
    # Wilson by hand: centre (p + z^2/2n) / (1 + z^2/n), half z sqrt(p q / n + z^2 / 4n^2) / (1 + z^2/n).
    z, n, p = 1.959964, 120, 70 / 120
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (low, high) == pytest.approx((100 * (centre - half), 100 * (centre + half)), abs=1e-3)


def test_accuracy_ci_covers_the_true_accuracy_at_the_nominal_rate():
    # 300 simulated test sets of 200 images from a classifier with true accuracy 70%.
    rng = np.random.default_rng(123)
    true_acc, sets, images = 0.7, 300, 200
    covered = 0
    for _ in range(sets):
        low, high = accuracy_ci(rng.random(images) < true_acc)
        covered += low <= true_acc * 100 <= high
    # SE of a 95% rate over 300 sets: 1.26 points.
    assert abs(covered / sets - 0.95) <= 0.035, covered / sets


def _paired_sets(rng, images, acc_a, acc_b):
    """Two classifiers' correctness on the same images, with shared easy/hard images."""
    difficulty = rng.random(images)
    a = rng.random(images) * 0.5 + difficulty * 0.5 < acc_a
    b = rng.random(images) * 0.5 + difficulty * 0.5 < acc_b
    return a, b


def test_paired_test_finds_a_planted_difference():
    rng = np.random.default_rng(7)
    found = 0
    for k in range(100):
        a, b = _paired_sets(rng, 300, 0.75, 0.60)
        result = paired_comparison(a, b)
        assert result.images == 300
        found += result.significant() and result.ci[0] > 0
    assert found >= 90  # power near 1 for a ~15 point gap on 300 images


def test_paired_test_false_positive_rate_is_near_nominal():
    rng = np.random.default_rng(11)
    sims, positives, mcnemar_positives = 400, 0, 0
    for k in range(sims):
        a, b = _paired_sets(rng, 200, 0.65, 0.65)
        result = paired_comparison(a, b)
        positives += result.p_value < 0.05
        mcnemar_positives += result.mcnemar_p < 0.05
    # SE of a 5% rate over 400 simulations: 1.1 points (test_intervals.py checks 2 points on 2000).
    assert 0.025 <= positives / sims <= 0.075, positives / sims
    assert 0.02 <= mcnemar_positives / sims <= 0.085, mcnemar_positives / sims


def test_mcnemar_matches_the_binomial_by_hand():
    # 10 discordant images, 8 favour a: exact two-sided p = 2 * P(X <= 2 | n=10, 1/2).
    a = np.array([1] * 8 + [0] * 2 + [1] * 5, dtype=bool)
    b = np.array([0] * 8 + [1] * 2 + [1] * 5, dtype=bool)
    exact = 2 * (1 + 10 + 45) / 2**10
    assert mcnemar_p(a, b, mid_p=False) == pytest.approx(exact)
    assert mcnemar_p(a, b) == pytest.approx(exact - 45 / 2**10)
    assert mcnemar_p(a, a) == 1.0


def test_gain_entry_and_seed_averaging():
    still = np.array([[1, 0, 0, 1], [1, 0, 1, 1]], dtype=bool)  # 2 seeds x 4 images
    fused = np.array([[1, 1, 0, 1], [1, 1, 1, 1]], dtype=bool)
    assert per_image(still).tolist() == [1.0, 0.0, 0.5, 1.0]
    gain = gain_over_baseline(fused, still)
    assert gain["test"] == pytest.approx(25.0)
    assert gain["test_ci"][0] <= 25.0 <= gain["test_ci"][1]
    assert 0 < gain["p_value"] <= 1
    assert paired_comparison(fused, still).mcnemar_p is None  # fractional per-image values
    no_gain = gain_over_baseline(still, still)
    # No discordance at all: the score interval on the 4 images, not a point.
    assert no_gain["test"] == 0.0 and no_gain["p_value"] == 1.0
    assert no_gain["test_ci"][0] < -40 and no_gain["test_ci"][1] > 40 and no_gain["mde"] > 40


def test_correct_mean_std_and_marks():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert correct(probs, [0, 1, 1]).tolist() == [True, True, False]
    assert correct(np.stack([probs, probs]), [0, 1, 1]).shape == (2, 3)
    with pytest.raises(ValueError):
        correct(probs, [0, 1])
    mean, std = mean_std([40.0, 42.0, 44.0])
    assert (mean, std) == (42.0, 2.0)
    assert mean_std([5.0]) == (5.0, 0.0)
    assert math.isnan(mean_std([None])[0])
    assert significance_mark(0.001) == "**" and significance_mark(0.03) == "*" and significance_mark(0.2) == ""


def test_holm_adjustment_against_the_step_down_rule_by_hand():
    from heads.evaluation.statistics import holm_adjust

    p = [0.04, 0.001, 0.03, 0.5, 0.012]
    # By hand: sorted 0.001, 0.012, 0.03, 0.04, 0.5 times 5, 4, 3, 2, 1 -> 0.005, 0.048, 0.09, 0.08, 0.5;
    # running maximum -> 0.005, 0.048, 0.09, 0.09, 0.5; back in the given order.
    assert holm_adjust(p) == pytest.approx([0.09, 0.005, 0.09, 0.5, 0.048])
    assert holm_adjust([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm_adjust([]) == []
    # Under the null (uniform p-values), Holm keeps the family-wise error near or below alpha.
    rng = np.random.default_rng(3)
    families = rng.uniform(size=(2000, 16))
    any_rejected = np.mean([min(holm_adjust(f)) < 0.05 for f in families])
    assert any_rejected <= 0.06 and np.mean(families.min(1) < 0.05) > 0.5  # uncorrected: over half
