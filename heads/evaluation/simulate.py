"""Simulated test sets with a known truth, to check the intervals of :mod:`heads.evaluation.statistics`.

Used by ``tests/heads/evaluation/test_intervals.py`` and ``benchmarks/intervals.py``. Correctness
follows a latent model: image ``i`` of seed ``s`` is right when
``mu + a_i + b_s + e_si > 0`` (``a``: image difficulty, ``b``: the seed's luck, ``e``: noise, all
normal), so the population accuracy (over images and seeds) is ``Phi(mu / sqrt(sa^2 + sb^2 + 1))``.
Videos add a shared effect to their instances; the oracle's draws pick a video per image and draw.
Each generator returns ``(data, truth)`` with the truth in percent.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def seeds_accuracy(rng, *, images=200, seeds=3, mu=0.6, sa=0.8, sb=0.15):
    """``[S, N]`` correctness of one method under ``seeds`` seeds."""
    a, b = rng.normal(0, sa, images), rng.normal(0, sb, seeds)
    c = mu + a[None] + b[:, None] + rng.normal(size=(seeds, images)) > 0
    return c, 100.0 * _phi(mu / math.sqrt(sa * sa + sb * sb + 1))


def seeds_gain(rng, *, images=200, seeds=3, mu=0.6, base=0.6, sa=0.8, sb=0.15):
    """``([S, N] method, [S, N] still)``: the method has seed luck, the still model none; same images."""
    a, b = rng.normal(0, sa, images), rng.normal(0, sb, seeds)
    method = mu + a[None] + b[:, None] + rng.normal(size=(seeds, images)) > 0
    still = base + a[None] + rng.normal(size=(seeds, images)) > 0
    truth = _phi(mu / math.sqrt(sa * sa + sb * sb + 1)) - _phi(base / math.sqrt(sa * sa + 1))
    return (method, still), 100.0 * truth


def clustered_accuracy(rng, *, videos=40, instances=6, mu=0.6, sv=1.0):
    """``(correct [K*M], video ids [K*M])``: instances of one video share its effect."""
    v = rng.normal(0, sv, videos)
    source = np.repeat(np.arange(videos), instances)
    return (mu + v[source] + rng.normal(size=source.size) > 0, source), 100.0 * _phi(mu / math.sqrt(sv * sv + 1))


def oracle_gain(rng, *, images=150, videos=30, draws=50, mu=0.6, base=0.3, sa=0.8, sv=0.8):
    """``(fused [R, N], still [N], video [R, N])``: each draw fuses image i with a random test video."""
    a, v = rng.normal(0, sa, images), rng.normal(0, sv, videos)
    video = rng.integers(0, videos, (draws, images))
    fused = mu + a[None] + v[video] + rng.normal(size=(draws, images)) > 0
    still = base + a + rng.normal(size=images) > 0
    truth = _phi(mu / math.sqrt(sa * sa + sv * sv + 1)) - _phi(base / math.sqrt(sa * sa + 1))
    return (fused, still, video), 100.0 * truth


def pooled_bootstrap_ci(values, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """The first release's interval, for comparison: seeds (or draws, or a video's instances) pooled per
    row, then a 95% percentile bootstrap over the rows as if they were independent, in percent."""
    v = np.asarray(values, dtype=np.float64)
    v = v.mean(axis=0) if v.ndim == 2 else v
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, (resamples, v.size))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return (100.0 * low, 100.0 * high)


def coverage(generate: Callable, interval: Callable, sets: int = 300, seed: int = 0, **settings) -> float:
    """Share of ``sets`` simulated data sets whose ``interval(data, k) -> (low, high)`` holds the truth."""
    rng = np.random.default_rng(seed)
    hits = 0
    for k in range(sets):
        data, truth = generate(rng, **settings)
        low, high = interval(data, k)
        hits += low <= truth <= high
    return hits / sets
