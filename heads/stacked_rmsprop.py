"""RMSProp over stacked parameters, Keras form (the paper's GAN and TSN optimizer):
``v = rho v + (1 - rho) g^2``, ``p -= lr g / (sqrt(v) + eps)``."""

from __future__ import annotations

import torch

from heads.stacked_optimizer import StackedOptimizer


class StackedRMSProp(StackedOptimizer):
    def __init__(self, params, lr, rho: float = 0.9, eps: float = 1e-7, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.rho, self.eps = rho, eps

    def update(self, param, grad, state, lr) -> None:
        if "square_avg" not in state:  # not setdefault: that would zero a full copy every step
            state["square_avg"] = torch.zeros_like(param)
        square_avg = state["square_avg"]
        square_avg.mul_(self.rho).addcmul_(grad, grad, value=1 - self.rho)
        # In place, one temporary: these tensors hold every member, so each pass is costly.
        denom = square_avg.sqrt().add_(self.eps).div_(lr)
        param.addcdiv_(grad, denom, value=-1.0)
