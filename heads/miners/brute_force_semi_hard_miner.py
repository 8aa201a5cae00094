"""The reference semi-hard miner: full float64 distance matrices in torch."""

from __future__ import annotations

import torch

from heads.miners.base_semi_hard_miner import BaseSemiHardMiner, MiningResult


class BruteForceSemiHardMiner(BaseSemiHardMiner):
    """Distances from every anchor to every temporal row (``chunk`` anchors at a time).

    Exact by construction; the FAISS miner must return the same negatives. Cost is
    ``O(B * N * d)`` per batch and ``chunk * N`` float64 of memory.
    """

    def __init__(self, temporal_features: torch.Tensor, temporal_labels: torch.Tensor, device=None, chunk: int = 256):
        super().__init__(temporal_features, temporal_labels, device=device)
        self.chunk = int(chunk)

    def mine_negatives(
        self, anchors64: torch.Tensor, anchor_labels: torch.Tensor, positive_distances: torch.Tensor
    ) -> MiningResult:
        return self.exact_negatives(anchors64, anchor_labels, positive_distances, chunk=self.chunk)
