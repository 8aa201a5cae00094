"""Epoch selection of the derived heads (GAN, embedding) on the still val split: fused or derived accuracy."""

from __future__ import annotations

import torch

from heads.training.head_data import HeadData
from heads.training.loop import BestKeeper, member_accuracy
from heads.training.still_model import StillStream


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


def run_passes(run_epoch, passes: int) -> dict:
    """``run_epoch()`` ``passes`` times: per-member tensors averaged over the passes, other values of the last."""
    runs = [dict(run_epoch()) for _ in range(max(1, passes))]
    return {key: sum(r[key] for r in runs) / len(runs) if isinstance(value, torch.Tensor) else value
            for key, value in runs[-1].items()}


def train_selected(run_epoch, derive, keeper: BestKeeper, data: HeadData, configs, still: StillStream,
                   epochs: int, advance, device, record=None, passes: int = 1) -> dict:
    """Run the head's ``epochs`` (each ``passes`` calls of ``run_epoch``), keeping each member's best epoch by its val selection score
    (the last epoch when there is no val split); returns the derived softmax of val and test.
    ``record(epoch, values)`` gets the epoch's losses (``run_epoch``'s dict) and val accuracies."""
    members, val = len(configs), data.still.get("val")
    for epoch in range(epochs):
        values = run_passes(run_epoch, passes)
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
