"""How much can batching G GAN heads into one stacked model gain on this machine?

    .venv/bin/python benchmarks/gan_step_bound.py [--members 16] [--rounds 3] [--threads N]

Side by side in one run (best of ``--rounds``, alternating, since these machines are noisy):
  * one real GAN epoch (``train_gan_epoch``, SSVAC-40 size: 6821 still rows of 2048-d,
    batch 128, Table 6 widths) with 1 member and with G members;
  * the same epoch's matrix products alone: every forward, weight-gradient and
    input-gradient product the step computes, as bare ``bmm`` calls of the same shapes.
Batching shares no arithmetic between members (each has its own weights), so G members
cannot take less than G times the matrix products. The printed bound, the single epoch
over the per-member matrix-product time, is the most batching can gain on this machine,
before the parts trained once per group (still model, evaluation) are counted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heads.training.methods import default_config  # noqa: E402
from heads.models.discriminator import Discriminator  # noqa: E402
from heads.models.generator import Generator  # noqa: E402
from heads.models.linear_classifier import LinearClassifier  # noqa: E402
from heads.nn.member_random import MemberRandom  # noqa: E402
from heads.nn.stacked_linear import weight_grad  # noqa: E402
from heads.optim.stacked_rmsprop import StackedRMSProp  # noqa: E402
from heads.training.gan import train_gan_epoch  # noqa: E402
from heads.training.loop import batch_starts  # noqa: E402

STILL_ROWS, TEMPORAL_ROWS, DIM, CLASSES = 6821, 16000, 2048, 40


def gan_epoch(members: int, config: dict, still_x, still_y, compact):
    """A closure running one epoch of ``members`` GAN heads (one seed, like a grid)."""
    seeds = [config["seed"]] * members
    init, rng = MemberRandom.from_seeds(seeds, "init"), MemberRandom.from_seeds(seeds, "train")
    generator = Generator(members, DIM, config["d0"], config["d1"], [config["dropout"]] * members,
                          [config["noise"]] * members, init, rng)
    discriminator = Discriminator(members, config["d1"], config["d2"], init)
    aux = LinearClassifier(members, config["d1"], CLASSES, init).requires_grad_(False)
    lrs = [config["lr"]] * members
    opt_g, opt_d = StackedRMSProp(generator.parameters(), lrs), StackedRMSProp(discriminator.parameters(), lrs)
    owner, lambdas = torch.zeros(members, dtype=torch.long), torch.full((members,), config["lambda"])
    return lambda: train_gan_epoch(generator, discriminator, aux, opt_g, opt_d, still_x, still_y, compact, owner,
                                   lambdas, config["batch_size"], rng)


def step_products(members: int, config: dict):
    """A closure computing the matrix products of one GAN step for ``members`` members."""
    rows, d0, d1, d2 = config["batch_size"], config["d0"], config["d1"], config["d2"]

    def layer(n_in, n_out):
        x, w = torch.randn(members, rows, n_in), torch.randn(members, n_in, n_out)
        b, dy = torch.randn(members, 1, n_out), torch.randn(members, rows, n_out)
        return {
            "forward": lambda: torch.baddbmm(b, x, w),
            "weight_grad": lambda: weight_grad(x, dy),  # as StackedLinear's backward computes it
            "input_grad": lambda: torch.bmm(dy, w.transpose(1, 2)),
        }

    gen = [layer(DIM, d0), layer(d0, d0), layer(d0, d1)]
    disc = [layer(d1, d2), layer(d2, d2), layer(d2, d2), layer(d2, 1)]
    aux = layer(d1, CLASSES)
    calls = []
    calls += [g["forward"] for g in gen]
    for _ in range(2):  # D step: real and generated batches, forward and backward
        calls += [d["forward"] for d in disc] + [d["weight_grad"] for d in disc] + [d["input_grad"] for d in disc[1:]]
    calls += [d["forward"] for d in disc] + [aux["forward"]]  # G step through the frozen D and aux
    calls += [d["input_grad"] for d in disc] + [aux["input_grad"]]
    calls += [g["weight_grad"] for g in gen] + [g["input_grad"] for g in gen[1:]]

    def run():
        for call in calls:
            call()
    return run


def best_of(rounds: int, runs: dict[str, callable]) -> dict[str, float]:
    best = {name: float("inf") for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = default_config("gan", "flow")
    g = torch.Generator().manual_seed(0)
    still_x, still_y = torch.randn(STILL_ROWS, DIM, generator=g), torch.randint(CLASSES, (STILL_ROWS,), generator=g)
    compact = torch.randn(1, TEMPORAL_ROWS, config["d1"], generator=g)
    steps = len(batch_starts(STILL_ROWS, config["batch_size"]))
    products = {m: step_products(m, config) for m in (1, args.members)}
    epochs = {m: gan_epoch(m, config, still_x, still_y, compact) for m in (1, args.members)}

    def products_epoch(members):
        def run():
            for _ in range(steps):
                products[members]()
        return run

    runs = {}
    for m in (1, args.members):
        runs[f"epoch G={m}"] = epochs[m]
        runs[f"products G={m}"] = products_epoch(m)
    best = best_of(args.rounds, runs)
    G = args.members
    print(f"one GAN epoch at SSVAC-40 size ({steps} steps of {config['batch_size']}), {args.threads} threads, "
          f"best of {args.rounds}:")
    for m in (1, G):
        epoch, prods = best[f"epoch G={m}"], best[f"products G={m}"]
        print(f"  G={m:<3} epoch {epoch:6.2f} s ({epoch / m:.3f} s per member), of which matrix products "
              f"{prods:6.2f} s ({prods / m:.3f} s per member, {100 * prods / epoch:.0f}%)")
    print(f"  batching speed-up per epoch: {G * best['epoch G=1'] / best[f'epoch G={G}']:.2f}x; "
          f"bound (single epoch / per-member matrix products of G={G}): "
          f"{G * best['epoch G=1'] / best[f'products G={G}']:.2f}x")


if __name__ == "__main__":
    main()
