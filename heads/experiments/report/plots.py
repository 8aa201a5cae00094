"""Class-wise analysis (paper Figures 7-8): per-class improvement over the still baseline.

One PNG per run (method x modality x experiment): two bar charts side by side, the derived
temporal stream minus the still stream (Fig. 7) and the fused prediction minus the still
stream (Fig. 8), per class, on the test stills. Bars are green where the class improves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from featcache.utils.atomic import atomic_path
from heads.evaluation.history import read_history
from heads.experiments.report.runs import Run, method_label, temporal_label

PANELS = (("derived", "Derived temporal - still (Fig. 7)"), ("fused", "Fused - still (Fig. 8)"))


def class_improvements(per_class: dict[str, Any], split: str = "test") -> dict[str, dict[str, float]]:
    """{stream: {class: accuracy(stream) - accuracy(still)}} for the derived and fused streams."""
    by_stream = (per_class or {}).get(split) or {}
    still = by_stream.get("still") or {}
    out = {}
    for stream, _ in PANELS:
        values = by_stream.get(stream) or {}
        common = [c for c in still if c in values]
        if common:
            out[stream] = {c: float(values[c]) - float(still[c]) for c in common}
    return out


def plot_improvements(improvements: dict[str, dict[str, float]], title: str, path: Path,
                      image_means: dict[str, float] | None = None) -> Path:
    """``image_means``: each stream's gain over the test images (Table 5), printed beside the class mean."""
    # matplotlib is heavy and only the figures need it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = list(next(iter(improvements.values())))
    height = max(3.0, 0.28 * len(classes) + 1.2)
    fig, axes = plt.subplots(1, len(improvements), figsize=(5.5 * len(improvements), height), sharey=True, squeeze=False)
    for ax, (stream, label) in zip(axes[0], [p for p in PANELS if p[0] in improvements]):
        deltas = [improvements[stream].get(c, 0.0) for c in classes]
        colors = ["#2a9d55" if d > 0 else "#c0392b" if d < 0 else "#999999" for d in deltas]
        ax.barh(range(len(classes)), deltas, color=colors)
        ax.axvline(0.0, color="black", linewidth=0.8)
        improved = sum(d > 0 for d in deltas)
        mean = sum(deltas) / len(deltas)
        # the mean over classes (each class counts once), not Table 5's gain (the mean over test images)
        image = (image_means or {}).get(stream)
        means = f"class mean {mean:+.1f} pp" + ("" if image is None else f"; image mean {image:+.1f} pp (Table 5)")
        ax.set_title(f"{label}\n{improved}/{len(classes)} classes improved; {means}", fontsize=9)
        ax.set_xlabel("accuracy change (percentage points)")
        ax.set_yticks(range(len(classes)))
        ax.set_yticklabels(classes, fontsize=8)
        ax.invert_yaxis()
    return save_figure(fig, title, path, dpi=110)


def save_figure(fig, title: str, path: Path, dpi: int) -> Path:
    """Title, layout, PNG written under a temporary name and renamed; the figure is closed."""
    # matplotlib is heavy and only the figures need it
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    return path


def plot_class_improvements(runs: Sequence[Run], out_dir: Path) -> list[tuple[str, Path]]:
    """One figure per run that has per-class still and derived/fused results; [(title, png)]."""
    figures = []
    for run in runs:
        improvements = class_improvements(run.metrics.get("per_class"))
        if not improvements:
            continue
        modality = temporal_label(run.temporal)
        experiment = "" if run.experiment == "main" else f", {run.experiment}"
        title = f"{method_label(run.method)} ({modality}{experiment})"
        name = f"{run.experiment}-{run.method}-{run.temporal}.png"
        gains = run.metrics.get("gain") or {}
        image_means = {stream: gains[stream]["test"] for stream in improvements
                       if (gains.get(stream) or {}).get("test") is not None}
        figures.append((title, plot_improvements(improvements, title, Path(out_dir) / name, image_means)))
    return figures


# -- learning curves (RUN_DIR/history.jsonl) ------------------------------------------
ACCURACY_PREFIXES = ("val", "test", "temporal_val", "temporal_test")


