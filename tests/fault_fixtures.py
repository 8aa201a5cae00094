"""Fixtures of the fault tests: small file systems that fill up or refuse writes.

``small_fs``/``read_only_fs`` mount a tmpfs (as root, as CI runs); where mounting is not
permitted the test is skipped cleanly (the patched-write tests beside them always run).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def mount_tmpfs(folder: Path, size: str, read_only: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_fs(tmp_path):
    """A 300 KB tmpfs (``size=300k``): a disk that fills up."""
    folder = tmp_path / "small"
    mount_tmpfs(folder, "300k")
    yield folder
    unmount(folder)


@pytest.fixture
def read_only_fs(tmp_path):
    """A read-only tmpfs: every write is refused with EROFS."""
    folder = tmp_path / "ro"
    mount_tmpfs(folder, "64k", read_only=True)
    yield folder
    unmount(folder)


def no_space(*args, **kwargs):
    """A write patched to fail as on a full disk."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m featcache ARGS`` in a fresh process (HDF5 keeps no state across tests)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "featcache", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def assert_one_line_error(stderr: str, *needles: str) -> str:
    """The run ended with ONE error line (no traceback) holding every needle; returns it."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("featcache: error:")]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]
