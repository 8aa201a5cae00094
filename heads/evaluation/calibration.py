"""Calibration of one stream's softmax scores: temperature scaling and expected calibration error.

Late fusion averages two streams' softmax probabilities (``heads.evaluation.metrics.fuse``). When
one stream is over-confident, its wrong answers outvote the other stream's right ones and
the fusion can land below both inputs. Temperature scaling (Guo et al., 2017) divides a
stream's logits by one scalar T > 0 fitted on the val split by minimising the negative
log-likelihood; it never changes that stream's own top-1 answers, only how sure it is::

    t = fit_temperature(still_val_probs, val_labels)   # probabilities or logits
    calibrated = apply_temperature(still_test_probs, t)
    expected_calibration_error(still_test_probs, test_labels)   # percent, 15 bins

Probabilities are turned back into logits by their log (softmax is invariant to a per-row
constant), so a stream stored as probabilities is scaled exactly as its logits would be.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ECE_BINS = 15
_EPS = 1e-12
_LOG_T_BOUND = 5.0  # T in [e^-5, e^5]: beyond it a stream is all-or-nothing anyway


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def as_logits(scores: Any) -> np.ndarray:
    """Logits of a stream: the log of probability rows (rows on the simplex), else the scores unchanged."""
    s = _numpy(scores)
    if s.size and s.min() >= 0.0 and np.allclose(s.sum(axis=-1), 1.0, atol=1e-3):
        return np.log(np.clip(s, _EPS, None))
    return s


def apply_temperature(scores: Any, temperature: float) -> np.ndarray:
    """Softmax of ``logits / temperature`` (``scores``: probabilities or logits ``[N, C]``)."""
    z = as_logits(scores) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def temperature_nll(scores: Any, labels: Any, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    p = apply_temperature(scores, temperature)
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    return float(-np.log(np.clip(p[np.arange(y.size), y], _EPS, None)).mean())


def fit_temperature(scores: Any, labels: Any, max_iter: int = 100) -> float:
    """The T > 0 minimising the NLL of ``labels`` (the val split), within ``[e^-5, e^5]``.

    With b = 1/T the NLL is convex (log-sum-exp of b z minus b z_y), so its derivative
    ``mean(E_softmax(b z)[z] - z_y)`` rises with b: bisection over log b finds the minimum to
    float64 precision in ``max_iter`` halvings, in numpy (torch.optim.LBFGS, used before,
    imports torch._dynamo on first use: seconds of every head's first metrics). No rows (no
    val split) gives T = 1, i.e. no change.
    """
    z = np.asarray(as_logits(scores), dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if y.size == 0:
        return 1.0
    z = z - z.max(axis=-1, keepdims=True)
    true = z[np.arange(y.size), y]

    def slope(log_b: float) -> float:  # d NLL / d b at b = e^log_b
        e = np.exp(z * math.exp(log_b))
        return float(((e * z).sum(-1) / e.sum(-1) - true).mean())

    low, high = -_LOG_T_BOUND, _LOG_T_BOUND  # log b
    if slope(high) <= 0:
        return math.exp(-_LOG_T_BOUND)
    if slope(low) >= 0:
        return math.exp(_LOG_T_BOUND)
    for _ in range(max_iter):
        middle = (low + high) / 2
        low, high = (middle, high) if slope(middle) < 0 else (low, middle)
        if high - low < 1e-12:
            break
    value = math.exp(-(low + high) / 2)
    return value if math.isfinite(value) else 1.0


def expected_calibration_error(probs: Any, labels: Any, bins: int = ECE_BINS) -> float:
    """Expected calibration error in percent: over ``bins`` equal-width confidence bins,
    the image-weighted mean of |accuracy - mean confidence| (top-1 confidence). NaN for no rows."""
    p = _numpy(probs)
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if y.size == 0:
        return math.nan
    confidence, predicted = p.max(axis=-1), p.argmax(axis=-1)
    hits = (predicted == y).astype(np.float64)
    # Bin k holds confidences in (k/bins, (k+1)/bins]; confidence 0 joins the first bin.
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    gap = np.bincount(index, weights=hits, minlength=bins) - np.bincount(index, weights=confidence, minlength=bins)
    return float(np.abs(gap).sum() / y.size * 100.0) if count.sum() else math.nan
