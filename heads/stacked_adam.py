"""Adam over stacked parameters (the triplet embedding and the linear classifiers)."""

from __future__ import annotations

import torch

from heads.stacked_optimizer import StackedOptimizer


class StackedAdam(StackedOptimizer):
    def __init__(self, params, lr, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.betas, self.eps = betas, eps

    def update(self, param, grad, state, lr) -> None:
        beta1, beta2 = self.betas
        step = state["step"] = state.get("step", 0) + 1
        if "exp_avg" not in state:  # not setdefault: that would zero full copies every step
            state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(param), torch.zeros_like(param)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(self.eps)
        param.addcdiv_(exp_avg, denom.div_(lr / (1 - beta1**step)), value=-1.0)
