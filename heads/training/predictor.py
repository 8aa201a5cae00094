"""Rebuilding a trained member from ``model.pt`` for inference: the ``load_predictor`` hooks of
the head methods (:mod:`heads.training.registry`) return a :class:`DerivedPredictor`."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from heads.nn.member_random import MemberRandom


class DerivedPredictor(nn.Module):
    """Still features ``[N, D]`` -> the derived stream's logits ``[N, C]`` of one trained member:
    ``classifier(mapping(features))``, in eval mode (no dropout or noise), gradients off."""

    def __init__(self, mapping: nn.Module, classifier: nn.Module):
        super().__init__()
        self.mapping, self.classifier = mapping, classifier
        self.eval().requires_grad_(False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.mapping(features.unsqueeze(0)))[0]


def member_random(checkpoint: Mapping[str, Any]) -> MemberRandom:
    """A stream to build one member with (its weights are then loaded; eval mode draws nothing)."""
    return MemberRandom.from_seeds([int(checkpoint["config"].get("seed", 0))], "predictor")


def loaded(module: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """``module`` with a member's saved state (:func:`heads.training.checkpoint.member_state`)."""
    module.load_state_dict(state)
    return module
