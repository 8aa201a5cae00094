"""The oracle upper bound of T2SIL (paper section 5.5, Table 4).

Pretend a model derives the temporal information of a still image perfectly: for each
still image, draw a co-class temporal instance from data the temporal model never saw in
training (the test videos for the test stills, the val videos for the val stills: the val oracle
and the temperatures never see a test row), and average its temporal softmax with the still softmax.
Repeat ``runs`` times with fresh draws; report the improvement over the still baseline
in percentage points, mean ± std over the runs::

    result = oracle_runs(still_probs, still_labels, temporal_probs, temporal_labels, train_used, runs=100)
    result.improvement_mean, result.improvement_std

Beside the paper's plain average, a calibrated oracle fuses the same draws after temperature
scaling each stream (``heads.evaluation.calibration``, one temperature per stream fitted on the val
stills: the still model's on its val softmax, the temporal classifier's on the val-video rows
drawn for the val stills), so a confident but uninformative temporal stream cannot outvote
the still stream: ``oracle_runs(..., temperatures={"still": t_s, "temporal": t_t})``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from featcache.cache.schema import SPLIT_CODE
from featcache.utils.device import resolve_device
from featcache.utils.progress import console, optional_progress
from heads.evaluation.calibration import apply_temperature, fit_temperature
from heads.evaluation.history import History, MemberHistories
from heads.evaluation.metrics import (ONE_SEED, accuracy, add_run_holm, build_metrics, fuse, mark_too_narrow,
                                      per_class_accuracy, temporal_classifier_entry, write_metrics)
from heads.samplers.co_class import draw_co_class
from heads.evaluation.statistics import crossed_accuracy_ci, crossed_comparison, gain_entry
from heads.training.config import write_config
from heads.training.dim_reduction import DimRedStore, fit_dimred_networks
from heads.training.head_data import HeadData
from heads.training.loop import Phases, predict
from heads.training.methods import head_config
from heads.training.still_model import fit_still_models


@dataclass
class OracleResult:
    still_accuracy: float  # percent
    fused_accuracy: np.ndarray  # [runs], percent
    derived_accuracy: np.ndarray  # [runs]: accuracy of the drawn temporal predictions alone
    drawn: np.ndarray  # [runs, N] temporal row drawn for each still (-1: no eligible co-class row)
    per_class_fused: dict[str, float] | None = None  # mean over runs, when classes are given
    fused_correct: np.ndarray | None = None  # [runs, N] bool: image i right after fusion in run r
    still_correct: np.ndarray | None = None  # [N] bool
    # The same draws fused after temperature scaling (``temperatures`` given), else None.
    calibrated_accuracy: np.ndarray | None = None  # [runs], percent
    calibrated_correct: np.ndarray | None = None  # [runs, N] bool
    video: np.ndarray | None = None  # [runs, N] index of the drawn row's source video (-1: none), when known

    def _video(self) -> np.ndarray:
        """Each draw's video; without sources every temporal row counts as its own video."""
        return self.drawn if self.video is None else self.video

    def gain(self) -> dict:
        """The oracle's gain over the still baseline with its 95% CI and p-value from one procedure,
        covering the test stills and the test videos drawn (``statistics.crossed_comparison``), and its MDE."""
        return gain_entry(crossed_comparison(self.fused_correct, self.still_correct, self._video()))

    def calibrated_gain(self) -> dict | None:
        """:meth:`gain` of the calibrated fusion (None without temperatures)."""
        if self.calibrated_correct is None:
            return None
        return gain_entry(crossed_comparison(self.calibrated_correct, self.still_correct, self._video()))

    def accuracy_ci(self, correctness: np.ndarray) -> list[float]:
        return [round(v, 4) for v in crossed_accuracy_ci(correctness, self._video())]

    @property
    def improvement(self) -> np.ndarray:
        return self.fused_accuracy - self.still_accuracy

    @property
    def improvement_mean(self) -> float:
        return float(self.improvement.mean())

    @property
    def improvement_std(self) -> float:
        return float(self.improvement.std(ddof=1)) if len(self.improvement) > 1 else 0.0

    @property
    def uncovered(self) -> int:
        """Stills whose class has no eligible temporal row (they keep the still prediction)."""
        return int((self.drawn[0] < 0).sum()) if self.drawn.size else 0


