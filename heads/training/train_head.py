"""Training loops of the stage-2 heads, flat in the torchvision reference style.

Every loop trains G *members* at once: one stacked model whose member g is the head
for ``configs[g]`` (G=1 for a single run). Members have their own weights, batch-norm
statistics, dropout/noise masks, batch order and learning rates, all drawn from their own
seeds, so ``train_group(m, data, [a, b, c])`` gives the results of three ``train_head``
runs, in about the time of one.

Parts, in data-flow order:
  still model            linear softmax on still features (or the backbone's logits)
  dim-reduction network  FC d1 tanh BN, dropout, FC C on real temporal features, selected on
                         the temporal test split as the paper does, then frozen: the compact
                         temporal space and the auxiliary / temporal classifier
  gan                    generator + discriminator, L_gan + lambda L_aux, RMSProp
  embed                  embedding network with triplets (P x K batches, FAISS semi-hard
                         negatives over the whole compact temporal train set) + a separate
                         classifier trained on the compact temporal features
Parts that depend on fewer keys (still model, dim-reduction network) are trained once per
distinct setting and shared by the members that agree on it. Epochs are selected on the
still val split only (``select``: fused or derived accuracy); test is reported, never tuned on.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from featcache.utils.device import resolve_device
from featcache.errors import FeatcacheError
from featcache.cache.schema import backbone_file_tag
from heads.training.checkpoint import load_checkpoint, member_state, save_checkpoint, stack_states
from heads.training.config import DIMRED_KEYS, METHODS, STILL_KEYS, batches_per_epoch, part_key, scheduled_epochs, shape_key
from heads.models.dim_reduction_network import DimReductionNetwork
from heads.models.discriminator import Discriminator
from heads.models.embedding_network import EmbeddingNetwork
from heads.evaluation.metrics import build_metrics, fuse
from heads.models.generator import Generator
from heads.training.head_data import HeadData
from heads.models.linear_classifier import LinearClassifier
from heads.nn.member_random import MemberRandom, member_generators
from heads.optim.stacked_adam import StackedAdam
from heads.optim.stacked_rmsprop import StackedRMSProp

EVAL_CHUNK = 8192
Log = Callable[[str], None]


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


# -- small tensor helpers ----------------------------------------------------------
def take(x: torch.Tensor, index: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
    """Rows ``index [G, B]`` of ``x``: shared ``[N, ...]``, or per-owner ``[U, N, ...]`` where
    member g reads owner ``owner[g]`` (members sharing a frozen part share its features)."""
    if owner is None:
        if index.shape[0] > 1 and index.stride(0) == 0:  # one batch order shared by all members
            return x[index[0]].expand(index.shape[0], *([-1] * x.dim()))
        return x[index]
    return x[owner[:, None], index]


def member_losses(per_row: torch.Tensor, members: int) -> torch.Tensor:
    """Per-row losses ``[G * B]`` -> per-member means ``[G]``."""
    return per_row.view(members, -1).mean(1)


@torch.no_grad()
def predict(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, members: int,
            owner: torch.Tensor | None = None) -> torch.Tensor:
    """``fn`` applied to all rows of ``x`` for every member, in chunks -> ``[G, N, out]``."""
    outputs = []
    for start in range(0, x.shape[-2], EVAL_CHUNK):
        if x.dim() == 2:
            rows = x[start : start + EVAL_CHUNK].unsqueeze(0).expand(members, -1, -1)
        else:
            rows = x[:, start : start + EVAL_CHUNK]
            rows = rows[owner] if owner is not None else rows
        outputs.append(fn(rows))
    return torch.cat(outputs, dim=1)


def member_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy in percent per member, ``probs [G, N, C]`` -> ``[G]``."""
    return (probs.argmax(-1) == labels.to(probs.device)).float().mean(-1) * 100.0


def batch_starts(rows: int, batch_size: int) -> range:
    """Full batches only (batch norm needs rows); one short batch if there are fewer rows."""
    return range(0, max(rows - batch_size + 1, 1), batch_size)


