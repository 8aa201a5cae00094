"""Stage-2 heads at the paper's size on this machine.

    .venv/bin/python benchmarks/heads.py [--threads N] [--members 16] [--grid-epochs E] [--no-grid] [--no-mining]
                                         [--compare-old] [--profile]

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
from heads_profile import OLD_NAME, Parts, old_config  # noqa: E402

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


def cell(entry: dict | None) -> str:
    if entry is None or entry.get("test") is None:
        return "-"
    ci = entry.get("test_ci")
    return f"{entry['test']:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def summary(metrics: dict) -> str:
    return (f"still {cell(metrics.get('still'))}  derived {cell(metrics.get('derived'))}  "
            f"fused {cell(metrics.get('fused'))}  temporal-clf {cell(metrics['temporal_classifier'])}")


def one_head(method: str, data, config: dict, device: str, store, parts: Parts, label: str) -> float:
    with parts.watch() as taken:
        seconds, result = timed(lambda: train_head(method, data, config, device, dimred_store=store))
    pk = f", P x K {config['classes_per_batch']} x {config['instances_per_class']}" if method == "embed" else ""
    print(f"  {method:<10} {label:<4} {seconds:6.1f} s  test % [95% CI]: {summary(result.metrics)}")
    print(f"  {'':<10} {'':<4} parts: {parts.line(taken)} (still model {result.metrics['still_source']}, dim-reduction {result.metrics['dimred_source']}{pk})")
    return seconds


def heads_table(data, store_dirs, device: str, compare_old: bool, methods=None) -> None:
    """Each head with its default schedule (and first with the old defaults, in the same process)."""
    parts = Parts()
    for method in methods or list_methods():
        times = {}
        for label in (("old", "new") if compare_old else ("new",)):
            store = DimRedStore([store_dirs[label]], [store_dirs[label]])  # old and new never share a network
            config = old_config(method, data) if label == "old" else default_config(method, "flow")
            times[label] = one_head(method, data, config, device, store, parts, label)
        if compare_old:
            print(f"  {method:<10} new/old time {times['new'] / times['old']:.2f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--grid-epochs", type=int, default=None, help="epochs of each grid member (default: the GAN default)")
    parser.add_argument("--scale", type=float, default=1.0, help="rows x this (a quick look; the paper's size is 1)")
    parser.add_argument("--no-grid", action="store_true")
    parser.add_argument("--no-mining", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", nargs="+", choices=list_methods(), default=list_methods())
    parser.add_argument("--compare-old", action="store_true", help=f"also train each head with the defaults of {OLD_NAME}")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, device {args.device}")

    still_rows = {k: max(8, round(v * args.scale)) for k, v in STILL_ROWS.items()}
    temporal_rows = {k: max(8, round(v * args.scale)) for k, v in TEMPORAL_ROWS.items()}
    with tempfile.TemporaryDirectory(prefix="featcache-heads-bench-") as tmp:
        tmp = Path(tmp)
        seconds, _ = timed(lambda: write_synthetic_caches(tmp / "cache", num_classes=40, dim=2048,
                                                            still_rows=still_rows, temporal_rows=temporal_rows,
                                                            temporal=("flow",), instance_sd=1.0, feature_sd=1.0))
        data = HeadData.load(tmp / "cache", "flow")
        print(f"synthetic cache written in {seconds:.1f} s: still {sum(still_rows.values())} rows, "
              f"flow {sum(temporal_rows.values())} rows, 2048-d, 40 classes\n")

        print("1. one head, default schedule" + (f" (old = {OLD_NAME}, then today's)" if args.compare_old else ""))
        heads_table(data, {label: tmp / f"heads-{label}" for label in ("old", "new")}, args.device, args.compare_old,
                    args.methods)
        store = DimRedStore([tmp / "heads-new"], [tmp / "heads-new"])

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
