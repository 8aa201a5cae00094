"""Semi-hard negatives over the whole temporal set with an exact FAISS index.

The temporal space is frozen while the embedding trains, so one ``IndexFlatL2`` (exact,
squared L2) is built once, on the GPU when faiss has GPU support and CUDA is available.
Each batch gets ONE search of the ``k`` nearest rows; anchors it cannot resolve (their
semi-hard negative lies deeper than ``k``, or none exists and the farthest negative is
needed) get an exact full scan. A flat search is itself a full scan, so a second, deeper
search would cost as much as the exact one: instead ``k`` adapts across calls (grows when
fewer than 90% of anchors resolve, shrinks when they resolve well inside it), and while
even ``max_k`` resolves fewer than half of them, as early in training when positives are
far, the search is skipped and re-probed every ``probe_every`` calls.

Candidates returned by FAISS (float32) are re-scored in float64 with the same formula
as :class:`~heads.brute_force_semi_hard_miner.BruteForceSemiHardMiner`. An anchor is
resolved only when its best qualifying candidate lies clearly inside the searched
radius (by more than the float32 error bound), which guarantees no closer qualifying
negative was left out: the result equals the brute-force one.
"""

from __future__ import annotations

import numpy as np
import torch

from featcache.errors import FeatcacheError
from heads.base_semi_hard_miner import (
    BaseSemiHardMiner,
    MiningResult,
    select_negatives,
)

# Unit round-off of float32, scaled per distance term in the error bound below.
_EPS32 = 2.0**-24


def faiss_gpu_available() -> bool:
    import faiss

    return hasattr(faiss, "StandardGpuResources") and torch.cuda.is_available() and faiss.get_num_gpus() > 0


