"""Training the heads on a small synthetic cache where the task is learnable."""

import pytest
import torch

from featcache.errors import FeatcacheError

from heads.training.checkpoint import load_head_checkpoint, save_head_checkpoint
from heads.models.generator import Generator
from heads.nn.member_random import MemberRandom
from heads.training.dim_reduction import DimRedStore
from heads.training.methods import list_methods
from heads.training.train_head import train_group, train_head
from tests.heads_fixtures import fast_config, head_data, head_data64, synthetic_cache_dir  # noqa: F401

CHANCE = 100.0 / 6


@pytest.mark.parametrize("method", list_methods())
def test_each_head_beats_chance_clearly(head_data, method):
    # The still model alone is near 100 % val here, so select the epoch on derived val.
    result = train_head(method, head_data, fast_config(method, select="derived") if method != "classifier"
                        else fast_config(method))
    metrics = result.metrics
    assert metrics["method"] == method and metrics["temporal"] == "flow"
    assert metrics["still"]["test"] > 3 * CHANCE
    assert metrics["temporal_classifier"]["test"] > 3 * CHANCE
    if method == "classifier":
        assert metrics["derived"] is None and metrics["fused"] is None
    else:
        assert metrics["derived"]["test"] > 3 * CHANCE, metrics["derived"]
        assert metrics["fused"]["val"] is not None and metrics["fused"]["test"] > 3 * CHANCE
        assert set(metrics["per_class"]["test"]["derived"]) <= set(head_data.classes)
    assert set(result.checkpoint["state"]) >= {"still", "dimred"}


def assert_same_states(first, second, parts):
    for part in parts:
        for name, value in first.checkpoint["state"][part].items():
            torch.testing.assert_close(second.checkpoint["state"][part][name], value, atol=1e-9, rtol=1e-9)


def test_group_of_three_equals_three_single_runs(head_data64):
    configs = [fast_config("gan", seed=0, epochs=3), fast_config("gan", seed=1, lr=5e-4, epochs=3, **{"lambda": 2.0}),
               fast_config("gan", seed=0, epochs=3, dropout=0.3, noise=0.05, dimred_lr=3e-3)]
    grouped = train_group("gan", head_data64, configs)
    for config, together in zip(configs, grouped):
        alone = train_head("gan", head_data64, config)
        assert_same_states(alone, together, ("still", "dimred", "generator", "discriminator"))
        for stream in ("still", "derived", "fused"):
            assert together.metrics[stream] == alone.metrics[stream]
        assert together.metrics["selected_epoch"] == alone.metrics["selected_epoch"]


def test_embedding_group_matches_single_runs(head_data64):
    configs = [fast_config("embed", seed=0, epochs=1), fast_config("embed", seed=2, epochs=1, alpha=0.5)]
    grouped = train_group("embed", head_data64, configs)
    alone = train_head("embed", head_data64, configs[1])
    assert_same_states(alone, grouped[1], ("dimred", "embedding", "classifier"))
    assert grouped[1].metrics["derived"] == alone.metrics["derived"]


def test_same_seed_same_result_other_seed_other_result(head_data):
    first = train_head("gan", head_data, fast_config("gan", epochs=2, seed=4))
    again = train_head("gan", head_data, fast_config("gan", epochs=2, seed=4))
    other = train_head("gan", head_data, fast_config("gan", epochs=2, seed=5))
    for name, value in first.checkpoint["state"]["generator"].items():
        assert torch.equal(value, again.checkpoint["state"]["generator"][name])
    assert first.metrics["derived"] == again.metrics["derived"]
    assert not torch.equal(first.checkpoint["state"]["generator"]["layers.0.weight"],
                           other.checkpoint["state"]["generator"]["layers.0.weight"])


def test_group_rejects_mixed_shapes(head_data):
    with pytest.raises(ValueError, match="shape keys"):
        train_group("gan", head_data, [fast_config("gan"), fast_config("gan", d0=64)])


def test_dim_reduction_network_is_saved_and_reused(head_data, tmp_path):
    messages = []
    store = DimRedStore([tmp_path], [tmp_path], log=messages.append)
    first = train_head("classifier", head_data, fast_config("classifier"), dimred_store=store)
    assert len(list(tmp_path.glob("dimred-flow-synthetic-*.pt"))) == 1 and "trained" in messages[-1]
    second = train_head("gan", head_data, fast_config("gan", epochs=1), dimred_store=store)
    assert "reused" in messages[-1] and second.metrics["dimred_source"] == "reused"
    for name, value in first.checkpoint["state"]["dimred"].items():
        assert torch.equal(second.checkpoint["state"]["dimred"][name], value)
    assert second.metrics["temporal_classifier"] == first.metrics["temporal_classifier"]


