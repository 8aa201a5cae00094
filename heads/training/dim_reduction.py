"""The dimensionality-reduction network: FC d1 tanh BN, dropout, FC C on real temporal features,
its epoch chosen on the temporal val rows (val videos; the paper uses the test videos, we never
read a test label before the final evaluation), then frozen. Its compact temporal space and
classifier serve the GAN and embedding heads; trained networks (and still models,
``heads.training.still_model``) are shared on disk (``DimRedStore``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from featcache.cache.schema import backbone_file_tag
from featcache.errors import FeatcacheError
from heads.models.dim_reduction_network import DimReductionNetwork
from heads.nn.member_random import MemberRandom
from heads.optim.stacked_adam import StackedAdam
from heads.training.checkpoint import load_head_checkpoint, member_state, save_head_checkpoint, stack_states
from heads.training.config import DIMRED_KEYS, PAPER_TEMPORAL_ROWS, STILL_KEYS, epoch_passes, part_key
from heads.training.head_data import HeadData
from heads.training.loop import Phases, fit_classifier, member_correct, predict, unique_parts

Log = Callable[[str], None]


# part -> (its config keys, how the log names it, the cache whose rows it learns, the name of its val score)
STORED_PARTS = {"dimred": (DIMRED_KEYS, "dim-reduction network", "temporal", "temporal_val"),
                "still": (STILL_KEYS, "still model", "still", "val")}


class DimRedStore:
    """Trained dim-reduction networks and still models on disk, named by the cache they learn from
    (its rows, labels and split) and their config keys: the same part is trained once per cache.

    Looked up in ``search_dirs`` in order (the run dir, then ``<cache>/heads``), saved to
    every directory of ``save_dirs``.
    """

    def __init__(self, search_dirs: Sequence[Path], save_dirs: Sequence[Path], log: Log | None = None):
        self.search_dirs = [Path(d) for d in search_dirs]
        self.save_dirs = [Path(d) for d in save_dirs]
        self.log = log or (lambda message: None)

    @staticmethod
    def file_name(data: HeadData, config: dict, part: str = "dimred") -> str:
        keys = repr(part_key(config, STORED_PARTS[part][0]))
        if part == "still":
            digest = hashlib.sha256(f"{data.still_identity()}|{keys}".encode()).hexdigest()[:12]
            return f"still-{backbone_file_tag(data.still_cache.backbone)}-{digest}.pt"
        digest = hashlib.sha256(f"{data.temporal_identity()}|{keys}".encode()).hexdigest()[:12]
        return f"dimred-{data.temporal_kind}-{backbone_file_tag(data.temporal_cache.backbone)}-{digest}.pt"

    @staticmethod
    def describe(config: dict, part: str) -> str:
        size = f"d1={config['d1']}, " if part == "dimred" else ""
        return f"{STORED_PARTS[part][1]} ({size}seed={config['seed']})"

    def load(self, data: HeadData, config: dict, part: str = "dimred") -> dict | None:
        name = self.file_name(data, config, part)
        for directory in self.search_dirs:
            path = directory / name
            if path.is_file():
                try:
                    checkpoint = load_head_checkpoint(path)
                except FeatcacheError as exc:  # a damaged stored part: say how to get it back
                    raise FeatcacheError(f"{exc}; it is a stored {STORED_PARTS[part][1]}: delete it and rerun "
                                         "to train it again") from None
                self.log(f"{self.describe(config, part)}: reused {path}")
                return checkpoint
        return None

    def save(self, data: HeadData, config: dict, state: dict, score: float, epoch: int, part: str = "dimred") -> None:
        keys, _, cache, score_name = STORED_PARTS[part]
        name = self.file_name(data, config, part)
        cache_path = data.temporal_cache.path if cache == "temporal" else data.still_cache.path
        saved = []
        for directory in self.save_dirs:
            try:
                save_head_checkpoint(directory / name, {
                    "part": part, "config": {k: config[k] for k in keys}, "state": state,
                    score_name: score, "selected_on": score_name.replace("_", " "), "epoch": epoch, "epoch_base": 1,
                    f"{cache}_cache": str(cache_path),
                })
            except OSError as exc:
                self.log(f"[yellow]could not save the {STORED_PARTS[part][1]} to {directory}: {exc}")
                continue
            saved.append(str(directory / name))
        where = f", saved {' and '.join(saved)}" if saved else ""
        self.log(f"{self.describe(config, part)}: trained{where}")  # one line per training


def stored_parts(store: DimRedStore | None, data: HeadData, unique: list[dict], part: str) -> tuple[list, list, list]:
    """Per distinct setting of ``part``: its stored state (None: to train), kept epoch (1-based; 0
    when to train) and ``"reused"`` or ``"trained"``."""
    found = [store.load(data, c, part) if store else None for c in unique]
    return ([f["state"] if f else None for f in found], [stored_epoch(f) if f else 0 for f in found],
            ["reused" if f else "trained" for f in found])


def stored_epoch(checkpoint: dict) -> int:
    """A stored network's kept epoch, 1-based (networks saved before ``epoch_base`` counted from 0)."""
    return int(checkpoint.get("epoch", -1)) + (0 if checkpoint.get("epoch_base") == 1 else 1)


