"""The GAN losses of the GAN head (paper eqs. 1-3), one value per stacked member."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from heads.losses.member_mean import member_losses


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Per member ``-E[log D(x_t)] - E[log(1 - D(x~_t))]`` (the max side of eq. 1)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits), reduction="none")
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits), reduction="none")
    return real.mean(-1) + fake.mean(-1)


def generator_losses(fake_logits: torch.Tensor, aux_logits: torch.Tensor, labels: torch.Tensor):
    """Per member ``(L_gan, L_aux)``: ``-E[log D(x~_t)]`` and the auxiliary cross-entropy (eq. 2)."""
    members = fake_logits.shape[0]
    gan = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits), reduction="none").mean(-1)
    aux = member_losses(F.cross_entropy(aux_logits.flatten(0, 1), labels.flatten(), reduction="none"), members)
    return gan, aux
