"""The paper's experiments as commands: ``keyframes``, ``baseline``, ``oracle``, ``report``,
``demo`` and ``data midframes``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cli.choices import choices, device_option
from cli.heads_cmd import CONFIG_HELP
from cli.registry import CommandTable
from featcache.errors import FeatcacheError
from featcache.utils.progress import make_console
from heads.training.run_dir import default_run_dir

Baseline = choices("Baseline", ("still", "aug-frames"))
ORACLE_KINDS = ("flow", "dynamic")  # what --temporal both runs, in this order
TemporalOrBoth = choices("TemporalOrBoth", (*ORACLE_KINDS, "both"))
Experiment = choices("Experiment", ("main", "midframe"))

commands = CommandTable()  # registered by cli.app


@commands.command("keyframes")
def keyframes_command(
    root: Path = typer.Argument(..., help="Dataset root in folder layout (reads ROOT/videos/train)."),
    cache: Path = typer.Option(Path("cache"), "--cache", help="Cache folder with the still cache; writes keyframes-<backbone>.h5."),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="Still cache to match (when there are several)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weights file the still cache was extracted with (checked by sha256)."),
    max_clusters: int = typer.Option(5, "--max-clusters", help="At most this many key frames a video (x-means, chosen by BIC)."),
    max_frames: int = typer.Option(32, "--max-frames", help="Frames sampled evenly from each video for clustering."),
    reduce_dim: int = typer.Option(16, "--reduce-dim", help="PCA dimensions the frames are clustered in (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the frame sampling, PCA and x-means."),
    device: str = device_option(),
    restart: bool = typer.Option(False, "--restart", help="Start over: discard the key-frame file and its unfinished parts."),
) -> None:
    """Mine key frames from every training video (x-means on frame features; resumable)."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.extraction.keyframes import KeyframeSettings, mine_keyframes

    if max_clusters < 1 or max_frames < 1:
        raise FeatcacheError("--max-clusters and --max-frames must be >= 1")
    settings = KeyframeSettings(max_clusters=max_clusters, max_frames=max_frames, reduce_dim=reduce_dim, seed=seed)
    path = mine_keyframes(root, cache, backbone=backbone, weights=weights, settings=settings, device=device,
                          restart=restart)
    typer.echo(f"key frames: {path}")

@commands.command("baseline")
def baseline_command(
    method: Baseline = typer.Argument(..., help="still: the still model alone; aug-frames: still + mined key frames."),
    root: Optional[Path] = typer.Option(None, "--root", help="aug-frames: mine the key frames from ROOT first when missing."),
    cache: Path = typer.Option(Path("cache"), "--cache", help="Cache folder."),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="Still cache to use (when there are several)."),
    sets: List[str] = typer.Option([], "--set", help="KEY=VALUE for the still model (still_lr, still_epochs, ...)."),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    experiment: Experiment = typer.Option(Experiment.main, "--experiment", help="main, or midframe for the mid-frame dataset's cache."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/<method>)."),
    device: str = device_option(),
    seeds: int = typer.Option(1, "--seeds", help="Train under N seeds (stacked members): mean ± std over seeds."),
) -> None:
    """Table 1 baselines: the still model, and Aug. Still+Frame (still + key frames)."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.extraction.keyframes import keyframes_cache_path, mine_keyframes
    from featcache.cache.feature_cache import FeatureCache, find_cache
    from heads.experiments.baselines import still_config, train_baseline
    from heads.evaluation.metrics import METRICS_FILE, print_metrics

    config = still_config(sets, config_file=config)
    if method is Baseline.aug_frames and root is not None:
        still = FeatureCache.open(find_cache(cache, "still", backbone))
        if not keyframes_cache_path(cache, still.backbone).exists():
            mine_keyframes(root, cache, backbone=still.backbone, device=device)
    out = out or default_run_dir(method.value)
    metrics = train_baseline(method.value, cache, backbone=backbone, config=config, device=device,
                             out=out, experiment=experiment.value, seeds=seeds)
    print_metrics(metrics)
    typer.echo(f"metrics: {out / METRICS_FILE}")

@commands.command("oracle")
def oracle_command(
    cache: Path = typer.Option(Path("cache"), "--cache", help="Cache folder with the still and temporal caches."),
    temporal: TemporalOrBoth = typer.Option(TemporalOrBoth.both, "--temporal", help="Temporal modality: flow, dynamic or both."),
    runs: int = typer.Option(100, "--runs", help="Oracle runs (fresh co-class draws each)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random co-class draws of all runs."),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="Backbone of the caches (when there are several)."),
    experiment: Experiment = typer.Option(Experiment.main, "--experiment", help="main, or midframe for the mid-frame dataset's caches."),
    out: Path = typer.Option(Path("runs/oracle"), "--out", help="Run directory; one sub-folder per modality."),
    device: str = device_option(),
) -> None:
    """Table 4: the oracle upper bound (still + a co-class unseen temporal instance)."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from heads.evaluation.metrics import METRICS_FILE
    from heads.experiments.oracle import run_oracle

    if runs < 1:
        raise FeatcacheError(f"--runs must be >= 1, got {runs}")
    kinds = ORACLE_KINDS if temporal is TemporalOrBoth.both else (temporal.value,)
    console = make_console()
    for kind in kinds:
        metrics = run_oracle(cache, kind, runs=runs, seed=seed, backbone=backbone, device=device,
                             out=out / kind, experiment=experiment.value)
        still = metrics["still"]
        for split, entry in metrics["improvement"].items():
            console.print(
                f"oracle {kind:8s} {split:4s}: still {still[split]:.1f}% -> fused {metrics['fused'][split]:.1f}%, "
                f"improvement {entry['mean']:+.2f} ± {entry['std']:.2f} pp over {runs} runs"
            )
        for split, entry in metrics["improvement_calibrated"].items():
            console.print(
                f"oracle {kind:8s} {split:4s}: calibrated (T still {metrics['temperatures']['still']:.2f}, "
                f"temporal {metrics['temperatures']['temporal']:.2f}) -> fused "
                f"{metrics['fused_calibrated'][split]:.1f}%, improvement {entry['mean']:+.2f} ± {entry['std']:.2f} pp"
            )
        typer.echo(f"metrics: {out / kind / METRICS_FILE}")

