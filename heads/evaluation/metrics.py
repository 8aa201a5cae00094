"""Evaluation of stage-2 heads: accuracies, two-stream late fusion and ``metrics.json``.

Every head ends the same way: softmax probabilities of the still stream and, for
T2SIL heads, of the derived temporal stream, on the val and test stills. Fusion is the
two-stream late fusion of the paper: the mean of the softmax probabilities (never of
the logits, whose scales differ between streams)::

    still = {"val": softmax(still_val_logits), "test": softmax(still_test_logits)}
    derived = {"val": ..., "test": ...}          # None for still-only runs
    metrics = build_metrics("gan", "flow", config, still, derived, labels, classes, seconds)
    write_metrics(run_dir, metrics)
    print_metrics(metrics)

``metrics.json`` follows CONTRACT.md and ``docs/metrics.md`` (accuracies in percent; a
missing split or stream is ``null``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from rich.table import Table

from featcache.errors import FeatcacheError
from featcache.utils.atomic import atomic_path
from featcache.utils.progress import make_console
from heads.evaluation.calibration import apply_temperature, expected_calibration_error, fit_temperature
from heads.evaluation.class_metrics import confusion, mean_average_precision, top_k_correct
from heads.evaluation.statistics import correct, gain_over_baseline
from heads.evaluation.uncertainty import (  # noqa: F401  (re-exported: one place to import them from)
    NARROW_MARK,
    NO_VIDEOS,
    ONE_SEED,
    add_run_holm,
    ci_or_none,
    format_accuracy,
    format_gain,
    mark_too_narrow,
    small_split_warnings,
    split_sizes,
    temporal_classifier_entry,
)

METRICS_FILE = "metrics.json"
STREAMS = ("still", "derived", "fused")
# Beside the paper's streams: the fusion of temperature-scaled streams (heads.evaluation.calibration).
ALL_STREAMS = (*STREAMS, "fused_calibrated")
EVAL_SPLITS = ("val", "test")
EXPERIMENTS = ("main", "midframe")
# Tolerance for "these rows are probabilities" (float16/float32 round-off).
_PROB_TOL = 1e-3


# -- array helpers ---------------------------------------------------------------
def _as_numpy(x: Any, name: str = "array") -> np.ndarray:
    """A float64/int64 numpy view of a torch tensor, numpy array or nested list."""
    if hasattr(x, "detach"):  # torch.Tensor without importing torch
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise ValueError(f"{name}: expected a numeric array, got objects")
    return arr


def _check_probs_labels(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _as_numpy(probs, "probs")
    y = _as_numpy(labels, "labels").astype(np.int64).reshape(-1)
    if p.ndim != 2:
        raise ValueError(f"probs must be [N, C], got shape {tuple(p.shape)}")
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"probs has {p.shape[0]} rows but labels has {y.shape[0]}")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"labels must lie in [0, {p.shape[1]}), got [{y.min()}, {y.max()}]")
    return p, y


def softmax(logits: Any, dim: int = -1, temperature: float = 1.0):
    """Numerically stable softmax; returns the input's type (torch tensor or numpy array)."""
    if hasattr(logits, "detach"):
        return (logits / temperature).softmax(dim=dim)
    z = _as_numpy(logits, "logits").astype(np.float64) / temperature
    z = z - z.max(axis=dim, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=dim, keepdims=True)


def _is_probability_matrix(p: np.ndarray) -> bool:
    if p.size == 0:
        return True
    return bool(p.min() >= -_PROB_TOL and np.allclose(p.sum(axis=-1), 1.0, atol=_PROB_TOL * p.shape[-1]))


def fuse(*probs: Any):
    """Two-stream late fusion: the element-wise mean of softmax probabilities.

    Inputs must already be probabilities (rows on the simplex); passing logits raises
    ``ValueError`` because averaging logits is a different (scale-dependent) fusion.
    Returns a torch tensor if the first input is one, a numpy array otherwise.
    """
    if not probs:
        raise ValueError("fuse() needs at least one probability matrix")
    arrays = [_as_numpy(p, "probs").astype(np.float64) for p in probs]
    shape = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != shape:
            raise ValueError(f"fuse(): input {i} has shape {a.shape}, expected {shape}")
        if not _is_probability_matrix(a):
            raise ValueError(f"fuse(): input {i} is not a probability matrix; apply softmax() first")
    fused = np.mean(arrays, axis=0)
    if hasattr(probs[0], "detach"):
        return torch.as_tensor(fused, dtype=probs[0].dtype, device=probs[0].device)
    return fused


