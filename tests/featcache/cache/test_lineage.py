"""A feature cache's lineage (featcache/cache/lineage.py): stills by their files' sizes and
mtimes, temporal modalities by temporal.h5's group settings and content checksum; a changed
input is refused in one line by every reader and by extract; old caches open with a notice."""

from __future__ import annotations

import os

import h5py
import pytest

from featcache.cache.feature_cache import FeatureCache
from featcache.cache.lineage import INPUT_ATTR, StaleCacheError, check_input, files_input, same_input
from featcache.utils import progress
from tests.featcache.extraction.test_extract import make_stills, make_temporal, run


def test_still_cache_records_its_files_and_refuses_a_changed_one(tmp_path):
    root = make_stills(tmp_path / "ds")
    cache = tmp_path / "cache"
    report = run(root, cache)
    recorded = FeatureCache.open(report.path).attrs[INPUT_ATTR]
    assert recorded["from"] == "files" and recorded["files"] == 18 and recorded["root"] == str(root.resolve())
    assert run(root, cache).up_to_date  # nothing changed: nothing to do

    image = root / "stills" / "train" / "jump" / "0.png"
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # the photo was replaced
    with pytest.raises(StaleCacheError, match=rf"{report.path} is stale: extracted from 18 files under .*--modality still --cache {cache} --restart$"):
        FeatureCache.open(report.path)
    with pytest.raises(StaleCacheError, match="is stale"):
        run(root, cache)
    assert not run(root, cache, restart=True).up_to_date
    FeatureCache.open(report.path)  # fresh again


def test_temporal_cache_is_checked_against_temporal_h5_next_to_it(tmp_path):
    root = make_stills(tmp_path / "ds")
    cache = tmp_path / "cache"
    temporal = make_temporal(cache)
    with h5py.File(temporal, "a") as f:
        f["dynamic"].attrs["content_sha256"] = "a" * 64
    path = run(root, cache, modality="dynamic").path
    assert FeatureCache.open(path).attrs[INPUT_ATTR]["content_sha256"] == "a" * 64
    with h5py.File(temporal, "a") as f:
        f["dynamic"].attrs["content_sha256"] = "b" * 64  # prepared again: other content
    with pytest.raises(StaleCacheError, match=r"content aaaaaaaaaaaa\).*now holds.*content bbbbbbbbbbbb\)"):
        FeatureCache.open(path)
    temporal.unlink()  # the input is not here to compare with (a copied cache folder): opens as is
    FeatureCache.open(path)


def test_cache_without_lineage_opens_with_one_notice(tmp_path, monkeypatch):
    root = make_stills(tmp_path / "ds")
    path = run(root, tmp_path / "cache").path
    with h5py.File(path, "a") as f:
        del f.attrs[INPUT_ATTR]  # as extracted before lineage was recorded
    lines = []
    monkeypatch.setattr(progress.console, "print", lambda text, **_: lines.append(text))
    FeatureCache.open(path)
    FeatureCache.open(path)
    assert len(lines) == 1 and "records no input lineage" in lines[0] and str(path) in lines[0]
    assert run(root, tmp_path / "cache").up_to_date  # extract keeps it too


def test_input_identity_ignores_where_the_dataset_lies(tmp_path):
    root = make_stills(tmp_path / "ds")
    sources = [str(p.relative_to(root)) for p in sorted(root.rglob("*.png"))]
    here = files_input(root, sources)
    moved = root.rename(tmp_path / "moved")
    there = files_input(moved, sources)
    assert here["root"] != there["root"] and same_input(here, there)
    check_input(tmp_path / "x.h5", {INPUT_ATTR: here, "modality": "still"}, sources)  # root gone: not checked
