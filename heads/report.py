"""``featcache report``: every ``metrics.json`` under some folders -> the paper's Tables 1-4 and
Figures 7-8 as ``report.md`` + ``report.html``, and a rich summary in the terminal.

Tables (accuracies in percent; a missing entry is "—" and listed in the notes):

1. Baselines and temporal models: still image, Aug. Still+Frame (val/test on stills), and
   the temporal classifiers (validated on the test videos, as in the paper).
2. T2SIL (main experiment): derived temporal and fusion-with-still rows x GAN / Triplets
   Embed. / TSN, columns optical flow vs dynamic images x val/test.
3. Mid-frame experiment: Temp. and Fused test accuracy per modality.
4. Oracle: improvement over the still baseline, mean ± std over the runs, val/test, and its
   95% CI over the stills.
5. Gains over the still baseline (``heads.report_significance``): each method's derived,
   paper-fused and calibrated-fused gain with CI and significance marks, the oracle gain,
   the share of it each method recovers, per-stream ECE; then a plain-language summary.

Accuracy cells read ``val [low, high]`` (95% bootstrap CI over the stills) and, for runs
over several seeds, ``mean ± std [low, high]``.

When several runs share a (method, modality, experiment) cell, the best one by
validation (:func:`heads.evaluation.selection_score`) fills it, as the paper tunes on val.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from featcache.errors import FeatcacheError
from featcache.schema import atomic_path
from heads.evaluation import METRICS_FILE, format_accuracy, read_metrics, selection_score

DASH = "—"
MODALITIES = (("flow", "Optical-flow"), ("dynamic", "Dynamic images"))
T2SIL_METHODS = (("gan", "GAN"), ("embed", "Triplets Embed."), ("tsn", "TSN"))
MODALITY_NAMES = dict(MODALITIES)


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
    skipped: list[str] = field(default_factory=list)  # unreadable metrics files, one line each
    missing: list[str] = field(default_factory=list)  # table cells without a run
    summary: str = ""  # the plain-language paragraph (heads.report_significance)

    def best(self, method: str, temporal: str | None, experiment: str = "main") -> Run | None:
        """The best run by validation among those matching, or None."""
        matching = [
            r for r in self.runs
            if r.method == method and r.experiment == experiment and (temporal is None or r.temporal == temporal)
        ]
        if not matching:
            return None
        return max(matching, key=lambda r: (selection_score(r.metrics)[0] or -1.0, str(r.path)))


# -- collecting --------------------------------------------------------------------
def collect_runs(folders: Sequence[str | os.PathLike]) -> Report:
    """Every ``metrics.json`` under ``folders`` (a folder may itself be a run directory)."""
    runs, skipped = [], []
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            raise FeatcacheError(f"runs folder not found: {folder}")
        files = [folder] if folder.is_file() else sorted(folder.rglob(METRICS_FILE))
        for path in files:
            try:
                runs.append(Run(path.parent, read_metrics(path)))
            except FeatcacheError as exc:  # one broken run must not hide the others
                skipped.append(str(exc))
    if not runs:
        where = ", ".join(str(f) for f in folders)
        raise FeatcacheError(f"no metrics.json found under {where}; run train-head, tsn, oracle or demo first")
    return Report(runs=runs, skipped=skipped)


# -- cell formatting -------------------------------------------------------------
def fmt(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def fmt_percent(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}%"


def fmt_mean_std(entry: dict[str, Any] | None) -> str:
    """Oracle improvement: ``mean ± std`` over draws, then the CI over stills when recorded."""
    if not entry or entry.get("mean") is None:
        return DASH
    text = f"{entry['mean']:.1f} ± {entry.get('std') or 0.0:.1f}"
    ci = entry.get("ci")
    return text + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci and ci[0] is not None else "")


def _cell(report: Report, run: Run | None, stream: str, split: str, what: str) -> str:
    value = run.value(stream, split) if run else None
    if value is None:
        report.missing.append(what)
        return DASH
    return format_accuracy(run.metrics.get(stream), split, DASH)


# -- tables (each a list of rows; the first row is the header) -------------------------
def table1(report: Report) -> list[list[str]]:
    rows = [["Model", "Trained on", "Evaluated on", "Val", "Test"]]
    for method, name, trained in (("still", "Still image", "still images"), ("aug-frames", "Aug. Still+Frame", "still + key frames")):
        run = report.best(method, None)
        counts = _train_counts(run)
        rows.append([
            name, trained + counts, "still images",
            _cell(report, run, "still", "val", f"Table 1 {name} val"),
            _cell(report, run, "still", "test", f"Table 1 {name} test"),
        ])
    for temporal, modality in MODALITIES:
        # The fine-tuned temporal backbone (Resnet-Opt./Dyn.) when there is one, else the
        # temporal classifier on cached features; both validated on the test videos.
        finetuned = report.best(f"finetune-{temporal}", temporal)
        run = finetuned or report.best("classifier", temporal)
        accuracy = _temporal_model_accuracy(run)
        if accuracy is None:
            report.missing.append(f"Table 1 temporal model ({modality})")
        trained = f"{modality} (train videos)" + ("" if finetuned or run is None else ", cached features")
        rows.append([f"Temporal model ({modality})", trained, f"{modality} (test videos)", DASH, fmt(accuracy)])
    return rows


def _train_counts(run: Run | None) -> str:
    config = (run.metrics.get("config") or {}) if run else {}
    parts = [str(config[k]) for k in ("num_train", "num_keyframes") if isinstance(config.get(k), int)]
    return f" ({'+'.join(parts)})" if parts else ""


def _temporal_model_accuracy(run: Run | None) -> float | None:
    """A temporal classifier's own accuracy: on the test videos (videos have no val split)."""
    if run is None:
        return None
    if run.method == "classifier":
        value = (run.metrics.get("temporal_classifier") or {}).get("test")
        return None if value is None else float(value)
    for stream in ("still", "derived"):
        for split in ("test", "val"):
            if (value := run.value(stream, split)) is not None:
                return value
    return None


