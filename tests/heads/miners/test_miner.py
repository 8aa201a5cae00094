"""Semi-hard mining: the FAISS miner must return exactly the brute-force negatives."""

from __future__ import annotations

import itertools

import pytest
import torch

from featcache.errors import CacheError, FeatcacheError
from heads.miners.brute_force_semi_hard_miner import BruteForceSemiHardMiner
from heads.miners.faiss_semi_hard_miner import FaissSemiHardMiner, faiss_gpu_available
from heads.samplers.pk_sampler import PKSampler
from heads.samplers.positive_sampler import PositiveSampler


def naive_semi_hard(anchors, labels, positives, temporal, temporal_labels):
    """Loop-per-anchor definition, in float64: nearest negative with d(a,n) > d(a,p), else farthest."""
    out = []
    for a, y, p in zip(anchors.double(), labels, positives):
        d = ((temporal.double() - a) ** 2).sum(1)
        negative = temporal_labels != y
        qualifies = negative & (d > d[p])
        pool = qualifies if qualifies.any() else negative
        candidates = torch.nonzero(pool).flatten()
        key = d[candidates] if qualifies.any() else -d[candidates]
        out.append(int(candidates[torch.argmin(key)]))  # argmin returns the first (lowest index) on ties
    return torch.tensor(out)


def random_problem(n, dim, classes, batch, seed, spread=1.0):
    g = torch.Generator().manual_seed(seed)
    temporal_labels = torch.randint(classes, (n,), generator=g)
    temporal_labels[:classes] = torch.arange(classes)  # every class present
    centres = torch.randn(classes, dim, generator=g) * spread
    temporal = centres[temporal_labels] + torch.randn(n, dim, generator=g)
    labels = torch.randint(classes, (batch,), generator=g)
    anchors = centres[labels] + torch.randn(batch, dim, generator=g)
    positives = PositiveSampler(temporal_labels)(labels, g)
    return anchors, labels, positives, temporal, temporal_labels


@pytest.mark.parametrize(
    "n, dim, classes, batch, seed",
    [(50, 3, 2, 16, 0), (300, 8, 5, 64, 1), (2000, 32, 10, 40, 2), (5000, 16, 40, 200, 3), (700, 2, 7, 128, 4)],
)
def test_faiss_equals_brute_force(n, dim, classes, batch, seed):
    anchors, labels, positives, temporal, temporal_labels = random_problem(n, dim, classes, batch, seed)
    brute = BruteForceSemiHardMiner(temporal, temporal_labels, chunk=17).mine(anchors, labels, positives)
    miner = FaissSemiHardMiner(temporal, temporal_labels, use_gpu=False, initial_k=8, growth=4, max_k=128)
    fast = miner.mine(anchors, labels, positives)
    assert torch.equal(fast.negatives, brute.negatives)
    assert torch.equal(fast.semi_hard, brute.semi_hard)
    assert miner.stats["anchors"] == batch
    if n <= 700:
        assert torch.equal(brute.negatives, naive_semi_hard(anchors, labels, positives, temporal, temporal_labels))


@pytest.mark.parametrize("spread, scale, seed", [(0.2, 1.0, 10), (3.0, 1.0, 11), (1.0, 40.0, 12), (1.0, 1e-3, 13)])
def test_exact_scan_alone_equals_brute_force(spread, scale, seed):
    # k = N: FAISS is never asked, every anchor goes through the float32 scan + float64 re-scoring,
    # with close classes (many near-ties), far ones, and large and tiny norms for the error bound.
    anchors, labels, positives, temporal, temporal_labels = random_problem(1500, 24, 12, 96, seed, spread)
    anchors, temporal = anchors * scale, temporal * scale
    positives[:8] = positives[0]
    temporal[positives[0]] = temporal[positives[0]] * 50  # a far positive: no semi-hard negative
    labels[:8] = temporal_labels[positives[0]]
    brute = BruteForceSemiHardMiner(temporal, temporal_labels).mine(anchors, labels, positives)
    miner = FaissSemiHardMiner(temporal, temporal_labels, use_gpu=False, initial_k=1500, max_k=1500)
    fast = miner.mine(anchors, labels, positives)
    assert miner.stats["exact_fallback"] == 96
    assert not brute.semi_hard[:8].any()
    assert torch.equal(fast.negatives, brute.negatives)
    assert torch.equal(fast.semi_hard, brute.semi_hard)


