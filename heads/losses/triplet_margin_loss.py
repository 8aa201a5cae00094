"""The triplet loss of the embedding solution (paper eq. 4): ``[d+ - d- + alpha]+``.

``d`` is the Euclidean distance between a still image's embedding and a temporal
instance. Inputs may carry leading member axes (``[G, B, d]`` for G stacked heads);
the margin may then differ per member (a grid over alpha trains in one model).
"""

from __future__ import annotations

import torch
from torch import nn

_REDUCTIONS = ("mean", "member_mean", "none")


class TripletMarginLoss(nn.Module):
    """``loss = mean over triplets of relu(||a - p|| - ||a - n|| + margin)``.

    ``reduction``: ``"mean"`` (one scalar over every triplet), ``"member_mean"`` (mean
    over the last triplet axis, one value per member ``[G]``: sum it so members train
    independently) or ``"none"``. After each call ``active_fraction`` holds the share
    of triplets with a non-zero loss (per member for ``member_mean``), as a float tensor.
    """

    def __init__(self, margin: float | torch.Tensor = 1.0, reduction: str = "mean", eps: float = 1e-12):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.register_buffer("margin", torch.as_tensor(margin, dtype=torch.float32))
        self.reduction = reduction
        self.eps = eps  # keeps the sqrt gradient finite when a == p
        self.active_fraction: torch.Tensor | None = None

    def forward(self, anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        if not (anchors.shape == positives.shape == negatives.shape):
            raise ValueError(
                f"anchors, positives and negatives must share a shape, got "
                f"{tuple(anchors.shape)}, {tuple(positives.shape)}, {tuple(negatives.shape)}"
            )
        d_pos = self.distance(anchors, positives)
        d_neg = self.distance(anchors, negatives)
        margin = self.margin.to(d_pos.dtype)
        if margin.ndim:  # one margin per member: broadcast over the triplet axis
            margin = margin.reshape(*margin.shape, *([1] * (d_pos.ndim - margin.ndim)))
        losses = torch.relu(d_pos - d_neg + margin)
        active = (losses > 0).to(losses.dtype).detach()
        if self.reduction == "none":
            self.active_fraction = active.mean()
            return losses
        if self.reduction == "member_mean":
            self.active_fraction = active.mean(-1)
            return losses.mean(-1)
        self.active_fraction = active.mean()
        return losses.mean()

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((x - y) ** 2).sum(-1).clamp_min(self.eps).sqrt()

    def extra_repr(self) -> str:
        margin = self.margin.tolist()
        return f"margin={margin}, reduction={self.reduction}"
