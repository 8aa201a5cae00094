"""Coverage and false-positive figures of the intervals in ``heads.evaluation.statistics``.

Prints, for simulated data sets with a known truth (``heads.evaluation.simulate``), the share of
95% intervals that hold it: the current procedure (two-level seeds x images, cluster over videos,
crossed images x videos for the oracle) against the first release's (seeds, draws or instances
pooled per row, then a percentile bootstrap over rows), and the paired tests' false-positive rate
at the 5% level. Run: ``PYTHONPATH=. python benchmarks/intervals.py [--sets 300]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heads.evaluation import simulate  # noqa: E402
from heads.evaluation.statistics import accuracy_ci, crossed_comparison, paired_comparison  # noqa: E402


def _rows(sets: int):
    pooled = simulate.pooled_bootstrap_ci
    for sb in (0.0, 0.05, 0.15, 0.3):
        yield (f"accuracy, 3 seeds x 200 images, seed sd {sb}", simulate.seeds_accuracy, dict(sb=sb),
               lambda c, k: accuracy_ci(c), lambda c, k: pooled(c, seed=k))
        yield (f"gain, 3 seeds x 200 images, seed sd {sb}", simulate.seeds_gain, dict(sb=sb),
               lambda d, k: paired_comparison(*d).ci, lambda d, k: pooled(d[0].astype(float) - d[1], seed=k))
    for sv in (0.3, 1.0):
        yield (f"temporal accuracy, 40 videos x 6 instances, video sd {sv}", simulate.clustered_accuracy,
               dict(sv=sv), lambda d, k: accuracy_ci(d[0], clusters=d[1]), lambda d, k: pooled(d[0], seed=k))
    yield ("oracle gain, 150 images x 30 videos x 50 draws", simulate.oracle_gain, {},
           lambda d, k: crossed_comparison(*d).ci, lambda d, k: pooled(d[0].astype(float) - d[1][None], seed=k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=300)
    args = parser.parse_args()
    print(f"coverage of 95% intervals over {args.sets} simulated data sets (SE about 1.3 points)")
    print(f"{'setting':58s} {'new':>6s} {'pooled':>7s}")
    for name, generate, settings, new, old in _rows(args.sets):
        covered = simulate.coverage(generate, new, sets=args.sets, seed=1, **settings)
        pooled = simulate.coverage(generate, old, sets=args.sets, seed=1, **settings)
        print(f"{name:58s} {100 * covered:5.1f}% {100 * pooled:6.1f}%")
    rng = np.random.default_rng(5)
    rejected = []
    for _ in range(2000):
        kind = rng.choice(3, size=200, p=[0.8, 0.1, 0.1])
        rejected.append(paired_comparison(kind == 1, kind == 2).p_value < 0.05)
    print(f"false-positive rate at 5%, one seed, 200 images, 20% discordant, 2000 nulls: {100 * np.mean(rejected):.1f}%")


if __name__ == "__main__":
    main()
