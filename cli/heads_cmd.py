"""``featcache train-head classifier|gan|embed``: stage-2 heads on cached features."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cli.choices import Method, Temporal, device_option
from cli.registry import CommandTable
from heads.training.config import defaults_table
from heads.training.run_dir import default_run_dir

SET_KEYS_HELP = ("--set keys and their defaults (classifier and gan: the same for flow and dynamic):\n\n"
                 + defaults_table())
CONFIG_HELP = "YAML file of KEY: VALUE (a run's config.yaml reruns it); --set wins over it."


commands = CommandTable()  # registered by cli.app


@commands.command("train-head", epilog=SET_KEYS_HELP)
def train_head_command(
    method: Method = typer.Argument(..., help="classifier: still model + dim-reduction/temporal classifier; gan: adversarial (3.1); embed: triplet embedding (3.2)."),
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
) -> None:
    """Train a head on cached features; print val/test accuracy (still, derived temporal, fused)."""
    from featcache.utils.progress import console
    from heads.api import fit_head
    from heads.evaluation.metrics import METRICS_FILE, print_metrics

    run_dir = out or default_run_dir(method.value, temporal.value, timestamp=True)
    run = fit_head(cache, method.value, temporal.value, config_file=config, sets=sets or [], out=run_dir,
                   device=device, seeds=seeds, backbone=backbone, temporal_backbone=temporal_backbone, progress=True,
                   log=console.print)
    print_metrics(run.metrics)
    typer.echo(f"temporal classifier ({temporal.value}, test videos): "
               f"{run.metrics['temporal_classifier']['test']:.1f}%; still model: {run.checkpoint['still_model']}")
    typer.echo(f"wrote {run_dir / METRICS_FILE}, model.pt, history.jsonl and config.yaml")
