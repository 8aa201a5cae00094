"""The runs a report reads: every ``metrics.json`` under some folders, and which run fills a cell.

When several runs share a (method, temporal kind, experiment) cell, the best one by validation
(:func:`heads.evaluation.metrics.selection_score`) fills it, as the paper tunes on val. A run
without a val score is never ranked (that would need test labels): it fills a cell only when it
is the cell's only run, and the report says so (``Report.unranked``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from featcache.data.val_split import describe_split
from featcache.errors import FeatcacheError
from heads.evaluation.metrics import selection_score
from heads.training.methods import list_methods, transfer_methods
from heads.training.run_dir import RunFolderError, find_run_folders, read_run_folder

# The report's columns and their order (not featcache.cache.schema.MODALITIES, the cache's modalities).
TEMPORAL_LABELS = (("flow", "Optical-flow"), ("dynamic", "Dynamic images"))
TSN_LABEL = ("tsn", "TSN")  # the teacher-student network (heads.finetune.tsn), not a head method


def t2sil_methods() -> list[tuple[str, str]]:
    """The report's T2SIL rows, ``(method, label)``: the registered transfer head methods, then TSN."""
    return [(m.name, m.label) for m in transfer_methods()] + [TSN_LABEL]


def temporal_label(temporal: str | None) -> str:
    return dict(TEMPORAL_LABELS).get(temporal, temporal or "")


def method_label(method: str) -> str:
    return dict(t2sil_methods()).get(method, method)


@dataclass
class Run:
    """One run directory and its metrics."""

    path: Path
    metrics: dict[str, Any]

    @property
    def method(self) -> str:
        return str(self.metrics.get("method"))

    @property
    def temporal(self) -> str | None:
        return self.metrics.get("temporal")

    @property
    def experiment(self) -> str:
        return str(self.metrics.get("experiment") or "main")

    def value(self, stream: str, split: str) -> float | None:
        entry = self.metrics.get(stream)
        value = entry.get(split) if isinstance(entry, dict) else None
        return None if value is None or not math.isfinite(float(value)) else float(value)


@dataclass
class Report:
    runs: list[Run]
    skipped: list[str] = field(default_factory=list)  # half-written or damaged run folders, one line each
    missing: list[str] = field(default_factory=list)  # table cells without a run
    warnings: list[str] = field(default_factory=list)  # small val/test splits, one line each
    summary: str = ""  # the plain-language paragraph (heads.experiments.report.significance)
    unranked: dict[str, str] = field(default_factory=dict)  # run path -> why it was not ranked (no val score)

    def best(self, method: str, temporal: str | None, experiment: str = "main") -> Run | None:
        """The best run by val score among those matching; runs without a val score are not ranked
        (one such run alone still fills its cell: no choice is made), or None."""
        matching = [
            r for r in self.runs
            if r.method == method and r.experiment == experiment and (temporal is None or r.temporal == temporal)
        ]
        scored = [r for r in matching if selection_score(r.metrics)[0] is not None]
        for run in matching:
            if run not in scored:
                self.unranked[str(run.path)] = (
                    "no val score; shown as its cell's only run" if len(matching) == 1 else
                    "no val score; not ranked against the cell's other runs (that would need test labels)")
        if scored:
            return max(scored, key=lambda r: (selection_score(r.metrics)[0], str(r.path)))
        return matching[0] if len(matching) == 1 else None



def collect_runs(folders: Sequence[str | os.PathLike]) -> Report:
    """Every run folder under ``folders`` (a folder may itself be a run folder): the finished
    ones are read; half-written or damaged ones (no or an unreadable ``metrics.json``, a
    ``model.pt`` that does not load) are skipped, each named with why in ``Report.skipped``."""
    runs, skipped = [], []
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            raise FeatcacheError(f"runs folder not found: {folder}")
        for run_dir in find_run_folders(folder):
            try:
                metrics = read_run_folder(run_dir)
            except RunFolderError as exc:  # one broken run must not hide the others
                skipped.append(str(exc))
                continue
            if not metrics.get("member_of"):  # a seed of a combined run (tsn --seeds): read through that run
                runs.append(Run(run_dir, metrics))
    if not runs:
        where = ", ".join(str(f) for f in folders)
        if skipped:
            raise FeatcacheError(f"no finished run under {where}: {len(skipped)} run folder(s) skipped, "
                                 f"first: {skipped[0]}")
        raise FeatcacheError(f"no metrics.json found under {where}; run train-head, tsn, oracle or demo first")
    return Report(runs=runs, skipped=skipped)