def table2(report: Report) -> list[list[str]]:
    header = ["", "Method"] + [f"{name} {split}" for _, name in MODALITIES for split in ("Val", "Test")]
    rows = [header]
    for stream, group in (("derived", "Derived temporal"), ("fused", "Fusion with Still"),
                          ("fused_calibrated", "Fusion, calibrated")):
        for method, name in T2SIL_METHODS:
            row = [group, name]
            for temporal, modality in MODALITIES:
                run = report.best(method, temporal)
                for split in ("val", "test"):
                    row.append(_cell(report, run, stream, split, f"Table 2 {group} {name} {modality} {split}"))
            rows.append(row)
    return rows


def table3(report: Report) -> list[list[str]]:
    rows = [["Solution"] + [f"{name} {col}" for _, name in MODALITIES for col in ("Temp.", "Fused")]]
    for method, name in T2SIL_METHODS:
        row = [name]
        for temporal, modality in MODALITIES:
            run = report.best(method, temporal, "midframe")
            row.append(_cell(report, run, "derived", "test", f"Table 3 {name} {modality} Temp."))
            row.append(_cell(report, run, "fused", "test", f"Table 3 {name} {modality} Fused"))
        rows.append(row)
    return rows


def midframe_baseline(report: Report) -> float | None:
    """The mid-frame still baseline's test accuracy (a still run, else any mid-frame run's still stream)."""
    run = report.best("still", None, "midframe")
    if run is None:
        run = next((r for r in report.runs if r.experiment == "midframe" and r.value("still", "test") is not None), None)
    return run.value("still", "test") if run else None


def table4(report: Report) -> list[list[str]]:
    rows = [["", *(f"{name} {split}" for _, name in MODALITIES for split in ("Val", "Test"))]]
    # The paper's plain average, then the same draws fused after temperature scaling (val-fitted).
    for key, label in (("improvement", "Oracle test"), ("improvement_calibrated", "Oracle test, calibrated")):
        row, calibrated = [label], key != "improvement"
        for temporal, modality in MODALITIES:
            run = report.best("oracle", temporal)
            improvement = (run.metrics.get(key) or {}) if run else {}
            for split in ("val", "test"):
                cell = fmt_mean_std(improvement.get(split))
                if cell == DASH and not calibrated:  # older oracle runs have no calibrated row
                    report.missing.append(f"Table 4 oracle {modality} {split}")
                row.append(cell)
        if not calibrated or any(cell != DASH for cell in row[1:]):
            rows.append(row)
    return rows


