"""A fully connected layer holding G independent members (weights ``[G, in, out]``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from heads.nn.member_random import MemberRandom

# On the CPU the weight gradient x^T dy is computed a few members at a time, so that each
# product's output stays in cache: sixteen 2048x256 gradients in one bmm (33 MB) ran at
# about half the per-member speed of four at a time (benchmarks/gan_step_bound.py).
WEIGHT_GRAD_CHUNK_BYTES = 8 << 20


def weight_grad(x: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    """``x[g]^T @ grad_out[g]`` for every member, ``[G, in, out]``; on the CPU a few members at a time."""
    members, n_in, n_out = x.shape[0], x.shape[2], grad_out.shape[2]
    grad_w = torch.empty(members, n_in, n_out, dtype=grad_out.dtype, device=grad_out.device)
    per_member = n_in * n_out * grad_out.element_size()
    step = members if grad_out.is_cuda else max(1, WEIGHT_GRAD_CHUNK_BYTES // per_member)
    for start in range(0, members, step):
        part = slice(start, start + step)
        torch.bmm(x[part].transpose(1, 2), grad_out[part], out=grad_w[part])
    return grad_w


class _StackedAffine(torch.autograd.Function):
    """``bias + x @ weight`` per member, with a cache-friendly weight gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias, x, weight)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.bmm(grad_out, weight.transpose(1, 2))
        if ctx.needs_input_grad[1]:
            grad_w = weight_grad(x, grad_out)
        if ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(1, keepdim=True)
        return grad_x, grad_w, grad_b


class StackedLinear(nn.Module):
    """``y[g] = x[g] @ W[g] + b[g]`` for every member g, computed with one ``baddbmm``.

    Input ``[G, B, in]``, output ``[G, B, out]``. Initialised like ``nn.Linear``
    (uniform in +-1/sqrt(in)) from each member's own generator.
    """

    def __init__(self, members: int, in_features: int, out_features: int, rng: MemberRandom):
        super().__init__()
        if len(rng) != members:
            raise ValueError(f"rng has {len(rng)} generators for {members} members")
        bound = 1.0 / math.sqrt(in_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter((rng.rand(in_features, out_features) * 2 - 1) * bound)
        self.bias = nn.Parameter((rng.rand(1, out_features) * 2 - 1) * bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _StackedAffine.apply(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"members={self.weight.shape[0]}, in={self.in_features}, out={self.out_features}"
