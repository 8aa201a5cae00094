"""Stage-2 heads at the paper's size on this machine.

    .venv/bin/python benchmarks/heads.py [--threads N] [--members 16] [--grid-epochs E] [--no-grid] [--no-mining]

A synthetic cache like SSVAC-40 (40 classes, 2048-d; 6821/728/4798 still train/val/test,
16000/5000 temporal train/test rows) is written to a temporary folder. Printed:
  1. seconds to train each head with its default schedule (classifier = still model +
     dim-reduction network; gan and embed reuse nothing but the saved dim-reduction network
     when its d1 matches, as ``featcache train-head`` does);
  2. a GAN grid of ``--members`` configurations (lr x lambda) trained as ONE stacked group
     vs the same configurations trained one after another, side by side with the ratio;
     then benchmarks/gan_step_bound.py: one epoch at G=1 and G=members, and how much of it
     is matrix products, i.e. the most batching can gain on this machine;
  3. benchmarks/mining.py (FAISS vs brute-force semi-hard mining).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heads.training.methods import default_config, list_methods  # noqa: E402
from heads.training.head_data import HeadData  # noqa: E402
from featcache.cache.synthetic import write_synthetic_caches  # noqa: E402
from heads.training.dim_reduction import DimRedStore  # noqa: E402
from heads.training.train_head import train_group, train_head  # noqa: E402

STILL_ROWS = {"train": 6821, "val": 728, "test": 4798}
TEMPORAL_ROWS = {"train": 16000, "test": 5000}


def grid_configs(members: int, epochs: int | None) -> list[dict]:
    lrs = [1e-3, 5e-4, 2e-4, 1e-4, 2e-3, 3e-4, 7e-4, 1.5e-3]
    lambdas = [1.0, 0.5, 2.0, 4.0]
    configs = []
    for lr, lam in itertools.islice(itertools.product(lrs, lambdas), members):
        config = default_config("gan", "flow")
        config.update(lr=lr, **{"lambda": lam})
        if epochs:
            config["epochs"] = epochs
        configs.append(config)
    return configs


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def summary(metrics: dict) -> str:
    def pair(stream):
        entry = metrics.get(stream)
        return "-" if entry is None else f"{entry['val']:.1f}/{entry['test']:.1f}"

    return (f"still {pair('still')}  derived {pair('derived')}  fused {pair('fused')}  "
            f"temporal-clf test {metrics['temporal_classifier']['test']:.1f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--grid-epochs", type=int, default=None, help="epochs of each grid member (default: the GAN default)")
    parser.add_argument("--no-grid", action="store_true")
    parser.add_argument("--no-mining", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, device {args.device}")

    with tempfile.TemporaryDirectory(prefix="featcache-heads-bench-") as tmp:
        tmp = Path(tmp)
        seconds, _ = timed(lambda: write_synthetic_caches(tmp / "cache", num_classes=40, dim=2048,
                                                            still_rows=STILL_ROWS, temporal_rows=TEMPORAL_ROWS,
                                                            temporal=("flow",), instance_sd=1.0, feature_sd=1.0))
        data = HeadData.load(tmp / "cache", "flow")
        print(f"synthetic cache written in {seconds:.1f} s: still {sum(STILL_ROWS.values())} rows, "
              f"flow {sum(TEMPORAL_ROWS.values())} rows, 2048-d, 40 classes\n")
        store = DimRedStore([tmp / "heads"], [tmp / "heads"])

        print("1. one head, default schedule")
        for method in list_methods():
            config = default_config(method, "flow")
            seconds, result = timed(lambda: train_head(method, data, config, args.device, dimred_store=store))
            note = result.metrics["dimred_source"]
            epochs = f", {config['epochs']} epochs x batch {config.get('batch_size', 16)}" if "epochs" in config else ""
            print(f"  {method:<10} {seconds:6.1f} s (dim-reduction {note}{epochs})  {summary(result.metrics)}")

        if not args.no_grid:
            configs = grid_configs(args.members, args.grid_epochs)
            print(f"\n2. GAN grid, {len(configs)} configurations (lr x lambda), {configs[0]['epochs']} epochs each")
            batched, grouped = timed(lambda: train_group("gan", data, configs, args.device, dimred_store=store))
            one_by_one, singles = timed(lambda: [train_head("gan", data, c, args.device, dimred_store=store)
                                                 for c in configs])
            print(f"  {'batched (one train_group)':<30} {batched:7.1f} s")
            print(f"  {'one after another':<30} {one_by_one:7.1f} s")
            print(f"  speed-up {one_by_one / batched:.1f}x")
            gaps = [abs(g.metrics["fused"]["val"] - s.metrics["fused"]["val"]) for g, s in zip(grouped, singles)]
            print(f"  largest fused-val difference batched vs single: {max(gaps):.2f} points (float32 rounding)")

            print("\n  where the time goes (benchmarks/gan_step_bound.py)")
            sibling("gan_step_bound").main(["--threads", str(args.threads), "--members", str(args.members)])

    if not args.no_mining:
        print("\n3. semi-hard mining (benchmarks/mining.py)")
        sibling("mining").main(["--threads", str(args.threads), "--repeats", "3"])


def sibling(name: str):
    """Another script of benchmarks/, imported as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main()
