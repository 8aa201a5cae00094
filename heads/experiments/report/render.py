"""``featcache report``: every ``metrics.json`` under some folders -> the paper's Tables 1-4 and
Figures 7-8 as ``report.md`` + ``report.html``, and a rich summary in the terminal.

Tables (accuracies in percent; a missing entry is "—" and listed in the notes):

1. Baselines and temporal models: still image, Aug. Still+Frame (val/test on stills), and
   the temporal classifiers (epochs chosen on the val videos; the paper chose them on the test videos).
2. T2SIL (main experiment): derived temporal and fusion-with-still rows x GAN / Triplets
   Embed. / TSN, columns optical flow vs dynamic images x val/test.
3. Mid-frame experiment: Temp. and Fused test accuracy per modality.
4. Oracle: improvement over the still baseline, mean ± std over the runs, val/test, and its
   95% CI over the stills.
5. Gains over the still baseline (``heads.experiments.report.significance``): each method's derived,
   paper-fused and calibrated-fused gain with CI and significance marks, the oracle gain,
   the share of it each method recovers, per-stream ECE; then a plain-language summary.
6. Transfer, when a folder holds ``transfer.json`` (``benchmarks/transfer.py --json``): the
   method-positive control's arms (``transfer_table``).

Accuracy cells read ``val [low, high]`` (95% CI over the stills; over seeds and stills for runs
over several seeds, read ``mean ± std [low, high]``; over videos for temporal models). A ``†``
after an interval marks one known to be too narrow (``ci_too_narrow`` in ``metrics.json``: one
seed, or temporal instances counted without their videos); the notes list the reasons.

When several runs share a cell, the best one by validation fills it (``report.runs``).
Modules: ``runs`` (finding and reading run folders) -> ``tables`` (rows) -> ``significance``
(Table 5, summary) -> ``plots`` (figures) -> ``render`` (this: Markdown/HTML assembly).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import markdown
from rich.table import Table

from featcache.utils.atomic import atomic_path, writing
from featcache.utils.progress import make_console
from heads.experiments.report.plots import plot_class_improvements, plot_confusion, plot_learning_curves
from heads.experiments.report.runs import (
    PROTOCOL, Report, best_run, best_run_per_kind, collect_runs, protocol_notes, selected_t2sil_runs,
)
from heads.evaluation.metrics import NARROW_MARK
from heads.experiments.report.significance import gains_table, narrow_reasons, split_warnings, summary_paragraph
from heads.experiments.report.tables import (
    DASH, baseline_text, midframe_baseline, oracle_baseline, table1, table2, table3, table4, table6,
)
from heads.experiments.report.transfer_table import read_transfer_records, transfer_section


def markdown_table(rows: list[list[str]]) -> str:
    header, *body = rows
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def build_tables(report: Report) -> dict[str, tuple[str, list[list[str]]]]:
    base = oracle_baseline(report)
    mid = midframe_baseline(report)
    return {
        "table1": ("Table 1: Baseline experiments and temporal feature extraction model performances.", table1(report)),
        "table2": ("Table 2: Accuracy in still image action classification with T2SIL: the derived temporal "
                   "stream alone and after two-stream fusion with the still stream.", table2(report)),
        "table3": (f"Table 3: Mid-frame experiment (video middle frames as stills), test accuracy. "
                   f"Still baseline on test mid-frames: {baseline_text(mid, 'test')}.", table3(report)),
        "table4": (f"Table 4: Oracle improvement over the still baseline (Val: {baseline_text(base, 'val')}, "
                   f"Test: {baseline_text(base, 'test')}), percentage points, mean ± std over runs "
                   f"[95% CI over stills]; the paper's plain softmax average, and the same draws fused after "
                   f"temperature scaling each stream (fitted on val).", table4(report)),
        "table5": ("Table 5: Test gains over each run's own still baseline (its still model's test accuracy, "
                   "shown: the head runs' linear still model, TSN's fine-tuned still network) in points [95% CI], paired on the same stills "
                   "(* p < 0.05, ** p < 0.01 after Holm's adjustment over every gain in this table, one family; the raw "
                   "p-values are in each run's metrics.json); (MDE x): the smallest gain the test would detect with 80% "
                   "power at 5% two-sided, from its test set; the paper / calibrated oracle gain (over the oracle's still baseline, "
                   "named where it is another), the share of it the paper / calibrated fusion recovers (when that oracle gain is "
                   "significant and over the same baseline) and each stream's expected calibration "
                   "error (%, 15 bins).", gains_table(report)),
        "table6": ("Table 6: Top-5 accuracy [95% CI] (more than 5 classes only) and mean average precision over "
                   "classes on test, percent.", table6(report)),
    }


def render_markdown(report: Report, tables, figures: list[tuple[str, Path]], out: Path, summary: str = "",
                    confusion: tuple[str, Path] | None = None, curves: Sequence[tuple[str, Path]] = (),
                    stage_times: Sequence[tuple[str, float]] = (), transfer: tuple[list, Path | None, str] = ([], None, "")) -> str:
    parts = [
        "# featcache report: Temporal-to-Still Image Learning",
        f"{len(report.runs)} runs collected. Accuracies in percent with 95% CIs over the stills "
        "(mean ± std over seeds, and CIs over seeds and stills, where runs have several); the best run by "
        "validation fills each cell.",
    ]
    parts += [stage_times_line(stage_times)] if stage_times else []
    if summary:
        parts += ["## Summary", summary]
    parts += ["## Protocol", PROTOCOL, *(f"- {note}" for note in protocol_notes(report))]
    for caption, rows in tables.values():
        parts += [f"## {caption.split(':')[0]}", caption, markdown_table(rows)]
    parts += transfer_section(*transfer, markdown_table)
    parts += figure_section("Confusion matrices", "", [confusion] if confusion else [], out)
    parts += figure_section("Class-wise analysis (Figures 7-8)",
                            "Per-class improvement over the still baseline on the test stills: derived temporal "
                            "stream (left, Fig. 7) and fusion with the still stream (right, Fig. 8). Each panel's "
                            "*class mean* weighs every class with test stills the same; its *image mean* is Table 5's gain, "
                            "the mean over the test stills: the two differ when classes have unequal numbers of test stills.",
                            figures, out)
    parts += figure_section("Learning curves", "Per-epoch losses and accuracies from each run's history.jsonl "
                            "(the best run by validation of every method, modality and experiment).", curves, out)
    notes = []
    if report.missing:
        notes.append(f"{DASH} marks an entry without a run ({len(report.missing)}): " + "; ".join(report.missing) + ".")
    notes += [f"Skipped: {line}" for line in report.skipped]
    notes += [f"Not ranked: `{path}`: {why}" for path, why in sorted(report.unranked.items())]
    notes += [line[0].upper() + line[1:] + "." for line in split_warnings(report)]
    notes += [f"{NARROW_MARK} marks an interval known to be too narrow: {reason}." for reason in narrow_reasons(report)]
    if notes:
        parts += ["## Notes", *(f"- {n}" for n in notes)]
    parts.append(f"## Runs\n{runs_read_line(report)}.\n\n" + "\n".join(
        f"- `{r.path}`: {r.method}" + (f" ({r.temporal})" if r.temporal else "") + f", {r.experiment}"
        for r in sorted(report.runs, key=lambda r: str(r.path))
    ))
    return "\n\n".join(parts) + "\n"


def runs_read_line(report: Report) -> str:
    """How many run folders the report read and skipped: nothing leaves its count unsaid."""
    skipped = f"; {len(report.skipped)} skipped (half-written or damaged, listed under Notes)" if report.skipped else ""
    return f"{len(report.runs)} run folder(s) read{skipped}"


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


STAGE_TIMES_FILE = "stage_times.json"  # the demo's wall time per stage, in its runs folder


def read_stage_times(folders: Sequence[str | os.PathLike]) -> list[tuple[str, float]]:
    """``(stage, seconds)`` from the first ``STAGE_TIMES_FILE`` among ``folders`` (none: [])."""
    for folder in folders:
        path = Path(folder) / STAGE_TIMES_FILE
        try:
            return [(str(name), float(seconds)) for name, seconds in json.loads(path.read_text(encoding="utf-8"))]
        except (OSError, ValueError, TypeError):
            continue
    return []


def stage_times_line(times: Sequence[tuple[str, float]]) -> str:
    """The report header's line of stage times ('' without any)."""
    if not times:
        return ""
    cells = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in times)
    return f"Wall time of each stage before this report: {cells}; total {sum(s for _, s in times) / 60:.1f} min."


