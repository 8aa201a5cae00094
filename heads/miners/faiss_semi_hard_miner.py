"""Semi-hard negatives over the whole temporal set with an exact FAISS index.

The temporal space is frozen while the embedding trains, so one ``IndexFlatL2`` (exact,
squared L2) is built once, on the GPU when the tensors live on CUDA and FAISS sees a GPU
(faiss-gpu, the dependency on Linux x86_64; it runs CPU indexes where there is no GPU).
Each batch gets ONE search of the ``k`` nearest rows; anchors it cannot resolve (their
semi-hard negative lies deeper than ``k``, or none exists and the farthest negative is
needed) get an exact full scan: float32 distances to every row, re-scored in float64
where float32 cannot decide. A flat search is itself a full scan, so a second, deeper
search would cost as much as the exact one: instead ``k`` adapts across calls (grows when
fewer than 90% of anchors resolve, shrinks when they resolve well inside it). When even
``max_k`` resolves fewer than half of them, as early in training when positives are far,
the miner scans only; each scan also gives the rank of every answer, so the search comes
back, at a depth fitted to those ranks, as soon as it would resolve the batch.

Candidates returned by FAISS (float32) are re-scored in float64 with the same formula
as :class:`~heads.miners.brute_force_semi_hard_miner.BruteForceSemiHardMiner`. An anchor is
resolved only when its best qualifying candidate lies clearly inside the searched
radius (by more than the float32 error bound), which guarantees no closer qualifying
negative was left out: the result equals the brute-force one.
"""

from __future__ import annotations

import numpy as np
import torch

from featcache.errors import FeatcacheError
from heads.miners.base_semi_hard_miner import (
    BaseSemiHardMiner,
    MiningResult,
    gathered_squared_distances,
    select_negatives,
)

# Unit round-off of float32, scaled per distance term in the error bound below.
_EPS32 = 2.0**-24
SCAN_CHUNK = 256  # anchors per float32 scan: [256, N] distances at a time
_FLT_MAX = float(torch.finfo(torch.float32).max)


def _rounded(values: torch.Tensor, up: bool) -> torch.Tensor:
    """float64 ``values`` as float32, rounded up (or down): a float32 comparison with the result
    errs only on the safe side."""
    single = values.float()
    return torch.nextafter(single, torch.full_like(single, torch.inf if up else -torch.inf))


def faiss_gpu_count() -> int:
    """GPUs FAISS can use: 0 with a CPU-only build (faiss-cpu) or without a visible GPU."""
    # FAISS (and its GPU runtime) loads only when a miner is built
    import faiss

    return int(faiss.get_num_gpus()) if hasattr(faiss, "StandardGpuResources") and torch.cuda.is_available() else 0


def faiss_gpu_available() -> bool:
    return faiss_gpu_count() > 0


def miner_device(use_gpu: bool | str, features_device: torch.device, gpu_device: int | None = None) -> torch.device:
    """Where the index and the re-scoring live. ``"auto"``: the tensors' GPU when they live on
    CUDA and FAISS sees a GPU (faiss-gpu), else the CPU; ``True``: a GPU or a clear error."""
    if use_gpu not in ("auto", True, False):
        raise ValueError(f"use_gpu must be 'auto', True or False, got {use_gpu!r}")
    gpus = faiss_gpu_count()
    if use_gpu is True and gpus == 0:
        raise FeatcacheError("FaissSemiHardMiner(use_gpu=True): faiss has no GPU support here or CUDA is unavailable; install faiss-gpu or use use_gpu='auto'")
    on_cuda = torch.device(features_device).type == "cuda"
    if use_gpu is True or (use_gpu == "auto" and gpus > 0 and on_cuda):
        if gpu_device is None:
            gpu_device = torch.device(features_device).index if on_cuda else None
        return torch.device("cuda", gpu_device or 0)
    return torch.device("cpu")


