"""Test-blindness: no choice reads a test label before the final evaluation.

The pipeline's parts run twice on the same small synthetic data, the second time with every
test label permuted (feature caches, ``temporal.h5`` and the test stills' class folders):
temporal fine-tuning, a still fine-tuning and TSN (tiny backbone), a grid of GAN heads with
their still model and dim-reduction network, the embedding head with its classifier, the oracle
with its temperatures, and the report's best run. Every selected epoch, temperature, ranking,
chosen run and val number must be identical; only test numbers may move. The caches have no
val rows of their own, so the val videos carved from train rows (the old-cache path) are tested
too. Spans packages, so it sits at the top of tests/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from featcache.cache.feature_cache import FeatureCache
from featcache.cache.schema import SPLIT_CODE, write_checksums
from featcache.cache.synthetic import write_feature_cache, write_synthetic_caches
from heads.api import fit_grid, fit_head
from heads.experiments.oracle import run_oracle
from heads.experiments.report.runs import collect_runs
from heads.training.methods import default_config
from tests.heads.finetune.test_finetune import CLASSES, CROP, RESIZE, TINY, make_dataset, run_finetune
from tests.heads_fixtures import FAST

TEST = SPLIT_CODE["test"]
SETS = [f"{k}={v}" for k, v in FAST.items() if k not in ("d0", "d2", "classifier_epochs", "classifier_min_steps")]


def permuted(labels: np.ndarray, split: np.ndarray, seed: int) -> np.ndarray:
    """``labels`` with the test rows' labels shuffled among themselves (class counts kept, most rows changed)."""
    out = labels.copy()
    test = np.flatnonzero(split == TEST)
    rng = np.random.default_rng(seed)
    while (out[test] == labels[test]).mean() > 0.5:
        out[test] = rng.permutation(labels[test])
    return out


def permute_feature_caches(cache: Path) -> None:
    """Rewrite every feature cache of ``cache`` with its test labels permuted."""
    for i, path in enumerate(sorted(cache.glob("*.h5"))):
        c = FeatureCache.open(path)
        arrays = c._arrays
        write_feature_cache(path, modality=c.modality, backbone=c.backbone, classes=c.classes,
                            features=arrays["features"], labels=permuted(arrays["labels"], arrays["split"], i),
                            split=arrays["split"])


def permute_dataset(root: Path) -> None:
    """The test stills moved to permuted class folders and the test rows of temporal.h5 relabelled."""
    files = sorted((root / "stills" / "test").glob("*/*.png"))
    labels = np.array([CLASSES.index(f.parent.name) for f in files])
    new = permuted(labels, np.full(len(files), TEST), 7)
    moved = [(f, root / "stills" / "test" / CLASSES[n] / f"moved-{i}.png") for i, (f, n) in enumerate(zip(files, new))]
    for src, dst in moved:
        src.rename(dst.with_suffix(".tmp"))
    for _, dst in moved:
        dst.with_suffix(".tmp").rename(dst)
    with h5py.File(root / "cache" / "temporal.h5", "r+") as f:
        for kind in ("dynamic", "flow"):
            group = f[kind]
            group["labels"][...] = permuted(group["labels"][()], group["split"][()], 11)
            write_checksums(group["labels"])  # relabelled in place: its block checksums follow


def val_view(value, path=()):
    """Every number of a metrics dict that lives under a val key or is a choice (epochs, temperatures,
    which run was picked), as ``{path: value}``; test numbers and timings are left out."""
    out = {}
    if isinstance(value, dict):
        for key, item in value.items():
            key = str(key)
            if "test" in key or key in ("seconds", "temporal_classifier", "gain", "improvement_calibrated"):
                continue
            out.update(val_view(item, (*path, key)))
        return out
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
        for i, item in enumerate(value):
            out.update(val_view(item, (*path, str(i))))
        return out
    chosen = any(p == "val" or p.startswith("val_") or p in ("selected_epoch", "best_epoch", "temperatures")
                 for p in path)
    return {"/".join(path): value} if chosen else {}


