"""One configuration under several seeds: trained as members of one stacked model, reported
as mean +/- std over seeds with the uncertainty over images.

``train-head --seeds N`` and ``grid --seeds N`` train config seeds ``seed, seed+1, ...,
seed+N-1`` (every random stream of a head follows its config seed, ``heads.nn.member_random``),
so N seeds cost about one run. :func:`combine_seed_metrics` then writes one
``metrics.json`` (CONTRACT.md, second wave):

* ``seeds``: the seeds; per stream ``val``/``test`` are the means over seeds, ``val_std``/
  ``test_std`` the sample standard deviations (ddof=1);
* ``val_ci``/``test_ci``: 95% CI of the seed-mean accuracy covering seeds and images (the
  two-level variance of ``heads.evaluation.intervals``); ``gain``: the paired comparison with
  the still baseline on the same seeds x images, with its ``mde``; one seed's ``ci_too_narrow``
  flag is dropped (the seeds' spread is now in the intervals);
* ``top5``, ``map``, ``ece``: means over seeds (``top5_ci``: the CI of the seed mean, as
  ``test_ci``); ``confusion``: counts summed over seeds
  (each row sums to seeds x the class's test images);
* ``per_seed``: one entry per seed with that seed's ``val``, ``test``, ``val_ci``, ``test_ci``
  per stream, its gains and its fitted temperatures.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import numpy as np

from featcache.errors import FeatcacheError
from heads.evaluation.class_metrics import top_k_correct
from heads.evaluation.metrics import (ALL_STREAMS, EVAL_SPLITS, add_run_holm, ci_or_none, mark_too_narrow,
                                      stream_probs, temporal_classifier_entry)
from heads.evaluation.statistics import accuracy_ci, correct, gain_over_baseline, mean_std
from heads.training.train_head import HeadResult, train_group

PER_SEED_KEYS = ("val", "test", "val_ci", "test_ci")


def seed_configs(config: Mapping[str, Any], seeds: int) -> list[dict[str, Any]]:
    """``seeds`` copies of ``config`` with seeds ``config["seed"] + k``."""
    if seeds < 1:
        raise FeatcacheError(f"--seeds {seeds}: expected an integer >= 1")
    return [dict(config, seed=int(config["seed"]) + k) for k in range(seeds)]


def _round(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4) + 0.0


def _mean(values: Sequence[Any]) -> float | None:
    return _round(mean_std(values)[0])


def _stream_correctness(probs_list: Sequence[Mapping[str, Any]]) -> list[dict[str, dict[str, np.ndarray]]]:
    """Per seed: stream -> split -> bool correctness ``[N]`` (the streams rebuilt from the probs), and
    stream -> ``"top5"`` -> top-5 correctness on test (None with no more than 5 classes)."""
    out = []
    for probs in probs_list:
        labels = probs["labels"]
        streams, _ = stream_probs(probs["still"], probs["derived"], labels)
        per_stream = {}
        for stream, by_split in streams.items():
            if by_split is None:
                continue
            per_stream[stream] = {split: correct(p, labels[split]) for split, p in by_split.items()
                                  if p is not None and labels.get(split) is not None}
            if "test" in per_stream[stream]:  # top-5 on test, as stream_test_metrics
                per_stream[stream]["top5"] = top_k_correct(by_split["test"], labels["test"])
        out.append(per_stream)
    return out


def combine_seed_metrics(metrics_list: Sequence[Mapping[str, Any]],
                         probs_list: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``metrics.json`` of one configuration over seeds (module docstring).

    ``metrics_list[k]`` is seed k's ``build_metrics`` dict, ``probs_list[k]`` its
    ``seed_probs(result)`` (``{"still", "derived", "labels"}``). One seed is returned as is.
    """
    if len(metrics_list) == 1:
        return dict(metrics_list[0])
    first = metrics_list[0]
    combined = copy.deepcopy(dict(first))
    seeds = [int(m["config"]["seed"]) for m in metrics_list]
    combined["seeds"] = seeds
    correctness = _stream_correctness(probs_list)
    for stream in ALL_STREAMS:
        if first.get(stream) is None:
            continue
        entry = combined[stream]
        for split in EVAL_SPLITS:
            mean, std = mean_std([m[stream][split] for m in metrics_list])
            entry[split], entry[f"{split}_std"] = _round(mean), _round(std)
            stacked = [c[stream][split] for c in correctness if split in c.get(stream, {})]
            ci = accuracy_ci(np.stack(stacked)) if len(stacked) == len(seeds) and stacked[0].size else None
            entry[f"{split}_ci"] = None if ci is None else [_round(v) for v in ci]
        for key in ("top5", "map", "ece"):
            entry[key] = _mean([m[stream][key] for m in metrics_list])
        top5 = [c.get(stream, {}).get("top5") for c in correctness]
        entry["top5_ci"] = ci_or_none(np.stack(top5)) if all(t is not None for t in top5) else None
        if all(m[stream].get("confusion") is not None for m in metrics_list):
            entry["confusion"] = np.sum([m[stream]["confusion"] for m in metrics_list], axis=0).astype(int).tolist()
    combined["gain"] = {}
    for stream in first.get("gain", {}):
        if any("test" not in c.get(stream, {}) or "test" not in c["still"] for c in correctness):
            continue
        method = np.stack([c[stream]["test"] for c in correctness])
        still = np.stack([c["still"]["test"] for c in correctness])
        combined["gain"][stream] = gain_over_baseline(method, still)
    mark_too_narrow(combined, None)
    add_run_holm(combined["gain"])
    combined["per_class"] = _mean_per_class([m["per_class"] for m in metrics_list])
    combined["temperatures"] = {k: _mean([m["temperatures"][k] for m in metrics_list])
                                for k in first.get("temperatures", {})}
    if "temporal_classifier" in first:
        combined["temporal_classifier"] = _combine_temporal_classifier(metrics_list, probs_list)
    combined["per_seed"] = [_seed_entry(seed, m) for seed, m in zip(seeds, metrics_list)]
    combined["seconds"] = round(sum(float(m.get("seconds") or 0.0) for m in metrics_list), 3)
    return combined


