"""The paper's tables as rows of text cells (the first row is the header); a missing entry is
``DASH`` and is listed in ``report.missing``. Table 5 is :mod:`heads.experiments.report.significance`.
"""

from __future__ import annotations

from typing import Any

from heads.evaluation.metrics import format_accuracy
from heads.experiments.report.runs import TEMPORAL_LABELS, Report, Run, cached_feature_methods, t2sil_methods

DASH = "—"


def fmt(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


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


def still_baseline(report: Report, experiment: str = "main") -> Run | None:
    """The still-image baseline: a ``featcache baseline`` still run, else the still model every head
    run trains on the cached still features (the same baseline its gains and Table 4 are against),
    from the head run whose still model is best on val."""
    run = report.best("still", None, experiment)
    if run is not None:
        return run
    heads = [r for r in report.runs if r.method in cached_feature_methods() and r.experiment == experiment
             and r.value("still", "test") is not None]
    return max(heads, key=lambda r: (r.value("still", "val") or -1.0, str(r.path)), default=None)


def table1(report: Report) -> list[list[str]]:
    rows = [["Model", "Trained on", "Evaluated on", "Val", "Test"]]
    for method, name, trained in (("still", "Still image", "still images"), ("aug-frames", "Aug. Still+Frame", "still + key frames"),
                                  ("finetune-still", "Still image, fine-tuned (Resnet-Still)", "still images, end to end")):
        run = still_baseline(report) if method == "still" else report.best(method, None)
        if run is None and method == "finetune-still":
            continue  # an optional row: only when `featcache finetune still` ran
        source = f", the still model of {run.method} run {run.path}" if run is not None and run.method != method else ""
        rows.append([
            name, trained + _train_counts(run) + source, "still images",
            _cell(report, run, "still", "val", f"Table 1 {name} val"),
            _cell(report, run, "still", "test", f"Table 1 {name} test"),
        ])
    for temporal, modality in TEMPORAL_LABELS:
        # The fine-tuned temporal backbone (Resnet-Opt./Dyn.) when there is one, else the
        # temporal classifier on cached features; each cell from its own split (val or test videos).
        finetuned = report.best(f"finetune-{temporal}", temporal)
        run = finetuned or temporal_classifier_run(report, temporal)
        accuracy = _temporal_model_accuracy(run, "test")
        if accuracy == DASH:
            report.missing.append(f"Table 1 temporal model ({modality})")
        trained = f"{modality} (train videos)" + ("" if finetuned or run is None else ", cached features")
        if run is not None and not finetuned and run.method != "classifier":
            trained += f", the temporal classifier of {run.method} run {run.path}"
        rows.append([f"Temporal model ({modality})", trained, f"{modality} (val / test videos)",
                     _temporal_model_accuracy(run, "val"), accuracy])
    return rows


def temporal_classifier_run(report: Report, temporal: str) -> Run | None:
    """A ``train-head classifier`` run, else a head run that trained the same temporal classifier
    (the dimensionality-reduction network every head and the oracle train on the cached features)."""
    for method in ("classifier", *cached_feature_methods()):
        run = report.best(method, temporal)
        if run is not None and ((run.metrics.get("temporal_classifier") or {}).get("test")) is not None:
            return run
    return None


def _train_counts(run: Run | None) -> str:
    config = (run.metrics.get("config") or {}) if run else {}
    parts = [str(config[k]) for k in ("num_train", "num_keyframes") if isinstance(config.get(k), int)]
    return f" ({'+'.join(parts)})" if parts else ""


def _temporal_model_accuracy(run: Run | None, split: str) -> str:
    """A temporal model's own accuracy on the ``split`` videos (a fine-tuned backbone's one stream, or a
    head's temporal classifier, recorded on test only), with its CI as metrics.json records it (and, for
    the classifier head, the std over seeds); never another split's value."""
    if run is None:
        return DASH
    if run.metrics.get("temporal_classifier"):
        return format_accuracy(run.metrics.get("temporal_classifier"), split, DASH)
    for stream in ("still", "derived"):
        if run.value(stream, split) is not None:
            return format_accuracy(run.metrics.get(stream), split, DASH)
    return DASH


def table2(report: Report) -> list[list[str]]:
    header = ["", "Method"] + [f"{name} {split}" for _, name in TEMPORAL_LABELS for split in ("Val", "Test")]
    rows = [header]
    for stream, group in (("derived", "Derived temporal"), ("fused", "Fusion with Still"),
                          ("fused_calibrated", "Fusion, calibrated")):
        for method, name in t2sil_methods():
            row = [group, name]
            for temporal, modality in TEMPORAL_LABELS:
                run = report.best(method, temporal)
                for split in ("val", "test"):
                    row.append(_cell(report, run, stream, split, f"Table 2 {group} {name} {modality} {split}"))
            rows.append(row)
    return rows


def table3(report: Report) -> list[list[str]]:
    rows = [["Solution"] + [f"{name} {col}" for _, name in TEMPORAL_LABELS for col in ("Temp.", "Fused")]]
    for method, name in t2sil_methods():
        row = [name]
        for temporal, modality in TEMPORAL_LABELS:
            run = report.best(method, temporal, "midframe")
            row.append(_cell(report, run, "derived", "test", f"Table 3 {name} {modality} Temp."))
            row.append(_cell(report, run, "fused", "test", f"Table 3 {name} {modality} Fused"))
        rows.append(row)
    return rows


def midframe_baseline(report: Report) -> Run | None:
    """The mid-frame still baseline: a still run, else any mid-frame run's still stream."""
    run = report.best("still", None, "midframe")
    return run or next((r for r in report.runs if r.experiment == "midframe" and r.value("still", "test") is not None), None)


def baseline_text(run: Run | None, split: str) -> str:
    """A caption's still baseline with its CI: ``40.0% [31.7, 49.2]``."""
    text = format_accuracy(run.metrics.get("still") if run else None, split, DASH)
    if text == DASH:
        return DASH
    value, _, rest = text.partition(" ")
    return f"{value}% {rest}".rstrip()


def table4(report: Report) -> list[list[str]]:
    rows = [["", *(f"{name} {split}" for _, name in TEMPORAL_LABELS for split in ("Val", "Test"))]]
    # The paper's plain average, then the same draws fused after temperature scaling (val-fitted).
    for key, label in (("improvement", "Oracle (paper fusion)"), ("improvement_calibrated", "Oracle (calibrated fusion)")):
        row, calibrated = [label], key != "improvement"
        for temporal, modality in TEMPORAL_LABELS:
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
    for temporal, modality in TEMPORAL_LABELS:
        for method, name in t2sil_methods():
            if (run := report.best(method, temporal)) is None:
                continue
            cells = []
            for stream, _ in streams:
                entry = run.metrics.get(stream) or {}
                cells.append(f"{format_accuracy(entry, 'top5', DASH)} / {fmt(entry.get('map'))}")
            rows.append([name, modality, *cells])
    return rows


def oracle_baseline(report: Report) -> Run | None:
    """The run whose still stream is the oracle's baseline (an oracle run, else the still baseline)."""
    return next((r for t, _ in TEMPORAL_LABELS if (r := report.best("oracle", t))), None) or still_baseline(report)
