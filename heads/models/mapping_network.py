"""The still -> compact-temporal MLP shared by the GAN generator and the embedding network.

Tables 5 and 7: (FC d0, LeakyReLU 0.2, BN, dropout, Gaussian noise) twice, then FC d1,
tanh, BN, so its output lives in the same space as the dimensionality-reduction network's.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from heads.nn.gaussian_noise import GaussianNoise
from heads.nn.member_random import MemberRandom
from heads.nn.stacked_batch_norm import StackedBatchNorm
from heads.nn.stacked_dropout import StackedDropout
from heads.nn.stacked_linear import StackedLinear

LEAKY_SLOPE = 0.2


class MappingNetwork(nn.Module):
    def __init__(
        self,
        members: int,
        in_features: int,
        hidden_dim: int,
        out_dim: int,
        dropout: Sequence[float],
        noise: Sequence[float],
        init_rng: MemberRandom,
        train_rng: MemberRandom,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(2):
            layers += [
                StackedLinear(members, width, hidden_dim, init_rng),
                nn.LeakyReLU(LEAKY_SLOPE),
                StackedBatchNorm(members, hidden_dim),
                StackedDropout(dropout, train_rng),
                GaussianNoise(noise, train_rng),
            ]
            width = hidden_dim
        layers += [StackedLinear(members, width, out_dim, init_rng), nn.Tanh(), StackedBatchNorm(members, out_dim)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
