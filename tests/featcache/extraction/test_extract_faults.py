"""Faults in stage 1: a full disk or a refused write during extract and prepare gives one line
(what, where, why, what was kept, how to resume), the finished parts are kept and a rerun resumes."""

from __future__ import annotations

import errno
import os

import h5py
import pytest

from cli.app import main
from featcache.cache import parts as parts_module
from featcache.cache.feature_cache import FeatureCache
from featcache.cache.schema import stored_checksums
from tests.fault_fixtures import assert_one_line_error, run_cli, small_fs  # noqa: F401
from tests.featcache.extraction.test_extract import make_stills
from tests.featcache.representations.test_prepare import dataset  # noqa: F401

EXTRACT = ["--modality", "still", "--backbone", "efficientnet-lite0", "--weights", "random", "--crop", "32",
           "--resize", "32", "--device", "cpu", "--shard-size", "2"]


def cli(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return done.value.code, capsys.readouterr().err


def fail_after(monkeypatch, module, name: str, calls: int, code: int = errno.ENOSPC) -> None:
    """``module.name`` works ``calls`` times, then fails with ``code``."""
    real, count = getattr(module, name), {"n": 0}

    def patched(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, patched)


def test_extract_full_disk_keeps_finished_shards_and_resumes(tmp_path, monkeypatch, capsys):
    root, cache = make_stills(tmp_path / "ds"), tmp_path / "cache"
    fail_after(monkeypatch, parts_module.os, "fsync", 2)  # the third shard's write fails
    code, err = cli(capsys, "extract", str(root), "--cache", str(cache), *EXTRACT)
    parts = cache / "still-efficientnet-lite0.h5.parts"
    assert code == 1
    assert_one_line_error(err, "could not write part", str(parts), "no space left on device",
                          f"2 finished shards kept in {parts}", "rerun the same command to resume")
    assert len(list(parts.glob("shard-*.npz"))) == 2
    monkeypatch.undo()
    main(["extract", str(root), "--cache", str(cache), *EXTRACT])
    assert "2/9 shards resumed" in capsys.readouterr().out
    assert len(FeatureCache.open(cache / "still-efficientnet-lite0.h5").split("train")) == 6
    with h5py.File(cache / "still-efficientnet-lite0.h5", "r") as f:
        assert stored_checksums(f["features"]) is not None and stored_checksums(f["labels"]) is not None


def test_prepare_read_only_keeps_finished_videos(dataset, tmp_path, monkeypatch, capsys):  # noqa: F811
    cache = tmp_path / "cache"
    fail_after(monkeypatch, parts_module.os, "fsync", 3, errno.EROFS)
    code, err = cli(capsys, "prepare", str(dataset), "--cache", str(cache), "--size", "32x40", "--flow", "dis",
                    "--workers", "1")
    assert code == 1
    assert_one_line_error(err, "could not write part", "read-only file system", "3 finished videos kept",
                          "write to a writable folder, then rerun the same command to resume")


def test_extract_on_a_full_file_system(small_fs, tmp_path):
    """A real 300 KB tmpfs: shards fill it; one line, no traceback (and no HDF5 crash: space is reserved first)."""
    root = make_stills(tmp_path / "ds")
    done = run_cli("extract", str(root), "--cache", str(small_fs / "cache"), *EXTRACT)
    assert done.returncode == 1, done.stderr
    assert_one_line_error(done.stderr, "could not write", str(small_fs / "cache"), "no space left on device",
                          "rerun the same command to resume")
