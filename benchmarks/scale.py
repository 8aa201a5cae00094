"""Scaling out Stage 1: one process against torchrun ranks, side by side in one run.

    python benchmarks/scale.py [ROOT] [--stages prepare,extract] [--configs 1x1,1x2,2x1]
        [--flow tvl1] [--size 64x86] [--videos 8] [--stills 48] [--backbone NAME] [--weights W]
        [--device cpu|cuda] [--crop 224] [--shard-size 16] [--repeats 1]

A configuration ``PxT`` is P processes with T threads each: ``1xT`` is the plain command
(prepare: ``--workers T``, a pool of T one-thread processes when T > 1; extract: T torch
threads), ``Px1`` with P > 1 is ``torchrun --standalone --nproc-per-node P -m featcache ...``
(prepare: one video at a time per rank; extract: one thread, or one GPU, per rank).
Every configuration runs the same command on the same data into a fresh cache folder.
Without ROOT a synthetic dataset (``featcache data synth``) is written to a temporary folder.

Prints per stage: items, wall seconds from launch to exit (Python and torch start-up
included), items/s and its ratio to 1x1, the same for the command's own seconds, CPU
seconds (all processes; the commands' own, summed over ranks; the busiest rank's), the
speed-up on idle cores estimated from CPU time (1x1's CPU seconds over the busiest rank's:
on a shared machine wall-clock ratios measure the neighbours), the single assembly step's
seconds and its share of the command, and whether the output equals the first
configuration's (prepare: byte-equal datasets; extract: largest feature difference). On a GPU node
``--device cuda --configs 1x1,8x1 --stages extract`` gives images/s at 1 and 8 GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TIMES_ENV = "FEATCACHE_SCALE_TIMES"


# -- inside each launched process --------------------------------------------------------------
def run_timed(argv: list[str]) -> None:
    """Run ``featcache ARGV``, timing the whole command and its assembly step; rank 0 writes them."""
    import featcache.extraction.extract
    import featcache.representations.prepare

    times = {"assembly": 0.0}

    def timed(module):
        original = module.assemble

        def assemble(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times["assembly"] += time.perf_counter() - start
        module.assemble = assemble

    timed(featcache.representations.prepare)
    timed(featcache.extraction.extract)
    from cli.app import main

    start, cpu = time.perf_counter(), process_cpu()
    sys.argv = ["featcache", *argv]
    try:
        main()
    finally:  # every rank writes its CPU seconds; rank 0's wall time is the command's
        times.update(command=time.perf_counter() - start, cpu=process_cpu() - cpu)
        Path(f"{os.environ[TIMES_ENV]}.{os.environ.get('RANK', '0')}").write_text(json.dumps(times))


def process_cpu() -> float:
    """CPU seconds of this process and its finished children (prepare's worker pool)."""
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


# -- the driver ----------------------------------------------------------------------------------
@dataclass
class Result:
    config: str
    items: int
    wall: float
    cpu: float
    command: float
    assembly: float
    rank_cpu: list[float]
    output: Path

    @property
    def rate(self) -> float:
        return self.items / self.wall


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def launch(config: str, argv: list[str], workdir: Path) -> tuple[float, float, dict]:
    procs, threads = (int(v) for v in config.split("x"))
    times_file = workdir / f"times-{config}.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO), TIMES_ENV: str(times_file)}
    runner = [str(Path(__file__).resolve())]  # TIMES_ENV set: the script runs the command
    if procs > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs), *runner, *argv]
    else:
        cmd = [sys.executable, *runner, *argv]
    cpu, wall = children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - wall, children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"{config}: {' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    ranks = [json.loads(Path(f"{times_file}.{r}").read_text()) for r in range(procs)]
    return wall, cpu, {**ranks[0], "rank_cpu": [t["cpu"] for t in ranks]}


def stage_args(stage: str, config: str, root: Path, cache: Path, args) -> list[str]:
    threads = int(config.split("x")[1])
    if stage == "prepare":
        return ["prepare", str(root), "--cache", str(cache), "--flow", args.flow, "--size", args.size,
                "--workers", str(threads)]
    return ["extract", str(root), "--cache", str(cache), "--modality", "still", "--backbone", args.backbone,
            "--weights", str(args.weights), "--device", args.device, "--crop", str(args.crop),
            "--resize", str(args.resize), "--shard-size", str(args.shard_size), "--workers", "0"]


def same_output(stage: str, first: Path, other: Path) -> str:
    import h5py
    import numpy as np

    with h5py.File(first, "r") as a, h5py.File(other, "r") as b:
        if stage == "prepare":
            names = [f"{kind}/{d}" for kind in ("dynamic", "flow") if kind in a for d in a[kind]]
            return "byte-equal" if all(np.array_equal(a[n][()], b[n][()]) for n in names) else "DIFFERENT"
        same_rows = np.array_equal(a["source"][()], b["source"][()])
        diff = float(np.abs(a["features"][()].astype(np.float64) - b["features"][()]).max())
        return f"max |diff| {diff:.1e}" + ("" if same_rows else ", ROWS DIFFER")


def run_stage(stage: str, root: Path, workdir: Path, args) -> list[Result]:
    from featcache.cache.schema import feature_cache_path, temporal_cache_path
    from featcache.data.dataset import FolderDataset

    dataset = FolderDataset(root)
    items = len(dataset.videos()) if stage == "prepare" else len(dataset.stills())
    results = []
    for repeat in range(args.repeats):
        for config in args.configs:
            cache = workdir / f"{stage}-{config}-{repeat}"
            wall, cpu, times = launch(config, stage_args(stage, config, root, cache, args), workdir)
            written = temporal_cache_path(cache) if stage == "prepare" else feature_cache_path(cache, "still", args.backbone)
            results.append(Result(config, items, wall, cpu, times["command"], times["assembly"], times["rank_cpu"],
                                  written))
    return results