def unique_parts(configs: Sequence[dict], keys: Sequence[str]) -> tuple[list[dict], torch.Tensor]:
    """Distinct settings of ``keys`` among ``configs`` and, per config, the index of its setting."""
    distinct: dict[tuple, int] = {}
    owner = [distinct.setdefault(part_key(c, keys), len(distinct)) for c in configs]
    firsts = {index: configs[owner.index(index)] for index in distinct.values()}
    return [firsts[i] for i in range(len(distinct))], torch.tensor(owner, dtype=torch.long)


class BestKeeper:
    """Per-member copy of the best state so far; ties keep the earlier epoch."""

    def __init__(self, module: nn.Module, members: int):
        self.module = module
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self.score = torch.full((members,), -float("inf"))
        self.epoch = torch.full((members,), -1, dtype=torch.long)

    def update(self, scores: torch.Tensor, epoch: int) -> None:
        scores = scores.detach().cpu()
        improved = scores > self.score
        if not improved.any():
            return
        for name, value in self.module.state_dict().items():
            self.state[name][improved.to(value.device)] = value.detach()[improved.to(value.device)]
        self.score = torch.where(improved, scores, self.score)
        self.epoch[improved] = epoch

    def restore(self) -> None:
        self.module.load_state_dict(self.state)


class Phases:
    """One progress-bar row per training phase (or none, for tests and grids), and the
    members' learning curves (``history``, a :class:`heads.evaluation.history.MemberHistories`)."""

    def __init__(self, progress, history=None):
        self.progress = progress
        self.history = history

    def record(self, phase: str, epoch: int, values: dict, owner=None) -> None:
        if self.history is not None:
            self.history.record(phase, epoch + 1, values, owner)

    def start(self, description: str, total: int) -> Callable[[], None]:
        if self.progress is None:
            return lambda: None
        task = self.progress.add_task(description, total=total)
        return lambda: self.progress.advance(task)


