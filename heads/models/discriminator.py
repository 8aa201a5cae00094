"""The GAN discriminator D on compact temporal features (Table 5).

Three (FC d2, LeakyReLU 0.2, BN) blocks and FC 1. It returns the logit; the sigmoid of
Table 5 is folded into the binary cross-entropy (``binary_cross_entropy_with_logits``),
which is the same loss computed without overflow.
"""

from __future__ import annotations

import torch
from torch import nn

from heads.models.mapping_network import LEAKY_SLOPE
from heads.nn.member_random import MemberRandom
from heads.nn.stacked_batch_norm import StackedBatchNorm
from heads.nn.stacked_linear import StackedLinear


class Discriminator(nn.Module):
    def __init__(self, members: int, in_features: int, hidden_dim: int, init_rng: MemberRandom):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(3):
            layers += [StackedLinear(members, width, hidden_dim, init_rng), nn.LeakyReLU(LEAKY_SLOPE),
                       StackedBatchNorm(members, hidden_dim)]
            width = hidden_dim
        layers.append(StackedLinear(members, width, 1, init_rng))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[G, B]`` that ``x`` (``[G, B, d1]``) is a real temporal feature."""
        return self.layers(x).squeeze(-1)