def write_text(path: Path, text: str) -> None:
    with atomic_path(path, "report") as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_report(folders: Sequence[str | os.PathLike], out: str | os.PathLike, plots: bool = True) -> tuple[Report, dict, Path]:
    """Collect the runs under ``folders`` and write ``out/report.md``, ``out/report.html`` and figures."""
    out = Path(out)
    report = collect_runs(folders)
    with writing(kept="no run folder was changed (the report only reads them)", resume="rerun featcache report"):
        return _write_report(report, out, plots, folders)


def _write_report(report: Report, out: Path, plots: bool, folders: Sequence[str | os.PathLike]) -> tuple[Report, dict, Path]:
    tables = build_tables(report)
    figures, confusion, curves = [], None, []
    if plots:
        figures = plot_class_improvements(selected_t2sil_runs(report), out / "figures")
        confusion = plot_confusion(best_run(selected_t2sil_runs(report)), out / "figures")
        curves = plot_learning_curves(best_run_per_kind(report), out / "figures")
    report.summary = summary_paragraph(report)
    report.warnings = split_warnings(report)
    text = render_markdown(report, tables, figures, out, report.summary, confusion, curves, read_stage_times(folders),
                           read_transfer_records(folders))
    write_text(out / "report.md", text)
    html = markdown.markdown(text, extensions=["tables"])
    write_text(out / "report.html", HTML_TEMPLATE.format(body=html))
    return report, tables, out / "report.md"


def print_report(tables: dict, report_path: Path, console=None, summary: str = "",
                 warnings: Sequence[str] = ()) -> None:
    """The tables as rich tables in the terminal, then where the report is (``warnings`` first, one line each)."""
    console = console or make_console()
    for line in warnings:
        console.print(line, markup=False)
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
