"""Uncertainty of accuracies: confidence intervals, paired comparisons, power, multiplicity.

Every function works on *per-image correctness*: ``correct[i]`` is 1 when image i is
classified right (:func:`correct`). Several seeds give ``[S, N]``; the intervals then cover
both what the seeds and what the images add (a two-level variance, not the seed-averaged
images alone), and ``clusters`` (the rows' source videos) makes videos the sampled unit::

    from heads.evaluation.statistics import accuracy_ci, correct, gain_over_baseline, mean_std
    c_still, c_fused = correct(still_probs, y), correct(fused_probs, y)
    low, high = accuracy_ci(c_still)                  # 95% CI in percent (Wilson score)
    gain = gain_over_baseline(c_fused, c_still)       # {"test", "test_ci", "p_value", "mde"}
    mean, std = mean_std([41.2, 43.0, 42.5])          # over seeds (ddof=1)

The procedures (``heads.evaluation.intervals``; ``docs/metrics.md`` has the formulas):

* accuracy: the Wilson score interval (one seed of images), or Wilson on the effective sample
  size of the two-level / cluster variance with a t quantile; never a point at 0% or 100%;
* paired gain, one seed: McNemar's score test and Tango's score interval (its inversion);
  several seeds or clusters: a t interval and t test on the two-level variance. Either way the
  p-value and the interval come from one procedure: 0 lies outside the 95% CI exactly when
  p < 0.05, so a CI touching zero is never marked significant;
* ``mde``: the smallest gain the test detects with 80% power at 5% two-sided;
* :func:`holm_adjust` for a family of gains (the report's significance marks).

Everything is closed-form and deterministic: the same predictions give the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from heads.evaluation.intervals import (
    Estimate,
    connor_mde,
    crossed_estimate,
    design_estimate,
    mcnemar_score_p,
    proportion_interval,
    t_quantile,
    t_two_sided_p,
    tango_interval,
)

CONFIDENCE = 0.95
ALPHA = 0.05  # significance level of the marks in tables and reports
POWER = 0.80  # the power of the minimum detectable effect (``mde``)


# -- per-image correctness ---------------------------------------------------------
def correct(probs: Any, labels: Any) -> np.ndarray:
    """Top-1 correctness per image, ``probs [N, C]`` (or ``[S, N, C]`` over seeds) -> bool ``[N]`` / ``[S, N]``."""
    if hasattr(probs, "detach"):
        probs = probs.detach().cpu().numpy()
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    p, y = np.asarray(probs), np.asarray(labels).astype(np.int64).reshape(-1)
    if p.ndim not in (2, 3) or p.shape[-2] != y.shape[0]:
        raise ValueError(f"probs must be [N, C] or [S, N, C] with N={y.shape[0]} labels, got {tuple(p.shape)}")
    return p.argmax(-1) == y


def per_image(correctness: Any) -> np.ndarray:
    """Mean correctness per image over seeds: ``[N]`` or ``[S, N]`` -> float64 ``[N]`` in [0, 1]."""
    c = np.asarray(correctness, dtype=np.float64)
    if c.ndim == 2:
        c = c.mean(axis=0)
    if c.ndim != 1:
        raise ValueError(f"correctness must be [N] or [S, N], got shape {c.shape}")
    return c


# -- intervals and tests (heads.evaluation.intervals) ---------------------------------
def _table(correctness: Any) -> np.ndarray:
    c = np.asarray(correctness, dtype=np.float64)
    c = c[None, :] if c.ndim == 1 else c
    if c.ndim != 2:
        raise ValueError(f"correctness must be [N] or [S, N], got shape {c.shape}")
    return c


def _binary(table: np.ndarray) -> bool:
    return bool(np.isin(table, (0.0, 1.0)).all())


def accuracy_ci(correctness: Any, confidence: float = CONFIDENCE, clusters: Any = None) -> tuple[float, float]:
    """95% (``confidence``) interval of an accuracy, in percent (module docstring).

    ``correctness``: 0/1 ``[N]``, or ``[S, N]`` over seeds (the interval of the seed-mean accuracy,
    covering seeds and images); ``clusters`` (``[N]`` video ids) makes the videos the resampled unit.
    """
    _check_confidence(confidence)
    table = _table(correctness)
    if table.shape[1] == 0:
        return (math.nan, math.nan)
    estimate = design_estimate(table, clusters)
    plain = table.shape[0] == 1 and clusters is None and _binary(table)
    low, high = proportion_interval(estimate, confidence, plain=plain)
    return (low * 100.0, high * 100.0)


def crossed_accuracy_ci(correctness: Any, video: Any, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """:func:`accuracy_ci` of the oracle's fused correctness ``[R, N]`` (R draws), covering images and the
    test videos drawn (``video [R, N]``: the video of each draw, -1 for none)."""
    _check_confidence(confidence)
    low, high = proportion_interval(crossed_estimate(correctness, video), confidence)
    return (low * 100.0, high * 100.0)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


# -- paired comparison of two methods on the same images -----------------------------
@dataclass(frozen=True)
class PairedComparison:
    """``a - b`` on the same images, in accuracy points (percent)."""

    difference: float
    ci: tuple[float, float]
    p_value: float  # two-sided, from the same procedure as ``ci`` (0 outside ci <=> p < 1 - confidence)
    mcnemar_p: float | None  # McNemar's exact mid-p on discordant images (one seed only), else None
    images: int
    mde: float = math.nan  # smallest difference (points) this test detects with 80% power at 5%

    def significant(self, alpha: float = ALPHA) -> bool:
        return is_significant(self.p_value, alpha)


def paired_comparison(correct_a: Any, correct_b: Any, confidence: float = CONFIDENCE,
                      clusters: Any = None) -> PairedComparison:
    """Accuracy of ``a`` minus ``b`` on the same images: CI, p-value and MDE from one procedure.

    One seed of 0/1 correctness on images: McNemar's score test, Tango's score interval (its
    inversion) and Connor's MDE. Several seeds (``[S, N]``) or clustered rows: the mean difference
    with its two-level variance (``heads.evaluation.intervals.design_estimate``), a t interval and t
    test on Satterthwaite's degrees of freedom, MDE ``(t_0.975 + t_0.80) * SE``.
    """
    _check_confidence(confidence)
    a, b = _table(correct_a), _table(correct_b)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same images: {a.shape[-1]} vs {b.shape[-1]}")
    if a.shape[1] == 0:
        return PairedComparison(math.nan, (math.nan, math.nan), math.nan, None, 0)
    one_seed_binary = a.shape[0] == 1 and _binary(a) and _binary(b)
    mcnemar = mcnemar_p(a[0], b[0]) if one_seed_binary else None
    estimate = design_estimate(a - b, clusters)
    if (one_seed_binary and clusters is None) or estimate.variance <= 0:
        return _score_comparison(a, b, estimate, confidence, mcnemar)
    return _t_comparison(estimate, confidence, mcnemar, a.shape[1])


def _score_comparison(a: np.ndarray, b: np.ndarray, estimate: Estimate, confidence: float,
                      mcnemar: float | None) -> PairedComparison:
    """McNemar / Tango on the discordant counts (several seeds with no variance at all: per unit)."""
    n = estimate.units
    diff = estimate.value
    if a.shape[0] == 1 and _binary(a) and _binary(b):
        n12, n21 = int(np.sum((a > b))), int(np.sum((a < b)))
        n = a.shape[1]
    else:  # every unit differs by the same amount (usually 0): the counts of a one-seed set of n units
        n12, n21 = int(round(max(diff, 0.0) * n)), int(round(max(-diff, 0.0) * n))
    quantile = t_quantile(math.inf, 1 - (1 - confidence) / 2)
    low, high = tango_interval(n12, n21, n, quantile)
    mde = connor_mde(n, (n12 + n21) / n, 1 - confidence, POWER)
    return PairedComparison(diff * 100.0, (low * 100.0, high * 100.0), mcnemar_score_p(n12, n21), mcnemar,
                            a.shape[1], mde * 100.0)


def _t_comparison(estimate: Estimate, confidence: float, mcnemar: float | None, images: int) -> PairedComparison:
    se = math.sqrt(estimate.variance)
    half = t_quantile(estimate.df, 1 - (1 - confidence) / 2) * se
    p_value = t_two_sided_p(estimate.value / se, estimate.df)
    mde = (t_quantile(estimate.df, 1 - (1 - confidence) / 2) + t_quantile(estimate.df, POWER)) * se
    return PairedComparison(estimate.value * 100.0, ((estimate.value - half) * 100.0, (estimate.value + half) * 100.0),
                            p_value, mcnemar, images, min(mde, 1.0) * 100.0)


def crossed_comparison(correct_a: Any, correct_b: Any, video: Any, confidence: float = CONFIDENCE) -> PairedComparison:
    """The oracle's paired comparison: ``correct_a [R, N]`` over R draws (``video [R, N]``: the test video
    each draw took, -1 for none) minus ``correct_b [N]``; the variance covers images and videos."""
    _check_confidence(confidence)
    a = _table(correct_a)
    b = np.broadcast_to(np.asarray(correct_b, dtype=np.float64).reshape(-1), a.shape)
    estimate = crossed_estimate(a - b, video)
    if a.shape[1] == 0:
        return PairedComparison(math.nan, (math.nan, math.nan), math.nan, None, 0)
    if estimate.variance <= 0:
        return _score_comparison(a, b, estimate, confidence, None)
    return _t_comparison(estimate, confidence, None, a.shape[1])


def mcnemar_p(correct_a: Any, correct_b: Any, mid_p: bool = True) -> float:
    """Two-sided exact McNemar test (binomial on the discordant images); mid-p by default.

    The exact test is conservative on small counts; the mid-p halves the probability of
    the observed count, which keeps the false-positive rate close to nominal. Reported beside
    the score test; significance marks use the score test (consistent with the interval).
    """
    a = np.asarray(correct_a).astype(bool).reshape(-1)
    b = np.asarray(correct_b).astype(bool).reshape(-1)
    only_a, only_b = int(np.count_nonzero(a & ~b)), int(np.count_nonzero(~a & b))
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    pmf = np.array([math.comb(n, i) for i in range(k + 1)], dtype=np.float64) / 2.0**n
    tail = pmf.sum() - (pmf[k] / 2.0 if mid_p else 0.0)
    return float(min(1.0, 2.0 * tail))


def gain_entry(result: PairedComparison) -> dict[str, Any]:
    """The ``metrics.json`` gain entry of a comparison: ``{"test", "test_ci", "p_value", "mde"}``."""
    return {"test": _round(result.difference), "test_ci": [_round(v) for v in result.ci],
            "p_value": _round(result.p_value, 6), "mde": _round(result.mde, 2)}


def gain_over_baseline(correct_method: Any, correct_still: Any, confidence: float = CONFIDENCE,
                       clusters: Any = None) -> dict[str, Any]:
    """The ``metrics.json`` gain entry of a stream over the still baseline (same test images):
    ``{"test": points, "test_ci": [low, high], "p_value": p, "mde": points}``."""
    return gain_entry(paired_comparison(correct_method, correct_still, confidence, clusters))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order as given): a test is
    significant at level alpha after correction when its adjusted p is below alpha. Controls the
    chance of any false positive in the family, with no assumption about their dependence."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


def is_significant(p_value: float | None, alpha: float = ALPHA) -> bool:
    return p_value is not None and math.isfinite(p_value) and p_value < alpha


def significance_mark(p_value: float | None) -> str:
    """``**`` for p < 0.01, ``*`` for p < 0.05, else empty (the marks of tables and reports)."""
    if p_value is None or not math.isfinite(p_value):
        return ""
    return "**" if p_value < 0.01 else "*" if p_value < ALPHA else ""


# -- seeds -------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) over seeds; std 0 for a single value.

    NaN/None values are dropped; no value at all gives ``(nan, nan)``.
    """
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (math.nan, math.nan)
    return (float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0)


def _round(value: float, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits) + 0.0  # no -0.0
