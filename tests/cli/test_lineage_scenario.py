"""A feature cache never goes stale without a word (issue 25, item 1): the whole scenario
through the CLI. prepare at one size, extract dynamic; prepare again with other settings is
refused, --restart rebuilds; extract then says the dynamic cache is stale and refuses,
--restart extracts again; train-head refuses the stale cache meanwhile."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.app import app
from featcache.cache.feature_cache import FeatureCache
from featcache.cache.lineage import CONTENT_ATTR, StaleCacheError
from featcache.errors import CacheError
from tests.featcache.extraction.test_extract import make_stills
from tests.featcache.representations.test_prepare import write_moving_video

CLASSES = ["jump", "run", "wave"]
FAST = ["--backbone", "efficientnet-lite0", "--weights", "random", "--crop", "24", "--resize", "28", "--workers", "0"]


@pytest.fixture
def dataset(tmp_path):
    root = make_stills(tmp_path / "ds")
    for i, (split, cls) in enumerate([(s, c) for s in ("train", "test") for c in CLASSES]):
        folder = root / "videos" / split / cls
        folder.mkdir(parents=True, exist_ok=True)
        write_moving_video(folder / f"{i}.avi", 44, 1 + i % 3, seed=i)
    return root


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_prepare_extract_train_head_refuse_stale_input(dataset, tmp_path):
    cache = tmp_path / "cache"
    prep = ["prepare", dataset, "--cache", cache, "--flow", "dis", "--workers", "1"]
    assert run(*prep, "--size", "32x40").exit_code == 0
    for modality in ("still", "dynamic"):
        done = run("extract", dataset, "--modality", modality, "--cache", cache, *FAST)
        assert done.exit_code == 0, done.output
    dynamic = cache / "dynamic-efficientnet-lite0.h5"
    recorded = FeatureCache.open(dynamic).attrs["input"]
    assert recorded["from"] == "temporal" and recorded["preprocessing"]["size"] == [32, 40] and len(recorded[CONTENT_ATTR]) == 64
    before = FeatureCache.open(dynamic).split("train").features

    # prepare with other settings: refused in one line, naming the options that keep the file
    refused = run(*prep, "--size", "40x48")
    assert isinstance(refused.exception, CacheError), refused.output
    message = str(refused.exception)
    assert "other settings (size=32x40" in message and "--size 32x40 to keep it" in message and "--restart" in message
    assert "\n" not in message
    assert run(*prep, "--size", "40x48", "--restart").exit_code == 0  # rebuilt

    # the dynamic cache is stale now: its reader, extract and train-head all say so in one line
    with pytest.raises(StaleCacheError, match=r"is stale: extracted from temporal.h5 /dynamic \(size=32x40.*now holds.*size=40x48"):
        FeatureCache.open(dynamic)
    stale = run("extract", dataset, "--modality", "dynamic", "--cache", cache, *FAST)
    assert isinstance(stale.exception, StaleCacheError), stale.output
    assert f"--modality dynamic --cache {cache} --restart" in str(stale.exception) and "\n" not in str(stale.exception)
    head = run("train-head", "gan", "--temporal", "dynamic", "--cache", cache, "--out", tmp_path / "run")
    assert isinstance(head.exception, StaleCacheError), head.output
    assert not (tmp_path / "run" / "metrics.json").exists()

    # --restart extracts again from the new temporal.h5; the cache opens and differs from the old one
    again = run("extract", dataset, "--modality", "dynamic", "--cache", cache, *FAST, "--restart")
    assert again.exit_code == 0 and "extracted" in again.output, again.output
    fresh = FeatureCache.open(dynamic)
    assert fresh.attrs["input"]["preprocessing"]["size"] == [40, 48]
    assert not np.allclose(fresh.split("train").features, before)
    assert run("extract", dataset, "--modality", "dynamic", "--cache", cache, *FAST).output.count("up to date") == 1


def test_same_settings_rerun_keeps_everything(dataset, tmp_path):
    cache = tmp_path / "cache"
    prep = ["prepare", dataset, "--cache", cache, "--flow", "dis", "--workers", "1", "--size", "32x40", "--only", "dynamic"]
    assert run(*prep).exit_code == 0
    assert run("extract", dataset, "--modality", "dynamic", "--cache", cache, *FAST).exit_code == 0
    again = run(*prep)
    assert again.exit_code == 0 and "up to date" in again.output
    FeatureCache.open(cache / "dynamic-efficientnet-lite0.h5")  # not stale
