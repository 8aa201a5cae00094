"""What an interval covers: the 95% CIs of ``metrics.json`` entries and the ``ci_too_narrow`` flag.

An interval is *too narrow* when it is known to leave a source of variance out: one seed (the
spread over training seeds is not in it) or temporal instances without their videos (several
instances of one video counted as independent). The flag holds the reason in words; the report
marks such cells with a dagger (docs/metrics.md). Also here: the cells of tables
(``format_accuracy``, ``format_gain``: value, interval, †, significance mark, MDE) and the
one-line warnings about small val/test splits.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from heads.evaluation.statistics import accuracy_ci, holm_adjust, significance_mark

# Why an interval is known to be too narrow (``ci_too_narrow``, docs/metrics.md).
ONE_SEED = "one seed: seed variance not covered"
NO_VIDEOS = "instances of one video counted as independent"
NARROW_MARK = "†"  # after an interval flagged ``ci_too_narrow`` in tables and reports


def ci_or_none(correctness: Any, clusters: Any = None) -> list[float] | None:
    """The 95% CI of bool ``[N]`` (or ``[S, N]`` over seeds; ``clusters``: the rows' videos); None for none."""
    if correctness is None or np.asarray(correctness).size == 0:
        return None
    return [None if not math.isfinite(v) else round(float(v), 4) for v in accuracy_ci(correctness, clusters=clusters)]


def temporal_classifier_entry(correct: Any, sources: Any = None) -> dict[str, Any]:
    """``{"test", "test_ci"}`` of the temporal classifier from its per-instance correctness on the
    temporal test instances (bool ``[N]``; ``[S, N]`` over seeds gives the seed mean's CI); ``sources``
    (each instance's video) makes the CI resample videos. ``ci_too_narrow`` says what it leaves out."""
    correct = np.asarray(correct.detach().cpu() if hasattr(correct, "detach") else correct).astype(bool)
    entry = {"test": round(float(correct.mean() * 100.0), 4), "test_ci": ci_or_none(correct, sources)}
    reasons = ([ONE_SEED] if correct.ndim == 1 else []) + ([NO_VIDEOS] if sources is None else [])
    if reasons:
        entry["ci_too_narrow"] = "; ".join(reasons)
    return entry


def mark_too_narrow(metrics: dict[str, Any], reason: str | None) -> None:
    """Set (or, with ``reason=None``, remove) ``ci_too_narrow`` on every stream entry and gain: the
    intervals are known to leave a source of variance out (docs/metrics.md)."""
    streams = ("still", "derived", "fused", "fused_calibrated")
    entries = [metrics.get(s) for s in streams] + list((metrics.get("gain") or {}).values())
    for entry in entries:
        if isinstance(entry, dict):
            entry.pop("ci_too_narrow", None)
            if reason:
                entry["ci_too_narrow"] = reason


def add_run_holm(gains: dict[str, Any]) -> None:
    """``p_holm`` on each gain entry: Holm's adjustment over the run's own gains (its streams against
    the still baseline, one family); the raw ``p_value`` stays beside it."""
    named = [(name, g) for name, g in gains.items() if isinstance(g, dict) and g.get("p_value") is not None]
    for (_, gain), adjusted in zip(named, holm_adjust([g["p_value"] for _, g in named])):
        gain["p_holm"] = round(adjusted, 6)


# -- cells: an accuracy or a gain with its interval and marks ---------------------------
def format_accuracy(entry: Mapping[str, Any] | None, split: str, missing: str = "-") -> str:
    """``43.3 [34.2, 52.5]`` (one seed) or ``43.3 ± 1.2 [38.0, 48.6]`` (mean ± std over seeds, CI)."""
    value = (entry or {}).get(split)
    if value is None:
        return missing
    text = f"{value:.1f}"
    if (entry or {}).get(f"{split}_std") is not None:
        text += f" ± {entry[f'{split}_std']:.1f}"
    ci = (entry or {}).get(f"{split}_ci")
    if ci and ci[0] is not None and ci[1] is not None:
        text += f" [{ci[0]:.1f}, {ci[1]:.1f}]" + (NARROW_MARK if (entry or {}).get("ci_too_narrow") else "")
    return text


def format_gain(gain: Mapping[str, Any] | None, missing: str = "-", p_value: float | None = None,
                mde: bool = False) -> str:
    """``+4.2 [0.8, 7.5]† *`` (``mde``: `` (MDE 6.1)``): the mark of ``p_value`` when given (the report's
    Holm-adjusted p), else of the run's ``p_holm``, else of the raw ``p_value``; † when the CI is too narrow."""
    if not gain or gain.get("test") is None:
        return missing
    ci = gain.get("test_ci") or [None, None]
    text = f"{gain['test']:+.1f}"
    if ci[0] is not None and ci[1] is not None:
        text += f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" + (NARROW_MARK if gain.get("ci_too_narrow") else "")
    if p_value is None:
        p_value = gain.get("p_holm", gain.get("p_value"))
    mark = significance_mark(p_value)
    text = f"{text} {mark}" if mark else text
    return text + (f" (MDE {gain['mde']:.1f})" if mde and gain.get("mde") is not None else "")


# -- small evaluation sets -------------------------------------------------------------
SMALL_SPLIT = 30  # fewer val or test images than this: intervals wide, selections noisy


def split_warning(split: str, images: int, empty: list[str], classes: int) -> str | None:
    """One line when the ``split`` of ``images`` images is small or leaves classes (``empty``) without any."""
    problems = []
    if images < SMALL_SPLIT:
        problems.append(f"only {images} image{'s' if images != 1 else ''} (fewer than {SMALL_SPLIT})")
    if empty:
        shown = ", ".join(empty[:4]) + (", ..." if len(empty) > 4 else "")
        problems.append(f"no image of {len(empty)} of {classes} classes ({shown})")
    if not problems:
        return None
    return (f"warning: the {split} split has {' and '.join(problems)}: its accuracies are uncertain "
            f"(wide intervals) and say nothing of the missing classes")


def split_sizes(labels: dict[str, Any], classes: list[str]) -> dict[str, dict[str, Any]]:
    """``{split: {"images": n, "empty_classes": [names]}}`` of the val and test labels (metrics.json ``images``)."""
    out = {}
    for split in ("val", "test"):
        y = labels.get(split)
        if y is None:
            continue
        y = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y).astype(np.int64).reshape(-1)
        present = set(y.tolist())
        out[split] = {"images": int(y.size), "empty_classes": [c for i, c in enumerate(classes) if i not in present]}
    return out


def small_split_warnings(sizes: dict[str, dict[str, Any]], classes: int) -> list[str]:
    """The :func:`split_warning` lines of :func:`split_sizes` (none when every split is large and full)."""
    lines = [split_warning(split, s["images"], list(s["empty_classes"]), classes) for split, s in sizes.items()]
    return [line for line in lines if line]