class FaissSemiHardMiner(BaseSemiHardMiner):
    """``miner(anchors, anchor_labels, positives) -> negatives`` over the fixed temporal set.

    ``use_gpu``: ``"auto"`` (a GPU index when the temporal tensors live on CUDA and FAISS
    sees a GPU, see :func:`miner_device`), ``True`` (error without faiss GPU support) or
    ``False``; ``gpu_device`` defaults to the tensors' GPU. ``initial_k``/``growth``/``max_k``
    bound the adaptive search depth; ``adaptive=False`` always searches ``initial_k``. ``stats`` counts anchors
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
        gpu_device: int | None = None,
        adaptive: bool = True,
    ):
        # FAISS (and its GPU runtime) loads only when a miner is built
        import faiss

        device = miner_device(use_gpu, torch.as_tensor(temporal_features).device, gpu_device)
        self.on_gpu = device.type == "cuda"
        super().__init__(temporal_features, temporal_labels, device=device)
        if initial_k < 1 or growth < 2 or max_k < initial_k:
            raise ValueError(f"need 1 <= initial_k <= max_k and growth >= 2; got {initial_k}, {growth}, {max_k}")
        self.initial_k, self.growth, self.max_k = int(initial_k), int(growth), int(max_k)
        self.adaptive = adaptive
        self._k = self.initial_k
        self._scan_only = False  # FAISS cannot resolve these batches yet: scan until the ranks say it can
        rows32 = np.ascontiguousarray(self.temporal_features.float().cpu().numpy())
        index = faiss.IndexFlatL2(self.dim)
        if self.on_gpu:
            self._gpu_resources = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(self._gpu_resources, device.index, index)
        index.add(rows32)
        self.index = index
        self._max_row_sq = float(self._rows_sq.max())
        # The scan's columns hold the rows class by class (stable: ties still go to the lowest row), so an
        # anchor's own class is one block of columns to blank instead of a [B, N] label comparison.
        self._scan_rows = torch.argsort(self.temporal_labels, stable=True)  # column j -> temporal row
        self._rows32_t = self.temporal_features.float()[self._scan_rows].T.contiguous()  # [d, N]: the fastest layout
        self._rows_sq32 = self._rows_sq.float()[self._scan_rows]
        counts = torch.bincount(self.temporal_labels).tolist()
        ends = torch.tensor(counts).cumsum(0).tolist()
        self._class_columns = {c: (end - n, end) for c, (n, end) in enumerate(zip(counts, ends)) if n}
        self.stats: dict[str, int] = {}
        self.reset_stats()

    @property
    def search_depth(self) -> int:
        """How many neighbours the next FAISS search asks for (0 while it scans only)."""
        return 0 if self._scan_only else min(self._k, len(self))

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
        # Bound on |float32 distance - float64 distance| per anchor (FAISS and the scan below).
        tolerance = (self.dim + 4) * _EPS32 * 4.0 * ((anchors64 * anchors64).sum(1) + self._max_row_sq)
        k = min(self._k, len(self))
        if k < len(self) and not self._scan_only:
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
            want_ranks = self._scan_only and self.adaptive
            scan_ranks = []
            for part in pending.split(SCAN_CHUNK):
                negatives[part], semi_hard[part], part_ranks = self._scan(
                    anchors64[part], anchor_labels[part], positive_distances[part], tolerance[part], want_ranks)
                scan_ranks.append(part_ranks)
            if want_ranks:
                self._resume_search(torch.cat(scan_ranks))
        return MiningResult(negatives, semi_hard)

    def _resume_search(self, ranks: torch.Tensor) -> None:
        """After a scan-only batch: search again when ``max_k`` would hold 90% of the answers."""
        depth = int(ranks.float().quantile(0.9)) + 1 if ranks.numel() else len(self)
        if depth * self.growth <= self.max_k:
            self._scan_only = False
            self._k = max(self.initial_k, min(self.max_k, depth * self.growth))

    def _adapt(self, k: int, resolved_fraction: float, ranks: torch.Tensor) -> None:
        """Choose the next call's search depth from how this one went."""
        if resolved_fraction < 0.9:
            if k >= self.max_k and resolved_fraction < 0.5:
                self._scan_only = True  # FAISS cannot help yet: exact scans only
            self._k = min(k * self.growth, self.max_k)
        elif ranks.numel() and int(ranks.float().quantile(0.9)) * self.growth < k:
            self._k = max(self.initial_k, k // self.growth)

    def _search_round(self, anchors32, anchors64, anchor_labels, positive_distances, tolerance, k):
        """Search ``k`` neighbours of every anchor; returns (resolved mask, their negatives,
        the rank of each resolved negative in the FAISS list). An anchor is resolved only
        when its answer lies clearly inside the searched radius."""
        found_d, found_i = self.index.search(np.ascontiguousarray(anchors32), k)
        index = torch.from_numpy(found_i).to(self.device)
        approx = torch.from_numpy(found_d).to(self.device, torch.float64)
        best, has, nearest = self._nearest_qualifying(
            approx, index, self.temporal_labels[index], anchors64, anchor_labels, positive_distances, tolerance)
        resolved = has & (nearest + tolerance < approx[:, -1])
        ranks = (index[resolved] == best[resolved, None]).float().argmax(1)
        return resolved, best[resolved], ranks

    def _scan(self, anchors64, anchor_labels, positive_distances, tolerance, want_ranks=False):
        """The exact answer for every anchor from a float32 scan of all rows, re-scored in
        float64 where float32 cannot decide: the brute-force result, with half the bytes
        read and a float32 product instead of a float64 one. With ``want_ranks``, also returns
        for anchors with a semi-hard negative how many rows lie nearer than it (its rank in a
        FAISS search); otherwise None. The scan leaves out each anchor's squared norm (the same
        for all its rows: it moves the thresholds instead) and gives its own class's block of
        columns inf distance, which saves passes over the [B, N] distances (ranks count every
        class's rows, as a FAISS search would)."""
        anchors32, shift = anchors64.float(), (anchors64 * anchors64).sum(1)
        approx = torch.addmm(self._rows_sq32.expand(anchors32.shape[0], -1), anchors32, self._rows32_t, alpha=-2.0)
        own = self._blank_own_class(approx, anchor_labels, keep=want_ranks)
        index = self._scan_rows.expand(anchors64.shape[0], -1)
        best, has, nearest = self._nearest_qualifying(
            approx, index, None, anchors64, anchor_labels, positive_distances, tolerance, shift)
        ranks = None
        if want_ranks:  # rows nearer than the answer: the other classes' columns, then the anchor's own block
            threshold = torch.where(has, _rounded(nearest - shift, up=False), -torch.inf)[:, None]
            ranks = self._ranks(approx, own, threshold)[has]
        if not has.all():  # no semi-hard negative: the farthest negative, decided the same way
            rest = ~has
            far = approx[rest]
            far = far.masked_fill_(far == torch.inf, -torch.inf)  # the own class's block: no negative
            near_far = (far >= far.max(1, keepdim=True).values - 2 * tolerance[rest, None]).logical_and_(far > -torch.inf)
            distances, candidate_labels, candidates = self._rescore(near_far, index[rest], anchors64[rest], anchor_labels[rest])
            _, _, _, farthest = select_negatives(distances, candidate_labels, candidates, anchor_labels[rest],
                                                 positive_distances[rest])
            best = best.clone()
            best[rest] = farthest
        return best, has, ranks

    def _blank_own_class(self, approx, anchor_labels, keep=False):
        """Set each anchor's own-class columns of ``approx [B, N]`` to inf, in place; with ``keep``, returns
        the blanked values as ``[(anchor rows, values [b, n_c])]`` (for the ranks), else []."""
        kept = []
        for label in anchor_labels.unique().tolist():
            start, end = self._class_columns.get(label, (0, 0))
            rows = torch.nonzero(anchor_labels == label).squeeze(1)
            if keep:
                kept.append((rows, approx[rows, start:end]))
            approx[rows, start:end] = torch.inf
        return kept

    @staticmethod
    def _ranks(approx, own, threshold):
        """Per anchor, how many columns of ``approx`` (and of its blanked own-class block) lie below ``threshold``."""
        ranks = (approx < threshold).sum(1)
        for rows, values in own:
            ranks[rows] += (values < threshold[rows]).sum(1)
        return ranks

    def _nearest_qualifying(self, approx, index, labels, anchors64, anchor_labels, positive_distances, tolerance,
                            shift=None):
        """Among candidates ``index [B, M]`` with float32 distances ``approx``, the nearest
        negative farther than the positive, exactly: only candidates that can be the answer
        are re-scored in float64 (negatives above ``d(a, p) - tol`` and within ``2 tol`` of
        the nearest surely qualifying one; the others are either not farther than the
        positive or farther than a qualifying candidate, whatever the round-off). ``shift``
        given (a scan): ``approx`` is the distance minus ``shift`` and inf on the anchor's own
        class. The float64 thresholds are rounded outwards to float32, so the float32
        comparisons can only let more candidates through. Returns (negative index, whether one
        exists, its float64 distance)."""
        tol = tolerance[:, None]
        if shift is None:  # FAISS candidates: true distances, any class
            approx = torch.where(labels != anchor_labels[:, None], approx, torch.inf)
            shift = torch.zeros_like(positive_distances)
        d_ap = (positive_distances - shift)[:, None]
        surely = torch.where(approx > _rounded(d_ap + 2 * tol, up=True), approx, torch.inf).amin(1, keepdim=True)
        high = _rounded((surely.double() + 2 * tol).clamp(max=_FLT_MAX), up=True).clamp(max=_FLT_MAX)
        rescore = (approx > _rounded(d_ap - tol, up=False)).logical_and_(approx <= high)
        distances, candidate_labels, candidates = self._rescore(rescore, index, anchors64, anchor_labels)
        best, has, nearest, _ = select_negatives(distances, candidate_labels, candidates, anchor_labels, positive_distances)
        return best, has, nearest

    def _rescore(self, mask, index, anchors64, anchor_labels):
        """The candidates where ``mask [B, M]`` is set, packed to ``[B, M']`` (M' the most any
        anchor has): float64 distances, labels and temporal indices. Padding has distance
        -inf and the anchor's own label, so it is never chosen."""
        rows, cols = torch.nonzero(mask, as_tuple=True)
        count = mask.shape[0]
        per_anchor = torch.bincount(rows, minlength=count)
        width = max(int(per_anchor.max()) if rows.numel() else 0, 1)
        slot = torch.arange(rows.numel(), device=self.device) - (torch.cumsum(per_anchor, 0) - per_anchor)[rows]
        rows_t = index[rows, cols]
        distances = torch.full((count, width), -torch.inf, dtype=torch.float64, device=self.device)
        distances[rows, slot] = gathered_squared_distances(anchors64[rows], self._rows64, self._rows_sq, rows_t[:, None])[:, 0]
        labels = anchor_labels[:, None].repeat(1, width)
        labels[rows, slot] = self.temporal_labels[rows_t]
        candidates = torch.zeros((count, width), dtype=torch.long, device=self.device)
        candidates[rows, slot] = rows_t
        return distances, labels, candidates
