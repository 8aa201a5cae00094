"""Batch normalisation with separate statistics and affine parameters per member."""

from __future__ import annotations

import torch
from torch import nn


class StackedBatchNorm(nn.Module):
    """BatchNorm1d over ``[G, B, C]``: member g normalises with its own batch statistics.

    Matches ``nn.BatchNorm1d`` (biased variance to normalise, unbiased variance in the
    running estimate, ``momentum`` weighting the newest batch).
    """

    def __init__(self, members: int, features: int, eps: float = 1e-3, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(members, 1, features))
        self.bias = nn.Parameter(torch.zeros(members, 1, features))
        self.register_buffer("running_mean", torch.zeros(members, 1, features))
        self.register_buffer("running_var", torch.ones(members, 1, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[1] > 1:
            var, mean = torch.var_mean(x, dim=1, unbiased=False, keepdim=True)  # one pass
            with torch.no_grad():
                n = x.shape[1]
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / (n - 1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