@dataclass
class DimRedParts:
    model: DimReductionNetwork  # G members, frozen, eval mode
    owner: torch.Tensor  # member -> distinct dim-reduction setting
    compact_train: torch.Tensor  # [U, N_train, d1] compact temporal train features
    compact_val: torch.Tensor  # [U, N_val, d1]: where the embedding's classifier is chosen
    compact_test: torch.Tensor  # [U, N_test, d1]
    temporal_train_labels: torch.Tensor
    temporal_test_correct: torch.Tensor  # [G, N_test] bool: which temporal test instances it gets right
    states: list[dict]
    epochs: list[int]
    sources: list[str]


def build_dimred(data: HeadData, configs, device) -> DimReductionNetwork:
    seeds = [c["seed"] for c in configs]
    return DimReductionNetwork(
        len(configs), data.temporal_cache.feature_dim, configs[0]["d1"], data.num_classes,
        [c["dimred_dropout"] for c in configs],
        MemberRandom.from_seeds(seeds, "dimred-init", device), MemberRandom.from_seeds(seeds, "dimred-train", device),
    ).to(device)


def fit_dimred_networks(data: HeadData, configs, device, phases: Phases, store: DimRedStore | None) -> DimRedParts:
    unique, owner = unique_parts(configs, DIMRED_KEYS)
    states, epochs, sources = stored_parts(store, data, unique, "dimred")
    todo = [u for u, state in enumerate(states) if state is None]
    train, val, test = data.temporal["train"], data.temporal["val"], data.temporal["test"]
    if todo:
        group = [unique[u] for u in todo]
        model = build_dimred(data, group, device)
        optimizer = StackedAdam(model.parameters(), [c["dimred_lr"] for c in group])
        total = group[0]["dimred_epochs"]
        passes = epoch_passes(total, group[0]["dimred_min_steps"], len(train.labels), group[0]["dimred_batch_size"],
                              PAPER_TEMPORAL_ROWS)
        group_owner = [todo.index(u) if u in todo else -1 for u in owner.tolist()]  # -1: reused, no curve
        keeper = fit_classifier(
            model, optimizer, train.features.to(device), train.labels.to(device), val.features.to(device),
            val.labels, total, group[0]["dimred_batch_size"],
            MemberRandom.from_seeds([c["seed"] for c in group], "dimred-train-order", device),
            phases.start("dim-reduction network", total),
            on_epoch=lambda e, loss, acc: phases.record(
                "dimred", e, {"loss": loss, "temporal_val": acc, "lr": optimizer.lr}, group_owner),
            passes=passes,
        )
        for i, u in enumerate(todo):
            states[u], epochs[u] = member_state(model, i), int(keeper.epoch[i])
            if store:
                store.save(data, unique[u], states[u], float(keeper.score[i]), epochs[u])
    shared = build_dimred(data, unique, device)
    shared.load_state_dict(stack_states(states))
    shared.eval().requires_grad_(False)
    compact_train = predict(shared.compact, train.features.to(device), len(unique))
    compact_val = predict(shared.compact, val.features.to(device), len(unique))
    compact_test = predict(shared.compact, test.features.to(device), len(unique))
    test_probs = predict(shared, test.features.to(device), len(unique)).softmax(-1)
    test_correct = member_correct(test_probs, test.labels).cpu()
    model = build_dimred(data, configs, device)
    model.load_state_dict(stack_states([states[u] for u in owner]))
    model.eval().requires_grad_(False)
    return DimRedParts(
        model, owner.to(device), compact_train, compact_val, compact_test, train.labels.to(device), test_correct[owner],
        [states[u] for u in owner], [epochs[u] for u in owner], [sources[u] for u in owner],
    )
