"""A small base for optimizers over stacked parameters (leading member axis G).

Each member has its own learning rate; every update is element-wise, so member g's
trajectory is the one it would follow alone.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch


class StackedOptimizer:
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: Sequence[float], weight_decay: Sequence[float] | float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        members = len(lr)
        for p in self.params:
            if p.shape[0] != members:
                raise ValueError(f"parameter of shape {tuple(p.shape)} has no leading member axis of size {members}")
        self.lr = torch.tensor(list(lr), dtype=torch.float32)
        decay = [weight_decay] * members if isinstance(weight_decay, (int, float)) else list(weight_decay)
        self.weight_decay = torch.tensor(decay, dtype=torch.float32)
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]

    @staticmethod
    def per_member(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``values [G]`` shaped to broadcast against ``like [G, ...]``."""
        return values.to(like.device).view(-1, *([1] * (like.dim() - 1)))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            grad = p.grad
            if bool((self.weight_decay != 0).any()):
                grad = grad + self.per_member(self.weight_decay, p) * p
            self.update(p, grad, state, self.per_member(self.lr, p))

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, lr: torch.Tensor) -> None:
        raise NotImplementedError