def best_run(runs: Sequence[Run]) -> Run | None:
    """The main-experiment run with the best validation score (the confusion figure's run)."""
    main = [r for r in runs if r.experiment == "main" and selection_score(r.metrics)[0] is not None]
    return max(main, key=lambda r: (selection_score(r.metrics)[0], str(r.path)), default=None)


def selected_t2sil_runs(report: Report) -> list[Run]:
    """The runs shown in Tables 2 and 3 (one per method x modality x experiment)."""
    runs = []
    for experiment in ("main", "midframe"):
        for method, _ in t2sil_methods():
            for temporal, _ in TEMPORAL_LABELS:
                if (run := report.best(method, temporal, experiment)) is not None:
                    runs.append(run)
    return runs


def best_run_per_kind(report: Report) -> list[Run]:
    """The best run by validation of each (method, temporal, experiment) present."""
    kinds = dict.fromkeys((r.method, r.temporal, r.experiment) for r in report.runs)
    best = [report.best(method, temporal, experiment) for method, temporal, experiment in kinds]
    return [run for run in best if run is not None]  # None: several runs, none with a val score



# Which choice is made on what (docs/metrics.md); stated in every report.
PROTOCOL = (
    "Every choice is made on val data; test labels are read only by the final evaluation. "
    "Temporal models (Resnet-Dyn./-Opt.) choose their epoch on the val videos, the dim-reduction network "
    "and the embedding's classifier on the val videos' rows, the heads (still model, GAN, embedding) and TSN "
    "their epoch on the val stills (TSN without a still val split: on a seeded 20% of the train stills), the "
    "calibrated oracle its temperatures on the val stills and val videos, and this report its best run per cell "
    "by val score. Val videos come from videos/val, else from a seeded, class-stratified 20% of the train "
    "videos (recorded in temporal.h5). One departure from the paper: it picks the temporal models' epochs on "
    "the test videos; we never do."
)

def cached_feature_methods() -> tuple[str, ...]:
    """The runs that train on cached features (a linear still model, a dim-reduction network whose
    temporal parts choose on val videos): every registered head method and the oracle."""
    return (*list_methods(), "oracle")


def protocol_notes(report: Report) -> list[str]:
    """Where this report's runs made their choices: the val videos they used, and the runs made by
    an older featcache that chose on test (they are shown, and named here)."""
    notes = []
    origins = sorted({describe_split(r.metrics["temporal_val"]) for r in report.runs
                      if isinstance(r.metrics.get("temporal_val"), dict)})
    origins += sorted({str((r.metrics.get("config") or {}).get("selected_on")) for r in report.runs
                       if r.method in ("finetune-flow", "finetune-dynamic")
                       and (r.metrics.get("config") or {}).get("selected_on") not in (None, "test")})
    if origins:
        notes.append("Val videos of these runs: " + "; ".join(dict.fromkeys(origins)) + ".")
    on_test = [r for r in report.runs if _chose_on_test(r)]
    if on_test:
        notes.append(f"{len(on_test)} run(s) were made by an older featcache that chose epochs or temperatures on "
                     "test data (their figures are optimistic): " + ", ".join(f"`{r.path}`" for r in on_test) + ".")
    return notes


def _chose_on_test(run: Run) -> bool:
    selected_on = str((run.metrics.get("config") or {}).get("selected_on", ""))
    if selected_on in ("test", "fused test"):
        return True
    return run.method in cached_feature_methods() and run.temporal is not None and "temporal_val" not in run.metrics
