"""Stacked building blocks against brute-force per-member references."""

import torch
import torch.nn.functional as F

from heads.nn.gaussian_noise import GaussianNoise
from heads.nn.member_random import MemberRandom
from heads.optim.stacked_adam import StackedAdam
from heads.nn.stacked_batch_norm import StackedBatchNorm
from heads.nn.stacked_dropout import StackedDropout
from heads.nn.stacked_linear import StackedLinear
from heads.optim.stacked_rmsprop import StackedRMSProp


def test_stacked_linear_matches_per_member_linear():
    layer = StackedLinear(3, 5, 4, MemberRandom.from_seeds([0, 1, 2], "init"))
    x = torch.randn(3, 7, 5)
    y = layer(x)
    for g in range(3):
        expected = F.linear(x[g], layer.weight[g].T, layer.bias[g, 0])
        torch.testing.assert_close(y[g], expected)


def test_member_initialisation_does_not_depend_on_group_size():
    alone = StackedLinear(1, 6, 3, MemberRandom.from_seeds([7], "init"))
    grouped = StackedLinear(3, 6, 3, MemberRandom.from_seeds([1, 7, 2], "init"))
    torch.testing.assert_close(grouped.weight[1], alone.weight[0])
    assert not torch.allclose(grouped.weight[0], grouped.weight[1])


def test_stacked_batch_norm_matches_batch_norm_1d():
    stacked = StackedBatchNorm(2, 4, eps=1e-5, momentum=0.1)
    refs = [torch.nn.BatchNorm1d(4, eps=1e-5, momentum=0.1) for _ in range(2)]
    for _ in range(3):
        x = torch.randn(2, 10, 4) * 3 + 1
        out = stacked(x)
        for g in range(2):
            torch.testing.assert_close(out[g], refs[g](x[g]))
    stacked.eval()
    x = torch.randn(2, 5, 4)
    out = stacked(x)
    for g in range(2):
        refs[g].eval()
        torch.testing.assert_close(out[g], refs[g](x[g]))


def test_dropout_and_noise_streams_are_per_member():
    x = torch.ones(1, 8, 16)
    alone = StackedDropout([0.5], MemberRandom.from_seeds([4], "train"))
    grouped = StackedDropout([0.2, 0.5, 0.5], MemberRandom.from_seeds([0, 4, 9], "train"))
    a, b = alone(x), grouped(x.expand(3, -1, -1))
    torch.testing.assert_close(b[1], a[0])
    assert set(a.unique().tolist()) <= {0.0, 2.0}  # inverted dropout keeps the expectation
    noise = GaussianNoise([0.01, 1.0], MemberRandom.from_seeds([0, 0], "noise"))
    out = noise(torch.zeros(2, 500, 8))
    assert 0.005 < out[0].std() < 0.02 and 0.9 < out[1].std() < 1.1
    noise.eval()
    assert torch.equal(noise(torch.zeros(2, 3, 8)), torch.zeros(2, 3, 8))


def test_stacked_rmsprop_matches_the_keras_formula():
    p = torch.nn.Parameter(torch.randn(2, 3, 4))
    start = p.detach().clone()
    opt = StackedRMSProp([p], lr=[0.1, 0.01], rho=0.9, eps=1e-7)
    square = torch.zeros_like(start)
    expected = start.clone()
    for step in range(3):
        grad = torch.randn(2, 3, 4)
        p.grad = grad.clone()
        opt.step()
        square = 0.9 * square + 0.1 * grad**2
        lr = torch.tensor([0.1, 0.01]).view(2, 1, 1)
        expected = expected - lr * grad / (square.sqrt() + 1e-7)
    torch.testing.assert_close(p.detach(), expected)


def test_stacked_adam_matches_torch_adam_per_member():
    p = torch.nn.Parameter(torch.randn(2, 5))
    refs = [torch.nn.Parameter(p.detach()[g].clone()) for g in range(2)]
    opt = StackedAdam([p], lr=[1e-2, 3e-3], weight_decay=[0.0, 0.1])
    ref_opts = [torch.optim.Adam([refs[0]], lr=1e-2), torch.optim.Adam([refs[1]], lr=3e-3, weight_decay=0.1)]
    for _ in range(4):
        grad = torch.randn(2, 5)
        p.grad = grad.clone()
        opt.step()
        for g in range(2):
            refs[g].grad = grad[g].clone()
            ref_opts[g].step()
    for g in range(2):
        torch.testing.assert_close(p.detach()[g], refs[g].detach())


def test_members_sharing_a_seed_share_draws_equal_to_drawing_alone():
    shared = MemberRandom.from_seeds([3, 5, 3], "stream")
    same = MemberRandom.from_seeds([3, 3, 3, 3], "stream")
    alone = {seed: MemberRandom.from_seeds([seed], "stream") for seed in (3, 5)}
    assert len(shared.generators) == 2 and len(same.generators) == 1 and len(shared) == 3
    for draw in ("rand", "randn", "randperm", "randint"):
        args = {"rand": (4, 2), "randn": (4, 2), "randperm": (9,), "randint": (7, 5)}[draw]
        got, together = getattr(shared, draw)(*args), getattr(same, draw)(*args)
        want = {seed: getattr(r, draw)(*args)[0] for seed, r in alone.items()}
        for g, seed in enumerate((3, 5, 3)):
            assert torch.equal(got[g], want[seed])
        assert together.shape[0] == 4 and all(torch.equal(together[g], want[3]) for g in range(4))


def test_take_with_one_shared_batch_order_equals_the_gather():
    from heads.training.loop import take

    x = torch.randn(20, 6)
    index = MemberRandom.from_seeds([1, 1, 1], "order").randperm(20)[:, :8]
    assert index.stride(0) == 0  # one draw, broadcast to the members
    torch.testing.assert_close(take(x, index), x[index.contiguous()])
    torch.testing.assert_close(take(x[:, 0], index), x[:, 0][index.contiguous()])


def test_positive_sampler_matches_the_one_call_form_and_names_missing_classes():
    import pytest

    from featcache.errors import CacheError
    from heads.samplers.positive_sampler import PositiveSampler

    temporal_labels = torch.tensor([2, 0, 1, 2, 0, 2, 1, 1])
    labels = torch.tensor([0, 2, 2, 1, 0])
    sampler = PositiveSampler(temporal_labels)
    first = sampler(labels, torch.Generator().manual_seed(4))
    assert torch.equal(first, PositiveSampler(temporal_labels)(labels, torch.Generator().manual_seed(4)))
    assert torch.equal(temporal_labels[first], labels)
    with pytest.raises(CacheError, match=r"class index \[3\]"):
        sampler(torch.tensor([3]))


def test_stacked_linear_gradients_match_baddbmm_with_chunked_weight_gradient(monkeypatch):
    import heads.nn.stacked_linear as stacked_linear

    layer = StackedLinear(5, 30, 4, MemberRandom.from_seeds(range(5), "init")).double()
    x = torch.randn(5, 7, 30, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(stacked_linear._StackedAffine.apply, (x, layer.weight, layer.bias))
    monkeypatch.setattr(stacked_linear, "WEIGHT_GRAD_CHUNK_BYTES", 2 * 30 * 4 * 8)  # two members per product
    layer(x).pow(2).sum().backward()
    w, b = layer.weight.detach().clone().requires_grad_(), layer.bias.detach().clone().requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    torch.baddbmm(b, x_ref, w).pow(2).sum().backward()
    for got, want in ((layer.weight.grad, w.grad), (layer.bias.grad, b.grad), (x.grad, x_ref.grad)):
        torch.testing.assert_close(got, want)