def oracle_runs(still_probs, still_labels, temporal_probs, temporal_labels, train_used, *, runs: int = 100,
                seed: int = 0, classes: Sequence[str] | None = None, temperatures: dict | None = None,
                temporal_sources=None) -> OracleResult:
    """``runs`` oracle draws; every array is numpy (or torch), probabilities are softmaxes.

    ``train_used[j]`` is true for temporal rows the temporal model was trained on; those
    are never drawn. Stills of a class without any eligible row keep their still prediction.
    ``temperatures`` (``{"still": t, "temporal": t}``, e.g. from :func:`fit_oracle_temperatures`)
    adds the calibrated fusion of the same draws; ``temporal_sources`` (each row's video): intervals over videos.
    """
    still_probs = np.asarray(still_probs, dtype=np.float64)
    still_labels = np.asarray(still_labels, dtype=np.int64)
    temporal_probs = np.asarray(temporal_probs, dtype=np.float64)
    temporal_labels = np.asarray(temporal_labels, dtype=np.int64)
    eligible = ~np.asarray(train_used, dtype=bool)
    _check_oracle_inputs(still_probs, temporal_probs, temporal_labels, eligible, runs)
    if temperatures is not None:
        still_scaled, temporal_scaled = _scaled(still_probs, temporal_probs, temperatures)
    rng = np.random.default_rng(seed)
    still_acc = accuracy(still_probs, still_labels)
    fused_acc, derived_acc, drawn_all, per_class, fused_correct = [], [], [], [], []
    calibrated_acc, calibrated_correct = [], []
    for _ in range(runs):
        drawn = draw_co_class(still_labels, temporal_labels, rng, eligible)
        derived = _with_drawn(still_probs, temporal_probs, drawn)
        fused = fuse(still_probs, derived)
        fused_acc.append(accuracy(fused, still_labels))
        fused_correct.append(fused.argmax(1) == still_labels)
        derived_acc.append(accuracy(derived, still_labels))
        drawn_all.append(drawn)
        if temperatures is not None:
            calibrated = fuse(still_scaled, _with_drawn(still_scaled, temporal_scaled, drawn))
            calibrated_acc.append(accuracy(calibrated, still_labels))
            calibrated_correct.append(calibrated.argmax(1) == still_labels)
        if classes is not None:
            per_class.append(per_class_accuracy(fused, still_labels, classes))
    mean_per_class = None
    if classes is not None:
        mean_per_class = {name: float(np.mean([pc[name] for pc in per_class])) for name in per_class[0]}
    return OracleResult(
        still_accuracy=still_acc,
        fused_accuracy=np.array(fused_acc),
        derived_accuracy=np.array(derived_acc),
        drawn=np.stack(drawn_all),
        per_class_fused=mean_per_class,
        fused_correct=np.stack(fused_correct),
        still_correct=still_probs.argmax(1) == still_labels,
        calibrated_accuracy=np.array(calibrated_acc) if temperatures is not None else None,
        calibrated_correct=np.stack(calibrated_correct) if temperatures is not None else None,
        video=None if temporal_sources is None else _drawn_video(np.stack(drawn_all), temporal_sources),
    )


def _drawn_video(drawn: np.ndarray, sources) -> np.ndarray:
    """The video index of every drawn row (``-1`` stays -1)."""
    _, video = np.unique(np.asarray(sources), return_inverse=True)
    return np.where(drawn >= 0, video[np.maximum(drawn, 0)], -1)


def _check_oracle_inputs(still_probs, temporal_probs, temporal_labels, eligible, runs: int) -> None:
    if still_probs.shape[1] != temporal_probs.shape[1]:
        raise ValueError(f"still probs have {still_probs.shape[1]} classes, temporal probs {temporal_probs.shape[1]}")
    if not (len(temporal_probs) == len(temporal_labels) == len(eligible)):
        raise ValueError("temporal probs, labels and train_used mask must have the same length")
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")


def _scaled(still_probs: np.ndarray, temporal_probs: np.ndarray, temperatures: dict) -> tuple[np.ndarray, np.ndarray]:
    """Both streams' softmaxes after temperature scaling (the calibrated oracle's inputs)."""
    check_temperatures(temperatures)
    return apply_temperature(still_probs, temperatures["still"]), apply_temperature(temporal_probs, temperatures["temporal"])