def print_stage(stage: str, results: list[Result]) -> None:
    unit = "videos" if stage == "prepare" else "images"
    base = [r for r in results if r.config == "1x1"][:1]

    def ratio(value: float, of) -> str:
        return f"{value / of(base[0]):.2f}" if base else "-"

    def idle_speedup(r: Result) -> str:
        """On idle cores a rank's CPU seconds are its wall seconds: the job takes as long as its
        busiest rank. Only for one-thread ranks; 1xT (T > 1) shares its CPU seconds across threads."""
        one_thread = r.config.endswith("x1")
        return ratio(1 / max(r.rank_cpu), lambda b: 1 / max(b.rank_cpu)) if one_thread else "-"

    print(f"\n{stage}: {results[0].items} {unit}")
    print(f"{'config':<7}{'wall s':>7}{'/s':>7}{'x1x1':>6}{'cmd s':>7}{'/s':>7}{'x1x1':>6}{'CPU s':>7}"
          f"{'cmd CPU s':>10}{'busiest':>8}{'x1x1 idle':>10}{'assembly s':>11}{'share':>7}  output")
    for r in results:
        cmd_rate = r.items / r.command
        print(f"{r.config:<7}{r.wall:>7.1f}{r.rate:>7.2f}{ratio(r.rate, lambda b: b.rate):>6}{r.command:>7.1f}"
              f"{cmd_rate:>7.2f}{ratio(cmd_rate, lambda b: b.items / b.command):>6}{r.cpu:>7.1f}"
              f"{sum(r.rank_cpu):>10.1f}{max(r.rank_cpu):>8.1f}{idle_speedup(r):>10}{r.assembly:>11.2f}"
              f"{100 * r.assembly / r.command:>6.1f}%  {same_output(stage, results[0].output, r.output)}")
    for r in results:  # what the projection in docs/scaling.md starts from
        procs = int(r.config.split("x")[0])
        print(f"  {r.config}: {r.items / (sum(r.rank_cpu) - r.assembly):.2f} {unit} per CPU-second outside the "
              f"assembly (all {procs} process(es)); assembly {r.assembly / r.items * 1000:.1f} ms per {unit[:-1]}")
    print("  wall: launch to exit (interpreter, torch import and torchrun start-up included); cmd: the command in "
          "rank 0; CPU s: every process; cmd CPU s: the commands' own, all ranks; busiest: the busiest rank's; "
          "x1x1 idle: 1x1's busiest / this busiest, the speed-up on idle cores")


def synth_dataset(workdir: Path, args) -> Path:
    root = workdir / "synth"
    per_class = lambda n: max(1, n // 4)  # noqa: E731  -- 4 classes
    cmd = [sys.executable, "-m", "featcache", "data", "synth", str(root), "--classes", "4", "--frames", "64",
           "--videos-per-class", f"{per_class(args.videos)},0", "--stills-per-class", f"{per_class(args.stills)},0,0",
           "--video-size", args.size, "--still-size", "240x320", "--workers", "2"]
    subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True, capture_output=True)
    return root


def fixed_weights(workdir: Path, root: Path, args) -> Path | str:
    """``random`` becomes one saved random network, so every configuration runs the same one."""
    if args.weights != "random":
        return args.weights
    import torch

    from featcache.backbones import create_backbone, save_checkpoint
    from featcache.data.dataset import FolderDataset

    torch.manual_seed(0)
    backbone = create_backbone(args.backbone, weights="random")
    return save_checkpoint(workdir / "weights.pt", backbone, classes=FolderDataset(root).classes, modality="still")


def main() -> None:
    if os.environ.get(TIMES_ENV):  # launched by launch(): one process (rank) of a configuration
        return run_timed(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, help="dataset in folder layout (default: a synthetic one)")
    parser.add_argument("--stages", default="prepare,extract")
    parser.add_argument("--configs", default="1x1,1x2,2x1", help="PxT: P processes (ranks) x T threads each")
    parser.add_argument("--flow", default="tvl1", help="prepare's flow method (tvl1, farneback, dis)")
    parser.add_argument("--size", default="64x86", help="video frame size HxW (synthetic videos and prepare)")
    parser.add_argument("--videos", type=int, default=8, help="synthetic videos (train split)")
    parser.add_argument("--stills", type=int, default=48, help="synthetic stills (train split)")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--weights", default="random", help="random (one saved random network), or a weights file")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--shard-size", type=int, default=16, help="extract's rows per shard: many shards per rank")
    parser.add_argument("--repeats", type=int, default=1, help="rounds over the configurations (interleaved)")
    args = parser.parse_args()
    args.configs = args.configs.split(",")
    with tempfile.TemporaryDirectory(prefix="featcache-scale-") as tmp:
        workdir = Path(tmp)
        root = args.root or synth_dataset(workdir, args)
        args.weights = fixed_weights(workdir, root, args)
        print(f"dataset {root if args.root else 'synthetic'}; configs {', '.join(args.configs)} "
              f"(PxT: processes x threads); {os.cpu_count()} CPUs")
        for stage in args.stages.split(","):
            print_stage(stage, run_stage(stage, root, workdir, args))


if __name__ == "__main__":
    main()
