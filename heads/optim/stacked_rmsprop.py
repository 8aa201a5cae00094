"""RMSProp over stacked parameters, Keras form (the paper's GAN and TSN optimizer):
``v = rho v + (1 - rho) g^2``, ``p -= lr g / (sqrt(v) + eps)``."""

from __future__ import annotations

import torch

from heads.optim.stacked_optimizer import StackedOptimizer


class StackedRMSProp(StackedOptimizer):
    state_names = ("square_avg",)

    def __init__(self, params, lr, rho: float = 0.9, eps: float = 1e-7, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.rho, self.eps = rho, eps

    def update(self, params, grads, state, lr) -> None:
        square_avg = state["square_avg"]
        torch._foreach_mul_(square_avg, self.rho)
        torch._foreach_addcmul_(square_avg, grads, grads, value=1 - self.rho)
        denom = torch._foreach_sqrt(square_avg)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, grads, denom, [-x for x in lr])