# -- linear classifiers (still model, dim-reduction network, embedding classifier) ----
def train_classifier_epoch(model, optimizer, x, labels, batch_size, rng, owner=None) -> torch.Tensor:
    """One epoch of per-member cross-entropy; returns the mean loss per member."""
    model.train()
    members, rows = len(rng), labels.shape[-1]
    order = rng.randperm(rows)
    totals, steps = torch.zeros(members), 0
    for start in batch_starts(rows, batch_size):
        index = order[:, start : start + batch_size]
        logits = model(take(x, index, owner))
        y = take(labels, index, None if labels.dim() == 1 else owner)
        losses = member_losses(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none"), members)
        optimizer.zero_grad()
        losses.sum().backward()
        optimizer.step()
        totals += losses.detach().cpu()
        steps += 1
    return totals / steps


def fit_classifier(model, optimizer, train_x, train_y, select_x, select_y, epochs, batch_size, rng,
                   advance, owner=None, classify=None, on_epoch=None) -> BestKeeper:
    """Train for ``epochs``, keeping each member's best epoch by accuracy on the selection
    rows (the last epoch when there are none); the model ends in its best state.
    ``on_epoch(epoch, losses [G], accuracies [G] or None)`` sees every epoch."""
    members = len(rng)
    keeper = BestKeeper(model, members)
    classify = classify or model
    for epoch in range(epochs):
        losses = train_classifier_epoch(model, optimizer, train_x, train_y, batch_size, rng, owner)
        accuracies = None
        if select_x is None:
            scores = torch.full((members,), float(epoch))
        else:
            model.eval()
            scores = accuracies = member_accuracy(predict(classify, select_x, members, owner), select_y)
        if on_epoch is not None:
            on_epoch(epoch, losses, accuracies)
        keeper.update(scores, epoch)
        advance()
    keeper.restore()
    model.eval()
    return keeper


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
    epochs = scheduled_epochs(first["still_epochs"], first["still_min_steps"],
                              batches_per_epoch(len(train.labels), first["still_batch_size"]))
    keeper = fit_classifier(
        model, optimizer, train.features.to(device), train.labels.to(device),
        None if val is None else val.features.to(device), None if val is None else val.labels,
        epochs, unique[0]["still_batch_size"], MemberRandom.from_seeds(seeds, "still-train", device),
        phases.start("still model", epochs),
        on_epoch=lambda e, loss, acc: phases.record("still", e, {"loss": loss, "val_still": acc, "lr": optimizer.lr},
                                                    owner),
    )
    for split in splits:
        probs[split] = predict(model, data.still[split].features.to(device), len(unique)).softmax(-1)[owner]
    states = [member_state(model, int(u)) for u in owner]
    return StillStream(mode, probs, states, [int(keeper.epoch[u]) for u in owner])


# -- dimensionality-reduction network ------------------------------------------------
class DimRedStore:
    """Trained dim-reduction networks on disk, named by temporal cache and their config keys.

    Looked up in ``search_dirs`` in order (the run dir, then ``<cache>/heads``), saved to
    every directory of ``save_dirs``.
    """

    def __init__(self, search_dirs: Sequence[Path], save_dirs: Sequence[Path], log: Log | None = None):
        self.search_dirs = [Path(d) for d in search_dirs]
        self.save_dirs = [Path(d) for d in save_dirs]
        self.log = log or (lambda message: None)

    @staticmethod
    def file_name(data: HeadData, config: dict) -> str:
        import hashlib

        keys = repr(part_key(config, DIMRED_KEYS))
        digest = hashlib.sha256(f"{data.temporal_identity()}|{keys}".encode()).hexdigest()[:12]
        return f"dimred-{data.temporal_kind}-{backbone_file_tag(data.temporal_cache.backbone)}-{digest}.pt"

    def load(self, data: HeadData, config: dict) -> dict | None:
        name = self.file_name(data, config)
        for directory in self.search_dirs:
            path = directory / name
            if path.is_file():
                checkpoint = load_checkpoint(path)
                self.log(f"dim-reduction network (d1={config['d1']}, seed={config['seed']}): reused {path}")
                return checkpoint
        return None

    def save(self, data: HeadData, config: dict, state: dict, temporal_test: float, epoch: int) -> None:
        name = self.file_name(data, config)
        for directory in self.save_dirs:
            try:
                save_checkpoint(directory / name, {
                    "part": "dimred", "config": {k: config[k] for k in DIMRED_KEYS}, "state": state,
                    "temporal_test": temporal_test, "epoch": epoch, "temporal_cache": str(data.temporal_cache.path),
                })
            except OSError as exc:
                self.log(f"[yellow]could not save the dim-reduction network to {directory}: {exc}")
                continue
            self.log(f"dim-reduction network (d1={config['d1']}, seed={config['seed']}): trained, saved {directory / name}")


@dataclass
class DimRedParts:
    model: DimReductionNetwork  # G members, frozen, eval mode
    owner: torch.Tensor  # member -> distinct dim-reduction setting
    compact_train: torch.Tensor  # [U, N_train, d1] compact temporal train features
    compact_test: torch.Tensor  # [U, N_test, d1]
    temporal_train_labels: torch.Tensor
    temporal_test: list[float]  # temporal classifier accuracy on temporal test, per member
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
    found = [store.load(data, c) if store else None for c in unique]
    states = [f["state"] if f else None for f in found]
    epochs = [int(f.get("epoch", -1)) if f else -1 for f in found]
    sources = ["reused" if f else "trained" for f in found]
    todo = [u for u, state in enumerate(states) if state is None]
    train, test = data.temporal["train"], data.temporal["test"]
    if todo:
        group = [unique[u] for u in todo]
        model = build_dimred(data, group, device)
        optimizer = StackedAdam(model.parameters(), [c["dimred_lr"] for c in group])
        total = scheduled_epochs(group[0]["dimred_epochs"], group[0]["dimred_min_steps"],
                                 batches_per_epoch(len(train.labels), group[0]["dimred_batch_size"]))
        group_owner = [todo.index(u) if u in todo else -1 for u in owner.tolist()]  # -1: reused, no curve
        keeper = fit_classifier(
            model, optimizer, train.features.to(device), train.labels.to(device), test.features.to(device),
            test.labels, total, group[0]["dimred_batch_size"],
            MemberRandom.from_seeds([c["seed"] for c in group], "dimred-train-order", device),
            phases.start("dim-reduction network", total),
            on_epoch=lambda e, loss, acc: phases.record(
                "dimred", e, {"loss": loss, "temporal_test": acc, "lr": optimizer.lr}, group_owner),
        )
        for i, u in enumerate(todo):
            states[u], epochs[u] = member_state(model, i), int(keeper.epoch[i])
            if store:
                store.save(data, unique[u], states[u], float(keeper.score[i]), epochs[u])
    shared = build_dimred(data, unique, device)
    shared.load_state_dict(stack_states(states))
    shared.eval().requires_grad_(False)
    compact_train = predict(shared.compact, train.features.to(device), len(unique))
    compact_test = predict(shared.compact, test.features.to(device), len(unique))
    test_probs = predict(shared, test.features.to(device), len(unique)).softmax(-1)
    test_acc = member_accuracy(test_probs, test.labels).tolist()
    model = build_dimred(data, configs, device)
    model.load_state_dict(stack_states([states[u] for u in owner]))
    model.eval().requires_grad_(False)
    return DimRedParts(
        model, owner.to(device), compact_train, compact_test, train.labels.to(device), [test_acc[u] for u in owner],
        [states[u] for u in owner], [epochs[u] for u in owner], [sources[u] for u in owner],
    )


# -- GAN head (section 3.1) ------------------------------------------------------------
def train_gan_epoch(generator, discriminator, aux, opt_g, opt_d, still_x, still_y, compact, owner,
                    lambdas, batch_size, rng) -> dict[str, torch.Tensor]:
    """One pass over the still train rows. D step: real compact temporal features vs
    generated ones; G step: non-saturating L_gan + lambda * L_aux with the frozen auxiliary
    classifier (the usual form of the min-max of eq. 3)."""
    generator.train()
    discriminator.train()
    members, rows = len(rng), still_y.shape[0]
    order = rng.randperm(rows)
    sums = {"loss_d": torch.zeros(members), "loss_g": torch.zeros(members), "loss_aux": torch.zeros(members)}
    steps = 0
    for start in batch_starts(rows, batch_size):
        index = order[:, start : start + batch_size]
        x, y = take(still_x, index), take(still_y, index)
        real = take(compact, rng.randint(compact.shape[1], index.shape[1]), owner)
        fake = generator(x)
        loss_d = discriminator_loss(discriminator(real), discriminator(fake.detach()))
        opt_d.zero_grad()
        loss_d.sum().backward()
        opt_d.step()
        discriminator.requires_grad_(False)  # the G step needs gradients through D, not for D
        loss_gan, loss_aux = generator_losses(discriminator(fake), aux(fake), y)
        opt_g.zero_grad()
        (loss_gan + lambdas * loss_aux).sum().backward()
        opt_g.step()
        discriminator.requires_grad_(True)
        for name, value in (("loss_d", loss_d), ("loss_g", loss_gan), ("loss_aux", loss_aux)):
            sums[name] += value.detach().cpu()
        steps += 1
    return {name: value / steps for name, value in sums.items()}


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Per member ``-E[log D(x_t)] - E[log(1 - D(x~_t))]`` (the max side of eq. 1)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits), reduction="none")
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits), reduction="none")
    return real.mean(-1) + fake.mean(-1)