def _with_drawn(still_probs: np.ndarray, temporal_probs: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Each still's drawn temporal prediction; an uncovered still (-1) keeps its still prediction."""
    derived = still_probs.copy()
    covered = drawn >= 0
    derived[covered] = temporal_probs[drawn[covered]]
    return derived


def check_temperatures(temperatures: dict) -> None:
    for name in ("still", "temporal"):
        value = temperatures.get(name) if isinstance(temperatures, dict) else None
        if value is None or not np.isfinite(value) or value <= 0:
            raise ValueError(f"oracle temperatures need positive 'still' and 'temporal' values, got {temperatures!r}")


def fit_oracle_temperatures(still_probs, still_labels, temporal_probs, temporal_labels, train_used, *,
                            runs: int = 100, seed: int = 0) -> dict[str, float]:
    """One temperature per stream, fitted on the val stills (``heads.evaluation.calibration.fit_temperature``):
    the still model's on its val softmax; the temporal classifier's on the temporal rows the
    oracle draws for the val stills (``runs`` draws with ``seed``, the val split's own draws),
    against the val labels. Test stills are never looked at."""
    still_probs = np.asarray(still_probs, dtype=np.float64)
    still_labels = np.asarray(still_labels, dtype=np.int64)
    temporal_probs = np.asarray(temporal_probs, dtype=np.float64)
    eligible = ~np.asarray(train_used, dtype=bool)
    rng = np.random.default_rng(seed)
    drawn = np.concatenate([draw_co_class(still_labels, np.asarray(temporal_labels), rng, eligible)
                            for _ in range(runs)])
    labels = np.tile(still_labels, runs)
    covered = drawn >= 0
    return {"still": fit_temperature(still_probs, still_labels),
            "temporal": fit_temperature(temporal_probs[drawn[covered]], labels[covered])}


# -- the command: still model and temporal classifier of the heads ----------------------
def run_oracle(cache_dir="cache", temporal: str = "dynamic", *, runs: int = 100, seed: int = 0,
               backbone: str | None = None, config: dict | None = None, device: str = "cpu",
               out=None, experiment: str = "main", progress: bool = True) -> dict:
    """Oracle for one temporal modality with the heads' still model and the dimensionality-
    reduction network's temporal classifier (trained on train videos only; reused from
    ``<cache>/heads`` when a head already trained it). Returns metrics (written to ``out``)."""
    start = time.perf_counter()
    config = head_config("classifier", temporal, values=config)
    data = HeadData.load(cache_dir, temporal, backbone)
    device = resolve_device(device)
    still, dimred = _fit_heads(data, config, cache_dir, device, out, progress)
    temporal_probs, temporal_labels, pool = _temporal_rows(data, dimred, device)
    sources = [*data.temporal["train"].source, *data.temporal["val"].source, *data.temporal["test"].source]
    # The val stills draw from the val videos, the test stills from the test videos: nothing but the
    # final test evaluation reads a test row. Never drawn: the rows of the other splits.
    not_drawn = {s: pool != SPLIT_CODE[s] for s in ("val", "test")}

    splits = [s for s in ("val", "test") if still.probs.get(s) is not None]
    still_probs = {s: still.probs[s][0].cpu().numpy() for s in splits}
    labels = {s: data.still[s].labels.numpy() for s in splits}
    # The calibrated oracle's temperatures come from the val stills and their val-video draws (no val: T = 1).
    temperatures = {"still": 1.0, "temporal": 1.0}
    if "val" in splits:
        temperatures = fit_oracle_temperatures(still_probs["val"], labels["val"], temporal_probs, temporal_labels,
                                               not_drawn["val"], runs=runs, seed=seed + SPLIT_CODE["val"])
    results = {
        split: oracle_runs(still_probs[split], labels[split], temporal_probs, temporal_labels, not_drawn[split],
                           runs=runs, seed=seed + SPLIT_CODE[split], classes=data.classes, temperatures=temperatures,
                           temporal_sources=sources)
        for split in splits
    }
    metrics = build_metrics("oracle", temporal, {**config, "runs": runs, "oracle_seed": seed},
                            {s: still_probs.get(s) for s in ("val", "test")}, None,
                            {s: labels.get(s) for s in ("val", "test")}, data.classes,
                            time.perf_counter() - start, experiment=experiment)
    _add_oracle_metrics(metrics, results, runs, temperatures)
    metrics["temporal_classifier"] = temporal_classifier_entry(dimred.temporal_test_correct[0],
                                                               data.temporal["test"].source)
    mark_too_narrow(metrics, ONE_SEED)  # one still model and one temporal classifier
    add_run_holm(metrics["gain"])
    metrics["temporal_rows"] = {"eligible": int((pool == SPLIT_CODE["test"]).sum()), "val": int((pool == SPLIT_CODE["val"]).sum()),
                                "train_used": int((pool == SPLIT_CODE["train"]).sum())}
    metrics["temporal_val"] = data.temporal_val  # where the val videos (val oracle, temperatures) came from
    if out is not None:
        write_config(out, config, f"featcache oracle --temporal {temporal}: the still model and temporal classifier's "
                                  f"configuration ({runs} runs, seed {seed})")
        write_metrics(out, metrics)
    return metrics


def _fit_heads(data, config: dict, cache_dir, device, out, progress: bool):
    """The still model and the dimensionality-reduction network (its temporal classifier), as
    ``train-head classifier`` trains them; the latter is reused from ``<cache>/heads`` when stored."""
    store_dir = Path(cache_dir) / "heads"
    store = DimRedStore([store_dir], [store_dir], log=console.print if progress else None)  # says when it reuses a stored one
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(optional_progress(progress))
        history = stack.enter_context(History(out)) if out is not None else None
        phases = Phases(bar, MemberHistories([history], 1))
        still = fit_still_models(data, [config], device, phases)
        dimred = fit_dimred_networks(data, [config], device, phases, store)
    return still, dimred


def _temporal_rows(data, dimred, device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every temporal row's softmax and label, and its split code (0 train: never drawn; 1 val: drawn
    for the val stills; 2 test: drawn for the test stills)."""
    names = ("train", "val", "test")
    rows = [data.temporal[name] for name in names]
    features = torch.cat([r.features for r in rows]).to(device)
    temporal_probs = predict(dimred.model, features, 1).softmax(-1)[0].cpu().numpy()
    temporal_labels = torch.cat([r.labels for r in rows]).numpy()
    pool = np.concatenate([np.full(len(r), SPLIT_CODE[name], dtype=np.int8) for name, r in zip(names, rows)])
    return temporal_probs, temporal_labels, pool


def _add_oracle_metrics(metrics: dict, results: dict[str, OracleResult], runs: int,
                        temperatures: dict[str, float]) -> None:
    """The oracle's derived/fused accuracies, improvement over the still baseline and gain, per split."""
    metrics["derived"] = {s: _mean_or_none(results, s, "derived_accuracy") for s in ("val", "test")}
    metrics["fused"] = {s: _mean_or_none(results, s, "fused_accuracy") for s in ("val", "test")}
    metrics["improvement"] = {
        s: {"mean": round(r.improvement_mean, 4), "std": round(r.improvement_std, 4), "runs": runs,
            "uncovered": r.uncovered, "ci": r.gain()["test_ci"], "p_value": r.gain()["p_value"]}
        for s, r in results.items()
    }
    metrics["improvement_calibrated"] = {
        s: {"mean": round(float((r.calibrated_accuracy - r.still_accuracy).mean()), 4),
            "std": round(float((r.calibrated_accuracy - r.still_accuracy).std(ddof=1)) if runs > 1 else 0.0, 4),
            "runs": runs, "ci": r.calibrated_gain()["test_ci"], "p_value": r.calibrated_gain()["p_value"]}
        for s, r in results.items()
    }
    # Gain with its CI over test images (CONTRACT second wave); the std above is over draws only.
    metrics["gain"] = ({"fused": results["test"].gain(), "fused_calibrated": results["test"].calibrated_gain()}
                       if "test" in results else {})
    metrics["fused_calibrated"] = {s: _mean_or_none(results, s, "calibrated_accuracy") for s in ("val", "test")}
    metrics["temperatures"] = {name: round(t, 6) for name, t in temperatures.items()}
    for s, r in results.items():
        metrics["fused"][f"{s}_ci"] = r.accuracy_ci(r.fused_correct)
        metrics["fused_calibrated"][f"{s}_ci"] = r.accuracy_ci(r.calibrated_correct)
    for s, r in results.items():
        metrics["per_class"][s]["fused"] = {k: round(v, 4) for k, v in (r.per_class_fused or {}).items()}


def _mean_or_none(results: dict, split: str, field: str) -> float | None:
    result = results.get(split)
    return None if result is None else round(float(getattr(result, field).mean()), 4)