def _combine_temporal_classifier(metrics_list, probs_list) -> dict[str, Any]:
    """Mean and std over seeds; the CI of the seed mean over the temporal test instances when
    every seed brought its per-instance correctness."""
    values = [m["temporal_classifier"]["test"] for m in metrics_list]
    entry = {"test": _mean(values), "test_std": _round(mean_std(values)[1])}
    correct = [p.get("temporal_correct") for p in probs_list]
    if all(c is not None for c in correct):
        from_rows = temporal_classifier_entry(np.stack(correct), probs_list[0].get("temporal_sources"))
        entry["test_ci"] = from_rows["test_ci"]
        if "ci_too_narrow" in from_rows:
            entry["ci_too_narrow"] = from_rows["ci_too_narrow"]
    return entry


def _seed_entry(seed: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"seed": seed}
    for stream in ALL_STREAMS:
        values = metrics.get(stream)
        entry[stream] = None if values is None else {k: values.get(k) for k in PER_SEED_KEYS}
    for key in ("gain", "temperatures", "selected_epoch", "temporal_classifier"):
        if key in metrics:
            entry[key] = metrics[key]
    return entry


def _mean_per_class(per_class_list: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per split and stream, each class's accuracy averaged over seeds."""
    out: dict[str, Any] = {}
    for split, by_stream in per_class_list[0].items():
        out[split] = {}
        for stream, classes in by_stream.items():
            if classes is None:
                out[split][stream] = None
                continue
            out[split][stream] = {name: _mean([pc[split][stream].get(name) for pc in per_class_list])
                                  for name in classes}
    return out


def seed_probs(result) -> dict[str, Any]:
    """What one seed's run contributes to the combination: its still and derived softmaxes, the labels
    and its temporal classifier's per-instance correctness."""
    return {"still": result.predictions["still"], "derived": result.predictions["derived"], "labels": result.labels,
            "temporal_correct": result.temporal_correct, "temporal_sources": result.temporal_sources}


def combine_seed_results(results: Sequence[Any]):
    """One ``HeadResult`` for the seeds of one configuration: combined metrics; the checkpoint
    of the first seed with every seed's state under ``seed_states`` (``seeds`` names them)."""
    first = results[0]
    metrics = combine_seed_metrics([r.metrics for r in results], [seed_probs(r) for r in results])
    checkpoint = dict(first.checkpoint)
    if len(results) > 1:
        checkpoint["seeds"] = metrics["seeds"]
        checkpoint["seed_states"] = [r.checkpoint["state"] for r in results]
    return HeadResult(dict(first.config), metrics, checkpoint, sum(r.seconds for r in results), first.predictions,
                      first.labels, first.temporal_correct, first.temporal_sources)


def train_seeds(method: str, data, config: Mapping[str, Any], seeds: int = 1, device="cpu", **kwargs):
    """``train_group`` over the seeds of one configuration, combined into one ``HeadResult``."""
    return combine_seed_results(train_group(method, data, seed_configs(config, seeds), device, **kwargs))
