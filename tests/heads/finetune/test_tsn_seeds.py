"""``featcache tsn --seeds N``: one full run per seed under members/, combined like the heads' seeds."""

from __future__ import annotations

import json

from heads.experiments.report.runs import collect_runs
from heads.finetune.defaults import TSNSettings
from heads.finetune.tsn_seeds import MEMBERS, train_tsn_seeds
from tests.heads.finetune.test_finetune import CROP, RESIZE, TINY
from tests.heads.finetune.test_tsn import trained_root  # noqa: F401  (the module fixture)


def test_tsn_under_two_seeds_combines_like_the_heads(trained_root, tmp_path):  # noqa: F811
    out = tmp_path / "tsn"
    settings = TSNSettings(temporal="dynamic", backbone=TINY, epochs=1, lr=1e-3, batch_size=8, crop=CROP, resize=RESIZE,
                           device="cpu", seed=0)
    metrics = train_tsn_seeds(trained_root, settings, seeds=2, cache_dir=trained_root / "cache", out=out)
    assert metrics["seeds"] == [0, 1] and len(metrics["per_seed"]) == 2
    assert metrics["fused"]["test_std"] is not None and "ci_too_narrow" not in metrics["fused"]
    assert metrics["gain"]["fused"]["mde"] > 0 and "member_of" not in metrics
    for seed in (0, 1):
        member = json.loads((out / MEMBERS / f"seed-{seed}" / "metrics.json").read_text())
        assert member["member_of"] == str(out) and member["config"]["seed"] == seed
    assert json.loads((out / "metrics.json").read_text())["seeds"] == [0, 1]
    runs = collect_runs([tmp_path]).runs  # the report reads the combined run only
    assert [r.path for r in runs] == [out]
