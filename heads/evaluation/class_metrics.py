"""The metrics action-recognition papers report besides top-1 (AP and confusion by scikit-learn).

* ``top5``: top-5 accuracy in percent, only meaningful with more than 5 classes (else None);
* ``map``: mean over classes of the average precision of ranking the images by that
  class's score (one-vs-rest), in percent: the standard Stanford-40 metric. Classes with
  no positive image in the split have no AP and are left out of the mean;
* ``confusion``: ``[C, C]`` counts, rows = true class, columns = predicted class.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix

TOP_K = 5


def _arrays(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(probs, "detach"):
        probs = probs.detach().cpu().numpy()
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    return np.asarray(probs, dtype=np.float64), np.asarray(labels).astype(np.int64).reshape(-1)


def top_k_correct(probs: Any, labels: Any, k: int = TOP_K) -> np.ndarray | None:
    """Per image, whether fewer than ``k`` classes score strictly higher than its label (so a tie
    at the k-th place counts as a hit); None with no more than ``k`` classes (always a hit)."""
    p, y = _arrays(probs, labels)
    if p.shape[1] <= k or y.size == 0:
        return None
    label_score = p[np.arange(y.size), y]
    return (p > label_score[:, None]).sum(1) < k


def top_k_accuracy(probs: Any, labels: Any, k: int = TOP_K) -> float | None:
    """Top-k accuracy in percent; None when there are no more than k classes (it would be 100)."""
    hits = top_k_correct(probs, labels, k)
    return None if hits is None else float(hits.mean() * 100.0)


def mean_average_precision(probs: Any, labels: Any) -> float | None:
    """Mean over classes (with at least one positive image) of the one-vs-rest average precision, percent."""
    p, y = _arrays(probs, labels)
    present = [c for c in range(p.shape[1]) if np.any(y == c)]
    if not present:
        return None
    aps = [average_precision_score(y == c, p[:, c]) for c in present]
    value = float(np.mean(aps) * 100.0)
    return value if math.isfinite(value) else None


def confusion(probs: Any, labels: Any) -> list[list[int]]:
    """``[C, C]`` counts of (true class, top-1 predicted class) as nested lists."""
    p, y = _arrays(probs, labels)
    matrix = confusion_matrix(y, p.argmax(axis=1), labels=np.arange(p.shape[1]))
    return matrix.astype(int).tolist()