# -- accuracies ------------------------------------------------------------------
def accuracy(probs: Any, labels: Any) -> float:
    """Top-1 accuracy in percent (NaN for zero rows). Works on probabilities or logits."""
    p, y = _check_probs_labels(probs, labels)
    if y.size == 0:
        return float("nan")
    return float((p.argmax(axis=1) == y).mean() * 100.0)


def per_class_accuracy(probs: Any, labels: Any, classes: Sequence[str]) -> dict[str, float]:
    """Top-1 accuracy in percent per class name; classes without samples are omitted."""
    p, y = _check_probs_labels(probs, labels)
    if p.shape[1] != len(classes):
        raise ValueError(f"probs has {p.shape[1]} columns but there are {len(classes)} classes")
    correct = p.argmax(axis=1) == y if y.size else np.zeros(0, dtype=bool)
    out: dict[str, float] = {}
    for index, name in enumerate(classes):
        mask = y == index
        if mask.any():
            out[str(name)] = float(correct[mask].mean() * 100.0)
    return out


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


# -- metrics.json ----------------------------------------------------------------
def build_metrics(
    method: str,
    temporal: str | None,
    config: Mapping[str, Any],
    still: Mapping[str, Any],
    derived: Mapping[str, Any] | None = None,
    labels: Mapping[str, Any] | None = None,
    classes: Sequence[str] | None = None,
    seconds: float = 0.0,
    experiment: str = "main",
    clusters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``metrics.json`` dict of one run (CONTRACT.md), accuracies in percent.

    ``still``/``derived`` map ``"val"``/``"test"`` to softmaxes ``[N, C]`` (a split may be None), ``labels``
    the same splits to class indices; ``derived=None`` makes the derived and fused entries ``null``.
    ``clusters``: a split's rows' source videos (their intervals resample videos). One run is one
    seed: its intervals say so (``ci_too_narrow``, dropped when ``heads.training.seeds`` combines seeds).
    """
    if labels is None or classes is None:
        raise ValueError("build_metrics() needs labels={'val': y, 'test': y} and classes")
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {experiment!r}")
    classes = [str(c) for c in classes]
    streams, temperatures = stream_probs(still, derived, labels)

    metrics: dict[str, Any] = {
        "method": method,
        "temporal": temporal,
        "config": dict(config),
        "experiment": experiment,
        "classes": classes,
    }
    per_class: dict[str, dict[str, Any]] = {split: {} for split in EVAL_SPLITS}
    for stream in ALL_STREAMS:
        probs_by_split = streams[stream]
        if probs_by_split is None:
            metrics[stream] = None
            for split in EVAL_SPLITS:
                per_class[split][stream] = None
            continue
        metrics[stream] = {}
        for split in EVAL_SPLITS:
            probs = probs_by_split.get(split)
            if probs is None or labels.get(split) is None:
                metrics[stream][split] = None
                per_class[split][stream] = None
                continue
            metrics[stream][split] = _finite_or_none(accuracy(probs, labels[split]))
            per_class[split][stream] = {
                name: round(acc, 4) for name, acc in per_class_accuracy(probs, labels[split], classes).items()
            }
    metrics["per_class"] = per_class
    metrics["images"] = split_sizes(labels, classes)
    metrics["seconds"] = round(float(seconds), 3)
    add_uncertainty(metrics, streams, labels, temperatures, clusters)
    mark_too_narrow(metrics, ONE_SEED)
    add_run_holm(metrics["gain"])
    return metrics


def stream_probs(still: Mapping[str, Any], derived: Mapping[str, Any] | None,
                 labels: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any] | None], dict[str, float]]:
    """Softmax probabilities of every stream by split, and the val-fitted temperatures.

    ``fused`` is the paper's rule (plain mean of the two softmaxes); ``fused_calibrated``
    first divides each stream's logits by its own temperature, fitted on val
    (``heads.evaluation.calibration``); without a val split the temperatures are 1.
    """
    streams: dict[str, dict[str, Any] | None] = {name: None for name in ALL_STREAMS}
    streams["still"] = dict(still)
    if derived is None:
        return streams, {}
    streams["derived"] = dict(derived)
    pairs = [s for s in EVAL_SPLITS if still.get(s) is not None and derived.get(s) is not None]
    temperatures = {"still": 1.0, "derived": 1.0}
    if "val" in pairs and labels.get("val") is not None:
        temperatures = {name: fit_temperature(streams[name]["val"], labels["val"]) for name in ("still", "derived")}
    fused = {split: fused_streams(still[split], derived[split], temperatures) for split in pairs}
    for name in ("fused", "fused_calibrated"):
        streams[name] = {split: fused[split][name] for split in pairs}
    return streams, {name: round(t, 6) for name, t in temperatures.items()}


def fused_streams(still: Any, derived: Any, temperatures: Mapping[str, float]) -> dict[str, Any]:
    """``fused`` (the paper's mean of the two softmaxes) and ``fused_calibrated`` (each stream first
    scaled by its temperature, ``{"still": t, "derived": t}``) of one set of images."""
    calibrated = (apply_temperature(still, temperatures["still"]), apply_temperature(derived, temperatures["derived"]))
    return {"fused": fuse(still, derived), "fused_calibrated": fuse(*calibrated)}


def add_uncertainty(metrics: dict[str, Any], streams: Mapping[str, Any], labels: Mapping[str, Any],
                    temperatures: Mapping[str, float], clusters: Mapping[str, Any] | None = None) -> None:
    """Second-wave keys (CONTRACT.md): per stream ``val_ci``/``test_ci`` (95% interval over images,
    or videos with ``clusters``), ``top5``, ``map``, ``confusion`` and ``ece`` (on test); ``gain`` of
    each stream over the still baseline (paired, same test images, with its ``mde``); the ``temperatures``."""
    clusters = clusters or {}

    for stream in ALL_STREAMS:
        entry, probs_by_split = metrics.get(stream), streams.get(stream)
        if entry is None or probs_by_split is None:
            continue
        for split in EVAL_SPLITS:
            probs, y = probs_by_split.get(split), labels.get(split)
            entry[f"{split}_ci"] = None if probs is None or y is None else ci_or_none(correct(probs, y),
                                                                                     clusters.get(split))
        entry.update(stream_test_metrics(probs_by_split.get("test"), labels.get("test")))
    metrics["gain"] = {}
    still_test, y = (streams.get("still") or {}).get("test"), labels.get("test")
    for stream in ALL_STREAMS[1:]:
        probs = (streams.get(stream) or {}).get("test")
        if probs is not None and still_test is not None and y is not None and len(y):
            metrics["gain"][stream] = gain_over_baseline(correct(probs, y), correct(still_test, y),
                                                         clusters=clusters.get("test"))
    metrics["temperatures"] = dict(temperatures)


def stream_test_metrics(probs: Any, labels: Any) -> dict[str, Any]:
    """``top5`` (with ``top5_ci``), ``map``, ``confusion``, ``ece`` of one stream on the test split
    (None without one)."""
    if probs is None or labels is None or len(labels) == 0:
        return {"top5": None, "top5_ci": None, "map": None, "confusion": None, "ece": None}
    p, y = _check_probs_labels(probs, labels)
    top5 = top_k_correct(p, y)
    return {
        "top5": None if top5 is None else _finite_or_none(float(top5.mean() * 100.0)),
        "top5_ci": ci_or_none(top5),
        "map": _finite_or_none(mean_average_precision(p, y)),
        "confusion": confusion(p, y),
        "ece": _finite_or_none(expected_calibration_error(p, y)),
    }


def selection_score(metrics: Mapping[str, Any]) -> tuple[float | None, str]:
    """The accuracy used to rank runs: val only, never test (docs/metrics.md, the protocol).

    Fused val for T2SIL runs; derived val, then still val otherwise (a temporal model's "still"
    val is its accuracy on the val videos). A run without any val accuracy has no score: it
    cannot be ranked without reading test labels, so it is not. Returns ``(value or None, "stream/split")``.
    """
    for stream in ("fused", "derived", "still"):
        entry = metrics.get(stream)
        if entry and entry.get("val") is not None:
            return float(entry["val"]), f"{stream}/val"
    return None, "none"


def write_metrics(run_dir: str | os.PathLike, metrics: Mapping[str, Any]) -> Path:
    """Write ``run_dir/metrics.json`` atomically (temp file + rename); creates ``run_dir``."""
    path = Path(run_dir) / METRICS_FILE
    text = json.dumps(metrics, indent=2, allow_nan=False, default=_json_default)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Path, tuple, set)):
        return str(value) if isinstance(value, Path) else list(value)
    raise TypeError(f"metrics value of type {type(value).__name__} is not JSON serialisable")


def read_metrics(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``run_dir/metrics.json`` (or the file itself) as a dict; FeatcacheError if missing or broken."""
    path = Path(run_dir)
    if path.is_dir() or path.suffix != ".json":
        path = path / METRICS_FILE
    if not path.is_file():
        raise FeatcacheError(f"metrics not found: {path}")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeatcacheError(f"{path}: not a readable metrics.json ({exc})") from None
    missing = [k for k in ("method", "config", "still") if k not in metrics] if isinstance(metrics, dict) else ["*"]
    if missing:
        raise FeatcacheError(f"{path}: not a featcache metrics.json (missing {', '.join(missing)})")
    return metrics


def print_metrics(metrics: Mapping[str, Any], console=None) -> None:
    """A rich table: one row per stream; val / test accuracy in percent with the 95% CI (and
    mean ± std over seeds), the paired gain over the still baseline on test, and the ECE."""
    title = f"{metrics.get('method', '?')}"
    if metrics.get("temporal"):
        title += f" ({metrics['temporal']})"
    if metrics.get("experiment", "main") != "main":
        title += f" [{metrics['experiment']}]"
    table = Table(title=title)
    table.add_column("stream")
    seeds = metrics.get("seeds")
    for split in EVAL_SPLITS:
        table.add_column(f"{split} acc %{' (mean ± std)' if seeds else ''} [95% CI]", justify="right")
    gains = metrics.get("gain") or {}
    finetuned = str(metrics.get("method", "")).startswith("finetune-") and metrics.get("temporal")  # its one stream: "still"
    if gains:
        table.add_column("test gain vs still [95% CI]", justify="right")
    table.add_column("ECE %", justify="right")
    for stream in ALL_STREAMS:
        entry = metrics.get(stream)
        if entry is None:
            continue
        cells = [format_accuracy(entry, split) for split in EVAL_SPLITS]
        if gains:
            cells.append(format_gain(gains.get(stream)))
        ece = entry.get("ece")
        cells.append("-" if ece is None else f"{ece:.1f}")
        table.add_row(f"{metrics['temporal']} model" if finetuned and stream == "still" else stream, *cells)
    caption = []
    if (config := metrics.get("config") or {}).get("best_epoch") is not None and config.get("selected_on"):
        kept = config["best_epoch"] or "0 (the model as it started: no epoch beat it)"
        caption.append(f"epoch {kept} kept, selected on {config['selected_on']}")
    if seeds:
        caption.append(f"{len(seeds)} seeds {seeds}")
    if gains:
        caption.append("gain: paired on the same test images, * p < 0.05, ** p < 0.01 (Holm over this run's gains)")
    narrow = [e["ci_too_narrow"] for e in ((metrics.get(s) or {}) for s in ALL_STREAMS) if e.get("ci_too_narrow")]
    if narrow:
        caption.append(f"{NARROW_MARK} CI too narrow: {narrow[0]}")
    if metrics.get("seconds") is not None:
        caption.append(f"{metrics['seconds']:.1f} s")
    console = console or make_console()
    console.print(table)
    console.print("; ".join(caption), highlight=False)  # below the table, not wrapped to its width
