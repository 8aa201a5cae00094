"""The one val-carving rule: seeded, class-stratified, by group (video), never all of a class."""

import numpy as np
import pytest

from featcache.data.val_split import carve_val, describe_split, val_count
from featcache.errors import FeatcacheError


def test_carve_by_group_and_class():
    # 3 classes x 10 videos x 3 instances each
    labels = np.repeat(np.arange(3), 30)
    groups = [f"c{c}/v{i // 3}" for c in range(3) for i in range(30)]
    mask = carve_val(labels, groups, 0.2, seed=0)
    for c in range(3):
        chosen = {g for g, m, l in zip(groups, mask, labels) if m and l == c}
        assert len(chosen) == 2  # 20% of 10 videos of each class
    by_group = {}
    for g, m in zip(groups, mask):
        by_group.setdefault(g, set()).add(bool(m))
    assert all(len(v) == 1 for v in by_group.values())  # a video's instances never split


def test_carve_does_not_depend_on_row_order_and_follows_the_seed():
    labels = np.repeat(np.arange(2), 8)
    groups = [f"v{i}" for i in range(16)]
    mask = carve_val(labels, groups, 0.25, seed=5)
    order = np.random.default_rng(0).permutation(16)
    again = carve_val(labels[order], [groups[i] for i in order], 0.25, seed=5)
    assert {groups[i] for i in order[again]} == {g for g, m in zip(groups, mask) if m}
    assert any((carve_val(labels, groups, 0.25, seed=s) != mask).any() for s in range(6, 10))


def test_small_classes_keep_a_train_video():
    assert val_count(1, 0.2) == 0 and val_count(2, 0.2) == 1 and val_count(3, 0.9) == 2 and val_count(5, 0.0) == 0
    assert not carve_val([0], ["a"], 0.5).any()


def test_bad_fraction_and_description():
    with pytest.raises(FeatcacheError, match="bad val fraction"):
        carve_val([0, 0], ["a", "b"], 1.0)
    assert "before the val split" in describe_split(None)
    assert "seed 4" in describe_split({"val": "carved", "fraction": 0.2, "seed": 4, "count": 3, "from": "train videos"})