def test_no_semi_hard_negative_gives_farthest_negative():
    # Row 0 (class 0) lies far away: used as the positive, no negative is farther than it.
    g = torch.Generator().manual_seed(5)
    temporal = torch.randn(400, 6, generator=g)
    temporal_labels = torch.randint(4, (400,), generator=g)
    temporal[0], temporal_labels[0] = 100.0, 0
    labels = torch.cat([torch.zeros(32, dtype=torch.long), torch.randint(4, (32,), generator=g)])
    anchors = torch.randn(64, 6, generator=g)
    positives = PositiveSampler(temporal_labels)(labels, g)
    positives[:32] = 0
    brute = BruteForceSemiHardMiner(temporal, temporal_labels).mine(anchors, labels, positives)
    miner = FaissSemiHardMiner(temporal, temporal_labels, use_gpu=False, initial_k=16, max_k=64)
    fast = miner.mine(anchors, labels, positives)
    assert not brute.semi_hard[:32].any() and brute.semi_hard[32:].any()
    assert torch.equal(fast.negatives, brute.negatives)
    assert torch.equal(fast.semi_hard, brute.semi_hard)
    assert miner.stats["exact_fallback"] >= 32
    assert torch.all(temporal_labels[fast.negatives] != labels)
    assert torch.equal(fast.negatives, naive_semi_hard(anchors, labels, positives, temporal, temporal_labels))


def test_mixed_and_duplicate_rows_tie_break_to_lowest_index():
    g = torch.Generator().manual_seed(6)
    base = torch.randn(100, 4, generator=g)
    temporal = torch.cat([base, base])  # every row duplicated: exact distance ties
    temporal_labels = torch.randint(3, (100,), generator=g).repeat(2)
    labels = torch.randint(3, (50,), generator=g)
    anchors = torch.randn(50, 4, generator=g)
    positives = PositiveSampler(temporal_labels)(labels, g)
    brute = BruteForceSemiHardMiner(temporal, temporal_labels).mine(anchors, labels, positives)
    fast = FaissSemiHardMiner(temporal, temporal_labels, use_gpu=False, initial_k=4).mine(anchors, labels, positives)
    assert torch.equal(fast.negatives, brute.negatives)
    assert torch.all(brute.negatives < 100)
    assert torch.equal(brute.negatives, naive_semi_hard(anchors, labels, positives, temporal, temporal_labels))


def test_call_returns_negatives_and_validates_inputs():
    anchors, labels, positives, temporal, temporal_labels = random_problem(200, 5, 4, 10, 7)
    miner = FaissSemiHardMiner(temporal, temporal_labels, use_gpu=False)
    assert torch.equal(miner(anchors, labels, positives), miner.mine(anchors, labels, positives).negatives)
    with pytest.raises(ValueError, match="positive"):
        miner(anchors, (labels + 1) % 4, positives)
    with pytest.raises(ValueError, match="anchors must be"):
        miner(anchors[:, :3], labels, positives)
    with pytest.raises(CacheError):
        FaissSemiHardMiner(torch.zeros(0, 5), torch.zeros(0), use_gpu=False)
    assert miner(anchors[:0], labels[:0], positives[:0]).numel() == 0
    if not faiss_gpu_available():
        with pytest.raises(FeatcacheError, match="GPU"):
            FaissSemiHardMiner(temporal, temporal_labels, use_gpu=True)
        assert not FaissSemiHardMiner(temporal, temporal_labels, use_gpu="auto").on_gpu