def generator_losses(fake_logits: torch.Tensor, aux_logits: torch.Tensor, labels: torch.Tensor):
    """Per member ``(L_gan, L_aux)``: ``-E[log D(x~_t)]`` and the auxiliary cross-entropy (eq. 2)."""
    members = fake_logits.shape[0]
    gan = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits), reduction="none").mean(-1)
    aux = member_losses(F.cross_entropy(aux_logits.flatten(0, 1), labels.flatten(), reduction="none"), members)
    return gan, aux


def val_accuracies(still: StillStream, derived_val: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per member val accuracy ``[G]`` of each stream: still, derived temporal, fused."""
    fused = (still.probs["val"] + derived_val) / 2
    return {"val_still": member_accuracy(still.probs["val"], labels),
            "val_derived": member_accuracy(derived_val, labels), "val_fused": member_accuracy(fused, labels)}


def selection_scores(still: StillStream, derived_val: torch.Tensor, labels: torch.Tensor, configs,
                     accuracies: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Per member val accuracy of the stream named by its ``select`` key, ties broken by the
    other stream (fused val often saturates when the still model is strong)."""
    accuracies = accuracies or val_accuracies(still, derived_val, labels)
    derived_acc, fused_acc = accuracies["val_derived"], accuracies["val_fused"]
    use_fused = torch.tensor([c["select"] == "fused" for c in configs], device=fused_acc.device)
    primary = torch.where(use_fused, fused_acc, derived_acc)
    secondary = torch.where(use_fused, derived_acc, fused_acc)
    return primary + 1e-4 * secondary  # secondary <= 0.01: below any primary difference (N_val < 10^4)


def train_selected(run_epoch, derive, keeper: BestKeeper, data: HeadData, configs, still: StillStream,
                   epochs: int, advance, device, record=None) -> dict:
    """Run the head's ``epochs``, keeping each member's best epoch by its val selection score
    (the last epoch when there is no val split); returns the derived softmax of val and test.
    ``record(epoch, values)`` gets the epoch's losses (``run_epoch``'s dict) and val accuracies."""
    members, val = len(configs), data.still.get("val")
    for epoch in range(epochs):
        values = dict(run_epoch())
        if val is None:
            scores = torch.full((members,), float(epoch))
        else:
            labels = val.labels.to(device)
            derived_val = derive(val.features)
            accuracies = val_accuracies(still, derived_val, labels)
            scores = selection_scores(still, derived_val, labels, configs, accuracies)
            values.update(accuracies)
        if record is not None:
            record(epoch, values)
        keeper.update(scores, epoch)
        advance()
    keeper.restore()
    return {s: derive(data.still[s].features) if s in data.still else None for s in ("val", "test")}


def fit_gan(data: HeadData, configs, device, phases: Phases, still: StillStream, dimred: DimRedParts):
    members, first = len(configs), configs[0]
    seeds = [c["seed"] for c in configs]
    init = MemberRandom.from_seeds(seeds, "gan-init", device)
    rng = MemberRandom.from_seeds(seeds, "gan-train", device)
    generator = Generator(members, data.still_cache.feature_dim, first["d0"], first["d1"],
                          [c["dropout"] for c in configs], [c["noise"] for c in configs], init, rng).to(device)
    discriminator = Discriminator(members, first["d1"], first["d2"], init).to(device)
    lrs = [c["lr"] for c in configs]
    opt_g, opt_d = StackedRMSProp(generator.parameters(), lrs), StackedRMSProp(discriminator.parameters(), lrs)
    lambdas = torch.tensor([c["lambda"] for c in configs], device=device)
    aux = dimred.model.classifier

    def derive(x):
        generator.eval()
        return predict(lambda rows: aux(generator(rows)), x.to(device), members).softmax(-1)

    both = nn.ModuleDict({"generator": generator, "discriminator": discriminator})
    keeper = BestKeeper(both, members)
    train = data.still["train"]
    still_x, still_y = train.features.to(device), train.labels.to(device)
    epochs = scheduled_epochs(first["epochs"], first["min_steps"], batches_per_epoch(len(still_y), first["batch_size"]))
    derived = train_selected(
        lambda: train_gan_epoch(generator, discriminator, aux, opt_g, opt_d, still_x, still_y,
                                dimred.compact_train, dimred.owner, lambdas, first["batch_size"], rng),
        derive, keeper, data, configs, still, epochs, phases.start("GAN", epochs), device,
        record=lambda e, values: phases.record("gan", e, {**values, "lr": opt_g.lr}),
    )
    parts = {"generator": generator, "discriminator": discriminator}
    return derived, parts, keeper.epoch.tolist()


# -- triplet embedding head (section 3.2) ----------------------------------------------
def train_embedding_epoch(embedder, optimizer, loss_fn, still_x, still_y, compact, owner, miners, samplers,
                          positive_sampler, positive_rng) -> dict[str, Any]:
    """One epoch of P x K batches of still anchors (one sampler per member); positives are
    random co-class temporal instances, negatives the semi-hard ones mined over the whole
    compact temporal train set. Returns per member the mean triplet loss, the share of anchors
    that had a semi-hard negative and, from its miner (shared by the members with the same
    dim-reduction network), the share the FAISS search resolved (the rest took an exact scan)
    and the search depth it ended at (0: scanning only)."""
    embedder.train()
    members, device = len(samplers), still_x.device
    total, batches = torch.zeros(members), len(samplers[0])
    semi_hard = torch.zeros(members, device=device)  # summed on the device: no sync per batch
    for miner in miners:
        miner.reset_stats()
    for _ in range(batches):
        index = torch.tensor([sampler.next_batch() for sampler in samplers], device=device)
        labels = still_y[index]
        anchors = embedder(still_x[index])
        positives = torch.stack([
            positive_sampler(labels[g], positive_rng[g]) for g in range(members)
        ]).to(device)
        mined = [miners[int(owner[g])].mine(anchors[g].detach(), labels[g], positives[g]) for g in range(members)]
        negatives = torch.stack([m.negatives.to(device) for m in mined])
        semi_hard += torch.stack([m.semi_hard.float().mean().to(device) for m in mined])
        losses = loss_fn(anchors, take(compact, positives, owner), take(compact, negatives, owner))
        optimizer.zero_grad()
        losses.sum().backward()
        optimizer.step()
        total += losses.detach().cpu()
    searched = [miners[int(owner[g])].stats for g in range(members)]
    return {"loss_triplet": total / batches, "semi_hard_share": semi_hard.cpu() / batches,
            "search_resolved_share": [1.0 - s["exact_fallback"] / max(s["anchors"], 1) for s in searched],
            "search_depth": [miners[int(owner[g])].search_depth for g in range(members)]}


def fit_embedding_classifier(data: HeadData, configs, device, phases: Phases, dimred: DimRedParts) -> LinearClassifier:
    """FC C on the compact temporal features (the temporal embeddings), trained apart from the
    embedding network and selected on the temporal test split, like the dim-reduction network."""
    members, first = len(configs), configs[0]
    seeds = [c["seed"] for c in configs]
    classifier = LinearClassifier(members, first["d1"], data.num_classes,
                                  MemberRandom.from_seeds(seeds, "embed-classifier-init", device)).to(device)
    optimizer = StackedAdam(classifier.parameters(), [c["classifier_lr"] for c in configs])
    epochs = scheduled_epochs(first["classifier_epochs"], first["classifier_min_steps"],
                              batches_per_epoch(len(dimred.temporal_train_labels), first["dimred_batch_size"]))
    fit_classifier(
        classifier, optimizer, dimred.compact_train, dimred.temporal_train_labels, dimred.compact_test,
        data.temporal["test"].labels, epochs, first["dimred_batch_size"],
        MemberRandom.from_seeds(seeds, "embed-classifier-train", device),
        phases.start("embedding classifier", epochs), owner=dimred.owner,
        on_epoch=lambda e, loss, acc: phases.record("embed_classifier", e,
                                                    {"loss": loss, "temporal_test": acc, "lr": optimizer.lr}),
    )
    classifier.requires_grad_(False)
    return classifier


def fit_embedding(data: HeadData, configs, device, phases: Phases, still: StillStream, dimred: DimRedParts):
    from heads.miners.faiss_semi_hard_miner import FaissSemiHardMiner
    from heads.losses.triplet_margin_loss import TripletMarginLoss

    members, first = len(configs), configs[0]
    seeds = [c["seed"] for c in configs]
    classifier = fit_embedding_classifier(data, configs, device, phases, dimred)
    embedder = EmbeddingNetwork(
        members, data.still_cache.feature_dim, first["d0"], first["d1"], [c["dropout"] for c in configs],
        [c["noise"] for c in configs], MemberRandom.from_seeds(seeds, "embed-init", device),
        MemberRandom.from_seeds(seeds, "embed-train", device),
    ).to(device)
    optimizer = StackedAdam(embedder.parameters(), [c["lr"] for c in configs])
    loss_fn = TripletMarginLoss(torch.tensor([c["alpha"] for c in configs]), reduction="member_mean").to(device)
    labels_t = dimred.temporal_train_labels
    miners = [FaissSemiHardMiner(dimred.compact_train[u], labels_t) for u in range(dimred.compact_train.shape[0])]
    from heads.samplers.pk_sampler import PKSampler
    from heads.samplers.positive_sampler import PositiveSampler

    train = data.still["train"]
    samplers = [PKSampler(train.labels, first["classes_per_batch"], first["instances_per_class"], generator=g)
                for g in member_generators(seeds, "embed-batches")]
    positive_sampler, positive_rng = PositiveSampler(labels_t), member_generators(seeds, "embed-positives")

    def derive(x):
        embedder.eval()
        return predict(lambda rows: classifier(embedder(rows)), x.to(device), members).softmax(-1)

    still_x, still_y = train.features.to(device), train.labels.to(device)
    keeper = BestKeeper(embedder, members)
    epochs = scheduled_epochs(first["epochs"], first["min_steps"], len(samplers[0]))
    derived = train_selected(
        lambda: train_embedding_epoch(embedder, optimizer, loss_fn, still_x, still_y, dimred.compact_train,
                                      dimred.owner, miners, samplers, positive_sampler, positive_rng),
        derive, keeper, data, configs, still, epochs, phases.start("triplet embedding", epochs), device,
        record=lambda e, values: phases.record("embed", e, {**values, "lr": optimizer.lr}),
    )
    return derived, {"embedding": embedder, "classifier": classifier}, keeper.epoch.tolist()


# -- the group trainer ----------------------------------------------------------------
def check_group(method: str, configs: Sequence[dict]) -> None:
    if method not in METHODS:
        raise FeatcacheError(f"unknown head method {method!r}; expected one of {', '.join(METHODS)}")
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
    from heads.evaluation.history import MemberHistories

    configs = [dict(c) for c in configs]
    check_group(method, configs)
    device = resolve_device(device)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        bar = None
        if progress:
            from featcache.utils.progress import make_progress

            bar = stack.enter_context(make_progress())
        phases = Phases(bar, MemberHistories(histories, len(configs)))
        still = fit_still_models(data, configs, device, phases)
        dimred = fit_dimred_networks(data, configs, device, phases, dimred_store)
        derived, parts, epochs = None, {}, [-1] * len(configs)
        if method == "gan":
            derived, parts, epochs = fit_gan(data, configs, device, phases, still, dimred)
        elif method == "embed":
            derived, parts, epochs = fit_embedding(data, configs, device, phases, still, dimred)
    seconds = (time.perf_counter() - start) / len(configs)
    labels = {s: data.still[s].labels if s in data.still else None for s in ("val", "test")}
    results = []
    for g, config in enumerate(configs):
        member_derived = None if derived is None else {s: None if p is None else p[g].cpu() for s, p in derived.items()}
        still_probs = {s: None if p is None else p[g].cpu() for s, p in still.probs.items()}
        metrics = build_metrics(method, data.temporal_kind, config, still_probs, member_derived, labels,
                                data.classes, seconds)
        metrics["temporal_classifier"] = {"test": round(dimred.temporal_test[g], 4)}
        metrics["selected_epoch"] = {"still": still.epochs[g], "dimred": dimred.epochs[g], method: epochs[g]}
        metrics["dimred_source"] = dimred.sources[g]
        metrics["backbones"] = {"still": data.still_cache.backbone, "temporal": data.temporal_cache.backbone}
        checkpoint = {
            "method": method,
            "temporal": data.temporal_kind,
            "config": config,
            "classes": data.classes,
            "still_model": still.mode,
            "still_cache": str(data.still_cache.path),
            "temporal_cache": str(data.temporal_cache.path),
            "dims": {"still": data.still_cache.feature_dim, "temporal": data.temporal_cache.feature_dim,
                     "classes": data.num_classes},
            "state": {"still": still.states[g], "dimred": dimred.states[g],
                      **{name: member_state(module, g) for name, module in parts.items()}},
        }
        fused = None if member_derived is None else {
            s: None if p is None or still_probs.get(s) is None else fuse(still_probs[s], p)
            for s, p in member_derived.items()}
        predictions = {"still": still_probs, "derived": member_derived, "fused": fused}
        results.append(HeadResult(config, metrics, checkpoint, seconds, predictions, labels))
    return results


def train_head(method: str, data: HeadData, config: dict, device: str | torch.device = "cpu", *,
               dimred_store: DimRedStore | None = None, progress: bool = False, history=None) -> HeadResult:
    """One head: ``train_group`` with a single member (``history``: its learning curves)."""
    return train_group(method, data, [config], device, dimred_store=dimred_store, progress=progress,
                       histories=[history])[0]
