"""Two-sample statistics: how far apart two sets of feature rows are (GAN checks)."""

from __future__ import annotations

import torch


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> float:
    """The squared maximum mean discrepancy of rows ``x [N, D]`` and ``y [M, D]`` under a Gaussian
    kernel (unbiased estimate; 0 in expectation when they come from one distribution). The
    bandwidth defaults to the median distance of the pooled rows (the median heuristic)."""
    x, y = x.double(), y.double()
    pooled = torch.cat([x, y])
    distances = torch.cdist(pooled, pooled).pow(2)
    if bandwidth is None:
        off_diagonal = distances[~torch.eye(len(pooled), dtype=torch.bool)]
        bandwidth = float(off_diagonal.median().sqrt().clamp_min(1e-12))
    kernel = torch.exp(-distances / (2 * bandwidth ** 2))
    n, m = len(x), len(y)
    kxx, kyy, kxy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def mean_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Euclidean distance between the mean rows of ``x`` and ``y``."""
    return float((x.double().mean(0) - y.double().mean(0)).norm())