def test_positive_sampler_same_class_deterministic_and_covering():
    temporal_labels = torch.tensor([0, 1, 1, 2, 2, 2, 0, 1])
    labels = torch.tensor([0, 1, 2] * 200)
    a = PositiveSampler(temporal_labels)(labels, torch.Generator().manual_seed(3))
    b = PositiveSampler(temporal_labels)(labels, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(temporal_labels[a], labels)
    assert set(a.tolist()) == set(range(8))  # every temporal row gets drawn
    with pytest.raises(CacheError, match="no rows of class"):
        PositiveSampler(temporal_labels)(torch.tensor([3]))


def test_pk_sampler_batches():
    labels = torch.tensor([0] * 10 + [1] * 7 + [2] * 2 + [3] * 5 + [4] * 9)
    sampler = PKSampler(labels, classes_per_batch=4, samples_per_class=4, generator=torch.Generator().manual_seed(0))
    assert len(sampler) == len(labels) // 16 and sampler.batch_size == 16
    batches = [sampler.next_batch() for _ in range(50)]
    class_use = torch.zeros(5)
    for batch in batches:
        assert len(batch) == 16
        batch_labels = labels[batch].view(4, 4)
        assert torch.all(batch_labels == batch_labels[:, :1])  # 4 rows of each class
        assert len(set(batch_labels[:, 0].tolist())) == 4  # 4 distinct classes
        for row in batch_labels:
            class_use[row[0]] += 1
        for group in torch.tensor(batch).view(4, 4):
            if labels[group[0]] != 2:  # classes with >= K rows: no repeats inside a batch
                assert len(set(group.tolist())) == 4
    assert class_use.max() - class_use.min() <= 1  # classes used equally often
    seen = set(itertools.chain.from_iterable(batches))
    assert seen == set(range(len(labels)))
    again = PKSampler(labels, generator=torch.Generator().manual_seed(0))
    assert [again.next_batch() for _ in range(50)] == batches
    few = PKSampler(torch.tensor([0, 0, 1]), classes_per_batch=4, samples_per_class=2)
    assert sorted(labels_of := torch.tensor([0, 0, 1])[next(iter(few))].tolist()) == [0, 0, 1, 1] and labels_of


def test_pk_batch_stateless_and_deterministic():
    from heads.samplers.pk_sampler import pk_batch

    labels = torch.tensor([0] * 10 + [1] * 3 + [2] * 6 + [3] * 8 + [4] * 5)
    a = pk_batch(labels, 4, 4, generator=torch.Generator().manual_seed(1))
    b = pk_batch(labels, 4, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (16,)
    grouped = labels[a].view(4, 4)
    assert torch.all(grouped == grouped[:, :1]) and len(set(grouped[:, 0].tolist())) == 4
    for group, c in zip(a.view(4, 4), grouped[:, 0]):
        if int(c) != 1:
            assert len(set(group.tolist())) == 4
    assert pk_batch(torch.tensor([0, 1]), 4, 2).shape == (4,)


def test_reused_adaptive_miner_stays_exact_over_batches():
    anchors, labels, positives, temporal, temporal_labels = random_problem(3000, 12, 20, 300, 8)
    brute = BruteForceSemiHardMiner(temporal, temporal_labels)
    miner = FaissSemiHardMiner(temporal, temporal_labels, use_gpu=False, initial_k=4, growth=2, max_k=512)
    for part in torch.arange(300).split(60):
        args = anchors[part], labels[part], positives[part]
        assert torch.equal(miner(*args), brute(*args))
    assert miner._k > 4  # adapted to the depth the batches needed


def test_faiss_resolves_near_anchors_and_skips_when_it_cannot_help():
    # Anchors close to their positives (a trained embedding): FAISS resolves them at small k.
    g = torch.Generator().manual_seed(9)
    temporal = torch.randn(4000, 16, generator=g)
    temporal_labels = torch.randint(20, (4000,), generator=g)
    labels = torch.randint(20, (256,), generator=g)
    positives = PositiveSampler(temporal_labels)(labels, g)
    anchors = temporal[positives] + 0.01 * torch.randn(256, 16, generator=g)
    brute = BruteForceSemiHardMiner(temporal, temporal_labels)
    miner = FaissSemiHardMiner(temporal, temporal_labels, use_gpu=False, initial_k=32, max_k=128)
    assert torch.equal(miner(anchors, labels, positives), brute(anchors, labels, positives))
    by_faiss = sum(v for k, v in miner.stats.items() if k.startswith("k="))
    assert by_faiss >= 0.9 * 256 and miner.stats["exact_fallback"] == 256 - by_faiss
    # Far positives (random anchors): even max_k resolves too few, so the next calls skip FAISS.
    far = torch.randn(256, 16, generator=g) * 3
    for _ in range(3):
        assert torch.equal(miner(far, labels, positives), brute(far, labels, positives))
    miner.reset_stats()
    assert torch.equal(miner(far, labels, positives), brute(far, labels, positives))
    assert miner.stats["exact_fallback"] == 256 and not any(k.startswith("k=") for k in miner.stats)
    # Near anchors again: the scan's ranks bring the search back, with no blind probe.
    assert torch.equal(miner(anchors, labels, positives), brute(anchors, labels, positives))
    miner.reset_stats()
    assert torch.equal(miner(anchors, labels, positives), brute(anchors, labels, positives))
    assert sum(v for k, v in miner.stats.items() if k.startswith("k=")) >= 0.9 * 256
