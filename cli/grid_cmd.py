"""``featcache grid``: train every combination of ``--set KEY=V1,V2,...``, ranked."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from cli.choices import Method, Temporal


def register(app, data_app) -> None:
    @app.command("grid")
    def grid_command(
        method: Method = typer.Argument(..., help="Head to tune: gan, embed or classifier."),
        sets: List[str] = typer.Option([], "--set", help="KEY=V1,V2,...: values to try (repeatable); the grid is their cartesian product over the defaults. "
                 "Epochs are at least ceil(min_steps / batches per epoch) (see train-head --help)."),
        cache: Path = typer.Option(Path("cache"), "--cache", help="Folder with still-*.h5 and <temporal>-*.h5 feature caches."),
        temporal: Temporal = typer.Option(Temporal.flow, "--temporal", help="Temporal modality the head learns from."),
        out: Path = typer.Option(None, "--out", help="Output folder (default: runs/grid-<method>-<temporal>); one run dir per configuration + grid.csv."),
        jobs: int = typer.Option(1, "--jobs", help="Shape groups trained in parallel processes (1 on small machines: torch already uses every core)."),
        backbone: str = typer.Option(None, "--backbone", help="Backbone of the still cache (needed only when several are present)."),
        temporal_backbone: str = typer.Option(None, "--temporal-backbone", help="Backbone of the temporal cache (default: --backbone, else the only one)."),
        device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda."),
        max_group: int = typer.Option(64, "--max-group", help="Most configurations stacked into one model."),
        top: int = typer.Option(20, "--top", help="Rows shown in the ranked table (grid.csv has all)."),
        seeds: int = typer.Option(1, "--seeds", help="Train each configuration under N seeds (stacked members); rank by the mean val over seeds, show mean ± std."),
    ) -> None:
        """Train every configuration (stacked models for equal shapes), print a ranked table, write grid.csv.

        Resumable: configurations whose run dir already holds metrics.json with the same config are not retrained.
        """
        from featcache.errors import FeatcacheError
        from heads.grid import GridSpec, expand_grid, print_grid, run_grid, write_grid_csv

        if not sets:
            raise FeatcacheError("featcache grid: give at least one --set KEY=V1,V2,...")
        if seeds < 1:
            raise FeatcacheError(f"--seeds {seeds}: expected an integer >= 1")
        if max_group < 1:
            raise FeatcacheError(f"--max-group {max_group}: expected an integer >= 1")
        configs, varied = expand_grid(method.value, temporal.value, sets)
        out_dir = out or Path("runs") / f"grid-{method.value}-{temporal.value}"
        spec = GridSpec(method.value, temporal.value, Path(cache), Path(out_dir), backbone, temporal_backbone,
                        device, varied, seeds=seeds)
        runs = run_grid(spec, configs, jobs=jobs, max_group=max_group)
        path = write_grid_csv(spec.out_dir, runs)
        print_grid(spec, runs, limit=top)
        reused = sum(r.reused for r in runs)
        typer.echo(f"{len(runs)} configurations ({len(runs) - reused} trained, {reused} reused) -> {path}")