def table6(report: Report) -> list[list[str]]:
    """Top-5 accuracy and mean average precision on test, per stream (the metrics papers report)."""
    streams = (("still", "Still"), ("derived", "Derived"), ("fused", "Fused"))
    rows = [["Method", "Modality", *(f"{name} top-5 / mAP" for _, name in streams)]]
    for temporal, modality in MODALITIES:
        for method, name in T2SIL_METHODS:
            if (run := report.best(method, temporal)) is None:
                continue
            cells = []
            for stream, _ in streams:
                entry = run.metrics.get(stream) or {}
                cells.append(f"{fmt(entry.get('top5'))} / {fmt(entry.get('map'))}")
            rows.append([name, modality, *cells])
    return rows


def oracle_baseline(report: Report) -> dict[str, float | None]:
    run = next((r for t, _ in MODALITIES if (r := report.best("oracle", t))), None) or report.best("still", None)
    return {split: run.value("still", split) if run else None for split in ("val", "test")}


# -- rendering ---------------------------------------------------------------------
def markdown_table(rows: list[list[str]]) -> str:
    header, *body = rows
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def build_tables(report: Report) -> dict[str, tuple[str, list[list[str]]]]:
    from heads.report_significance import gains_table

    base = oracle_baseline(report)
    mid = midframe_baseline(report)
    return {
        "table1": ("Table 1: Baseline experiments and temporal feature extraction model performances.", table1(report)),
        "table2": ("Table 2: Accuracy in still image action classification with T2SIL: the derived temporal "
                   "stream alone and after two-stream fusion with the still stream.", table2(report)),
        "table3": (f"Table 3: Mid-frame experiment (video middle frames as stills), test accuracy. "
                   f"Still baseline on test mid-frames: {fmt_percent(mid)}.", table3(report)),
        "table4": (f"Table 4: Oracle improvement over the still baseline (Val: {fmt_percent(base['val'])}, "
                   f"Test: {fmt_percent(base['test'])}), percentage points, mean ± std over runs "
                   f"[95% CI over stills]; the paper's plain softmax average, and the same draws fused after "
                   f"temperature scaling each stream (fitted on val).", table4(report)),
        "table5": ("Table 5: Test gains over the still baseline in points [95% CI], paired on the same stills "
                   "(* p < 0.05, ** p < 0.01); the paper / calibrated oracle gain, the share of it the paper / "
                   "calibrated fusion recovers (when that oracle gain is significant) and each stream's expected calibration "
                   "error (%, 15 bins).", gains_table(report)),
        "table6": ("Table 6: Top-5 accuracy (more than 5 classes only) and mean average precision over classes "
                   "on test, percent.", table6(report)),
    }


def render_markdown(report: Report, tables, figures: list[tuple[str, Path]], out: Path, summary: str = "",
                    confusion: tuple[str, Path] | None = None, curves: Sequence[tuple[str, Path]] = ()) -> str:
    parts = [
        "# featcache report: Temporal-to-Still Image Learning",
        f"{len(report.runs)} runs collected. Accuracies in percent with 95% bootstrap CIs over the stills "
        "(mean ± std over seeds where runs have several); the best run by validation fills each cell.",
    ]
    if summary:
        parts += ["## Summary", summary]
    for caption, rows in tables.values():
        parts += [f"## {caption.split(':')[0]}", caption, markdown_table(rows)]
    parts += figure_section("Confusion matrices", "", [confusion] if confusion else [], out)
    parts += figure_section("Class-wise analysis (Figures 7-8)",
                            "Per-class improvement over the still baseline on the test stills: derived temporal "
                            "stream (left, Fig. 7) and fusion with the still stream (right, Fig. 8).", figures, out)
    parts += figure_section("Learning curves", "Per-epoch losses and accuracies from each run's history.jsonl "
                            "(the best run by validation of every method, modality and experiment).", curves, out)
    notes = []
    if report.missing:
        notes.append(f"{DASH} marks an entry without a run ({len(report.missing)}): " + "; ".join(report.missing) + ".")
    notes += [f"Skipped: {line}" for line in report.skipped]
    if notes:
        parts += ["## Notes", *(f"- {n}" for n in notes)]
    parts.append("## Runs\n" + "\n".join(
        f"- `{r.path}`: {r.method}" + (f" ({r.temporal})" if r.temporal else "") + f", {r.experiment}"
        for r in sorted(report.runs, key=lambda r: str(r.path))
    ))
    return "\n\n".join(parts) + "\n"


