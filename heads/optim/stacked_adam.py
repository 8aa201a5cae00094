"""Adam over stacked parameters (the triplet embedding and the linear classifiers).

All parameters step together, so one step count serves them all."""

from __future__ import annotations

import torch

from heads.optim.stacked_optimizer import StackedOptimizer


class StackedAdam(StackedOptimizer):
    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.betas, self.eps = betas, eps

    def update(self, params, grads, state, lr) -> None:
        beta1, beta2 = self.betas
        correction1, correction2 = 1 - beta1**self.steps, 1 - beta2**self.steps
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - beta2)
        denom = torch._foreach_div(exp_avg_sq, correction2)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, exp_avg, denom, [-x / correction1 for x in lr])
