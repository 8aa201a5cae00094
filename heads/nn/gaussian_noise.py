"""Additive Gaussian noise (training only), per-member standard deviation and generator."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from heads.nn.member_random import MemberRandom


class GaussianNoise(nn.Module):
    """``x + sd[g] * N(0, 1)`` on ``[G, B, C]`` while training; identity at inference.

    The paper feeds the generator its noise z this way (Table 5: mean 0, sd 0.01) instead
    of concatenating a noise vector to the input.
    """

    def __init__(self, stddevs: Sequence[float], rng: MemberRandom):
        super().__init__()
        if any(s < 0 for s in stddevs):
            raise ValueError(f"noise standard deviations must be >= 0, got {list(stddevs)}")
        self.rng = rng
        self.register_buffer("stddevs", torch.tensor(list(stddevs), dtype=torch.float32).view(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return x + self.stddevs * self.rng.randn(*x.shape[1:]).to(x.device)
