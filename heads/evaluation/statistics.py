"""Uncertainty of accuracies: bootstrap confidence intervals, paired comparisons, seeds.

Every function works on *per-image correctness*: ``correct[i]`` is 1 when image i is
classified right (:func:`correct`). Several seeds give ``[S, N]``; it is averaged over
seeds first, so each image carries its mean correctness and the bootstrap resamples
images (the unit the test set samples), not seed x image cells::

    from heads.evaluation.statistics import accuracy_ci, correct, gain_over_baseline, mean_std
    c_still, c_fused = correct(still_probs, y), correct(fused_probs, y)
    low, high = accuracy_ci(c_still)                  # 95% CI in percent
    gain = gain_over_baseline(c_fused, c_still)       # {"test", "test_ci", "p_value"}
    mean, std = mean_std([41.2, 43.0, 42.5])          # over seeds (ddof=1)

The bootstrap is exact and cheap: resampling N images with replacement only changes
how many images of each distinct correctness value are drawn, which is one multinomial
draw over those values (2 values for one seed, 3 for a paired difference). So 10,000
resamples cost microseconds whatever N is, and equal the index bootstrap in
distribution. Resampling is seeded (``seed``, default 0): the same inputs give the same
interval on every machine.

Intervals are percentile intervals. The paired test's ``p_value`` is two-sided, from
the bootstrap distribution of the difference re-centred on zero (the null of equal
accuracy); McNemar's exact test (mid-p by default) on the discordant images is
:func:`mcnemar_p`, reported beside it for one-seed comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000
SEED = 0
ALPHA = 0.05  # significance level of the marks in tables and reports


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


# -- the bootstrap -----------------------------------------------------------------
def bootstrap_means(values: Any, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """Means of ``resamples`` bootstrap resamples of ``values [N]`` -> ``[resamples]``.

    Exact shortcut of the index bootstrap: drawing N items with replacement draws each
    distinct value a Multinomial(N, share of that value) number of times.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return np.full(resamples, np.nan)
    distinct, counts = np.unique(v, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(v.size, counts / v.size, size=resamples)
    return draws @ distinct / v.size


def percentile_interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Central ``confidence`` interval of bootstrap samples."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if samples.size == 0 or np.isnan(samples).all():
        return (math.nan, math.nan)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return (float(low), float(high))


def bootstrap_ci(values: Any, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                 seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values [N]``, in the units of ``values``."""
    return percentile_interval(bootstrap_means(values, resamples, seed), confidence)


def accuracy_ci(correctness: Any, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                seed: int = SEED) -> tuple[float, float]:
    """95% (``confidence``) bootstrap CI of an accuracy over images, in percent.

    ``correctness``: bool/0-1 ``[N]``, or ``[S, N]`` over seeds (the CI of the seed-mean accuracy).
    """
    low, high = bootstrap_ci(per_image(correctness), confidence, resamples, seed)
    return (low * 100.0, high * 100.0)


# -- paired comparison of two methods on the same images -----------------------------
@dataclass(frozen=True)
class PairedComparison:
    """``a - b`` on the same images, in accuracy points (percent)."""

    difference: float
    ci: tuple[float, float]
    p_value: float  # two-sided paired bootstrap p-value of "no difference"
    mcnemar_p: float | None  # McNemar mid-p on discordant images (one seed only), else None
    images: int

    def significant(self, alpha: float = ALPHA) -> bool:
        return is_significant(self.p_value, alpha)


def paired_comparison(correct_a: Any, correct_b: Any, confidence: float = CONFIDENCE,
                      resamples: int = RESAMPLES, seed: int = SEED) -> PairedComparison:
    """Accuracy of ``a`` minus ``b`` on the same images: paired bootstrap CI and p-value.

    The images are resampled together for both methods, so what the two share (easy and
    hard images) cancels. The p-value is the share of resampled differences, re-centred
    on zero, at least as far from zero as the observed one ((1 + count) / (1 + resamples)).
    """
    a, b = per_image(correct_a), per_image(correct_b)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same images: {a.shape[0]} vs {b.shape[0]}")
    diff = a - b
    if diff.size == 0:
        return PairedComparison(math.nan, (math.nan, math.nan), math.nan, None, 0)
    observed = float(diff.mean())
    samples = bootstrap_means(diff, resamples, seed)
    low, high = percentile_interval(samples, confidence)
    extreme = np.abs(samples - observed) >= abs(observed) - 1e-12
    p_value = float((1 + np.count_nonzero(extreme)) / (1 + resamples))
    binary = np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all()
    mcnemar = mcnemar_p(a, b) if binary else None
    return PairedComparison(observed * 100.0, (low * 100.0, high * 100.0), min(p_value, 1.0), mcnemar, int(diff.size))


def mcnemar_p(correct_a: Any, correct_b: Any, mid_p: bool = True) -> float:
    """Two-sided exact McNemar test (binomial on the discordant images); mid-p by default.

    The exact test is conservative on small counts; the mid-p halves the probability of
    the observed count, which keeps the false-positive rate close to nominal.
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


def gain_over_baseline(correct_method: Any, correct_still: Any, confidence: float = CONFIDENCE,
                       resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Any]:
    """The ``metrics.json`` gain entry of a stream over the still baseline (same test images):
    ``{"test": points, "test_ci": [low, high], "p_value": p}`` (paired bootstrap)."""
    result = paired_comparison(correct_method, correct_still, confidence, resamples, seed)
    return {"test": _round(result.difference), "test_ci": [_round(v) for v in result.ci],
            "p_value": _round(result.p_value, 6)}


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
