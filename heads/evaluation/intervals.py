"""The interval and test procedures behind :mod:`heads.evaluation.statistics`.

One estimate, one variance, one interval and one test: an accuracy (or a paired gain) is the
mean of a ``[S, N]`` table of per-row values (S seeds, N rows: images, or temporal instances
grouped into videos by ``clusters``), and its variance covers what varies:

* **units** (images; videos when rows are clustered): the between-unit variance of the
  seed-averaged values (for clusters, the ratio estimator's linearisation ``K/(K-1) *
  sum_c (T_c - m * n_c)**2 / (sum n_c)**2``, the variance a cluster bootstrap over the videos
  estimates);
* **seeds**: the variance of the per-seed means over S, less the share of it that the units'
  term already holds (the seed x unit residual: the classic two-way random-effects estimate,
  floored at 0).

The sum is unbiased (checked by simulation). Its degrees of freedom (Satterthwaite) take the
seed term before the residual is removed, which keeps the interval near nominal when the seeds
dominate: with 3 seeds (2 degrees of freedom) a t interval cannot do better than about 91% there
(``tests/heads/evaluation/test_intervals.py``, ``benchmarks/intervals.py``).

Intervals use Student's t with Satterthwaite's degrees of freedom for the two terms
(``K - 1`` and ``S - 1``): three seeds carry two degrees of freedom, so a seed-dominated
variance gets t = 4.3, not 1.96. Accuracies use the Wilson score interval on the effective
sample size ``p (1 - p) / variance`` (one seed, unclustered images: plain Wilson), which stays
inside [0, 100] and never collapses at 0% or 100% (there the effective size is the number of
units). One-seed paired gains on images use McNemar's score test and Tango's score interval,
its inversion, so a CI excluding 0 and p < 0.05 are the same event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean (in the values' units) with its variance over units and seeds."""

    value: float
    variance: float
    df: float  # Satterthwaite degrees of freedom (inf: normal)
    units: int  # independent units: images, or videos when clustered
    seeds: int


def t_quantile(df: float, level: float) -> float:
    """The ``level`` quantile of Student's t with ``df`` degrees of freedom (normal for df = inf)."""
    # scipy (through scikit-learn, slow to import): only these intervals need it
    from scipy.stats import norm, t

    return float(norm.ppf(level)) if not math.isfinite(df) else float(t.ppf(level, max(df, 1.0)))


def t_two_sided_p(statistic: float, df: float) -> float:
    # scipy (through scikit-learn, slow to import): only these intervals need it
    from scipy.stats import norm, t

    tail = norm.sf(abs(statistic)) if not math.isfinite(df) else t.sf(abs(statistic), max(df, 1.0))
    return float(min(1.0, 2.0 * tail))


def _cluster_index(clusters: Any, rows: int) -> tuple[np.ndarray, int]:
    if clusters is None:
        return np.arange(rows), rows
    labels = np.asarray(clusters).reshape(-1)
    if labels.size != rows:
        raise ValueError(f"clusters must name each of the {rows} rows, got {labels.size}")
    _, index = np.unique(labels, return_inverse=True)
    return index, int(index.max()) + 1 if rows else 0


def unit_variance(values: np.ndarray, index: np.ndarray, units: int) -> float:
    """Between-unit variance of the mean of ``values [N]`` (ratio estimator over clusters)."""
    if units < 2:
        return 0.0
    totals = np.bincount(index, weights=values, minlength=units)
    sizes = np.bincount(index, minlength=units).astype(np.float64)
    mean = totals.sum() / sizes.sum()
    return float(units / (units - 1) * np.sum((totals - mean * sizes) ** 2) / sizes.sum() ** 2)


def satterthwaite(parts: list[tuple[float, float]]) -> float:
    """Degrees of freedom of a sum of variance estimates ``[(variance, df), ...]``."""
    total = sum(v for v, _ in parts)
    denominator = sum(v * v / d for v, d in parts if v > 0 and d > 0)
    return math.inf if denominator == 0 else total * total / denominator