def heads_pipeline(cache: Path, runs: Path) -> dict:
    """Grid (GAN: still model, dim-reduction network, GAN epochs, ranking), embedding head, oracle, report."""
    grid = fit_grid(cache, "gan", "flow", grid={"lr": [2e-4, 1e-3]}, sets=[*SETS, "epochs=8", "batch_size=16"],
                    out=runs / "grid", device="cpu")
    embed = fit_head(cache, "embed", "flow", sets=[*SETS, "epochs=4", "lr=5e-3", "d0=32",
                                                   "classifier_epochs=5", "classifier_min_steps=1"],
                     out=runs / "embed", device="cpu")
    oracle = run_oracle(cache, "flow", runs=5, out=runs / "oracle", progress=False,
                        config={**default_config("classifier", "flow"),
                                **{k: v for k, v in FAST.items() if k.startswith(("still", "dimred"))}, "d1": 32})
    report = collect_runs([runs])
    best = report.best("gan", "flow")
    out = {"grid order": [r.run_dir.name for r in grid.runs], "best gan run": best.path.name,
           "embed": val_view(embed.metrics), "oracle": val_view(oracle),
           "oracle temperatures": oracle["temperatures"], "test numbers": oracle["still"]["test"]}
    for r in grid.runs:
        out[f"grid {r.run_dir.name}"] = val_view(r.metrics)
    return out


def finetune_pipeline(root: Path) -> dict:
    """Temporal and still fine-tuning (epochs on val videos / val stills) and TSN (epoch on fused val)."""
    from heads.finetune import tsn
    from heads.finetune.defaults import TSNSettings

    models = root / "cache" / "models"
    out = {}
    for modality in ("still", "dynamic"):
        metrics = run_finetune(root, modality, root, epochs=3, out=models / f"{modality}-{TINY}.pt",
                               run_dir=root / f"ft-{modality}")
        out[modality] = val_view(metrics)
        out[f"{modality} selected on"] = metrics["config"]["selected_on"]
    settings = TSNSettings(temporal="dynamic", backbone=TINY, epochs=3, lr=1e-3, batch_size=8, crop=CROP,
                           resize=RESIZE, device="cpu", seed=0)
    metrics = tsn.train_tsn(root, settings, cache_dir=root / "cache", out=root / "tsn")
    out["tsn"] = val_view(metrics)
    return out


def temporal_test_labels(root: Path) -> np.ndarray:
    with h5py.File(root / "cache" / "temporal.h5", "r") as f:
        return f["dynamic"]["labels"][()][f["dynamic"]["split"][()] == TEST]


@pytest.fixture(scope="module")
def heads_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("blind-heads")
    write_synthetic_caches(base / "a", num_classes=4, dim=32, seed=5,
                           still_rows={"train": 80, "val": 40, "test": 60}, temporal_rows={"train": 120, "test": 60})
    shutil.copytree(base / "a", base / "b")
    permute_feature_caches(base / "b")
    return heads_pipeline(base / "a", base / "runs-a"), heads_pipeline(base / "b", base / "runs-b")


def test_heads_grid_oracle_and_report_choose_the_same_without_test_labels(heads_runs):
    original, permuted_run = heads_runs
    assert original.pop("test numbers") != permuted_run.pop("test numbers")  # the test labels did change
    assert original["oracle temperatures"]["temporal"] != 1.0 and original["embed"] and original["oracle"]
    assert any("selected_epoch/dimred" in k for k in original[f"grid {original['grid order'][0]}"])
    assert original == permuted_run


def test_finetune_and_tsn_choose_the_same_without_test_labels(tmp_path):
    a = make_dataset(tmp_path / "a", stills=(8, 0, 4), videos=(5, 2))  # no stills/val: TSN and still fine-tuning carve one
    shutil.rmtree(a / "stills" / "val")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    permute_dataset(b)
    assert (temporal_test_labels(a) != temporal_test_labels(b)).any()
    original, permuted_run = finetune_pipeline(a), finetune_pipeline(b)
    assert original["dynamic selected on"].startswith("val videos")
    assert any(k.endswith("best_epoch") for k in original["tsn"]) and original["dynamic"]
    assert original == permuted_run
