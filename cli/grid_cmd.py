"""``featcache grid``: train every combination of ``--set KEY=V1,V2,...``, ranked."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cli.choices import Temporal, device_option, method_argument, set_keys_help
from cli.registry import CommandTable


commands = CommandTable()  # registered by cli.app


@commands.command("grid", lazy_epilog=set_keys_help)
def grid_command(
    method: str = method_argument("The head to tune."),
    sets: List[str] = typer.Option([], "--set", help="KEY=V1,V2,...: values to try (repeatable); the grid is their cartesian product over the defaults (keys listed below). "
             "Epochs take at least min_steps * sqrt(rows / the paper's rows) steps (see train-head --help)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of KEY: VALUE or KEY: [V1, V2] (lists vary); --set wins over it."),
    cache: Path = typer.Option(Path("cache"), "--cache", help="Folder with still-*.h5 and <temporal>-*.h5 feature caches."),
    temporal: Temporal = typer.Option(Temporal.flow, "--temporal", help="Temporal modality the head learns from."),
    out: Path = typer.Option(None, "--out", help="Grid folder (default: runs/grid-<method>-<temporal>): one run folder per configuration + grid.csv."),
    jobs: int = typer.Option(1, "--jobs", help="Shape groups trained in parallel processes (1 on small machines: torch already uses every core)."),
    backbone: str = typer.Option(None, "--backbone", help="Backbone of the still cache (needed only when several are present)."),
    temporal_backbone: str = typer.Option(None, "--temporal-backbone", help="Backbone of the temporal cache (default: --backbone, else the only one)."),
    device: str = device_option(),
    max_group: int = typer.Option(64, "--max-group", help="Most configurations stacked into one model."),
    top: int = typer.Option(20, "--top", help="Rows shown in the ranked table (grid.csv has all)."),
    restart: bool = typer.Option(False, "--restart", help="Start over: retrain every configuration (default: reuse finished ones)."),
    seeds: int = typer.Option(1, "--seeds", help="Train each configuration under N seeds (stacked members); rank by the mean val over seeds, show mean ± std."),
) -> None:
    """Train every configuration (stacked models for equal shapes), print a ranked table, write grid.csv.

    Resumable: configurations whose run dir already holds metrics.json with the same config are not retrained.
    """
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from heads.api import fit_grid
    from heads.training.grid_report import print_grid

    result = fit_grid(cache, method, temporal.value, sets=sets, config_file=config, out=out, device=device,
                      jobs=jobs, max_group=max_group, restart=restart, seeds=seeds, backbone=backbone,
                      temporal_backbone=temporal_backbone, show_progress=True)
    if result.csv is None:  # a torchrun rank > 0: rank 0 writes grid.csv and the table
        return
    print_grid(result.spec, result.runs, limit=top)
    reused = sum(r.reused for r in result.runs)
    typer.echo(f"{len(result.runs)} configurations ({len(result.runs) - reused} trained, {reused} reused) -> {result.csv}")
