"""The still model: a linear softmax on still features, or the backbone's own logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from featcache.errors import FeatcacheError
from heads.models.linear_classifier import LinearClassifier
from heads.nn.member_random import MemberRandom
from heads.optim.stacked_adam import StackedAdam
from heads.training.checkpoint import member_state, stack_states
from heads.training.config import PAPER_STILLS, STILL_KEYS, epoch_passes
from heads.training.dim_reduction import stored_parts
from heads.training.head_data import HeadData
from heads.training.loop import Phases, fit_classifier, predict, unique_parts


@dataclass
class StillStream:
    mode: str  # "logits" or "linear"
    probs: dict[str, torch.Tensor | None]  # split -> [G, N, C] softmax
    states: list[dict]
    epochs: list[int]
    sources: list[str]  # per member: "trained", "reused" (from the store) or "logits"


def resolve_still_mode(data: HeadData, requested: str) -> str:
    has_logits = all(data.still[s].logits is not None for s in data.still)
    if requested == "logits" and not has_logits:
        raise FeatcacheError(f"--set still_model=logits: {data.still_cache.path} has no logits for these classes")
    return "logits" if requested == "logits" or (requested == "auto" and has_logits) else "linear"


def fit_still_models(data: HeadData, configs, device, phases: Phases, store=None) -> StillStream:
    """The still stream of every member: the backbone's logits, or a linear softmax per distinct still
    setting, trained (its epoch chosen on the val stills) or reused from ``store``
    (:class:`heads.training.dim_reduction.DimRedStore`), which keeps what it trains."""
    members = len(configs)
    splits = [s for s in ("val", "test") if s in data.still]
    mode = resolve_still_mode(data, configs[0]["still_model"])
    probs: dict[str, torch.Tensor | None] = {"val": None, "test": None}
    if mode == "logits":
        for split in splits:
            probs[split] = data.still[split].logits.to(device).softmax(-1).unsqueeze(0).expand(members, -1, -1)
        return StillStream(mode, probs, [{} for _ in configs], [-1] * members, ["logits"] * members)
    unique, owner = unique_parts(configs, STILL_KEYS)
    states, epochs, sources = stored_parts(store, data, unique, "still")
    todo = [u for u, state in enumerate(states) if state is None]
    if todo:
        trained, kept, scores = train_still_models(data, [unique[u] for u in todo], device, phases,
                                                   [todo.index(u) if u in todo else -1 for u in owner.tolist()])
        for i, u in enumerate(todo):
            states[u], epochs[u] = member_state(trained, i), kept[i]
            if store:
                store.save(data, unique[u], states[u], scores[i], epochs[u], "still")
    shared = still_classifier(data, unique, device)  # trained or reused: the same predictions
    shared.load_state_dict(stack_states(states))
    shared.eval()
    for split in splits:
        probs[split] = predict(shared, data.still[split].features.to(device), len(unique)).softmax(-1)[owner]
    return StillStream(mode, probs, [states[u] for u in owner], [epochs[u] for u in owner], [sources[u] for u in owner])


def still_classifier(data: HeadData, configs, device) -> LinearClassifier:
    seeds = [c["seed"] for c in configs]
    return LinearClassifier(len(configs), data.still_cache.feature_dim, data.num_classes,
                            MemberRandom.from_seeds(seeds, "still-init", device)).to(device)


def train_still_models(data: HeadData, configs, device, phases: Phases, owner) -> tuple[LinearClassifier, list, list]:
    """One linear softmax per config, its epoch chosen on the val stills (the last without val):
    the model in its kept state, each member's kept epoch (1-based) and val score."""
    seeds = [c["seed"] for c in configs]
    model = still_classifier(data, configs, device)
    optimizer = StackedAdam(model.parameters(), [c["still_lr"] for c in configs],
                            weight_decay=[c["still_weight_decay"] for c in configs])
    train, val = data.still["train"], data.still.get("val")
    first = configs[0]
    epochs = first["still_epochs"]
    passes = epoch_passes(epochs, first["still_min_steps"], len(train.labels), first["still_batch_size"], PAPER_STILLS)
    keeper = fit_classifier(
        model, optimizer, train.features.to(device), train.labels.to(device),
        None if val is None else val.features.to(device), None if val is None else val.labels,
        epochs, first["still_batch_size"], MemberRandom.from_seeds(seeds, "still-train", device),
        phases.start("still model", epochs),
        on_epoch=lambda e, loss, acc: phases.record("still", e, {"loss": loss, "val_still": acc, "lr": optimizer.lr},
                                                    owner),
        passes=passes,
    )
    return model, [int(e) for e in keeper.epoch], [float(v) for v in keeper.score]
