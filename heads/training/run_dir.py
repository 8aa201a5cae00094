"""Where a command writes its run folder when ``--out`` is not given: ``runs/<name parts>``."""

from __future__ import annotations

import time
from pathlib import Path

RUNS_DIR = Path("runs")


def default_run_dir(*parts: str, timestamp: bool = False) -> Path:
    """``runs/<part>-<part>...`` (``-YYYYmmdd-HHMMSS`` appended with ``timestamp``, so repeated
    train-head runs never share a folder; fine-tuning and TSN keep one folder per model)."""
    name = "-".join(parts)
    return RUNS_DIR / (f"{name}-{time.strftime('%Y%m%d-%H%M%S')}" if timestamp else name)
