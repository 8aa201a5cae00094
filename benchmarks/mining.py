"""Semi-hard negative mining over the whole temporal set: FAISS vs brute force vs
pytorch-metric-learning, at the paper's size (21k temporal rows of d1=256, 40 classes).

    .venv/bin/python benchmarks/mining.py [--rows 21000] [--dim 256] [--classes 40] [--repeats 5]

Batches: 16 anchors (the paper's 4 classes x 4 instances) and 1024 anchors. For each
method: time per batch, and agreement with the brute-force reference (fraction of equal
negatives). pytorch-metric-learning's ``TripletMarginMiner(type_of_triplets="semihard")``
mines every (a, p, n) triplet with ``d(a,p) < d(a,n) <= d(a,p) + margin`` among the batch
and a ref set; it has no notion of "the nearest semi-hard negative for this positive".
We give it the anchors with the whole temporal set as ``ref_emb``/``ref_labels`` and a
huge margin, then keep, for the chosen positive, the nearest mined negative. Its mask is
``[B, N, N]``, so it runs one anchor at a time and only on the 16-anchor batches (1024
anchors would need ~450 GB). It uses float32 Euclidean distances and has no fallback
when no semi-hard negative exists (counted as a disagreement).

``bench_mining(...)`` returns the rows for other benchmarks (e.g. benchmarks/heads.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heads.miners.brute_force_semi_hard_miner import BruteForceSemiHardMiner  # noqa: E402
from heads.miners.faiss_semi_hard_miner import FaissSemiHardMiner, faiss_gpu_available  # noqa: E402
from heads.samplers.pk_sampler import pk_batch  # noqa: E402
from heads.samplers.positive_sampler import PositiveSampler  # noqa: E402


def make_temporal_space(rows: int, dim: int, classes: int, seed: int = 0):
    """Clustered tanh features like the compact temporal space, and still-like anchors
    (class centre + more noise, like a half-trained embedding)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g)
    labels = torch.randint(classes, (rows,), generator=g)
    features = torch.tanh(centres[labels] + 0.8 * torch.randn(rows, dim, generator=g))

    def anchors_for(batch_labels: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(len(batch_labels), dim, generator=g)
        return torch.tanh(centres[batch_labels] + 1.2 * noise)

    return features, labels, anchors_for, g


def pml_semi_hard(anchors, labels, positives, temporal, temporal_labels) -> torch.Tensor:
    """Nearest negative among pytorch-metric-learning's semi-hard triplets (one anchor a call)."""
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.miners import TripletMarginMiner

    miner = TripletMarginMiner(margin=1e30, type_of_triplets="semihard",
                               distance=LpDistance(normalize_embeddings=False, p=2, power=1))
    out = []
    for i in range(len(labels)):
        a_idx, p_idx, n_idx = miner(anchors[i : i + 1], labels[i : i + 1], temporal, temporal_labels)
        mine = n_idx[p_idx == positives[i]]
        if mine.numel() == 0:
            out.append(-1)  # no semi-hard negative: pml has no fallback
            continue
        d = torch.cdist(anchors[i : i + 1], temporal[mine])[0]
        out.append(int(mine[d == d.min()].min()))
    return torch.tensor(out)


def _time(fn, repeats: int) -> tuple[float, Any]:
    out = fn(0)
    start = time.perf_counter()
    for r in range(repeats):
        out = fn(r)
    return (time.perf_counter() - start) / repeats, out


def bench_mining(rows: int = 21000, dim: int = 256, classes: int = 40, batches=(16, 1024), repeats: int = 5,
                 with_pml: bool = True, use_gpu: bool | str = "auto", device: str = "cpu") -> list[dict[str, Any]]:
    """One dict per (batch size, method): seconds per batch, agreement with brute force, notes.
    ``device``: where the FAISS miner's tensors live (on CUDA it builds a GPU index when FAISS sees one)."""
    features, labels, anchors_for, g = make_temporal_space(rows, dim, classes)
    brute = BruteForceSemiHardMiner(features, labels)
    t0 = time.perf_counter()
    faiss_miner = FaissSemiHardMiner(features.to(device), labels.to(device), use_gpu=use_gpu)
    build = time.perf_counter() - t0
    results = []
    for batch in batches:
        problems = []
        for _ in range(repeats + 1):
            if batch == 16:
                index = pk_batch(labels, 4, 4, generator=g)
                batch_labels = labels[index]
            else:
                batch_labels = torch.randint(classes, (batch,), generator=g)
            problems.append((anchors_for(batch_labels), batch_labels, PositiveSampler(labels)(batch_labels, g)))
        reference = [brute.mine(*p) for p in problems]
        semi = torch.cat([r.semi_hard for r in reference]).float().mean().item()
        methods = {
            "brute force (torch f64)": lambda r: brute.mine(*problems[r]).negatives,
            f"faiss IndexFlatL2 ({'gpu' if faiss_miner.on_gpu else 'cpu'})": lambda r: faiss_miner.mine(*problems[r]).negatives.cpu(),
        }
        if with_pml and batch <= 16:
            methods["pytorch-metric-learning semihard"] = lambda r: pml_semi_hard(*problems[r], features, labels)
        for name, fn in methods.items():
            faiss_miner.reset_stats()
            reps = repeats if "metric" not in name else min(repeats, 2)
            seconds, _ = _time(fn, reps)
            agree = sum(int((fn(r) == reference[r].negatives).sum()) for r in range(reps)) / (reps * batch)
            note = ""
            if name.startswith("faiss"):
                stats = {k: v for k, v in faiss_miner.stats.items() if k != "anchors"}
                note = f"resolved by round: {stats}; index build {build:.2f}s"
            results.append({"batch": batch, "method": name, "seconds": seconds, "agreement": agree,
                            "semi_hard_fraction": semi, "note": note})
    return results


def print_results(results, rows, dim, classes) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"semi-hard mining over {rows} temporal rows, d={dim}, {classes} classes "
                        f"(torch threads {torch.get_num_threads()}, faiss gpu {faiss_gpu_available()})")
    for column in ("anchors", "method", "ms / batch", "agreement", "semi-hard exists", "note"):
        table.add_column(column, justify="right" if column not in ("method", "note") else "left")
    for r in results:
        table.add_row(str(r["batch"]), r["method"], f"{r['seconds'] * 1000:.1f}", f"{r['agreement']:.3f}",
                      f"{r['semi_hard_fraction']:.3f}", r["note"])
    Console(width=max(160, Console().width)).print(table)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=21000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-pml", action="store_true")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]: where the FAISS miner's tensors live")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    results = bench_mining(args.rows, args.dim, args.classes, tuple(args.batches), args.repeats, not args.no_pml,
                           device=device)
    print_results(results, args.rows, args.dim, args.classes)


if __name__ == "__main__":
    main()
