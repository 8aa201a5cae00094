"""Dropout with a per-member rate and masks drawn from each member's generator."""

from __future__ import annotations

from typing import Sequence

import torch

from heads.nn.base_member_noise import BaseMemberNoise
from heads.nn.member_random import MemberRandom


class StackedDropout(BaseMemberNoise):
    """Inverted dropout on ``[G, B, C]``; member g drops with probability ``rates[g]``."""

    def __init__(self, rates: Sequence[float], rng: MemberRandom):
        super().__init__("rates", rates, rng, lambda r: 0.0 <= r < 1.0, "dropout rates must lie in [0, 1)")

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        keep = 1.0 - self.rates
        mask = self.rng.rand(*x.shape[1:]).to(x.device) < keep
        return x * mask / keep