@commands.command("report")
def report_command(
    runs: List[Path] = typer.Argument(None, help="Folders holding run directories (default: runs)."),
    out: Path = typer.Option(Path("report"), "--out", help="Writes DIR/report.md, DIR/report.html and DIR/figures/."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Class-wise improvement figures (Figures 7-8)."),
) -> None:
    """The paper's Tables 1-4 and Figures 7-8 from every metrics.json under RUNS."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from heads.experiments.report.render import print_report, runs_read_line, write_report

    report, tables, path = write_report(runs or [Path("runs")], out, plots=plots)
    print_report(tables, path, summary=report.summary, warnings=report.warnings)
    for line in report.skipped:
        typer.echo(f"skipped: {line}", err=True)
    typer.echo(runs_read_line(report), err=bool(report.skipped))

@commands.command("demo")
def demo_command(
    out: Path = typer.Option(Path("demo"), "--out", help="Everything goes here: data, cache, runs, report."),
    classes: int = typer.Option(6, "--classes", help="Classes of the synthetic dataset."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic dataset and every training run."),
    quick: bool = typer.Option(False, "--quick", help="Smaller dataset and budgets (a smoke run)."),
    restart: bool = typer.Option(False, "--restart", help="Start over: remove the data, caches, runs and report an earlier demo left in OUT (default: resume it)."),
    device: str = device_option(),
    seeds: int = typer.Option(3, "--seeds", help="Seeds per head and baseline (stacked members): the report shows mean ± std."),
    tsn_seeds: Optional[int] = typer.Option(None, "--tsn-seeds", help="Seeds of each teacher-student network (one full run each; default: --seeds)."),
) -> None:
    """The whole T2SIL pipeline from nothing: data, representations, features, heads, oracle, report."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from heads.experiments.demo import run_demo

    run_demo(out, classes=classes, seed=seed, quick=quick, restart=restart, device=device, seeds=seeds,
             tsn_seeds=tsn_seeds)


@commands.command("midframes", data=True)
def midframes_command(
    root: Path = typer.Argument(..., help="Dataset root with videos/{train,test}."),
    out: Path = typer.Argument(..., help="New dataset root: middle frames as stills, videos linked."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Share of each class's train videos whose frames become val stills."),
    seed: int = typer.Option(0, "--seed", help="Seed choosing the videos whose frames become val stills."),
) -> None:
    """Section 5.4: a dataset whose stills are the videos' middle frames (no domain shift)."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.data.midframes import build_midframes

    dataset = build_midframes(root, out, val_fraction=val_fraction, seed=seed)
    counts = dataset.summary()
    typer.echo(f"mid-frame dataset {dataset.root}: stills {counts['stills']}, videos {counts['videos']}")
