"""Dropout with a per-member rate and masks drawn from each member's generator."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from heads.nn.member_random import MemberRandom


class StackedDropout(nn.Module):
    """Inverted dropout on ``[G, B, C]``; member g drops with probability ``rates[g]``."""

    def __init__(self, rates: Sequence[float], rng: MemberRandom):
        super().__init__()
        if any(not 0.0 <= r < 1.0 for r in rates):
            raise ValueError(f"dropout rates must lie in [0, 1), got {list(rates)}")
        self.rng = rng
        self.register_buffer("rates", torch.tensor(list(rates), dtype=torch.float32).view(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        keep = 1.0 - self.rates
        mask = self.rng.rand(*x.shape[1:]).to(x.device) < keep
        return x * mask / keep
