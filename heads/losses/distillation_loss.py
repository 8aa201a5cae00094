"""Soft-target distillation loss of Hinton et al. (2015), as used by T2SIL's TSN (paper eq. 5-6).

The teacher's softmax at temperature T is the target distribution; the loss is the cross-entropy
``H(softmax(t / T), softmax(s / T))`` between it and the student's softmax at the same temperature,
multiplied by ``T**2`` so that gradient magnitudes stay comparable across temperatures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DistillationLoss(nn.Module):
    """``T**2 * H(softmax(teacher / T), softmax(student / T))``, averaged over the batch.

    Cross-entropy and KL divergence differ by the teacher's entropy, a constant for the student,
    so they give the same gradients; cross-entropy is what the paper writes (eq. 6).
    """

    def __init__(self, temperature: float = 1.0, reduction: str = "mean"):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be mean, sum or none, got {reduction!r}")
        self.temperature = float(temperature)
        self.reduction = reduction

    def soft_targets(self, teacher_logits: torch.Tensor) -> torch.Tensor:
        return F.softmax(teacher_logits.float() / self.temperature, dim=1)

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        if student_logits.shape != teacher_logits.shape:
            raise ValueError(
                f"student logits {tuple(student_logits.shape)} and teacher logits "
                f"{tuple(teacher_logits.shape)} differ in shape"
            )
        targets = self.soft_targets(teacher_logits.detach())
        log_probs = F.log_softmax(student_logits.float() / self.temperature, dim=1)
        losses = -(targets * log_probs).sum(dim=1) * self.temperature**2
        if self.reduction == "mean":
            return losses.mean()
        if self.reduction == "sum":
            return losses.sum()
        return losses

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"
