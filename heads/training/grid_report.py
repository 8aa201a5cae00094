"""Reporting a grid: the ranked ``OUT/grid.csv`` and the rich table of ``featcache grid``."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Sequence

from rich.table import Table

from featcache.utils.atomic import atomic_path
from featcache.utils.progress import make_console
from heads.evaluation.metrics import EVAL_SPLITS, STREAMS
from heads.training.grid import GridRun, GridSpec

GRID_FILE = "grid.csv"


def _acc(metrics: dict | None, stream: str, split: str, suffix: str = "") -> float | None:
    """Accuracy of ``stream`` on ``split`` (the mean over seeds); ``suffix="_std"``: its spread."""
    entry = (metrics or {}).get(stream)
    return None if not entry else entry.get(split + suffix)


def score_spread(run: GridRun) -> float | None:
    """Std over seeds of the accuracy the run is ranked by (None for one seed)."""
    stream, _, split = run.score[1].partition("/")
    return _acc(run.metrics, stream, split, "_std")


def grid_rows(runs: Sequence[GridRun]) -> tuple[list[str], list[list[Any]]]:
    """CSV header and rows: rank, run, score, every config key, accuracies, seconds, run dir."""
    keys = list(runs[0].config) if runs else []
    header = ["rank", "run", "score", "score_std", "score_on", "seeds", *keys]
    header += [f"{stream}_{split}" for stream in STREAMS for split in EVAL_SPLITS]
    header += [f"{stream}_{split}_std" for stream in STREAMS for split in EVAL_SPLITS]
    header += ["seconds", "reused", "run_dir"]
    rows = []
    for rank, run in enumerate(runs, start=1):
        score, source = run.score
        seeds = len((run.metrics or {}).get("seeds") or [None])
        row = [rank, run.run_dir.name, score, score_spread(run), source, seeds, *(run.config.get(k) for k in keys)]
        row += [_acc(run.metrics, stream, split) for stream in STREAMS for split in EVAL_SPLITS]
        row += [_acc(run.metrics, stream, split, "_std") for stream in STREAMS for split in EVAL_SPLITS]
        row += [(run.metrics or {}).get("seconds"), run.reused, str(run.run_dir)]
        rows.append(row)
    return header, rows


def write_grid_csv(out_dir: str | os.PathLike, runs: Sequence[GridRun]) -> Path:
    """``OUT/grid.csv``, written atomically."""
    header, rows = grid_rows(runs)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    path = Path(out_dir) / GRID_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def print_grid(spec: GridSpec, runs: Sequence[GridRun], console=None, limit: int | None = None) -> None:
    """A ranked rich table with the varied keys and val/test accuracies per stream."""
    streams = [s for s in STREAMS if any(_acc(r.metrics, s, split) is not None for r in runs for split in EVAL_SPLITS)]
    seeds = f" (mean ± std over {spec.seeds} seeds)" if spec.seeds > 1 else ""
    table = Table(title=f"grid {spec.method} ({spec.temporal}): {len(runs)} configurations, ranked by "
                        f"{runs[0].score[1] if runs else '-'}{seeds}")
    table.add_column("#", justify="right")
    for key in spec.varied:
        table.add_column(key, justify="right")
    for stream in streams:
        for split in EVAL_SPLITS:
            table.add_column(f"{stream} {split}", justify="right")
    table.add_column("s", justify="right")
    table.add_column("run")
    for rank, run in enumerate(runs[:limit] if limit else runs, start=1):
        cells = [str(rank), *(str(run.config.get(k)) for k in spec.varied)]
        for stream in streams:
            for split in EVAL_SPLITS:
                value, std = _acc(run.metrics, stream, split), _acc(run.metrics, stream, split, "_std")
                cells.append("-" if value is None else f"{value:.1f}" + ("" if std is None else f" ± {std:.1f}"))
        seconds = (run.metrics or {}).get("seconds")
        cells.append("-" if seconds is None else f"{seconds:.1f}{' (reused)' if run.reused else ''}")
        cells.append(run.run_dir.name)
        table.add_row(*cells)
    (console or make_console()).print(table)
