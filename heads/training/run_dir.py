"""Where a command writes its run folder when ``--out`` is not given: ``runs/<name parts>``."""

from __future__ import annotations

import time
from pathlib import Path

from heads.training.config import write_config

RUNS_DIR = Path("runs")


def default_run_dir(*parts: str, timestamp: bool = False) -> Path:
    """``runs/<part>-<part>...`` (``-YYYYmmdd-HHMMSS`` appended with ``timestamp``, so repeated
    train-head runs never share a folder; fine-tuning and TSN keep one folder per model)."""
    name = "-".join(parts)
    return RUNS_DIR / (f"{name}-{time.strftime('%Y%m%d-%H%M%S')}" if timestamp else name)


def write_head_run(run_dir: Path, checkpoint: dict, config: dict, header: str, metrics: dict) -> None:
    """A head's run folder: ``model.pt``, ``config.yaml`` (``header`` on top), then ``metrics.json``,
    last: its presence marks the run finished (a grid resumes on it)."""
    # torch (metrics, checkpoints) loads on first write: the CLI imports run_dir at startup
    from heads.evaluation.metrics import write_metrics
    from heads.training.checkpoint import MODEL_FILE, save_head_checkpoint

    save_head_checkpoint(run_dir / MODEL_FILE, checkpoint)
    write_config(run_dir, config, header)
    write_metrics(run_dir, metrics)
