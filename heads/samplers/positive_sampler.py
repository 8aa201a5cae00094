"""Random co-class temporal instances: the positives of the triplet solution (section 3.2)."""

from __future__ import annotations

import torch

from featcache.errors import CacheError


class PositiveSampler:
    """``sampler(labels, generator)``: for each anchor label, a uniformly random temporal
    index of the same class ``[B]``.

    The temporal rows are grouped by class once (a stable sort), so each call costs
    O(B) rather than a sort of the whole temporal set.
    """

    def __init__(self, temporal_labels):
        temporal_labels = torch.as_tensor(temporal_labels).long().reshape(-1)
        self.device = temporal_labels.device
        labels = temporal_labels.cpu()
        self.counts = torch.bincount(labels) if labels.numel() else torch.zeros(0, dtype=torch.long)
        self.order = torch.argsort(labels, stable=True)
        self.offsets = torch.cumsum(self.counts, 0) - self.counts

    def __call__(self, labels, generator: torch.Generator | None = None) -> torch.Tensor:
        labels = torch.as_tensor(labels).long().reshape(-1).cpu()
        known = labels < self.counts.numel()
        anchor_counts = torch.zeros_like(labels)
        anchor_counts[known] = self.counts[labels[known]]
        if labels.numel() and int(anchor_counts.min()) == 0:
            missing = sorted({int(c) for c in labels[anchor_counts == 0]})
            raise CacheError(f"the temporal set has no rows of class index {missing}; positives need co-class temporal instances")
        draws = torch.rand(labels.numel(), generator=generator, dtype=torch.float64)
        picks = (draws * anchor_counts).long().clamp_max(anchor_counts - 1)
        return self.order[self.offsets[labels] + picks].to(self.device)