def figure_section(heading: str, text: str, figures: Sequence[tuple[str, Path]], out: Path) -> list[str]:
    """Markdown of one section of figures (nothing when there are none)."""
    if not figures:
        return []
    parts = [f"## {heading}"] + ([text] if text else [])
    for title, path in figures:
        parts += [f"### {title}", f"![{title}]({path.relative_to(out).as_posix()})"]
    return parts


HTML_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>featcache report</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}table{{border-collapse:collapse}}
th,td{{border:1px solid #bbb;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
img{{max-width:100%}}</style></head><body>
{body}
</body></html>
"""


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_report(folders: Sequence[str | os.PathLike], out: str | os.PathLike, plots: bool = True) -> tuple[Report, dict, Path]:
    """Collect the runs under ``folders`` and write ``out/report.md``, ``out/report.html`` and figures."""
    import markdown

    out = Path(out)
    report = collect_runs(folders)
    tables = build_tables(report)
    from heads.report_significance import summary_paragraph

    figures, confusion, curves = [], None, []
    if plots:
        from heads.report_plots import plot_class_improvements, plot_confusion, plot_learning_curves

        figures = plot_class_improvements(selected_t2sil_runs(report), out / "figures")
        confusion = plot_confusion(best_run(selected_t2sil_runs(report)), out / "figures")
        curves = plot_learning_curves(best_run_per_kind(report), out / "figures")
    report.summary = summary_paragraph(report)
    text = render_markdown(report, tables, figures, out, report.summary, confusion, curves)
    write_text(out / "report.md", text)
    html = markdown.markdown(text, extensions=["tables"])
    write_text(out / "report.html", HTML_TEMPLATE.format(body=html))
    return report, tables, out / "report.md"


def best_run(runs: Sequence[Run]) -> Run | None:
    """The main-experiment run with the best validation score (the confusion figure's run)."""
    main = [r for r in runs if r.experiment == "main" and selection_score(r.metrics)[0] is not None]
    return max(main, key=lambda r: (selection_score(r.metrics)[0], str(r.path)), default=None)


def selected_t2sil_runs(report: Report) -> list[Run]:
    """The runs shown in Tables 2 and 3 (one per method x modality x experiment)."""
    runs = []
    for experiment in ("main", "midframe"):
        for method, _ in T2SIL_METHODS:
            for temporal, _ in MODALITIES:
                if (run := report.best(method, temporal, experiment)) is not None:
                    runs.append(run)
    return runs


def best_run_per_kind(report: Report) -> list[Run]:
    """The best run by validation of each (method, temporal, experiment) present."""
    kinds = dict.fromkeys((r.method, r.temporal, r.experiment) for r in report.runs)
    return [report.best(method, temporal, experiment) for method, temporal, experiment in kinds]


def print_report(tables: dict, report_path: Path, console=None, summary: str = "") -> None:
    """The tables as rich tables in the terminal, then where the report is."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for caption, rows in tables.values():
        table = Table(title=caption.split(":")[0], caption=caption.split(":", 1)[1].strip(), caption_justify="left")
        for i, name in enumerate(rows[0]):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows[1:]:
            table.add_row(*row)
        console.print(table)
    if summary:
        console.print(summary)
    console.print(f"report: [bold]{report_path}[/] and [bold]{report_path.with_suffix('.html')}[/]")


def method_label(method: str) -> str:
    return dict(T2SIL_METHODS).get(method, method)

