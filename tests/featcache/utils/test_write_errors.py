"""One line for every OS-level write failure: featcache.utils.atomic.writing, atomic_path, save_torch, the lock."""

from __future__ import annotations

import errno
import os

import pytest

from featcache.errors import WriteError
from featcache.utils import atomic, distributed
from featcache.utils.atomic import atomic_path, reserve_space, save_torch, write_failure, writing
from tests.fault_fixtures import no_space, read_only_fs, small_fs  # noqa: F401


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"),
                                          (errno.EACCES, "permission denied"), (errno.EPERM, "operation not permitted"),
                                          (errno.EDQUOT, "disk quota exceeded")])
def test_each_write_failure_is_one_line_with_what_where_why_kept_and_resume(code, reason, tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(WriteError) as caught:
        with writing(kept="3 parts kept in P", resume="rerun it"), writing("feature cache", target):
            raise OSError(code, os.strerror(code))
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(f"could not write feature cache {target}: {reason}")
    assert "3 parts kept in P" in line and line.endswith("then rerun it")


def test_other_os_errors_pass_through_and_h5py_messages_are_read():
    with pytest.raises(FileNotFoundError):
        with writing("file", "f"):
            raise FileNotFoundError(errno.ENOENT, "gone")
    h5_error = OSError("Unable to synchronously create file (unable to open file: name = 'x', errno = 30, error message = 'Read-only file system')")
    assert write_failure(h5_error) == errno.EROFS
    assert write_failure(OSError("Unable to open (errno = 2)")) is None


def test_a_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    monkeypatch.setattr(atomic.os, "replace", no_space)
    with pytest.raises(WriteError, match=f"could not write metrics {path}: no space left on device"):
        with atomic_path(path, "metrics") as tmp:
            tmp.write_text("new")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_torch_save_on_a_full_disk_is_a_write_error(small_fs):
    import torch

    with pytest.raises(WriteError, match="could not write checkpoint .*model.pt: no space left on device"):
        save_torch({"w": torch.zeros(200_000)}, small_fs / "model.pt")
    assert list(small_fs.iterdir()) == []  # no temporary left behind


def test_space_is_reserved_before_hdf5_writes(small_fs):
    reserve_space(small_fs / "cache.h5", 100_000)
    with pytest.raises(WriteError, match="no space left on device"), writing("feature cache", small_fs / "cache.h5"):
        reserve_space(small_fs / "cache.h5", 10_000_000)
    assert list(small_fs.iterdir()) == []


def test_read_only_folder(read_only_fs):
    with pytest.raises(WriteError, match="read-only file system"):
        with atomic_path(read_only_fs / "report.md", "report") as tmp:
            tmp.write_text("x")


def test_a_lock_that_cannot_be_written_is_one_line_and_left_behind_nowhere(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed.json, "dump", no_space)
    with pytest.raises(WriteError, match="could not write lock file .*: no space left on device; nothing was started"):
        with distributed.CacheLock(tmp_path / "cache", what="extract"):
            pass
    assert not (tmp_path / "cache" / distributed.LOCK_FILE).exists()
