"""``featcache train-head METHOD``: stage-2 heads (any registered head method) on cached features."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cli.choices import Pairing, Temporal, device_option, method_argument, set_keys_help
from cli.registry import CommandTable
from featcache.utils.progress import console
from heads.training.run_dir import default_run_dir

CONFIG_HELP = "YAML file of KEY: VALUE (a run's config.yaml reruns it); --set wins over it."


commands = CommandTable()  # registered by cli.app


@commands.command("train-head", lazy_epilog=set_keys_help)
def train_head_command(
    method: str = method_argument("The head to train."),
    cache: Path = typer.Option(Path("cache"), "--cache", help="Folder with still-<backbone>.h5 and <temporal>-<backbone>.h5."),
    temporal: Temporal = typer.Option(Temporal.dynamic, "--temporal", help="Temporal modality whose knowledge is transferred."),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="Backbone of the still cache (default: the only one in --cache)."),
    temporal_backbone: Optional[str] = typer.Option(None, "--temporal-backbone", help="Backbone of the temporal cache (default: --backbone if that cache exists, else the only one)."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help="Hyperparameter KEY=VALUE (repeatable); the keys and their defaults (the paper's tables) are listed below. "
             "Schedules fit the data: each part trains its epochs, each of enough passes over its rows to take "
             "min_steps * sqrt(rows / the paper's rows) steps (still_/dimred_/classifier_ prefixes alike; at the "
             "paper's size one pass). min_steps=1 runs plain epochs."),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder for metrics.json, model.pt, history.jsonl and config.yaml (default: runs/<method>-<temporal>-<timestamp>)."),
    device: str = device_option(),
    seeds: int = typer.Option(1, "--seeds", help="Train under N seeds (seed, seed+1, ...; members of one stacked model): metrics.json then holds the mean and std over seeds, per-seed values under per_seed."),
    pairing: Optional[Pairing] = typer.Option(None, "--pairing", help="gan/embed: co-class (the paper; default) or instance: each still meets its own video's temporal rows (--set pairing=...)."),
    root: Optional[Path] = typer.Option(None, "--root", help="Dataset root whose still-videos.csv links stills to their videos (needed by --pairing instance)."),
) -> None:
    """Train a head on cached features; print val/test accuracy (still, derived temporal, fused)."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from heads.api import fit_head
    from heads.evaluation.metrics import METRICS_FILE, print_metrics

    run_dir = out or default_run_dir(method, temporal.value, timestamp=True)
    sets = [*(sets or []), *([f"pairing={pairing.value}"] if pairing else [])]
    run = fit_head(cache, method, temporal.value, config_file=config, sets=sets, out=run_dir,
                   device=device, seeds=seeds, backbone=backbone, temporal_backbone=temporal_backbone, progress=True,
                   log=console.print, root=root)
    print_metrics(run.metrics)
    typer.echo(f"temporal classifier ({temporal.value}, test videos; epoch chosen on the val videos): "
               f"{run.metrics['temporal_classifier']['test']:.1f}%; still model: {run.checkpoint['still_model']}")
    typer.echo(f"wrote {run_dir / METRICS_FILE}, model.pt, history.jsonl and config.yaml")