class FaissSemiHardMiner(BaseSemiHardMiner):
    """``miner(anchors, anchor_labels, positives) -> negatives`` over the fixed temporal set.

    ``use_gpu``: ``"auto"`` (GPU when possible), ``True`` (error without faiss GPU
    support) or ``False``. ``initial_k``/``growth``/``max_k`` bound the adaptive search
    depth; ``adaptive=False`` always searches ``initial_k``. ``stats`` counts anchors
    resolved by the FAISS search (per k) and by the exact fallback.
    """

    def __init__(
        self,
        temporal_features: torch.Tensor,
        temporal_labels: torch.Tensor,
        use_gpu: bool | str = "auto",
        initial_k: int = 64,
        growth: int = 4,
        max_k: int = 2048,
        gpu_device: int = 0,
        adaptive: bool = True,
        probe_every: int = 25,
    ):
        import faiss

        if use_gpu not in ("auto", True, False):
            raise ValueError(f"use_gpu must be 'auto', True or False, got {use_gpu!r}")
        gpu_ok = faiss_gpu_available()
        if use_gpu is True and not gpu_ok:
            raise FeatcacheError("FaissSemiHardMiner(use_gpu=True): faiss has no GPU support here or CUDA is unavailable; install faiss-gpu or use use_gpu='auto'")
        self.on_gpu = bool(gpu_ok and use_gpu in ("auto", True))
        device = torch.device("cuda", gpu_device) if self.on_gpu else torch.device("cpu")
        super().__init__(temporal_features, temporal_labels, device=device)
        if initial_k < 1 or growth < 2 or max_k < initial_k or probe_every < 1:
            raise ValueError(f"need 1 <= initial_k <= max_k, growth >= 2, probe_every >= 1; got {initial_k}, {growth}, {max_k}, {probe_every}")
        self.initial_k, self.growth, self.max_k = int(initial_k), int(growth), int(max_k)
        self.adaptive, self.probe_every = adaptive, int(probe_every)
        self._k = self.initial_k
        self._skip = 0  # calls left before FAISS is probed again
        rows32 = np.ascontiguousarray(self.temporal_features.float().cpu().numpy())
        index = faiss.IndexFlatL2(self.dim)
        if self.on_gpu:
            self._gpu_resources = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(self._gpu_resources, gpu_device, index)
        index.add(rows32)
        self.index = index
        self._max_row_sq = float(self._rows_sq.max())
        self.stats: dict[str, int] = {}
        self.reset_stats()

    def reset_stats(self) -> None:
        self.stats = {"anchors": 0, "exact_fallback": 0}

    def mine_negatives(
        self, anchors64: torch.Tensor, anchor_labels: torch.Tensor, positive_distances: torch.Tensor
    ) -> MiningResult:
        count = anchors64.shape[0]
        negatives = torch.empty(count, dtype=torch.long, device=self.device)
        semi_hard = torch.zeros(count, dtype=torch.bool, device=self.device)
        pending = torch.arange(count, device=self.device)
        self.stats["anchors"] += count
        k = min(self._k, len(self))
        if self._skip:
            self._skip -= 1
        elif k < len(self):
            # Bound on |faiss float32 distance - float64 distance| per anchor.
            tolerance = (self.dim + 4) * _EPS32 * 4.0 * ((anchors64 * anchors64).sum(1) + self._max_row_sq)
            resolved, found, ranks = self._search_round(
                anchors64.float().cpu().numpy(), anchors64, anchor_labels, positive_distances, tolerance, k
            )
            negatives[resolved], semi_hard[resolved] = found, True
            self.stats[f"k={k}"] = self.stats.get(f"k={k}", 0) + int(resolved.sum())
            pending = pending[~resolved]
            if self.adaptive:
                self._adapt(k, float(resolved.float().mean()), ranks)
        if pending.numel():
            self.stats["exact_fallback"] += int(pending.numel())
            rest = self.exact_negatives(anchors64[pending], anchor_labels[pending], positive_distances[pending])
            negatives[pending] = rest.negatives
            semi_hard[pending] = rest.semi_hard
        return MiningResult(negatives, semi_hard)

    def _adapt(self, k: int, resolved_fraction: float, ranks: torch.Tensor) -> None:
        """Choose the next call's search depth from how this one went."""
        if resolved_fraction < 0.9:
            if k >= self.max_k and resolved_fraction < 0.5:
                self._skip = self.probe_every  # FAISS cannot help yet: exact scans only
            self._k = min(k * self.growth, self.max_k)
        elif ranks.numel() and int(ranks.float().quantile(0.9)) * self.growth < k:
            self._k = max(self.initial_k, k // self.growth)

    def _search_round(self, anchors32, anchors64, anchor_labels, positive_distances, tolerance, k):
        """Search ``k`` neighbours of every anchor; returns (resolved mask, their negatives,
        the rank of each resolved negative in the FAISS list).

        Only candidates that can be the answer are re-scored in float64: negatives whose
        FAISS distance is above ``d(a, p) - tol`` and within ``2 tol`` of the nearest surely
        qualifying one (the others are either not farther than the positive or farther
        than a qualifying candidate, whatever the float32 round-off). An anchor is resolved
        only when its answer lies clearly inside the searched radius.
        """
        found_d, found_i = self.index.search(np.ascontiguousarray(anchors32), k)
        index = torch.from_numpy(found_i).to(self.device)
        approx = torch.from_numpy(found_d).to(self.device, torch.float64)
        tol, d_ap = tolerance[:, None], positive_distances[:, None]
        negative = self.temporal_labels[index] != anchor_labels[:, None]
        inf = torch.tensor(float("inf"), dtype=torch.float64, device=self.device)
        surely = torch.where(negative & (approx > d_ap + 2 * tol), approx, inf).min(1, keepdim=True).values
        rescore = negative & (approx > d_ap - tol) & (approx <= surely + 2 * tol)
        rows, cols = torch.nonzero(rescore, as_tuple=True)
        distances = torch.full_like(approx, -inf)  # not re-scored: never qualifies
        a, t = anchors64[rows], self._rows64[index[rows, cols]]
        distances[rows, cols] = ((a * a).sum(1) + self._rows_sq[index[rows, cols]] - 2.0 * (a * t).sum(1)).clamp_min(0.0)
        best, has, nearest, _ = select_negatives(distances, self.temporal_labels[index], index, anchor_labels, d_ap[:, 0])
        resolved = has & (nearest + tol[:, 0] < approx[:, -1])
        ranks = (index[resolved] == best[resolved, None]).float().argmax(1)
        return resolved, best[resolved], ranks
