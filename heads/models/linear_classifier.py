"""A stacked linear softmax classifier (FC C): the still model and the embedding classifier."""

from __future__ import annotations

import torch
from torch import nn

from heads.nn.member_random import MemberRandom
from heads.nn.stacked_linear import StackedLinear


class LinearClassifier(nn.Module):
    """Class scores ``[G, B, C]`` from features ``[G, B, D]``, one linear layer per member."""

    def __init__(self, members: int, in_features: int, num_classes: int, init_rng: MemberRandom):
        super().__init__()
        self.fc = StackedLinear(members, in_features, num_classes, init_rng)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)
