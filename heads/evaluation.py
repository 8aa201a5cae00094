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

``metrics.json`` follows CONTRACT.md: ``method``, ``temporal``, ``config``,
``still``/``derived``/``fused`` ``{"val", "test"}`` in percent, ``per_class``,
``seconds``, plus ``experiment`` (``"main"`` or ``"midframe"``). A missing split or
stream is ``null``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from featcache.errors import FeatcacheError
from featcache.schema import atomic_path

METRICS_FILE = "metrics.json"
STREAMS = ("still", "derived", "fused")
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
        import torch

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
) -> dict[str, Any]:
    """The ``metrics.json`` dict of one run (CONTRACT.md), accuracies in percent.

    ``still`` and ``derived`` map ``"val"``/``"test"`` to softmax probabilities
    ``[N, C]`` (a split may be missing or None); ``labels`` maps the same splits to
    class indices. ``derived=None`` (still-only or temporal-classifier runs) makes the
    derived and fused entries ``null``. Fused = mean of the still and derived softmaxes.
    """
    if labels is None or classes is None:
        raise ValueError("build_metrics() needs labels={'val': y, 'test': y} and classes")
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {experiment!r}")
    classes = [str(c) for c in classes]
    streams: dict[str, dict[str, Any] | None] = {"still": dict(still), "derived": None, "fused": None}
    if derived is not None:
        streams["derived"] = dict(derived)
        streams["fused"] = {
            split: fuse(still[split], derived[split])
            for split in EVAL_SPLITS
            if still.get(split) is not None and derived.get(split) is not None
        }

    metrics: dict[str, Any] = {
        "method": method,
        "temporal": temporal,
        "config": dict(config),
        "experiment": experiment,
    }
    per_class: dict[str, dict[str, Any]] = {split: {} for split in EVAL_SPLITS}
    for stream in STREAMS:
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
    metrics["seconds"] = round(float(seconds), 3)
    return metrics


def selection_score(metrics: Mapping[str, Any]) -> tuple[float | None, str]:
    """The accuracy used to rank runs (model selection never looks at test when val exists).

    Fused val for T2SIL runs; derived val, then still val otherwise. Runs without any
    val split (temporal classifiers: videos have train/test only, and the paper
    validates temporal models on the test videos) fall back to the same order on test.
    Returns ``(value or None, "stream/split")``.
    """
    for split in EVAL_SPLITS:
        for stream in ("fused", "derived", "still"):
            entry = metrics.get(stream)
            if entry and entry.get(split) is not None:
                return float(entry[split]), f"{stream}/{split}"
    return None, "none"


def select_best(history: Sequence[Mapping[str, Any]], key: str, mode: str = "max") -> tuple[int, Mapping[str, Any]]:
    """``(index, entry)`` of the best entry of ``history`` by ``entry[key]``; ties keep the earliest.

    Entries whose value is missing or NaN are skipped (e.g. epochs without evaluation).
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    best_index, best_value = -1, None
    for index, entry in enumerate(history):
        value = entry.get(key)
        if value is None or not math.isfinite(float(value)):
            continue
        better = best_value is None or (value > best_value if mode == "max" else value < best_value)
        if better:
            best_index, best_value = index, value
    if best_index < 0:
        raise ValueError(f"select_best(): no entry has a finite {key!r}")
    return best_index, history[best_index]


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


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_metrics(metrics: Mapping[str, Any], console=None) -> None:
    """A rich table: rows still / derived / fused, columns val / test (percent)."""
    from rich.console import Console
    from rich.table import Table

    title = f"{metrics.get('method', '?')}"
    if metrics.get("temporal"):
        title += f" ({metrics['temporal']})"
    if metrics.get("experiment", "main") != "main":
        title += f" [{metrics['experiment']}]"
    table = Table(title=title)
    table.add_column("stream")
    for split in EVAL_SPLITS:
        table.add_column(f"{split} acc %", justify="right")
    for stream in STREAMS:
        entry = metrics.get(stream)
        if entry is None:
            continue
        table.add_row(stream, *(_fmt(entry.get(split)) for split in EVAL_SPLITS))
    if metrics.get("seconds") is not None:
        table.caption = f"{metrics['seconds']:.1f} s"
    (console or Console()).print(table)
