"""Batch normalisation with separate statistics and affine parameters per member."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class StackedBatchNorm(nn.Module):
    """BatchNorm1d over ``[G, B, C]``: member g normalises with its own batch statistics.

    Matches ``nn.BatchNorm1d`` (biased variance to normalise, unbiased variance in the
    running estimate, ``momentum`` weighting the newest batch). The G members' C channels
    are laid side by side as G*C channels of one ``F.batch_norm`` call: its fused kernel
    (statistics, normalisation, running update and backward) is several times faster than
    the same arithmetic written out over a middle axis, for one member as for sixteen.
    """

    def __init__(self, members: int, features: int, eps: float = 1e-3, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(members, 1, features))
        self.bias = nn.Parameter(torch.zeros(members, 1, features))
        self.register_buffer("running_mean", torch.zeros(members, 1, features))
        self.register_buffer("running_var", torch.ones(members, 1, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members, rows, features = x.shape
        side_by_side = x.transpose(0, 1).reshape(rows, members * features)
        y = F.batch_norm(
            side_by_side, self.running_mean.view(-1), self.running_var.view(-1),
            self.weight.view(-1), self.bias.view(-1),
            training=self.training and rows > 1,  # one row has no batch statistics: use the running ones
            momentum=self.momentum, eps=self.eps,
        )
        # Contiguous again: the next baddbmm would otherwise copy it anyway, more slowly.
        return y.view(rows, members, features).transpose(0, 1).contiguous()
