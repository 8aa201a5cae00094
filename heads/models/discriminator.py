"""The GAN discriminator D on compact temporal features (Table 5).

Three (FC d2, LeakyReLU 0.2, norm) blocks and FC 1. It returns the logit; the sigmoid of
Table 5 is folded into the binary cross-entropy (``binary_cross_entropy_with_logits``),
which is the same loss computed without overflow.

``norm`` says how the batch norm of those blocks sees the real and generated batches:

- ``joint`` (default): one forward pass over the real and generated rows together, so both are
  normalised by the same statistics and their difference in mean and spread survives;
- ``separate``: Table 5 as first implemented here, one pass per batch, each normalised by its
  own statistics. That erases the first two moments that tell the batches apart: D sat at
  2 ln 2 for the whole demo run (``benchmarks/gan_discriminator.py`` measures it);
- ``none``: no batch norm.
"""

from __future__ import annotations

import torch
from torch import nn

from heads.models.mapping_network import LEAKY_SLOPE
from heads.nn.member_random import MemberRandom
from heads.nn.stacked_batch_norm import StackedBatchNorm
from heads.nn.stacked_linear import StackedLinear

NORMS = ("joint", "separate", "none")


class Discriminator(nn.Module):
    def __init__(self, members: int, in_features: int, hidden_dim: int, init_rng: MemberRandom,
                 norm: str = "joint"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"discriminator norm {norm!r}; expected one of {', '.join(NORMS)}")
        self.norm = norm
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(3):
            layers += [StackedLinear(members, width, hidden_dim, init_rng), nn.LeakyReLU(LEAKY_SLOPE)]
            if norm != "none":
                layers.append(StackedBatchNorm(members, hidden_dim))
            width = hidden_dim
        layers.append(StackedLinear(members, width, 1, init_rng))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[G, B]`` that ``x`` (``[G, B, d1]``) is a real temporal feature."""
        return self.layers(x).squeeze(-1)

    def score(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of the real ``[G, B, d1]`` and generated ``[G, B', d1]`` rows: one pass over
        both (``joint``, ``none``) or one pass each (``separate``)."""
        if self.norm == "separate":
            return self(real), self(fake)
        logits = self(torch.cat([real, fake], dim=1))
        return logits[:, : real.shape[1]], logits[:, real.shape[1]:]
