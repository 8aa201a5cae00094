"""DistillationLoss against hand computations and the cross-entropy = KL + entropy identity."""

import math

import pytest
import torch
import torch.nn.functional as F

from heads.losses.distillation_loss import DistillationLoss


def softmax_list(logits, T):
    exps = [math.exp(v / T) for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def test_matches_hand_formula_with_t_squared_scaling():
    student = [1.0, 2.0, 3.0]
    teacher = [3.0, 0.5, -1.0]
    for T in (1.0, 2.0, 10.0):
        p = softmax_list(teacher, T)
        q = softmax_list(student, T)
        expected = -sum(pi * math.log(qi) for pi, qi in zip(p, q)) * T * T
        loss = DistillationLoss(T)(torch.tensor([student]), torch.tensor([teacher]))
        assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_equals_kl_plus_teacher_entropy_times_t_squared():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 5), torch.randn(6, 5) * 3
    T = 2.0
    p = F.softmax(teacher / T, dim=1)
    kl = F.kl_div(F.log_softmax(student / T, dim=1), p, reduction="batchmean")
    entropy = -(p * p.log()).sum(dim=1).mean()
    loss = DistillationLoss(T)(student, teacher)
    assert loss.item() == pytest.approx(((kl + entropy) * T * T).item(), rel=1e-5)


def test_reductions_and_per_row_values():
    student = torch.tensor([[0.0, 0.0], [2.0, -2.0]])
    teacher = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    rows = DistillationLoss(1.0, reduction="none")(student, teacher)
    # uniform target: H = -0.5 log q0 - 0.5 log q1
    q = softmax_list([2.0, -2.0], 1.0)
    assert rows[0].item() == pytest.approx(math.log(2.0))
    assert rows[1].item() == pytest.approx(-0.5 * (math.log(q[0]) + math.log(q[1])))
    assert DistillationLoss(1.0, reduction="sum")(student, teacher).item() == pytest.approx(rows.sum().item())
    assert DistillationLoss(1.0)(student, teacher).item() == pytest.approx(rows.mean().item())


def test_gradient_vanishes_when_student_matches_teacher_and_teacher_gets_none():
    teacher = torch.tensor([[1.0, -1.0, 0.5]], requires_grad=True)
    student = teacher.detach().clone().requires_grad_(True)
    DistillationLoss(10.0)(student, teacher).backward()
    assert torch.allclose(student.grad, torch.zeros_like(student), atol=1e-6)
    assert teacher.grad is None  # soft targets are constants


def test_gradient_is_t_times_probability_gap():
    # d/ds [T^2 H(p, softmax(s/T))] = T (q - p): the Hinton et al. scaling keeps magnitudes comparable.
    student = torch.tensor([[0.3, -0.2, 1.0]], requires_grad=True)
    teacher = torch.tensor([[2.0, 0.0, -1.0]])
    T = 4.0
    DistillationLoss(T)(student, teacher).backward()
    q = F.softmax(student.detach() / T, dim=1)
    p = F.softmax(teacher / T, dim=1)
    assert torch.allclose(student.grad, T * (q - p), atol=1e-6)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        DistillationLoss(0.0)
    with pytest.raises(ValueError):
        DistillationLoss(2.0, reduction="max")
    with pytest.raises(ValueError):
        DistillationLoss(2.0)(torch.zeros(2, 3), torch.zeros(2, 4))
