"""Semi-hard negatives over the whole temporal set with an exact FAISS index.

The temporal space is frozen while the embedding trains, so one ``IndexFlatL2`` (exact,
squared L2) is built once, on the GPU when faiss has GPU support and CUDA is available.
Each batch is searched in rounds of growing ``k`` (64, 256, 1024, ... up to ``max_k``)
for the anchors still unresolved; anchors left over (typically: no negative is farther
than the positive, so the farthest negative is needed) get an exact full scan.

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
    support) or ``False``. ``initial_k``/``growth``/``max_k`` set the search rounds; with
    ``adaptive`` the next call starts at the k that resolved 90% of the last call's
    anchors (each round is a full scan of a flat index, so wasted small rounds cost).
    ``stats`` counts anchors resolved per round and by the exact fallback.
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
        if initial_k < 1 or growth < 2 or max_k < initial_k:
            raise ValueError(f"need 1 <= initial_k <= max_k and growth >= 2, got {initial_k}, {growth}, {max_k}")
        self.initial_k, self.growth, self.max_k = int(initial_k), int(growth), int(max_k)
        self.adaptive = adaptive
        self._start_k = self.initial_k
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
        anchors32 = anchors64.float().cpu().numpy()
        # Bound on |faiss float32 distance - float64 distance| per anchor.
        tolerance = (self.dim + 4) * _EPS32 * 4.0 * ((anchors64 * anchors64).sum(1) + self._max_row_sq)
        pending = torch.arange(count, device=self.device)
        k = min(self._start_k, len(self))
        needed: list[int] = []
        self.stats["anchors"] += count
        while pending.numel() and k < len(self):
            resolved = self._search_round(anchors32, anchors64, anchor_labels, positive_distances, tolerance, pending, k)
            done = pending[resolved[0]]
            negatives[done] = resolved[1]
            semi_hard[done] = True
            self.stats[f"k={k}"] = self.stats.get(f"k={k}", 0) + int(done.numel())
            needed.extend([k] * int(done.numel()))
            pending = pending[~resolved[0]]
            if k >= self.max_k:
                break
            k = min(k * self.growth, self.max_k)
        if self.adaptive and needed:  # next batch starts at the k that resolved 90% of these
            self._start_k = sorted(needed)[int(0.9 * (len(needed) - 1))]
        if pending.numel():
            self.stats["exact_fallback"] += int(pending.numel())
            rest = self.exact_negatives(anchors64[pending], anchor_labels[pending], positive_distances[pending])
            negatives[pending] = rest.negatives
            semi_hard[pending] = rest.semi_hard
        return MiningResult(negatives, semi_hard)

    def _search_round(self, anchors32, anchors64, anchor_labels, positive_distances, tolerance, pending, k):
        """Search ``k`` neighbours for the pending anchors; returns (resolved mask, their negatives).

        Only candidates that can be the answer are re-scored in float64: negatives whose
        FAISS distance is above ``d(a, p) - tol`` and within ``2 tol`` of the nearest surely
        qualifying one (the others are either not farther than the positive or farther
        than a qualifying candidate, whatever the float32 round-off).
        """
        query = np.ascontiguousarray(anchors32[pending.cpu().numpy()])
        found_d, found_i = self.index.search(query, k)
        index = torch.from_numpy(found_i).to(self.device)
        approx = torch.from_numpy(found_d).to(self.device, torch.float64)
        tol, d_ap, labels = tolerance[pending, None], positive_distances[pending, None], anchor_labels[pending]
        negative = self.temporal_labels[index] != labels[:, None]
        inf = torch.tensor(float("inf"), dtype=torch.float64, device=self.device)
        surely = torch.where(negative & (approx > d_ap + 2 * tol), approx, inf).min(1, keepdim=True).values
        rescore = negative & (approx > d_ap - tol) & (approx <= surely + 2 * tol)
        rows, cols = torch.nonzero(rescore, as_tuple=True)
        distances = torch.full_like(approx, -inf)  # not re-scored: never qualifies
        a, t = anchors64[pending[rows]], self._rows64[index[rows, cols]]
        distances[rows, cols] = ((a * a).sum(1) + self._rows_sq[index[rows, cols]] - 2.0 * (a * t).sum(1)).clamp_min(0.0)
        best, has, nearest, _ = select_negatives(distances, self.temporal_labels[index], index, labels, d_ap[:, 0])
        resolved = has & (nearest + tol[:, 0] < approx[:, -1])
        return resolved, best[resolved]
