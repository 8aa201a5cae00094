"""Second-wave metrics from real head runs: every new metrics.json key, ``--seeds`` on
``train-head`` and ``grid`` (mean, std, seeds, per-seed CIs), and the combined values."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.app import app
from heads.training.seeds import combine_seed_metrics, seed_configs, seed_probs, train_seeds
from heads.training.train_head import train_group
from tests.heads_fixtures import fast_config, head_data, synthetic_cache_dir  # noqa: F401

FAST_SETS = ["still_epochs=5", "still_batch_size=32", "dimred_epochs=3", "dimred_batch_size=32", "d0=32",
             "d1=16", "d2=32", "epochs=2", "batch_size=32"]
PLAIN_EPOCHS = ["still_min_steps=1", "dimred_min_steps=1"]  # the epochs above as given (no step minimum)
STREAM_KEYS = {"val", "test", "val_ci", "test_ci", "top5", "top5_ci", "map", "confusion", "ece"}


def sets(*items):
    return [arg for item in items for arg in ("--set", item)]


def _train_head(cache, out, *extra):
    result = CliRunner().invoke(app, ["train-head", "gan", "--cache", str(cache), "--temporal", "flow",
                                      "--out", str(out), "--device", "cpu", *sets(*PLAIN_EPOCHS, "min_steps=1", *FAST_SETS), *extra])
    assert result.exit_code == 0, result.output
    return result, json.loads((out / "metrics.json").read_text())


def test_train_head_metrics_carry_every_second_wave_key(synthetic_cache_dir, tmp_path):
    result, m = _train_head(synthetic_cache_dir, tmp_path / "run")
    classes = len(m["per_class"]["test"]["still"])
    for stream in ("still", "derived", "fused", "fused_calibrated"):
        entry = m[stream]
        assert STREAM_KEYS <= set(entry), stream
        for split in ("val", "test"):
            low, high = entry[f"{split}_ci"]
            assert low <= entry[split] <= high and high - low > 0
        assert 0 <= entry["top5"] <= 100 and entry["top5"] >= entry["test"]  # 6 classes: top-5 defined
        assert entry["top5_ci"][0] <= entry["top5"] <= entry["top5_ci"][1]
        assert 0 <= entry["map"] <= 100 and 0 <= entry["ece"] <= 100
        confusion = np.array(entry["confusion"])
        assert confusion.shape == (classes, classes)
        assert np.trace(confusion) / confusion.sum() * 100 == pytest.approx(entry["test"], abs=1e-3)
    for stream in ("derived", "fused", "fused_calibrated"):
        gain = m["gain"][stream]
        assert gain["test"] == pytest.approx(m[stream]["test"] - m["still"]["test"], abs=1e-3)
        assert gain["test_ci"][0] <= gain["test"] <= gain["test_ci"][1] and 0 < gain["p_value"] <= 1
    assert set(m["temperatures"]) == {"still", "derived"} and all(t > 0 for t in m["temperatures"].values())
    temporal = m["temporal_classifier"]  # on the temporal test instances, with its CI over them
    assert temporal["test_ci"][0] <= temporal["test"] <= temporal["test_ci"][1] < 100
    assert "seeds" not in m and "fused_calibrat" in result.output and "95% CI" in result.output


def test_train_head_seeds_gives_mean_std_and_per_seed_cis(synthetic_cache_dir, tmp_path):
    result, m = _train_head(synthetic_cache_dir, tmp_path / "seeds", "--seeds", "3", "--set", "seed=4")
    assert m["seeds"] == [4, 5, 6] and m["config"]["seed"] == 4
    assert len(m["per_seed"]) == 3 and [e["seed"] for e in m["per_seed"]] == [4, 5, 6]
    for stream in ("still", "derived", "fused", "fused_calibrated"):
        for split in ("val", "test"):
            values = [e[stream][split] for e in m["per_seed"]]
            assert m[stream][split] == pytest.approx(np.mean(values), abs=1e-3)
            assert m[stream][f"{split}_std"] == pytest.approx(np.std(values, ddof=1), abs=1e-3)
            assert all(len(e[stream][f"{split}_ci"]) == 2 for e in m["per_seed"])
    # Confusion counts summed over seeds: 3 seeds x 120 test stills of the fixture.
    assert np.array(m["fused"]["confusion"]).sum() == 3 * 120
    assert "±" in result.output and "3 seeds" in result.output
    bad = CliRunner().invoke(app, ["train-head", "gan", "--cache", str(synthetic_cache_dir), "--seeds", "0"])
    assert bad.exit_code != 0 and "--seeds 0" in bad.output + str(bad.exception)


def test_seed_members_equal_separate_runs(head_data):
    config = fast_config("gan", epochs=2)
    combined = train_seeds("gan", head_data, config, seeds=2)
    alone = [train_group("gan", head_data, [c])[0] for c in seed_configs(config, 2)]
    for k, run in enumerate(alone):
        assert combined.metrics["per_seed"][k]["fused"]["test"] == pytest.approx(run.metrics["fused"]["test"], abs=1e-3)
    assert combined.checkpoint["seeds"] == [0, 1] and len(combined.checkpoint["seed_states"]) == 2
    # The seed-mean CI is computed from per-image shares: it brackets the mean.
    low, high = combined.metrics["fused"]["test_ci"]
    assert low <= combined.metrics["fused"]["test"] <= high
    # The same for top-5 and the temporal classifier: the seed mean over the seeds' own accuracies,
    # its CI from the seeds' per-image (per-instance) correctness, narrower than one seed's.
    for key, entry_of in (("top5", lambda m: m["fused"]), ("test", lambda m: m["temporal_classifier"])):
        mean = combined.metrics and entry_of(combined.metrics)
        ci = mean[f"{key}_ci"] if key == "top5" else mean["test_ci"]
        assert mean[key] == pytest.approx(np.mean([entry_of(r.metrics)[key] for r in alone]), abs=1e-3)
        assert ci[0] <= mean[key] <= ci[1]
    assert combined.metrics["temporal_classifier"]["test_std"] is not None
    assert combine_seed_metrics([alone[0].metrics], [seed_probs(alone[0])]) == alone[0].metrics


def test_grid_seeds_ranks_by_mean_and_writes_spread(synthetic_cache_dir, tmp_path):
    out = tmp_path / "grid"
    result = CliRunner().invoke(app, ["grid", "gan", "--cache", str(synthetic_cache_dir), "--temporal", "flow",
                                      "--out", str(out), "--seeds", "2", *sets(*PLAIN_EPOCHS, "min_steps=1", *FAST_SETS[:-2]),
                                      "--set", "epochs=2", "--set", "lr=1e-4,5e-4"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "grid.csv").open()))
    assert len(rows) == 2 and all(r["seeds"] == "2" and r["score_std"] != "" for r in rows)
    assert float(rows[0]["score"]) >= float(rows[1]["score"])
    for row in rows:
        metrics = json.loads((tmp_path / row["run_dir"].split(str(tmp_path) + "/")[-1] / "metrics.json").read_text())
        assert metrics["seeds"] == [0, 1] and float(row["fused_val"]) == pytest.approx(metrics["fused"]["val"])
        assert metrics["grid"]["group_size"] == 4
    assert "±" in result.output and "2 seeds" in result.output
