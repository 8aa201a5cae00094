"""Where a command writes its run folder when ``--out`` is not given: ``runs/<name parts>``."""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path
from typing import Any

from featcache.errors import FeatcacheError

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


# -- reading run folders back: the one check of a half-written or damaged one ---------------------
TRAINING_STATE_FILE = "checkpoint.pt"  # heads.finetune.finetune.CHECKPOINT_FILE (a floor above this one)


def run_files() -> tuple[str, ...]:
    """The files any of which marks a folder as a run folder (``docs/run-folder.md``)."""
    from heads.evaluation.history import HISTORY_FILE
    from heads.evaluation.metrics import METRICS_FILE
    from heads.training.checkpoint import MODEL_FILE
    from heads.training.config import CONFIG_FILE

    return METRICS_FILE, MODEL_FILE, CONFIG_FILE, HISTORY_FILE, TRAINING_STATE_FILE


class RunFolderError(FeatcacheError):
    """A run folder that is half-written (no ``metrics.json``) or damaged (an unreadable
    ``metrics.json``, a ``model.pt`` that does not load); the message names the file and why."""


def find_run_folders(folder: str | os.PathLike) -> list[Path]:
    """Every run folder under ``folder`` (itself included): a folder holding any of :func:`run_files`.
    A ``metrics.json`` path stands for its folder."""
    from heads.evaluation.history import TENSORBOARD_DIR

    folder = Path(folder)
    if folder.is_file():
        return [folder.parent]
    found = {p.parent for name in run_files() for p in folder.rglob(name)}
    return sorted(p for p in found if TENSORBOARD_DIR not in p.relative_to(folder).parts)


def check_model_file(path: Path) -> None:
    """Raise RunFolderError unless ``path`` is an intact ``torch.save`` archive (every member's CRC
    read back: a truncated or bit-flipped file fails here, without unpickling anything)."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise RunFolderError(f"{path}: does not load ({exc}); retrain the run to write it again") from None
    if bad is not None:
        raise RunFolderError(f"{path}: does not load (member {bad} fails its CRC: damaged on disk); "
                             "retrain the run to write it again")


def read_run_folder(run_dir: str | os.PathLike, *, check_model: bool = True) -> dict[str, Any]:
    """A finished run folder's ``metrics.json``, after checking the folder is whole: RunFolderError
    when it has no metrics.json (unfinished: killed, or its disk filled), an unreadable one, or
    (``check_model``) a ``model.pt`` that does not load. The report, grid resume and predict use it."""
    from heads.evaluation.metrics import METRICS_FILE, read_metrics
    from heads.training.checkpoint import MODEL_FILE

    run_dir = Path(run_dir)
    if run_dir.is_file():
        run_dir = run_dir.parent
    if not (run_dir / METRICS_FILE).is_file():
        raise RunFolderError(f"{run_dir}: no {METRICS_FILE}: the run is unfinished (killed, or its disk filled); "
                             "rerun it, or delete the folder")
    try:
        metrics = read_metrics(run_dir)
    except FeatcacheError as exc:
        raise RunFolderError(str(exc)) from None
    if check_model and (run_dir / MODEL_FILE).is_file():
        check_model_file(run_dir / MODEL_FILE)
    return metrics
