"""The shared shape of the stacked noise layers (Gaussian noise, dropout): one abstract hook."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from heads.nn.member_random import MemberRandom


class BaseMemberNoise(nn.Module):
    """Training-only noise on ``[G, B, C]``, identity at inference: member g's strength is row g of
    the buffer ``name`` (``[G, 1, 1]``, saved in checkpoints) and its draws come from ``rng``.
    Subclasses implement :meth:`perturb`."""

    def __init__(self, name: str, values: Sequence[float], rng: MemberRandom,
                 valid: Callable[[float], bool], requirement: str):
        super().__init__()
        if not all(valid(v) for v in values):
            raise ValueError(f"{requirement}, got {list(values)}")
        self.rng = rng
        self.register_buffer(name, torch.tensor(list(values), dtype=torch.float32).view(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.perturb(x) if self.training else x

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
