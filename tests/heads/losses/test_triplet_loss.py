"""TripletMarginLoss against a per-triplet loop, per-member margins and active fractions."""

from __future__ import annotations

import math

import pytest
import torch

from heads.losses.triplet_margin_loss import TripletMarginLoss


def loop_loss(a, p, n, margin):
    values = []
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        dp = math.dist(ai, pi)
        dn = math.dist(ai, ni)
        values.append(max(dp - dn + margin, 0.0))
    return values


def test_matches_loop_and_reports_active_fraction():
    g = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(32, 5, generator=g, dtype=torch.float64) for _ in range(3))
    loss_fn = TripletMarginLoss(margin=0.5)
    loss = loss_fn(a, p, n)
    expected = loop_loss(a, p, n, 0.5)
    assert loss.item() == pytest.approx(sum(expected) / 32, rel=1e-6)
    assert loss_fn.active_fraction.item() == pytest.approx(sum(v > 0 for v in expected) / 32)


def test_hand_computed():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[3.0, 4.0], [1.0, 0.0]])  # d+ = 5, 1
    n = torch.tensor([[0.0, 1.0], [0.0, 3.0]])  # d- = 1, 3
    loss_fn = TripletMarginLoss(margin=1.0, reduction="none")
    assert torch.allclose(loss_fn(a, p, n), torch.tensor([5.0, 0.0]))
    assert loss_fn.active_fraction.item() == pytest.approx(0.5)


def test_per_member_margins_equal_separate_losses_and_gradients():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, 16, 4, generator=g, requires_grad=True)
    p, n = torch.randn(3, 16, 4, generator=g), torch.randn(3, 16, 4, generator=g)
    margins = [0.2, 1.0, 2.0]
    stacked = TripletMarginLoss(margin=torch.tensor(margins), reduction="member_mean")
    per_member = stacked(a, p, n)
    per_member.sum().backward()
    for g_idx, m in enumerate(margins):
        single_a = a.detach()[g_idx].clone().requires_grad_(True)
        single = TripletMarginLoss(margin=m)(single_a, p[g_idx], n[g_idx])
        single.backward()
        assert per_member[g_idx].item() == pytest.approx(single.item(), rel=1e-6)
        assert torch.allclose(a.grad[g_idx], single_a.grad, atol=1e-6)
    assert stacked.active_fraction.shape == (3,)


def test_zero_distance_has_finite_gradient_and_shape_check():
    a = torch.zeros(2, 3, requires_grad=True)
    loss = TripletMarginLoss(margin=1.0)(a, torch.zeros(2, 3), torch.ones(2, 3))
    loss.backward()
    assert torch.isfinite(a.grad).all()
    with pytest.raises(ValueError):
        TripletMarginLoss()(a, torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError):
        TripletMarginLoss(reduction="sum")
