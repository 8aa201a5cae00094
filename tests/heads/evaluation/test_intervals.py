"""Simulation checks of the two-level (seeds x images), cluster (videos) and crossed (oracle)
intervals, the paired tests' false-positive rate, the MDE's power, and small-set honesty.

Every simulation is seeded, so each rate is fixed; the tolerances are about 2-3 binomial
standard errors of the simulated rate (300 sets at 95%: SE 1.3 points; 2000 sets at 5%: 0.5).
``benchmarks/intervals.py`` prints the same figures over a range of settings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from heads.evaluation import simulate
from heads.evaluation.intervals import connor_mde, design_estimate, tango_statistic
from heads.evaluation.statistics import (
    accuracy_ci,
    crossed_accuracy_ci,
    crossed_comparison,
    gain_over_baseline,
    paired_comparison,
)


def _gain_ci(data, k):
    return paired_comparison(*data).ci


def _old_gain_ci(data, k):
    method, still = data
    return simulate.pooled_bootstrap_ci(method.astype(float) - still, seed=k)


@pytest.mark.parametrize("case", ["accuracy", "gain"])
def test_two_level_interval_covers_where_seeds_vary_and_the_pooled_one_does_not(case):
    generate = simulate.seeds_accuracy if case == "accuracy" else simulate.seeds_gain
    new = _gain_ci if case == "gain" else (lambda c, k: accuracy_ci(c))
    old = _old_gain_ci if case == "gain" else (lambda c, k: simulate.pooled_bootstrap_ci(c, seed=k))
    covered = simulate.coverage(generate, new, sets=300, seed=1, sb=0.15)
    pooled = simulate.coverage(generate, old, sets=300, seed=1, sb=0.15)
    assert 0.91 <= covered <= 0.98, covered
    assert pooled < 0.85, pooled  # seed-pooled images: the seeds' spread left out


def test_two_level_variance_is_unbiased():
    rng = np.random.default_rng(2)
    values, variances = [], []
    for _ in range(1000):
        c, _ = simulate.seeds_accuracy(rng, images=100, sb=0.2)
        estimate = design_estimate(c)
        values.append(estimate.value)
        variances.append(estimate.variance)
    assert np.mean(variances) == pytest.approx(np.var(values), rel=0.15)


def test_cluster_interval_covers_where_videos_vary():
    new = simulate.coverage(simulate.clustered_accuracy, lambda d, k: accuracy_ci(d[0], clusters=d[1]), seed=3)
    old = simulate.coverage(simulate.clustered_accuracy, lambda d, k: simulate.pooled_bootstrap_ci(d[0], seed=k),
                            seed=3)
    assert 0.91 <= new <= 0.98, new
    assert old < 0.85, old  # instances of one video resampled as if independent


def test_oracle_interval_covers_images_and_videos():
    new = simulate.coverage(simulate.oracle_gain, lambda d, k: crossed_comparison(*d).ci, sets=200, seed=4)
    old = simulate.coverage(simulate.oracle_gain, lambda d, k: simulate.pooled_bootstrap_ci(
        d[0].astype(float) - d[1][None], seed=k), sets=200, seed=4)
    assert 0.91 <= new <= 0.98, new
    assert old < 0.88, old
    rng = np.random.default_rng(0)
    (fused, still, video), _ = simulate.oracle_gain(rng)
    low, high = crossed_accuracy_ci(fused, video)
    assert low < 100 * fused.mean() < high


def _null_pairs(rng, images, discordance):
    """One seed, two methods with equal accuracy: discordant images split evenly in expectation."""
    kind = rng.choice(3, size=images, p=[1 - discordance, discordance / 2, discordance / 2])
    base = rng.random(images) < 0.6
    a = np.where(kind == 1, True, np.where(kind == 2, False, base))
    b = np.where(kind == 1, False, np.where(kind == 2, True, base))
    return a, b


def test_paired_test_false_positive_rate_within_two_points_of_five_percent():
    rng = np.random.default_rng(5)
    one_seed = np.mean([paired_comparison(*_null_pairs(rng, 200, 0.2)).p_value < 0.05 for _ in range(2000)])
    assert abs(one_seed - 0.05) <= 0.02, one_seed
    # Several seeds, both streams with seed luck and the same population accuracy.
    rng = np.random.default_rng(6)
    seeds = []
    for _ in range(1000):
        (method, _), _ = simulate.seeds_gain(rng, sb=0.1)
        (other, _), _ = simulate.seeds_gain(rng, sb=0.1)
        seeds.append(paired_comparison(method, other[:, rng.permutation(method.shape[1])]).p_value < 0.05)
    assert abs(np.mean(seeds) - 0.05) <= 0.02, np.mean(seeds)


def test_mde_has_eighty_percent_power():
    images, discordance = 400, 0.2
    mde = connor_mde(images, discordance, 0.05, 0.8)
    rng = np.random.default_rng(7)
    hits, reported = [], []
    for _ in range(1000):
        probs = [1 - discordance, (discordance + mde) / 2, (discordance - mde) / 2]
        kind = rng.choice(3, size=images, p=probs)
        a, b = kind == 1, kind == 2  # a right and b wrong on kind 1, the reverse on kind 2
        result = paired_comparison(a, b)
        hits.append(result.p_value < 0.05)
        reported.append(result.mde)
    assert abs(np.mean(hits) - 0.80) <= 0.04, np.mean(hits)
    assert np.median(reported) == pytest.approx(100 * mde, rel=0.1)  # what metrics.json carries
    # The large-sample form: (z_0.975 + z_0.80) sqrt(psi / n).
    assert mde == pytest.approx((1.959964 + 0.841621) * math.sqrt(discordance / images), rel=0.02)


def test_small_sets_get_honest_intervals():
    low, high = accuracy_ci([True, True, True])
    assert high == 100.0 and low < 50.0  # 3 of 3 is not certainty (Wilson: 43.9)
    low, high = accuracy_ci(np.ones((3, 3), dtype=bool))  # three seeds do not add images
    assert low < 50.0
    low, high = accuracy_ci([True] * 12, clusters=[0] * 6 + [1] * 6)  # 2 videos, not 12 instances
    assert low < 50.0
    low, high = accuracy_ci([False, False])
    assert low == 0.0 and high > 50.0


@pytest.mark.parametrize("seeds", [1, 3])
def test_significance_and_interval_are_one_procedure(seeds):
    rng = np.random.default_rng(8 + seeds)
    for _ in range(400):
        images = int(rng.integers(3, 40))
        a = rng.random((seeds, images)) < rng.uniform(0.2, 0.9)
        b = rng.random((seeds, images)) < rng.uniform(0.2, 0.9)
        result = paired_comparison(a[0] if seeds == 1 else a, b[0] if seeds == 1 else b)
        excludes_zero = result.ci[0] > 0 or result.ci[1] < 0
        assert excludes_zero == (result.p_value < 0.05), result
        assert result.ci[0] <= result.difference <= result.ci[1]


def test_the_issue_example_is_not_significant_when_its_interval_touches_zero():
    # 12 test stills: the still model right on 9, the fused oracle on 2 of them (25 - 58.3 points).
    still = np.array([1] * 9 + [0] * 3, dtype=bool)
    fused = np.array([1] * 2 + [0] * 10, dtype=bool)
    gain = gain_over_baseline(fused, still)
    assert gain["test"] == pytest.approx(-58.3333, abs=1e-3)
    assert gain["test_ci"][1] < 0 and gain["p_value"] < 0.05  # this one excludes zero: significant
    fused[2:5] = True  # 5 of 12: -33.3 points on 7 discordant images
    gain = gain_over_baseline(fused, still)
    assert (gain["test_ci"][1] >= 0) == (gain["p_value"] >= 0.05)


def test_tango_statistic_is_mcnemar_at_zero():
    assert tango_statistic(12, 5, 100, 0.0) == pytest.approx((12 - 5) / math.sqrt(17))
