"""X-means: k-means that chooses the number of clusters by BIC (Pelleg & Moore, ICML 2000).

Starting from ``min_clusters`` centres, each round (1) runs k-means on all points
("Improve-Params"), then (2) tries to split every cluster in two with a local 2-means
and keeps the split when the children's BIC beats the parent's ("Improve-Structure").
It stops when no cluster splits or ``max_clusters`` is reached, and returns the model
with the best global BIC among those it visited.

The BIC uses the identical spherical Gaussian model of the paper::

    log L = sum_i [ log(R_c / R) - d/2 log(2 pi s2) - |x_i - mu_c|^2 / (2 s2) ]
    s2    = SSE / (d (R - K))                 # pooled per-dimension variance (unbiased)
    BIC   = log L - p/2 log R,   p = (K - 1) + K d + 1
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans


def kmeans_bic(points: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> float:
    """BIC (higher is better) of a hard clustering under the spherical Gaussian model."""
    num_points, dim = points.shape
    num_clusters = centers.shape[0]
    if num_points <= num_clusters:
        return -np.inf  # variance not estimable
    sse = float(((points - centers[labels]) ** 2).sum())
    variance = max(sse / (dim * (num_points - num_clusters)), 1e-12)
    sizes = np.bincount(labels, minlength=num_clusters).astype(np.float64)
    occupied = sizes[sizes > 0]
    log_likelihood = (
        float((occupied * np.log(occupied / num_points)).sum())
        - num_points * dim / 2.0 * np.log(2.0 * np.pi * variance)
        - sse / (2.0 * variance)
    )
    num_params = (num_clusters - 1) + num_clusters * dim + 1
    return log_likelihood - num_params / 2.0 * np.log(num_points)


class XMeans:
    """K-means with the number of clusters (``min_clusters``..``max_clusters``) chosen by BIC.

    After :meth:`fit`: ``cluster_centers_ [k, d]``, ``labels_ [n]``, ``n_clusters_`` and
    ``bic_`` (the chosen model's BIC); ``history_`` lists ``(k, bic)`` per round.
    """

    def __init__(self, max_clusters: int = 5, min_clusters: int = 1, seed: int = 0, n_init: int = 3):
        if min_clusters < 1 or max_clusters < min_clusters:
            raise ValueError(f"need 1 <= min_clusters <= max_clusters, got {min_clusters}, {max_clusters}")
        self.max_clusters = max_clusters
        self.min_clusters = min_clusters
        self.seed = seed
        self.n_init = n_init

    def _kmeans(self, points: np.ndarray, k: int, init: np.ndarray | None = None) -> KMeans:
        if init is None:
            model = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.seed)
        else:
            model = KMeans(n_clusters=k, init=init, n_init=1, random_state=self.seed)
        return model.fit(points)

    def _split_gain(self, points: np.ndarray) -> tuple[float, np.ndarray | None]:
        """(BIC gain, two child centres) of splitting one cluster's points; gain <= 0: keep it."""
        if len(points) < 4 or np.allclose(points, points[0]):
            return 0.0, None
        parent_center = points.mean(axis=0, keepdims=True)
        parent_bic = kmeans_bic(points, np.zeros(len(points), dtype=np.int64), parent_center)
        children = self._kmeans(points, 2)
        child_bic = kmeans_bic(points, children.labels_, children.cluster_centers_)
        return child_bic - parent_bic, children.cluster_centers_

    def fit(self, points: np.ndarray) -> "XMeans":
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or len(points) == 0:
            raise ValueError(f"expected a non-empty [n, d] array, got shape {points.shape}")
        k = min(self.min_clusters, len(points))
        model = self._kmeans(points, k)
        best = (kmeans_bic(points, model.labels_, model.cluster_centers_), model)
        self.history_ = [(k, best[0])]
        while k < self.max_clusters:
            gains = [self._split_gain(points[model.labels_ == c]) for c in range(k)]
            # Over budget, the splits with the largest BIC gain win (as in Pelleg & Moore).
            ranked = sorted((c for c in range(k) if gains[c][0] > 0), key=lambda c: -gains[c][0])
            accepted = set(ranked[: self.max_clusters - k])
            new_centers = []
            for c in range(k):
                new_centers.extend(gains[c][1] if c in accepted else [model.cluster_centers_[c]])
            new_centers = np.asarray(new_centers)
            if len(new_centers) == k:
                break
            k = len(new_centers)
            model = self._kmeans(points, k, init=new_centers)
            bic = kmeans_bic(points, model.labels_, model.cluster_centers_)
            self.history_.append((k, bic))
            if bic > best[0]:
                best = (bic, model)
        self.bic_, chosen = best
        self.cluster_centers_ = chosen.cluster_centers_
        self.labels_ = chosen.labels_
        self.n_clusters_ = int(chosen.cluster_centers_.shape[0])
        return self

    def nearest_points(self, points: np.ndarray) -> np.ndarray:
        """Index of the point nearest each centre (one per centre, in centre order)."""
        points = np.asarray(points, dtype=np.float64)
        distances = ((points[None, :, :] - self.cluster_centers_[:, None, :]) ** 2).sum(-1)
        return distances.argmin(axis=1)