def test_still_model_is_saved_and_reused_with_the_same_predictions(head_data, tmp_path):
    messages = []
    store = DimRedStore([tmp_path], [tmp_path], log=messages.append)
    alone = train_head("classifier", head_data, fast_config("classifier"))  # no store: trained, nothing saved
    first = train_head("classifier", head_data, fast_config("classifier"), dimred_store=store)
    assert len(list(tmp_path.glob("still-synthetic-*.pt"))) == 1 and first.metrics["still_source"] == "trained"
    assert any(m.startswith("still model (seed=0): trained, saved") for m in messages)
    second = train_head("gan", head_data, fast_config("gan", epochs=1), dimred_store=store)
    assert second.metrics["still_source"] == "reused" and any(m.startswith("still model (seed=0): reused") for m in messages)
    for run in (first, second):
        assert run.metrics["still"] == alone.metrics["still"]  # reused or trained: the same still stream
        for split in ("val", "test"):
            assert torch.equal(run.predictions["still"][split], alone.predictions["still"][split])
        assert run.metrics["selected_epoch"]["still"] == alone.metrics["selected_epoch"]["still"]
    other = train_head("classifier", head_data, fast_config("classifier", still_lr=0.002), dimred_store=store)
    assert other.metrics["still_source"] == "trained" and len(list(tmp_path.glob("still-synthetic-*.pt"))) == 2
    stored = next(tmp_path.glob("still-synthetic-*.pt"))
    stored.write_bytes(stored.read_bytes()[:100])  # a torn file: named, with how to get it back
    with pytest.raises(FeatcacheError, match=f"{stored}: .*it is a stored still model: delete it and rerun"):
        for config in (fast_config("classifier"), fast_config("classifier", still_lr=0.002)):
            train_head("classifier", head_data, config, dimred_store=store)


def test_checkpoint_round_trip_rebuilds_the_generator(head_data, tmp_path):
    result = train_head("gan", head_data, fast_config("gan", epochs=1))
    path = save_head_checkpoint(tmp_path / "model.pt", result.checkpoint)
    checkpoint = load_head_checkpoint(path)
    config = checkpoint["config"]
    generator = Generator(1, checkpoint["dims"]["still"], config["d0"], config["d1"], [config["dropout"]],
                          [config["noise"]], MemberRandom.from_seeds([0], "x"), MemberRandom.from_seeds([0], "y"))
    generator.load_state_dict(checkpoint["state"]["generator"])
    generator.eval()
    out = generator(head_data.still["test"].features[None, :5])
    assert out.shape == (1, 5, config["d1"]) and torch.isfinite(out).all()


def test_relabelled_cache_in_place_retrains_the_dim_reduction_network(tmp_path):
    """A label-shuffled control written over the same cache file (same features, same rows) must not
    reuse the network trained on the old labels: the store is keyed on the train/val labels too."""
    import numpy as np

    from featcache.cache.feature_cache import FeatureCache
    from featcache.cache.synthetic import write_feature_cache, write_synthetic_caches
    from heads.training.head_data import HeadData

    write_synthetic_caches(tmp_path / "cache", num_classes=4, dim=24, seed=2, still_rows={"train": 40, "val": 20, "test": 20},
                           temporal_rows={"train": 60, "val": 20, "test": 20})  # its own val rows: nothing carved
    store_dir = tmp_path / "store"
    messages = []
    store = DimRedStore([store_dir], [store_dir], log=messages.append)
    train_head("classifier", HeadData.load(tmp_path / "cache", "flow"), fast_config("classifier"), dimred_store=store)
    assert "trained" in messages[-1]
    train_head("classifier", HeadData.load(tmp_path / "cache", "flow"), fast_config("classifier"), dimred_store=store)
    assert "reused" in messages[-1]  # same cache, same labels: reused
    cache = FeatureCache.open(tmp_path / "cache" / "flow-synthetic.h5")
    arrays = cache._arrays
    shuffled = arrays["labels"].copy()
    train = arrays["split"] == 0
    shuffled[train] = np.random.default_rng(0).permutation(shuffled[train])
    write_feature_cache(cache.path, modality="flow", backbone=cache.backbone, classes=cache.classes,
                        features=arrays["features"], labels=shuffled, split=arrays["split"])
    train_head("classifier", HeadData.load(tmp_path / "cache", "flow"), fast_config("classifier"), dimred_store=store)
    assert "trained" in messages[-1]  # relabelled in place: a new network
    assert len(list(store_dir.glob("dimred-flow-*.pt"))) == 2
