"""Class-wise analysis (paper Figures 7-8): per-class improvement over the still baseline.

One PNG per run (method x modality x experiment): two bar charts side by side, the derived
temporal stream minus the still stream (Fig. 7) and the fused prediction minus the still
stream (Fig. 8), per class, on the test stills. Bars are green where the class improves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from featcache.schema import atomic_path

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


def plot_improvements(improvements: dict[str, dict[str, float]], title: str, path: Path) -> Path:
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
        ax.set_title(f"{label}\n{improved}/{len(classes)} classes improved, mean {mean:+.1f} pp", fontsize=9)
        ax.set_xlabel("accuracy change (percentage points)")
        ax.set_yticks(range(len(classes)))
        ax.set_yticklabels(classes, fontsize=8)
        ax.invert_yaxis()
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def plot_class_improvements(runs: Sequence[Any], out_dir: Path) -> list[tuple[str, Path]]:
    """One figure per run that has per-class still and derived/fused results; [(title, png)]."""
    from heads.report import MODALITY_NAMES, method_label

    figures = []
    for run in runs:
        improvements = class_improvements(run.metrics.get("per_class"))
        if not improvements:
            continue
        modality = MODALITY_NAMES.get(run.temporal, run.temporal or "")
        experiment = "" if run.experiment == "main" else f", {run.experiment}"
        title = f"{method_label(run.method)} ({modality}{experiment})"
        name = f"{run.experiment}-{run.method}-{run.temporal}.png"
        figures.append((title, plot_improvements(improvements, title, Path(out_dir) / name)))
    return figures


CONFUSION_PANELS = (("still", "Still"), ("fused", "Fused (paper)"), ("fused_calibrated", "Fused (calibrated)"))


def plot_confusion(run: Any, out_dir: Path) -> tuple[str, Path] | None:
    """Test confusion matrices of ``run`` (still and fused streams side by side): colour = share
    of the true class (row), number = count (summed over seeds). None when the run has none."""
    if run is None:
        return None
    panels = [(s, label) for s, label in CONFUSION_PANELS if (run.metrics.get(s) or {}).get("confusion")]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from heads.report import MODALITY_NAMES, method_label

    classes = list(((run.metrics.get("per_class") or {}).get("test") or {}).get("still") or [])
    size = max(3.2, 0.42 * len(classes) + 1.6)
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size), squeeze=False)
    for ax, (stream, label) in zip(axes[0], panels):
        counts = np.asarray(run.metrics[stream]["confusion"], dtype=float)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(counts):
            if count:
                ax.text(j, i, f"{int(count)}", ha="center", va="center", fontsize=7,
                        color="white" if shares[i, j] > 0.6 else "black")
        names = classes if len(classes) == len(counts) else [str(i) for i in range(len(counts))]
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        accuracy = run.metrics[stream].get("test")
        ax.set_title(f"{label}: {accuracy:.1f}% test" if accuracy is not None else label, fontsize=9)
    title = f"{method_label(run.method)} ({MODALITY_NAMES.get(run.temporal, run.temporal or '')}), best by validation"
    if run.metrics.get("seeds"):
        title += f"; counts summed over {len(run.metrics['seeds'])} seeds"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(out_dir) / f"confusion-{run.method}-{run.temporal}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return f"Confusion matrices on test: {title}", path
