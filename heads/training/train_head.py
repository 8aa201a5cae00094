"""Training loops of the stage-2 heads, flat in the torchvision reference style.

Every loop trains G *members* at once: one stacked model whose member g is the head
for ``configs[g]`` (G=1 for a single run). Members have their own weights, batch-norm
statistics, dropout/noise masks, batch order and learning rates, all drawn from their own
seeds, so ``train_group(m, data, [a, b, c])`` gives the results of three ``train_head``
runs, in about the time of one.

Parts, in data-flow order, one module each (a head method's own parts are its registry record's
``fit``, :mod:`heads.training.registry`):
  still_model     linear softmax on still features (or the backbone's logits)
  dim_reduction   FC d1 tanh BN, dropout, FC C on real temporal features, selected on the
                  temporal val rows (val videos; the paper uses the test videos), then frozen:
                  the compact temporal space and the auxiliary / temporal classifier
  gan             generator + discriminator, L_gan + lambda L_aux, RMSProp
  embedding       embedding network with triplets (P x K batches, FAISS semi-hard negatives
                  over the whole compact temporal train set) + a separate classifier trained
                  on the compact temporal features
``loop`` holds what they share (stacked tensor helpers, best-epoch keeper, the classifier loop),
``selection`` the val selection of the derived heads.
Parts that depend on fewer keys (still model, dim-reduction network) are trained once per
distinct setting and shared by the members that agree on it. The heads' epochs are selected on
the still val split only (``select``: fused or derived accuracy), the temporal parts' on the val
videos' rows; test is reported, never tuned on.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from featcache.utils.device import resolve_device
from featcache.utils.progress import optional_progress
from heads.evaluation.history import MemberHistories
from heads.training.checkpoint import member_state
from heads.training.dim_reduction import DimRedStore, fit_dimred_networks
from heads.evaluation.metrics import build_metrics, fuse, temporal_classifier_entry
from heads.training.head_data import HeadData
from heads.training.loop import Phases
from heads.training.methods import get_method, shape_key
from heads.training.still_model import fit_still_models


@dataclass
class HeadResult:
    config: dict
    metrics: dict
    checkpoint: dict
    seconds: float  # wall time of the group divided by its number of members
    # stream (still, derived, fused) -> split (val, test) -> softmax [N, C] on the CPU (None when absent)
    predictions: dict = field(default_factory=dict)
    # split (val, test) -> true labels of the still images (what heads.training.seeds pairs the seeds on)
    labels: dict = field(default_factory=dict)
    # bool [N] numpy: which temporal test instances the temporal classifier gets right (its CI over seeds)
    temporal_correct: Any = None
    temporal_sources: Any = None  # [N] the source video of each temporal test instance (its CI's clusters)


# -- the group trainer ----------------------------------------------------------------
def check_group(method: str, configs: Sequence[dict]) -> None:
    get_method(method)  # FeatcacheError for an unknown method
    if not configs:
        raise ValueError("train_group() needs at least one config")
    keys = set(configs[0])
    shape = shape_key(method, configs[0])
    for config in configs[1:]:
        if set(config) != keys:
            raise ValueError("configs of one group must have the same keys")
        if shape_key(method, config) != shape:
            raise ValueError(f"configs of one group must share the shape keys: {shape} vs {shape_key(method, config)}")


def train_group(method: str, data: HeadData, configs: Sequence[dict], device: str | torch.device = "cpu", *,
                dimred_store: DimRedStore | None = None, progress: bool = False,
                histories: Sequence[Any] | None = None) -> list[HeadResult]:
    """Train ``len(configs)`` heads of ``method`` as one stacked model; one result per config.
    ``histories``: one :class:`heads.evaluation.history.History` (or None) per config for its learning curves."""
    configs = [dict(c) for c in configs]
    check_group(method, configs)
    device = resolve_device(device)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(optional_progress(progress))
        phases = Phases(bar, MemberHistories(histories, len(configs)))
        still = fit_still_models(data, configs, device, phases, dimred_store)
        dimred = fit_dimred_networks(data, configs, device, phases, dimred_store)
        derived, parts, epochs = get_method(method).fit(data, configs, device, phases, still, dimred)
    seconds = (time.perf_counter() - start) / len(configs)
    labels = {s: data.still[s].labels if s in data.still else None for s in ("val", "test")}
    results = []
    for g, config in enumerate(configs):
        member_derived = None if derived is None else {s: None if p is None else p[g].cpu() for s, p in derived.items()}
        still_probs = {s: None if p is None else p[g].cpu() for s, p in still.probs.items()}
        metrics = build_metrics(method, data.temporal_kind, config, still_probs, member_derived, labels,
                                data.classes, seconds)
        metrics["temporal_classifier"] = temporal_classifier_entry(dimred.temporal_test_correct[g],
                                                                   data.temporal["test"].source)
        metrics["selected_epoch"] = {"still": still.epochs[g], "dimred": dimred.epochs[g], method: epochs[g]}
        metrics["dimred_source"] = dimred.sources[g]
        metrics["still_source"] = still.sources[g]
        metrics["temporal_val"] = data.temporal_val  # the val videos the epochs above were chosen on
        metrics["backbones"] = {"still": data.still_cache.backbone, "temporal": data.temporal_cache.backbone}
        checkpoint = {
            "method": method,
            "temporal": data.temporal_kind,
            "config": config,
            "classes": data.classes,
            "still_model": still.mode,
            "still_cache": str(data.still_cache.path),
            "temporal_cache": str(data.temporal_cache.path),
            "still_record": data.still_cache.record(),  # how to featurise new stills (heads.inference)
            "temperatures": metrics["temperatures"],  # of fused_calibrated, fitted on val
            "dims": {"still": data.still_cache.feature_dim, "temporal": data.temporal_cache.feature_dim,
                     "classes": data.num_classes},
            "state": {"still": still.states[g], "dimred": dimred.states[g],
                      **{name: member_state(module, g) for name, module in parts.items()}},
        }
        fused = None if member_derived is None else {
            s: None if p is None or still_probs.get(s) is None else fuse(still_probs[s], p)
            for s, p in member_derived.items()}
        predictions = {"still": still_probs, "derived": member_derived, "fused": fused}
        results.append(HeadResult(config, metrics, checkpoint, seconds, predictions, labels,
                                  dimred.temporal_test_correct[g].numpy(), data.temporal["test"].source))
    return results


def train_head(method: str, data: HeadData, config: dict, device: str | torch.device = "cpu", *,
               dimred_store: DimRedStore | None = None, progress: bool = False, history=None) -> HeadResult:
    """One head: ``train_group`` with a single member (``history``: its learning curves)."""
    return train_group(method, data, [config], device, dimred_store=dimred_store, progress=progress,
                       histories=[history])[0]
