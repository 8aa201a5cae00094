"""The still model: a linear softmax on still features, or the backbone's own logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from featcache.errors import FeatcacheError
from heads.models.linear_classifier import LinearClassifier
from heads.nn.member_random import MemberRandom
from heads.optim.stacked_adam import StackedAdam
from heads.training.checkpoint import member_state
from heads.training.config import PAPER_STILLS, STILL_KEYS, epoch_passes
from heads.training.head_data import HeadData
from heads.training.loop import Phases, fit_classifier, predict, unique_parts


@dataclass
class StillStream:
    mode: str  # "logits" or "linear"
    probs: dict[str, torch.Tensor | None]  # split -> [G, N, C] softmax
    states: list[dict]
    epochs: list[int]


def resolve_still_mode(data: HeadData, requested: str) -> str:
    has_logits = all(data.still[s].logits is not None for s in data.still)
    if requested == "logits" and not has_logits:
        raise FeatcacheError(f"--set still_model=logits: {data.still_cache.path} has no logits for these classes")
    return "logits" if requested == "logits" or (requested == "auto" and has_logits) else "linear"


def fit_still_models(data: HeadData, configs, device, phases: Phases) -> StillStream:
    members = len(configs)
    splits = [s for s in ("val", "test") if s in data.still]
    mode = resolve_still_mode(data, configs[0]["still_model"])
    probs: dict[str, torch.Tensor | None] = {"val": None, "test": None}
    if mode == "logits":
        for split in splits:
            probs[split] = data.still[split].logits.to(device).softmax(-1).unsqueeze(0).expand(members, -1, -1)
        return StillStream(mode, probs, [{} for _ in configs], [-1] * members)
    unique, owner = unique_parts(configs, STILL_KEYS)
    seeds = [c["seed"] for c in unique]
    model = LinearClassifier(len(unique), data.still_cache.feature_dim, data.num_classes,
                             MemberRandom.from_seeds(seeds, "still-init", device)).to(device)
    optimizer = StackedAdam(model.parameters(), [c["still_lr"] for c in unique],
                            weight_decay=[c["still_weight_decay"] for c in unique])
    train, val = data.still["train"], data.still.get("val")
    first = unique[0]
    epochs = first["still_epochs"]
    passes = epoch_passes(epochs, first["still_min_steps"], len(train.labels), first["still_batch_size"], PAPER_STILLS)
    keeper = fit_classifier(
        model, optimizer, train.features.to(device), train.labels.to(device),
        None if val is None else val.features.to(device), None if val is None else val.labels,
        epochs, unique[0]["still_batch_size"], MemberRandom.from_seeds(seeds, "still-train", device),
        phases.start("still model", epochs),
        on_epoch=lambda e, loss, acc: phases.record("still", e, {"loss": loss, "val_still": acc, "lr": optimizer.lr},
                                                    owner),
        passes=passes,
    )
    for split in splits:
        probs[split] = predict(model, data.still[split].features.to(device), len(unique)).softmax(-1)[owner]
    states = [member_state(model, int(u)) for u in owner]
    return StillStream(mode, probs, states, [int(keeper.epoch[u]) for u in owner])
