"""``featcache predict RUN INPUTS...``: a trained run's top-k classes for still images, per stream."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.choices import device_option
from cli.registry import CommandTable
from featcache.errors import FeatcacheError
from featcache.utils.progress import console

commands = CommandTable()  # registered by cli.app


@commands.command("predict")
def predict_command(
    run: Path = typer.Argument(..., help="Run folder holding a model: train-head, a grid run, baseline, tsn, or a finetune run folder (or its model .pt)."),
    inputs: List[Path] = typer.Argument(..., help="Image files or folders (searched recursively for images); for a temporal model (finetune dynamic|flow), video files or folders of videos."),
    top_k: int = typer.Option(3, "--top-k", min=1, help="Classes listed per input and stream."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write a .csv (path,stream,rank,class,probability) or a .jsonl (one record per input) instead of printing a table."),
    device: str = device_option(),
) -> None:
    """Label still images with a trained run: top-k classes and probabilities per stream (still, derived, fused, fused_calibrated); a temporal model labels videos (stream temporal)."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from heads.inference.loaded_run import load_run
    from heads.inference.predict_files import check_output, media_files, predict_files, write_predictions

    if out is not None:
        check_output(out)
    model = load_run(run, device)
    files = media_files(inputs, model.inputs)
    skipped: list[str] = []

    def skip(message: str) -> None:
        skipped.append(message)
        console.print(f"[yellow]skipped[/] {escape(message)}", highlight=False, soft_wrap=True)

    rows = list(predict_files(model, files, on_skip=skip))
    if not rows:
        raise FeatcacheError(f"none of the {len(files)} inputs could be read (first: {skipped[0]})")
    if out is not None:
        write_predictions(out, model, rows, top_k)
        typer.echo(f"wrote {len(rows)} inputs x {len(model.streams)} streams x top-{top_k} to {out}")
    else:
        print_predictions(model, rows, top_k)
    if skipped:
        typer.echo(f"{len(skipped)} of {len(files)} inputs unreadable, skipped", err=True)


def print_predictions(model, rows, k: int) -> None:
    """A rich table: one row per input and stream, its top-k classes with probabilities."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from heads.inference.predict_files import top_k

    table = Table(title=f"{model.method}{f' ({model.temporal})' if model.temporal else ''}: {model.path}")
    table.add_column("input", overflow="fold")
    table.add_column("stream")
    for rank in range(1, min(k, len(model.classes)) + 1):
        table.add_column(f"#{rank}", justify="left")
    for path, streams in rows:
        for i, stream in enumerate(model.streams):
            cells = [f"{name} {100 * p:.1f}%" for _, name, p in top_k(streams[stream], model.classes, k)]
            table.add_row(path if i == 0 else "", stream, *cells, end_section=i == len(model.streams) - 1)
    Console().print(table)
