"""Shared part of the semi-hard negative miners of the triplet solution (paper section 3.2).

For a still anchor embedding ``a`` of class ``y`` and a positive temporal instance ``p``
of class ``y``, the semi-hard negative is the nearest temporal instance ``n`` of another
class with ``d(a, n) > d(a, p)``; when no negative is farther than the positive, the
farthest negative is used instead. Distances are squared Euclidean (the order is the
same as Euclidean), computed in float64 so that every miner makes the same choices;
ties go to the lowest temporal index.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from featcache.errors import CacheError


class MiningResult(NamedTuple):
    """``negatives[i]``: temporal index of anchor i's negative; ``semi_hard[i]``: False when
    no semi-hard negative existed and the farthest negative was used."""

    negatives: torch.Tensor
    semi_hard: torch.Tensor


def squared_distances(anchors: torch.Tensor, rows: torch.Tensor, rows_sq: torch.Tensor) -> torch.Tensor:
    """float64 ``||a - t||^2`` for anchors ``[B, d]`` against rows ``[N, d]`` -> ``[B, N]``."""
    anchors_sq = (anchors * anchors).sum(1, keepdim=True)
    return (anchors_sq + rows_sq[None, :] - 2.0 * anchors @ rows.T).clamp_min_(0.0)


def gathered_squared_distances(
    anchors: torch.Tensor, rows: torch.Tensor, rows_sq: torch.Tensor, index: torch.Tensor
) -> torch.Tensor:
    """float64 ``||a_i - t_{index[i, j]}||^2`` -> ``[B, k]`` (the same formula as above)."""
    anchors_sq = (anchors * anchors).sum(1, keepdim=True)
    dots = torch.bmm(rows[index], anchors[:, :, None]).squeeze(2)
    return (anchors_sq + rows_sq[index] - 2.0 * dots).clamp_min_(0.0)


def select_negatives(
    distances: torch.Tensor,
    candidate_labels: torch.Tensor,
    candidate_index: torch.Tensor,
    anchor_labels: torch.Tensor,
    positive_distances: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Choose among candidates ``[B, M]`` (their distances, labels and temporal indices).

    Returns ``(semi_hard_index, has_semi_hard, semi_hard_distance, farthest_index)``:
    the nearest qualifying negative (lowest index on ties) and whether one exists, and
    the farthest negative among the candidates (the fallback).
    """
    negative = candidate_labels != anchor_labels[:, None]
    qualifies = negative & (distances > positive_distances[:, None])
    inf = torch.tensor(float("inf"), dtype=distances.dtype, device=distances.device)
    nearest = torch.where(qualifies, distances, inf).min(1).values
    has_semi_hard = torch.isfinite(nearest)
    semi_hard_index = _lowest_index(qualifies & (distances == nearest[:, None]), candidate_index)
    farthest = torch.where(negative, distances, -inf).max(1).values
    farthest_index = _lowest_index(negative & (distances == farthest[:, None]), candidate_index)
    return semi_hard_index, has_semi_hard, nearest, farthest_index


def _lowest_index(mask: torch.Tensor, candidate_index: torch.Tensor) -> torch.Tensor:
    big = torch.iinfo(torch.int64).max
    return torch.where(mask, candidate_index, torch.full_like(candidate_index, big)).min(1).values


class BaseSemiHardMiner:
    """Holds the fixed temporal set; subclasses implement :meth:`mine_negatives`.

    ``temporal_features`` ``[N, d]`` and ``temporal_labels`` ``[N]`` are the whole
    temporal set in the compact temporal space; it must not change while mining.
    """

    def __init__(self, temporal_features: torch.Tensor, temporal_labels: torch.Tensor, device=None):
        features = torch.as_tensor(temporal_features).detach()
        labels = torch.as_tensor(temporal_labels).detach().long().reshape(-1)
        if features.ndim != 2 or features.shape[0] != labels.shape[0] or features.shape[0] == 0:
            raise CacheError(
                f"temporal set must be features [N, d] with N labels and N > 0, "
                f"got {tuple(features.shape)} and {tuple(labels.shape)}"
            )
        self.device = torch.device(device) if device is not None else features.device
        self.temporal_features = features.to(self.device)
        self.temporal_labels = labels.to(self.device)
        self._rows64 = self.temporal_features.double()
        self._rows_sq = (self._rows64 * self._rows64).sum(1)

    def __len__(self) -> int:
        return int(self.temporal_labels.shape[0])

    @property
    def dim(self) -> int:
        return int(self.temporal_features.shape[1])

    def __call__(self, anchors: torch.Tensor, anchor_labels: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """Temporal indices of the negatives ``[B]`` (see :meth:`mine`)."""
        return self.mine(anchors, anchor_labels, positives).negatives

    def mine(self, anchors: torch.Tensor, anchor_labels: torch.Tensor, positives: torch.Tensor) -> MiningResult:
        """Semi-hard negatives for anchors ``[B, d]`` with labels ``[B]`` and positive
        temporal indices ``[B]`` (see :class:`heads.samplers.positive_sampler.PositiveSampler`)."""
        anchors = anchors.detach().to(self.device)
        anchor_labels = torch.as_tensor(anchor_labels).to(self.device).long().reshape(-1)
        positives = torch.as_tensor(positives).to(self.device).long().reshape(-1)
        if anchors.ndim != 2 or anchors.shape[1] != self.dim:
            raise ValueError(f"anchors must be [B, {self.dim}], got {tuple(anchors.shape)}")
        if not (anchors.shape[0] == anchor_labels.shape[0] == positives.shape[0]):
            raise ValueError("anchors, anchor_labels and positives must have the same length")
        if anchors.shape[0] == 0:
            empty = torch.zeros(0, dtype=torch.long, device=self.device)
            return MiningResult(empty, empty.bool())
        if not torch.equal(self.temporal_labels[positives], anchor_labels):
            raise ValueError("every positive must be a temporal instance of its anchor's class")
        anchors64 = anchors.double()
        positive_distances = gathered_squared_distances(anchors64, self._rows64, self._rows_sq, positives[:, None])[:, 0]
        return self.mine_negatives(anchors64, anchor_labels, positive_distances)

    def mine_negatives(
        self, anchors64: torch.Tensor, anchor_labels: torch.Tensor, positive_distances: torch.Tensor
    ) -> MiningResult:
        raise NotImplementedError

    def exact_negatives(
        self, anchors64: torch.Tensor, anchor_labels: torch.Tensor, positive_distances: torch.Tensor, chunk: int = 256
    ) -> MiningResult:
        """Full-scan selection against every temporal row, ``chunk`` anchors at a time."""
        negatives, semi_hard = [], []
        candidate_index = torch.arange(len(self), device=self.device)
        for start in range(0, anchors64.shape[0], chunk):
            part = slice(start, start + chunk)
            distances = squared_distances(anchors64[part], self._rows64, self._rows_sq)
            rows = distances.shape[0]
            index, found, _, farthest = select_negatives(
                distances,
                self.temporal_labels.expand(rows, -1),
                candidate_index.expand(rows, -1),
                anchor_labels[part],
                positive_distances[part],
            )
            negatives.append(torch.where(found, index, farthest))
            semi_hard.append(found)
        return MiningResult(torch.cat(negatives), torch.cat(semi_hard))
