"""Learning curves of a run: ``RUN_DIR/history.jsonl`` and, when installed, TensorBoard events.

One writer for every training loop (heads, grid members, fine-tuning, TSN). Each
:meth:`History.record` call appends ONE JSON object for one epoch of one training phase,
``{"phase", "epoch", ...values}``, to ``history.jsonl`` (flushed at once, so the curve of a
killed run is on disk) and mirrors its numbers as TensorBoard scalars ``<phase>/<key>`` under
``RUN_DIR/tensorboard/`` when ``tensorboard`` is importable (optional extra
``featcache[tensorboard]``). Phases of the heads: ``still``, ``dimred``, ``gan``, ``embed``,
``embed_classifier``; fine-tuning and TSN write ``finetune`` / ``tsn``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from featcache.utils.atomic import atomic_path, writing

HISTORY_FILE = "history.jsonl"
TENSORBOARD_DIR = "tensorboard"


def tensorboard_available() -> bool:
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except Exception:  # tensorboard not installed (ImportError) or broken
        return False
    return True


def _plain(value: Any) -> Any:
    """JSON-ready scalar: tensors/numpy numbers to Python, non-finite floats to None."""
    if isinstance(value, torch.Tensor):
        value = value.item()
    elif hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


class History:
    """Per-epoch values of one run, appended to ``run_dir/history.jsonl``.

    ``start()`` (re)writes the file with the entries a resumed run already has (none for a
    fresh run), so a rerun never mixes two runs' curves. ``tensorboard=None`` writes events
    when tensorboard is installed, ``False`` never.
    """

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool | None = None):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / HISTORY_FILE
        self.use_tensorboard = tensorboard_available() if tensorboard is None else bool(tensorboard)
        self._writer = None
        self._started = False

    def start(self, entries: Iterable[Mapping[str, Any]] = ()) -> "History":
        lines = "".join(json.dumps({k: _plain(v) for k, v in e.items()}) + "\n" for e in entries)
        with atomic_path(self.path, "training history") as tmp:
            tmp.write_text(lines, encoding="utf-8")
        self._started = True
        return self

    def record(self, phase: str, epoch: int, values: Mapping[str, Any]) -> dict[str, Any]:
        """Append one epoch (1-based ``epoch``) of ``phase``; returns the entry written."""
        if not self._started:
            self.start()
        entry = {"phase": phase, "epoch": int(epoch), **{k: _plain(v) for k, v in values.items()}}
        with writing("training history", self.path), open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        if self.use_tensorboard:
            self._scalars(phase, int(epoch), entry)
        return entry

    def _scalars(self, phase: str, epoch: int, entry: Mapping[str, Any]) -> None:
        if self._writer is None:
            # optional (featcache[tensorboard]): loaded only when its curves are written
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir / TENSORBOARD_DIR))
        for key, value in entry.items():
            if key not in ("phase", "epoch") and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(f"{phase}/{key}", value, epoch)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The entries of ``run_dir/history.jsonl`` ([] when absent); a torn last line is skipped."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    return entries


class MemberHistories:
    """The histories of the G members of a stacked group (``None`` entries record nothing).

    ``record(phase, epoch, values, owner)``: each value is a scalar, a per-member sequence or
    tensor ``[G]``, or, with ``owner``, a per-part tensor ``[U]`` read at ``owner[g]``
    (parts shared by members that agree on their keys).
    """

    def __init__(self, histories: Sequence[History | None] | None, members: int):
        self.histories = list(histories) if histories is not None else [None] * members
        if len(self.histories) != members:
            raise ValueError(f"{len(self.histories)} histories for {members} members")

    @property
    def active(self) -> bool:
        return any(h is not None for h in self.histories)

    def record(self, phase: str, epoch: int, values: Mapping[str, Any],
               owner: Sequence[int] | torch.Tensor | None = None) -> None:
        if not self.active:
            return
        columns = {k: _column(v) for k, v in values.items()}
        for g, history in enumerate(self.histories):
            if history is None:
                continue
            row = int(owner[g]) if owner is not None else g
            if row < 0:  # this member's part was not trained here (reused)
                continue
            history.record(phase, epoch, {k: (v[row] if isinstance(v, list) else v) for k, v in columns.items()})


def _column(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist() if value.dim() else value.item()
    if isinstance(value, (list, tuple)):
        return list(value)
    return value
