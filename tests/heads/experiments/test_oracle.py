"""The oracle: co-class draws never touch training rows, and the fusion math on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from heads.experiments.oracle import fit_oracle_temperatures, oracle_runs
from heads.samplers.co_class import draw_co_class
from tests.cli.test_heads_cli import assert_test_accuracy


def onehot(labels, num_classes, confidence=0.8):
    probs = np.full((len(labels), num_classes), (1 - confidence) / (num_classes - 1))
    probs[np.arange(len(labels)), labels] = confidence
    return probs


def test_draws_are_co_class_and_never_train_rows():
    rng = np.random.default_rng(0)
    still_labels = rng.integers(0, 4, size=200)
    temporal_labels = rng.integers(0, 4, size=120)
    train_used = rng.random(120) < 0.7
    result = oracle_runs(onehot(still_labels, 4), still_labels, onehot(temporal_labels, 4), temporal_labels,
                         train_used, runs=50, seed=1)
    assert result.drawn.shape == (50, 200)
    assert (result.drawn >= 0).all()
    assert not train_used[result.drawn].any()
    assert (temporal_labels[result.drawn] == still_labels[None, :]).all()
    # Over 50 runs every eligible row of a class gets drawn at some point (draws vary by run).
    eligible = np.flatnonzero(~train_used)
    assert set(np.unique(result.drawn)) == set(eligible[np.isin(temporal_labels[eligible], still_labels)])


def test_fusion_math_on_hand_made_arrays():
    # Three stills, two classes. Still stream: right, wrong (0.4 vs 0.6), wrong (0.45 vs 0.55).
    still = np.array([[0.9, 0.1], [0.4, 0.6], [0.55, 0.45]])
    labels = np.array([0, 0, 1])
    # Eligible temporal rows: one per class. Row 0 (class 0) is train-used and confidently wrong.
    temporal = np.array([[0.0, 1.0], [1.0, 0.0], [0.3, 0.7]])
    temporal_labels = np.array([0, 0, 1])
    train_used = np.array([True, False, False])
    result = oracle_runs(still, labels, temporal, temporal_labels, train_used, runs=5, seed=0, classes=["a", "b"])
    # Drawn rows are forced: still 0, 1 -> temporal row 1; still 2 -> temporal row 2.
    assert (result.drawn == np.array([1, 1, 2])).all()
    # Fused: [0.95, 0.05] right, [0.7, 0.3] right, [0.425, 0.575] right -> 100 %; still alone 1/3.
    assert result.still_accuracy == pytest.approx(100 / 3)
    assert np.allclose(result.fused_accuracy, 100.0)
    assert result.improvement_mean == pytest.approx(200 / 3)
    assert result.improvement_std == 0.0
    assert np.allclose(result.derived_accuracy, 100.0)
    assert result.per_class_fused == {"a": 100.0, "b": 100.0}


def test_mean_and_std_over_runs_match_a_brute_force_loop():
    rng = np.random.default_rng(5)
    n, m, c = 60, 40, 3
    still_labels, temporal_labels = rng.integers(0, c, n), rng.integers(0, c, m)
    still, temporal = rng.dirichlet(np.ones(c), n), rng.dirichlet(np.ones(c), m)
    train_used = rng.random(m) < 0.5
    result = oracle_runs(still, still_labels, temporal, temporal_labels, train_used, runs=20, seed=3)
    improvements = []
    for drawn in result.drawn:  # recompute every run by hand from its draws
        fused = [(still[i] + (temporal[d] if d >= 0 else still[i])) / 2 for i, d in enumerate(drawn)]
        fused_acc = np.mean([np.argmax(f) == y for f, y in zip(fused, still_labels)]) * 100
        still_acc = np.mean(still.argmax(1) == still_labels) * 100
        improvements.append(fused_acc - still_acc)
    assert result.improvement_mean == pytest.approx(np.mean(improvements))
    assert result.improvement_std == pytest.approx(np.std(improvements, ddof=1))


def test_class_without_eligible_rows_keeps_the_still_prediction():
    still_labels = np.array([0, 1, 1])
    temporal_labels = np.array([0, 1])
    drawn = draw_co_class(still_labels, temporal_labels, np.random.default_rng(0), np.array([True, False]))
    assert drawn.tolist() == [0, -1, -1]
    result = oracle_runs(onehot(still_labels, 2), still_labels, onehot(temporal_labels, 2), temporal_labels,
                         np.array([False, True]), runs=3)
    assert result.uncovered == 2
    assert np.allclose(result.fused_accuracy, 100.0)


def test_same_seed_same_draws():
    labels = np.arange(10) % 3
    args = (onehot(labels, 3), labels, onehot(labels, 3), labels, np.zeros(10, bool))
    a, b = oracle_runs(*args, runs=4, seed=9), oracle_runs(*args, runs=4, seed=9)
    assert (a.drawn == b.drawn).all()


def still_and_temporal(rng, n, m, classes, informative: bool):
    """A 65%-right still stream with soft scores; a temporal stream that is confident (0.95)
    and either right (informative) or names a random class (no information about the label)."""
    labels = rng.integers(0, classes, n)
    still = rng.dirichlet(np.ones(classes), n) * 0.5
    right = rng.random(n) < 0.65
    still[np.arange(n), np.where(right, labels, rng.integers(0, classes, n))] += 0.5
    temporal_labels = rng.integers(0, classes, m)
    named = temporal_labels if informative else rng.integers(0, classes, m)
    return labels, still, temporal_labels, onehot(named, classes, confidence=0.95)


@pytest.mark.parametrize("informative", [False, True])
def test_calibrated_oracle_ignores_an_uninformative_confident_stream(informative):
    rng = np.random.default_rng(11)
    val_labels, val_still, temporal_labels, temporal = still_and_temporal(rng, 300, 400, 6, informative)
    test_labels, test_still, _, _ = still_and_temporal(rng, 300, 0, 6, informative)
    train_used = np.zeros(len(temporal_labels), bool)
    temperatures = fit_oracle_temperatures(val_still, val_labels, temporal, temporal_labels, train_used, runs=20)
    result = oracle_runs(test_still, test_labels, temporal, temporal_labels, train_used, runs=20, seed=1,
                         temperatures=temperatures)
    plain, calibrated = result.gain(), result.calibrated_gain()
    if informative:  # a right temporal stream keeps its large gain, calibrated or not
        assert temperatures["temporal"] < 1.0
        assert plain["test_ci"][0] > 20 and calibrated["test_ci"][0] > 20
    else:  # the plain average is dragged down; the calibrated one flattens the stream away
        assert temperatures["temporal"] > 5.0
        assert plain["test_ci"][1] < 0
        assert calibrated["test_ci"][0] <= 0 <= calibrated["test_ci"][1]
    assert result.calibrated_accuracy.shape == (20,) and result.calibrated_correct.shape == (20, 300)


def test_oracle_temperatures_must_be_positive():
    labels = np.arange(6) % 3
    args = (onehot(labels, 3), labels, onehot(labels, 3), labels, np.zeros(6, bool))
    assert oracle_runs(*args, runs=2).calibrated_correct is None
    with pytest.raises(ValueError, match="temperatures"):
        oracle_runs(*args, runs=2, temperatures={"still": 1.0, "temporal": 0.0})


# -- the command wiring, on synthetic feature caches ------------------------------------
def test_run_oracle_writes_metrics(tmp_path):
    from heads.evaluation.metrics import read_metrics
    from heads.experiments.oracle import run_oracle
    from featcache.cache.synthetic import write_synthetic_caches

    write_synthetic_caches(tmp_path / "cache", num_classes=4, dim=32, temporal=("dynamic",))
    config = {"seed": 0, "still_model": "auto", "still_lr": 1e-3, "still_epochs": 3, "still_batch_size": 64,
              "still_weight_decay": 1e-4, "d1": 16, "dimred_lr": 1e-3, "dimred_epochs": 2, "dimred_batch_size": 64,
              "dimred_dropout": 0.5, "still_min_steps": 1, "dimred_min_steps": 1}
    metrics = run_oracle(tmp_path / "cache", "dynamic", runs=10, config=config, out=tmp_path / "run", progress=False)
    saved = read_metrics(tmp_path / "run")
    assert saved["method"] == "oracle" and saved["temporal"] == "dynamic"
    for split in ("val", "test"):
        improvement = saved["improvement"][split]
        assert improvement["runs"] == 10 and improvement["uncovered"] == 0
        assert improvement["mean"] == pytest.approx(saved["fused"][split] - saved["still"][split], abs=1e-3)
    assert metrics["temporal_rows"] == {"eligible": 80, "val": 48, "train_used": 192}  # val: 20% of train videos, carved
    assert metrics["temporal_val"]["val"] == "carved"
    # The temporal classifier's accuracy on the 80 temporal test rows: k/80 with its CI over them.
    temporal = saved["temporal_classifier"]
    assert round(temporal["test"] * 80 / 100, 6).is_integer()
    assert temporal["test_ci"][0] <= temporal["test"] <= temporal["test_ci"][1]
    # The calibrated oracle beside the paper's: temperatures fitted on val, its own gain and CI.
    assert set(saved["temperatures"]) == {"still", "temporal"} and min(saved["temperatures"].values()) > 0
    calibrated = saved["gain"]["fused_calibrated"]
    assert calibrated["test_ci"][0] <= calibrated["test"] <= calibrated["test_ci"][1]
    assert saved["improvement_calibrated"]["test"]["mean"] == pytest.approx(
        saved["fused_calibrated"]["test"] - saved["still"]["test"], abs=1e-3)
    # The dim-reduction network is stored for reuse by later runs.
    assert list((tmp_path / "cache" / "heads").glob("dimred-dynamic-*.pt"))


def test_baselines_still_and_aug_frames(tmp_path):
    import h5py

    from featcache.cache.feature_cache import FeatureCache
    from featcache.extraction.keyframes import keyframes_cache_path
    from heads.experiments.baselines import still_config, train_baseline
    from featcache.cache.synthetic import write_feature_cache, write_synthetic_caches

    paths = write_synthetic_caches(tmp_path / "cache", num_classes=3, dim=16, temporal=())
    still = FeatureCache.open(paths["still"])
    train = still.split("train")
    # Key frames: here the still train rows again (same classes and dimension).
    write_feature_cache(keyframes_cache_path(tmp_path / "cache", "synthetic"), modality="keyframes", backbone="synthetic",
                        classes=still.classes, features=train.features.numpy(), labels=train.labels.numpy(),
                        split=np.zeros(len(train), np.int8))
    config = still_config(["still_epochs=3"])
    base = train_baseline("still", tmp_path / "cache", config=config, out=tmp_path / "still", progress=False)
    aug = train_baseline("aug-frames", tmp_path / "cache", config=config, out=tmp_path / "aug", progress=False)
    assert base["method"] == "still" and aug["method"] == "aug-frames"
    assert aug["config"]["num_keyframes"] == len(train) == base["config"]["num_train"]
    assert_test_accuracy(base["still"], still.split("test").labels)
    assert_test_accuracy(aug["still"], still.split("test").labels)
    assert aug["still"]["val"] is not None
    assert (tmp_path / "aug" / "model.pt").is_file()
    with h5py.File(paths["still"]) as f:
        assert f.attrs["complete"]
