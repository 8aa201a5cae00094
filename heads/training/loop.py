"""The shared pieces of every head's training: member-stacked tensor helpers, the per-member
best-epoch keeper, progress/history phases and the linear-classifier epoch loop (used by the
still model, the dim-reduction network and the embedding classifier)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from heads.losses.member_mean import member_losses
from heads.training.config import part_key

EVAL_CHUNK = 8192


# -- small tensor helpers ----------------------------------------------------------
def take(x: torch.Tensor, index: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
    """Rows ``index [G, B]`` of ``x``: shared ``[N, ...]``, or per-owner ``[U, N, ...]`` where
    member g reads owner ``owner[g]`` (members sharing a frozen part share its features)."""
    if owner is None:
        if index.shape[0] > 1 and index.stride(0) == 0:  # one batch order shared by all members
            return x[index[0]].expand(index.shape[0], *([-1] * x.dim()))
        return x[index]
    return x[owner[:, None], index]



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


def member_correct(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Top-1 correctness per member and row, ``probs [G, N, C]`` -> bool ``[G, N]``."""
    return probs.argmax(-1) == labels.to(probs.device)


def member_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy in percent per member, ``probs [G, N, C]`` -> ``[G]``."""
    return member_correct(probs, labels).float().mean(-1) * 100.0


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
    """Per-member copy of the best state so far; ties keep the earlier epoch.

    ``update`` takes the loop's 0-based epoch index; ``epoch`` holds the kept epoch 1-based,
    as ``history.jsonl`` numbers it (and ``selected_epoch`` in ``metrics.json``; 0: none kept)."""

    def __init__(self, module: nn.Module, members: int):
        self.module = module
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self.score = torch.full((members,), -float("inf"))
        self.epoch = torch.zeros(members, dtype=torch.long)

    def update(self, scores: torch.Tensor, epoch: int) -> None:
        scores = scores.detach().cpu()
        improved = scores > self.score
        if not improved.any():
            return
        for name, value in self.module.state_dict().items():
            self.state[name][improved.to(value.device)] = value.detach()[improved.to(value.device)]
        self.score = torch.where(improved, scores, self.score)
        self.epoch[improved] = epoch + 1  # 1-based, as history.jsonl

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
def train_classifier_epoch(model, optimizer, x, labels, batch_size, rng, owner=None, passes: int = 1) -> torch.Tensor:
    """One epoch (``passes`` shuffled passes over the rows) of per-member cross-entropy;
    returns the mean loss per member."""
    model.train()
    members, rows = len(rng), labels.shape[-1]
    totals, steps = torch.zeros(members), 0
    orders = (rng.randperm(rows) for _ in range(passes))
    for order, start in ((order, start) for order in orders for start in batch_starts(rows, batch_size)):
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
                   advance, owner=None, classify=None, on_epoch=None, passes: int = 1) -> BestKeeper:
    """Train for ``epochs`` of ``passes`` passes each, keeping each member's best epoch by accuracy on the selection
    rows (the last epoch when there are none); the model ends in its best state.
    ``on_epoch(epoch, losses [G], accuracies [G] or None)`` sees every epoch."""
    members = len(rng)
    keeper = BestKeeper(model, members)
    classify = classify or model
    for epoch in range(epochs):
        losses = train_classifier_epoch(model, optimizer, train_x, train_y, batch_size, rng, owner, passes)
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