def design_estimate(values: Any, clusters: Any = None) -> Estimate:
    """Mean of ``values`` (``[N]`` or ``[S, N]``) and its variance over units and seeds (module doc)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[None, :] if v.ndim == 1 else v
    if v.ndim != 2:
        raise ValueError(f"values must be [N] or [S, N], got shape {v.shape}")
    seeds, rows = v.shape
    index, units = _cluster_index(clusters, rows)
    if rows == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, seeds)
    v_units = unit_variance(v.mean(axis=0), index, units)
    variance, df = v_units, satterthwaite([(v_units, units - 1)])
    if seeds > 1:
        v_seeds = float(v.mean(axis=1).var(ddof=1)) / seeds
        # What the seed means' spread owes to the seed x unit residual, already in v_units.
        residual = (np.mean([unit_variance(row, index, units) for row in v]) - v_units) / (seeds - 1)
        variance += max(0.0, v_seeds - max(0.0, residual))
        # Degrees of freedom from the gross seed term: fewer when the seeds' spread is large.
        df = satterthwaite([(v_units, units - 1), (v_seeds, seeds - 1)])
    return Estimate(float(v.mean()), variance, df, units, seeds)


def wilson(p: float, n: float, quantile: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` on ``n`` (effective) trials, as fractions."""
    if not n > 0 or not math.isfinite(p):
        return (math.nan, math.nan)
    q2 = quantile * quantile
    centre = (p + q2 / (2 * n)) / (1 + q2 / n)
    half = quantile * math.sqrt(p * (1 - p) / n + q2 / (4 * n * n)) / (1 + q2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def proportion_interval(estimate: Estimate, confidence: float, plain: bool = False) -> tuple[float, float]:
    """Wilson interval on the effective sample size (``plain``: one seed of unclustered 0/1 values)."""
    p = estimate.value
    tail = 1.0 - (1.0 - confidence) / 2.0
    if plain:
        return wilson(p, estimate.units, t_quantile(math.inf, tail))
    if estimate.variance > 0 and 0.0 < p < 1.0:
        n_eff = p * (1.0 - p) / estimate.variance
        return wilson(p, n_eff, t_quantile(estimate.df, tail))
    return wilson(p, estimate.units, t_quantile(math.inf, tail))  # all right (or all wrong): plain Wilson


# -- one-seed paired binary comparisons: McNemar's score test and Tango's interval ----------
def tango_statistic(n12: int, n21: int, n: int, delta: float) -> float:
    """Tango's (1998) score statistic for p12 - p21 = ``delta`` (McNemar's z at delta = 0)."""
    if n == 0:
        return 0.0
    w = -n12 - n21 + (2 * n - n12 + n21) * delta
    p21 = (math.sqrt(max(0.0, w * w + 8 * n * n21 * delta * (1 - delta))) - w) / (4 * n)
    variance = n * (2 * p21 + delta * (1 - delta))
    if variance <= 0:
        return 0.0 if n12 - n21 - n * delta == 0 else math.copysign(math.inf, n12 - n21 - n * delta)
    return (n12 - n21 - n * delta) / math.sqrt(variance)


def tango_interval(n12: int, n21: int, n: int, quantile: float) -> tuple[float, float]:
    """Tango's score interval of the paired difference (fractions): every delta the score test keeps."""
    # scipy (through scikit-learn, slow to import): only these intervals need it
    from scipy.optimize import brentq

    observed = (n12 - n21) / n

    def edge(target: float, lo: float, hi: float) -> float:
        f = lambda d: tango_statistic(n12, n21, n, d) - target  # noqa: E731
        if f(lo) * f(hi) > 0:
            return lo if abs(f(lo)) < abs(f(hi)) else hi
        return brentq(f, lo, hi, xtol=1e-10)

    eps = 1e-12
    low = -1.0 if n21 == n else edge(quantile, -1.0 + eps, observed)
    high = 1.0 if n12 == n else edge(-quantile, observed, 1.0 - eps)
    return (low, high)


def mcnemar_score_p(n12: int, n21: int) -> float:
    """McNemar's asymptotic (score) test without continuity correction, two-sided."""
    if n12 + n21 == 0:
        return 1.0
    return t_two_sided_p((n12 - n21) / math.sqrt(n12 + n21), math.inf)


def connor_mde(n: int, discordance: float, alpha: float, power: float) -> float:
    """Smallest paired difference (fraction) McNemar's test detects with ``power`` at two-sided ``alpha``
    on ``n`` pairs with discordance rate ``discordance`` (Connor 1987; module doc of statistics)."""
    if n <= 0:
        return math.nan
    za, zb = t_quantile(math.inf, 1 - alpha / 2), t_quantile(math.inf, power)
    psi = min(1.0, max(discordance, 1.0 / n))  # at least one discordant image to detect anything
    root = math.sqrt(max(0.0, n + zb * zb - za * za))
    return min(1.0, math.sqrt(psi) * (za * math.sqrt(n) + zb * root) / (n + zb * zb))


def crossed_estimate(values: Any, video: Any) -> Estimate:
    """Mean of the oracle's ``values [R, N]`` (R draws of N images) and its variance over images and
    over the test videos drawn (``video [R, N]``, -1: no draw): images' term as :func:`design_estimate`,
    videos' term from each video's summed within-image deviations (a crossed, pigeonhole design)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[None, :] if v.ndim == 1 else v
    ids = np.broadcast_to(np.asarray(video), v.shape)
    draws, images = v.shape
    if images == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 1)
    per_image = v.mean(axis=0)
    v_images = float(per_image.var(ddof=1)) / images if images > 1 else 0.0
    drawn = ids >= 0
    _, index = np.unique(ids[drawn], return_inverse=True)
    videos = int(index.max()) + 1 if index.size else 0
    v_videos = 0.0
    if videos > 1:
        deviations = np.bincount(index, weights=(v - per_image[None, :])[drawn], minlength=videos)
        v_videos = float(videos / (videos - 1) * np.sum(deviations ** 2) / (draws * images) ** 2)
    parts = [(v_images, images - 1), (v_videos, videos - 1)]
    return Estimate(float(v.mean()), v_images + v_videos, satterthwaite(parts), images, 1)