def curve_series(entries: Sequence[dict]) -> dict[str, dict[str, dict[str, list]]]:
    """{phase: {"loss": {key: [(epoch, value)]}, "accuracy": {...}}} from history entries;
    the learning rate, search statistics and timings are left out of the figure."""
    phases: dict[str, dict[str, dict[str, list]]] = {}
    for entry in entries:
        phase = phases.setdefault(str(entry.get("phase", "train")), {"loss": {}, "accuracy": {}})
        for key, value in entry.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or key == "epoch":
                continue
            kind = "loss" if key.startswith("loss") else "accuracy" if key.startswith(ACCURACY_PREFIXES) else None
            if kind:
                phase[kind].setdefault(key, []).append((entry["epoch"], value))
    return phases


def plot_curves(entries: Sequence[dict], title: str, path: Path) -> Path | None:
    """One row per training phase: losses (left) and accuracies in percent (right) per epoch."""
    phases = curve_series(entries)
    if not phases:
        return None
    # matplotlib is heavy and only the figures need it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(phases), 2, figsize=(10, 2.6 * len(phases) + 0.6), squeeze=False)
    for row, (phase, series) in zip(axes, phases.items()):
        for ax, kind in zip(row, ("loss", "accuracy")):
            for key, points in series[kind].items():
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=key)
            ax.set_title(f"{phase}: {kind}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if series[kind]:
                ax.legend(fontsize=7)
    return save_figure(fig, title, path, dpi=100)


def plot_learning_curves(runs: Sequence[Run], out_dir: Path) -> list[tuple[str, Path]]:
    """Learning curves of every run given that left a ``history.jsonl``; [(title, png)]."""
    figures = []
    for run in runs:
        entries = read_history(run.path)
        folder = run.path.name if run.method in run.path.name else f"{run.method}-{run.path.name}"
        name = f"{run.experiment}-{folder}"  # main-gan-flow, main-oracle-flow, midframe-tsn-dynamic
        title = f"{run.method}" + (f" ({run.temporal})" if run.temporal else "") + f": {run.path}"
        if entries and (png := plot_curves(entries, title, Path(out_dir) / f"curves-{name}.png")):
            figures.append((title, png))
    return figures


CONFUSION_PANELS = (("still", "Still"), ("fused", "Fused (paper)"), ("fused_calibrated", "Fused (calibrated)"))


def confusion_class_names(run: Run, count: int) -> list[str]:
    """The axis labels of a ``count`` x ``count`` confusion matrix: ``classes`` of metrics.json (every
    class, in label order), else the per-class keys when they are all there (runs written before
    ``classes`` was; those keys leave out classes without test stills), else the label numbers."""
    classes = list(run.metrics.get("classes") or [])
    if len(classes) != count:
        classes = list(((run.metrics.get("per_class") or {}).get("test") or {}).get("still") or [])
    return classes if len(classes) == count else [str(i) for i in range(count)]


def plot_confusion(run: Run | None, out_dir: Path) -> tuple[str, Path] | None:
    """Test confusion matrices of ``run`` (still and fused streams side by side): colour = share
    of the true class (row), number = count (summed over seeds). None when the run has none."""
    if run is None:
        return None
    panels = [(s, label) for s, label in CONFUSION_PANELS if (run.metrics.get(s) or {}).get("confusion")]
    if not panels:
        return None
    # matplotlib is heavy and only the figures need it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(3.2, 0.42 * len(run.metrics[panels[0][0]]["confusion"]) + 1.6)
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size), squeeze=False)
    for ax, (stream, label) in zip(axes[0], panels):
        counts = np.asarray(run.metrics[stream]["confusion"], dtype=float)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(counts):
            if count:
                ax.text(j, i, f"{int(count)}", ha="center", va="center", fontsize=7,
                        color="white" if shares[i, j] > 0.6 else "black")
        names = confusion_class_names(run, len(counts))
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        accuracy = run.metrics[stream].get("test")
        ax.set_title(f"{label}: {accuracy:.1f}% test" if accuracy is not None else label, fontsize=9)
    title = f"{method_label(run.method)} ({temporal_label(run.temporal)}), best by validation"
    if run.metrics.get("seeds"):
        title += f"; counts summed over {len(run.metrics['seeds'])} seeds"
    path = save_figure(fig, title, Path(out_dir) / f"confusion-{run.method}-{run.temporal}.png", dpi=110)
    return f"Confusion matrices on test: {title}", path
