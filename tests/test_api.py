"""The Python API: ``from featcache import ...`` (stage 1), ``from heads import ...`` (stage 2), the README example."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import featcache
import heads
from featcache.cache.synthetic import write_synthetic_caches

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- api-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its api-example block"
    return match.group(1)


def test_readme_example_trains_a_head_and_reads_its_predictions(tmp_path, monkeypatch, capsys):
    code = readme_example()
    assert len(code.strip().splitlines()) == 5
    write_synthetic_caches(tmp_path / "cache", num_classes=5, dim=32, seed=1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    run = namespace["run"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"fused test accuracy {run.metrics['fused']['test']:.1f}%"
    assert printed[1].startswith("['action_0")
    probs = namespace["probs"]
    assert probs.shape == (len(run.labels["test"]), 5)
    assert torch.allclose(probs.sum(1), torch.ones(len(probs)), atol=1e-5)
    accuracy = float((probs.argmax(1) == run.labels["test"]).float().mean() * 100)
    assert accuracy == pytest.approx(run.metrics["fused"]["test"], abs=1e-3)  # predictions match metrics.json
    for name in ("metrics.json", "model.pt", "config.yaml", "history.jsonl"):
        assert (tmp_path / "runs" / "gan-flow" / name).is_file(), name
    saved = json.loads((tmp_path / "runs" / "gan-flow" / "metrics.json").read_text())
    assert saved["fused"] == run.metrics["fused"]


def test_fit_head_without_out_writes_no_run_folder_and_config_keys_are_checked(tmp_path):
    write_synthetic_caches(tmp_path / "cache", num_classes=4, dim=16, temporal=("dynamic",), seed=2)
    run = heads.fit_head(tmp_path / "cache", "classifier", "dynamic", device="cpu",
                         config={"still_epochs": 3, "dimred_epochs": 2, "d1": 8}, sets=["seed=5"])
    assert run.config["still_epochs"] == 3 and run.config["seed"] == 5 and run.run_dir is None
    assert run.predictions["derived"] is None and run.predictions["still"]["test"].shape[1] == 4
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["dynamic-synthetic.h5", "heads",
                                                                     "still-synthetic.h5"]
    with pytest.raises(featcache.FeatcacheError, match="unknown key lambda for train-head classifier"):
        heads.fit_head(tmp_path / "cache", "classifier", "dynamic", config={"lambda": 1.0})


def test_fit_grid_returns_ranked_runs(tmp_path):
    write_synthetic_caches(tmp_path / "cache", num_classes=4, dim=16, temporal=("flow",), seed=2)
    result = heads.fit_grid(tmp_path / "cache", "classifier", "flow", grid={"still_lr": [1e-3, 1e-2]},
                            sets=["still_epochs=3", "dimred_epochs=2", "d1=8"], out=tmp_path / "grid", device="cpu")
    assert len(result.runs) == 2 and result.csv.is_file()
    assert sorted(r.config["still_lr"] for r in result.runs) == [1e-3, 1e-2]
    scores = [r.score[0] for r in result.runs]
    assert scores == sorted(scores, reverse=True)
    labels = featcache.open_cache(tmp_path / "cache", "still").split("test").labels
    for run in result.runs:  # the classifier method: still predictions only
        probs = run.predictions["still"]["test"]
        accuracy = float((probs.argmax(1) == labels).float().mean() * 100)
        assert accuracy == pytest.approx(run.metrics["still"]["test"], abs=1e-3) and run.predictions["fused"] is None
    again = heads.fit_grid(tmp_path / "cache", "classifier", "flow", grid={"still_lr": [1e-3, 1e-2]},
                           sets=["still_epochs=3", "dimred_epochs=2", "d1=8"], out=tmp_path / "grid", device="cpu")
    assert all(r.reused and r.predictions is None for r in again.runs)


def test_stage1_entry_points(tmp_path):
    from tests.featcache.extraction.test_extract import CLASSES, make_stills, make_temporal

    root = make_stills(tmp_path / "ds", per_class=1)
    report = featcache.extract_features(root, tmp_path / "cache", modality="still", backbone="efficientnet-lite0",
                                        weights="random", resize=28, crop=24, workers=0, device="cpu")
    assert report.written == 9 and not report.up_to_date
    cache = featcache.open_cache(tmp_path / "cache", "still")
    assert isinstance(cache, featcache.FeatureCache) and cache.classes == CLASSES
    assert featcache.open_cache(report.path).split("train").features.shape[1] == cache.feature_dim
    assert featcache.extract_features(root, tmp_path / "cache", modality="still", backbone="efficientnet-lite0",
                                      weights="random", resize=28, crop=24, workers=0, device="cpu").up_to_date
    make_temporal(tmp_path / "cache")
    flow = featcache.read_temporal(tmp_path / "cache" / "temporal.h5", "flow")
    assert flow.data.shape[-1] == 20


def test_prepare_dataset(tmp_path):
    from tests.featcache.representations.test_prepare import write_moving_video

    for split, cls, seed in (("train", "jump", 0), ("train", "wave", 1), ("test", "jump", 2), ("test", "wave", 3)):
        folder = tmp_path / "ds" / "videos" / split / cls
        folder.mkdir(parents=True)
        write_moving_video(folder / "v.avi", 62, 1 + seed % 2, seed=seed)
    report = featcache.prepare_dataset(tmp_path / "ds", tmp_path / "cache", size=(24, 32), flow_method="farneback",
                                       workers=1)
    assert report.prepared == 4
    assert featcache.read_temporal(report.path, "dynamic").data.shape[1:] == (24, 32, 3)


def test_packages_are_typed_and_featcache_never_imports_heads():
    for package in ("featcache", "heads"):
        assert (REPO / package / "py.typed").is_file()
    assert {"open_cache", "prepare_dataset", "extract_features", "read_temporal"} <= set(featcache.__all__)
    assert {"fit_head", "fit_grid"} <= set(heads.__all__)
    code = ("import sys, featcache; from featcache import open_cache, prepare_dataset, extract_features, "
            "read_temporal; assert not [m for m in sys.modules if m == 'heads' or m.startswith(('heads.', 'cli'))]")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env).returncode == 0
    with pytest.raises(AttributeError):
        featcache.no_such_thing  # noqa: B018


def test_fit_head_warns_in_one_line_about_small_evaluation_splits(tmp_path):
    write_synthetic_caches(tmp_path / "cache", num_classes=4, dim=16, temporal=("dynamic",), seed=2,
                           still_rows={"train": 40, "val": 8, "test": 12})
    lines = []
    heads.fit_head(tmp_path / "cache", "classifier", "dynamic", device="cpu", log=lines.append,
                   config={"still_epochs": 2, "dimred_epochs": 1, "d1": 8})
    warnings = [line for line in lines if str(line).startswith("warning: ")]
    assert [w.split(" has ")[0] for w in warnings] == ["warning: the val split", "warning: the test split"]
    assert "only 8 images (fewer than 30)" in warnings[0] and "\n" not in warnings[0]
