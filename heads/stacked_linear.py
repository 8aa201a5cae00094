"""A fully connected layer holding G independent members (weights ``[G, in, out]``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from heads.member_random import MemberRandom


class StackedLinear(nn.Module):
    """``y[g] = x[g] @ W[g] + b[g]`` for every member g, computed with one ``baddbmm``.

    Input ``[G, B, in]``, output ``[G, B, out]``. Initialised like ``nn.Linear``
    (uniform in +-1/sqrt(in)) from each member's own generator.
    """

    def __init__(self, members: int, in_features: int, out_features: int, rng: MemberRandom):
        super().__init__()
        if len(rng) != members:
            raise ValueError(f"rng has {len(rng)} generators for {members} members")
        bound = 1.0 / math.sqrt(in_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter((rng.rand(in_features, out_features) * 2 - 1) * bound)
        self.bias = nn.Parameter((rng.rand(1, out_features) * 2 - 1) * bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"members={self.weight.shape[0]}, in={self.in_features}, out={self.out_features}"
