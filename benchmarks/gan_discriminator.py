"""Why the GAN's discriminator sat at 2 ln 2, and which remedy works.

    python benchmarks/gan_discriminator.py [--seeds 3] [--epochs 30] [--threads N]

On a synthetic cache (``featcache.cache.synthetic``, 6 classes, 64-d), the GAN head trained by
its own code path (``fit_gan``) with each ``d_norm``: ``separate`` (D's batch norm sees the real and
generated batches in separate passes, as first built), ``joint`` (one pass over both) and ``none``.
Per setting, over ``--seeds`` head seeds: D's loss and its accuracy on real and on generated rows
(the mean over the last quarter of the epochs; 2 ln 2 = 1.386 and 50% are chance), and how close
the selected generator's compact features of the held-out test stills come to the real compact
temporal test features (squared MMD, Gaussian kernel, median bandwidth; the distance of the means).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featcache.cache.synthetic import write_synthetic_caches  # noqa: E402
from heads.evaluation.two_sample import mean_distance, mmd_rbf  # noqa: E402
from heads.training.methods import default_config  # noqa: E402
from heads.training.dim_reduction import fit_dimred_networks  # noqa: E402
from heads.training.gan import fit_gan  # noqa: E402
from heads.training.head_data import HeadData  # noqa: E402
from heads.training.loop import Phases, predict  # noqa: E402
from heads.training.still_model import fit_still_models  # noqa: E402


class Curves:
    """Collects the per-member values the GAN records each epoch."""

    def __init__(self):
        self.rows: list[dict] = []

    def record(self, phase, epoch, values, owner=None):
        if phase == "gan":
            self.rows.append({k: v for k, v in values.items() if k.startswith(("loss_d", "d_acc"))})


def run(data: HeadData, d_norm: str, seeds: int, epochs: int) -> dict:
    configs = [dict(default_config("gan", "flow"), seed=s, d_norm=d_norm, epochs=epochs, batch_size=32, min_steps=1,
                    d0=64, d1=32, d2=64, dimred_min_steps=1, still_min_steps=1, dimred_batch_size=64)
               for s in range(seeds)]
    curves = Curves()
    phases = Phases(None, curves)
    still = fit_still_models(data, configs, "cpu", phases)
    dimred = fit_dimred_networks(data, configs, "cpu", phases, None)
    _, parts, _ = fit_gan(data, configs, "cpu", phases, still, dimred)
    generator = parts["generator"].eval()
    fake = predict(generator, data.still["test"].features, seeds)
    real = dimred.compact_test[dimred.owner]
    tail = curves.rows[-max(1, epochs // 4):]
    mean = {k: sum(float(torch.as_tensor(r[k]).float().mean()) for r in tail) / len(tail) for k in tail[0]}
    mean["mmd"] = sum(mmd_rbf(fake[g], real[g]) for g in range(seeds)) / seeds
    mean["mean_distance"] = sum(mean_distance(fake[g], real[g]) for g in range(seeds)) / seeds
    return mean


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as directory:
        write_synthetic_caches(directory, num_classes=6, dim=64, seed=0)
        data = HeadData.load(directory, "flow")
        print(f"chance: loss_d {2 * math.log(2):.3f}, accuracy 50%; {args.seeds} seeds, {args.epochs} epochs")
        print(f"{'d_norm':<9} {'loss_d':>7} {'D acc real':>10} {'D acc fake':>10} {'MMD^2':>8} {'mean dist':>9} {'s':>5}")
        for d_norm in ("separate", "joint", "none"):
            started = time.perf_counter()
            m = run(data, d_norm, args.seeds, args.epochs)
            print(f"{d_norm:<9} {m['loss_d']:7.3f} {m['d_acc_real']:9.1f}% {m['d_acc_fake']:9.1f}% "
                  f"{m['mmd']:8.4f} {m['mean_distance']:9.3f} {time.perf_counter() - started:5.1f}")


if __name__ == "__main__":
    main()
