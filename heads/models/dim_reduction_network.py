"""The dimensionality-reduction network of Tables 5 and 7: FC d1, tanh, BN, dropout, FC C.

Trained on real temporal features; afterwards it is frozen. Its tanh+BN output is the
fixed compact temporal space that the GAN generates into and the embedding maps into,
and its last layer is the auxiliary (temporal) classifier of the GAN solution.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from heads.nn.member_random import MemberRandom
from heads.nn.stacked_batch_norm import StackedBatchNorm
from heads.nn.stacked_dropout import StackedDropout
from heads.nn.stacked_linear import StackedLinear


class DimReductionNetwork(nn.Module):
    def __init__(
        self,
        members: int,
        in_features: int,
        compact_dim: int,
        num_classes: int,
        dropout: Sequence[float],
        init_rng: MemberRandom,
        train_rng: MemberRandom,
    ):
        super().__init__()
        self.reduce = StackedLinear(members, in_features, compact_dim, init_rng)
        self.norm = StackedBatchNorm(members, compact_dim)
        self.dropout = StackedDropout(dropout, train_rng)
        self.classifier = StackedLinear(members, compact_dim, num_classes, init_rng)

    def compact(self, x: torch.Tensor) -> torch.Tensor:
        """Temporal features ``[G, B, D]`` -> compact temporal features ``[G, B, d1]``."""
        return self.norm(torch.tanh(self.reduce(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.compact(x)))
