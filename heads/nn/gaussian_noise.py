"""Additive Gaussian noise (training only), per-member standard deviation and generator."""

from __future__ import annotations

from typing import Sequence

import torch

from heads.nn.base_member_noise import BaseMemberNoise
from heads.nn.member_random import MemberRandom


class GaussianNoise(BaseMemberNoise):
    """``x + sd[g] * N(0, 1)`` on ``[G, B, C]`` while training; identity at inference.

    The paper feeds the generator its noise z this way (Table 5: mean 0, sd 0.01) instead
    of concatenating a noise vector to the input.
    """

    def __init__(self, stddevs: Sequence[float], rng: MemberRandom):
        super().__init__("stddevs", stddevs, rng, lambda s: not s < 0, "noise standard deviations must be >= 0")

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.stddevs * self.rng.randn(*x.shape[1:]).to(x.device)
