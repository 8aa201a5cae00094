"""prepare, extract and grid under torchrun (CPU, gloo, one thread per rank) equal one process;
a rank killed with SIGKILL mid-run resumes with 1 or 3 ranks; one job per cache at a time.

Jobs are launched the way users launch them: ``python -m torch.distributed.run --standalone
--nproc-per-node N -m featcache ...``, on a tiny synthetic dataset (DIS flow, small frames).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from featcache.utils.distributed import LOCK_FILE, CacheLock, DistEnv, my_share, split_by_cost
from featcache.errors import CacheError

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
PREPARE = ["--flow", "dis", "--size", "48x64"]
EXTRACT = ["--modality", "still", "--backbone", "efficientnet-lite0", "--views", "4", "--crop", "128",
           "--resize", "144", "--shard-size", "2", "--workers", "0"]
GRID = ["still_epochs=2", "still_batch_size=16", "dimred_epochs=2", "dimred_batch_size=16", "d0=16", "d1=8",
        "d2=16", "epochs=2", "lr=0.003,0.001", "batch_size=16,32"]


def featcache(*args, ranks: int | None = None, wait: bool = True):
    """``featcache ARGS`` as one process, or under torchrun with ``ranks`` local ranks."""
    launch = [sys.executable, "-m", "featcache"]
    if ranks is not None:
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
                  "-m", "featcache"]
    cmd = [*launch, *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """4 classes, 20 videos of 64 frames at 48x64 + a broken one, 40 stills at 96x96 + a broken one;
    a fixed random backbone."""
    root = tmp_path_factory.mktemp("dist") / "synth"
    featcache("data", "synth", root, "--classes", "4", "--stills-per-class", "6,2,2", "--videos-per-class", "3,2",
              "--frames", "64", "--still-size", "96x96", "--video-size", "48x64", "--workers", "1")
    from featcache.backbones import create_backbone, save_checkpoint
    from featcache.data.dataset import FolderDataset

    # One bad video and one bad image: reported by path by the rank that meets them.
    (root / "videos" / "train" / "sit_down" / "sit_down_train_broken.avi").write_bytes(b"not a video" * 100)
    (root / "stills" / "train" / "sit_down" / "sit_down_train_broken.jpg").write_bytes(b"not an image" * 100)
    torch.manual_seed(0)
    backbone = create_backbone("efficientnet-lite0", weights="random")
    save_checkpoint(root.parent / "weights.pt", backbone, classes=FolderDataset(root).classes, modality="still")
    return root


def weights(root: Path) -> list[str]:
    return ["--weights", root.parent / "weights.pt"]


def datasets(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file by name."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_file(a: Path, b: Path, atol: float = 0.0) -> None:
    da, db = datasets(a), datasets(b)
    assert da.keys() == db.keys()
    for name in da:
        if atol and da[name].dtype.kind == "f":
            np.testing.assert_allclose(da[name], db[name], atol=atol, rtol=0, err_msg=name)
        else:
            assert np.array_equal(da[name], db[name]), name


def rank_pids(launcher: subprocess.Popen) -> list[int]:
    """The worker processes torchrun started (children running featcache)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher.pid and b"featcache" in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def kill_one_rank_after(launcher: subprocess.Popen, first_part) -> None:
    """SIGKILL one rank as soon as ``first_part()`` finds a finished part; torchrun then stops the job."""
    deadline = time.time() + 120
    while first_part() is None:
        assert launcher.poll() is None, launcher.communicate()
        assert time.time() < deadline, "no part appeared"
        time.sleep(0.01)
    pids = rank_pids(launcher)
    assert len(pids) == 2, pids
    os.kill(pids[-1], signal.SIGKILL)
    launcher.communicate(timeout=120)
    assert launcher.returncode != 0


def killed_copies(cache: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two copies of a killed job's cache folder, to resume once with 1 rank and once with 3."""
    one, three = tmp_path / "resume1", tmp_path / "resume3"
    shutil.copytree(cache, one, symlinks=True)
    shutil.copytree(cache, three, symlinks=True)
    return one, three


# -- prepare ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_process_temporal(dataset):
    cache = dataset.parent / "prepare-1"
    featcache("prepare", dataset, "--cache", cache, *PREPARE, "--workers", "1")
    return cache / "temporal.h5"


def test_prepare_two_ranks_equal_one_process(dataset, one_process_temporal, tmp_path):
    done = featcache("prepare", dataset, "--cache", tmp_path, *PREPARE, ranks=2)
    assert done.stdout.count("prepared 20/21 videos") == 1  # rank 0 reports, once
    assert "sit_down_train_broken.avi" in done.stdout + done.stderr  # by the rank that met it (and in the summary)
    assert_same_file(one_process_temporal, tmp_path / "temporal.h5")
    assert not (tmp_path / "temporal.h5.parts").exists() and not (tmp_path / LOCK_FILE).exists()


def test_prepare_killed_rank_resumes_with_one_and_three_ranks(dataset, one_process_temporal, tmp_path):
    cache = tmp_path / "killed"
    parts = cache / "temporal.h5.parts"
    launcher = featcache("prepare", dataset, "--cache", cache, *PREPARE, ranks=2, wait=False)
    kill_one_rank_after(launcher, lambda: next(parts.glob("*.npz"), None) if parts.exists() else None)
    finished = len(list(parts.glob("*.npz")))
    assert 0 < finished < 20 and not (cache / "temporal.h5").exists()
    one, three = killed_copies(cache, tmp_path)

    first = featcache("prepare", dataset, "--cache", one, *PREPARE, "--workers", "1")
    assert f"{finished} reused" in first.stdout
    featcache("prepare", dataset, "--cache", three, *PREPARE, ranks=3)
    for resumed in (one, three):
        assert_same_file(one_process_temporal, resumed / "temporal.h5")


# -- extract ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_process_features(dataset):
    cache = dataset.parent / "extract-1"
    featcache("extract", dataset, "--cache", cache, *EXTRACT, *weights(dataset))
    return cache / "still-efficientnet-lite0.h5"


def test_extract_two_ranks_equal_one_process(dataset, one_process_features, tmp_path):
    done = featcache("extract", dataset, "--cache", tmp_path, *EXTRACT, *weights(dataset), ranks=2)
    assert done.stdout.count("extracted 40/41 rows") == 1 and "sit_down_train_broken.jpg" in done.stdout + done.stderr
    assert_same_file(one_process_features, tmp_path / one_process_features.name, atol=1e-4)


def test_extract_killed_rank_resumes_with_one_and_three_ranks(dataset, one_process_features, tmp_path):
    cache = tmp_path / "killed"
    parts = cache / (one_process_features.name + ".parts")
    launcher = featcache("extract", dataset, "--cache", cache, *EXTRACT, *weights(dataset), ranks=2, wait=False)
    kill_one_rank_after(launcher, lambda: next(parts.glob("shard-*.npz"), None) if parts.exists() else None)
    finished = len(list(parts.glob("shard-*.npz")))
    assert 0 < finished < 21 and not (cache / one_process_features.name).exists()
    one, three = killed_copies(cache, tmp_path)

    first = featcache("extract", dataset, "--cache", one, *EXTRACT, *weights(dataset))
    assert f"{finished}/21 shards resumed" in first.stdout
    featcache("extract", dataset, "--cache", three, *EXTRACT, *weights(dataset), ranks=3)
    for resumed in (one, three):
        assert_same_file(one_process_features, resumed / one_process_features.name, atol=1e-4)


# -- grid ------------------------------------------------------------------------------------
def test_grid_two_ranks_equal_one_process(tmp_path):
    from featcache.cache.synthetic import write_synthetic_caches

    write_synthetic_caches(tmp_path / "cache", num_classes=4, dim=24, seed=3)
    sets = [arg for s in GRID for arg in ("--set", s)]
    for name, ranks in (("one", None), ("two", 2)):
        shutil.copytree(tmp_path / "cache", tmp_path / name / "cache")
        featcache("grid", "gan", "--cache", tmp_path / name / "cache", "--out", tmp_path / name / "grid", *sets,
                  ranks=ranks)
    one, two = (tmp_path / n / "grid" for n in ("one", "two"))

    def without_timing(metrics: dict) -> dict:
        # dimred_source, still_source: in one process the second group reuses the first's dim-reduction
        # network and still model, across ranks each trains its own (same seed and data, so the same
        # network, model and metrics).
        return {k: v for k, v in metrics.items() if k not in ("seconds", "grid", "dimred_source", "still_source")}

    runs = sorted(p.name for p in one.iterdir() if p.is_dir())
    assert len(runs) == 4 and runs == sorted(p.name for p in two.iterdir() if p.is_dir())
    for run in runs:
        a, b = (json.loads((d / run / "metrics.json").read_text()) for d in (one, two))
        assert without_timing(a) == without_timing(b), run
    ranked = [[line.split(",")[:4] for line in (d / "grid.csv").read_text().splitlines()] for d in (one, two)]
    assert ranked[0] == ranked[1]


# -- the lock and the split ------------------------------------------------------------------
def test_second_job_on_a_cache_is_refused_with_one_line(dataset, tmp_path):
    with CacheLock(tmp_path, what="prepare"):  # a live job: this test process
        done = subprocess.run([sys.executable, "-m", "featcache", "prepare", dataset, "--cache", tmp_path, *PREPARE],
                              cwd=REPO, env=ENV, capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()
    assert len(line) == 1 and line[0].startswith("featcache: error: ") and "in use by another featcache job" in line[0]
    assert f"pid {os.getpid()}" in line[0] and not (tmp_path / "temporal.h5").exists()
    assert not (tmp_path / LOCK_FILE).exists()  # released


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def write_lock(folder: Path, host: str, pid: int, age: float = 0.0) -> Path:
    path = folder / LOCK_FILE
    path.write_text(json.dumps({"host": host, "pid": pid, "start": None, "job": "old", "command": "prepare",
                                "since": "earlier"}))
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_stale_locks_are_taken_over_live_ones_are_not(tmp_path):
    here = socket.gethostname()
    write_lock(tmp_path, here, dead_pid())
    with CacheLock(tmp_path) as lock:  # dead pid on this host: taken over
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    write_lock(tmp_path, "another-host", 1, age=10)  # another host, fresh heartbeat: live
    with pytest.raises(CacheError, match="another-host"):
        with CacheLock(tmp_path):
            pass
    write_lock(tmp_path, "another-host", 1, age=3600)  # heartbeat stopped an hour ago: stale
    with CacheLock(tmp_path):
        pass
    assert not (tmp_path / LOCK_FILE).exists()


def test_split_by_cost_balances_and_covers_every_item():
    costs = [64, 300, 64, 120, 90, 300, 64, 75]
    shares = split_by_cost(costs, 3)
    assert sorted(i for s in shares for i in s) == list(range(len(costs)))
    loads = [sum(costs[i] for i in s) for s in shares]
    assert max(loads) - min(loads) <= max(costs)
    assert all(s == sorted(s) for s in shares)
    items = list("abcdefgh")
    assert my_share(items, costs, DistEnv()) == items  # one process does everything
    per_rank = [my_share(items, costs, DistEnv(rank=r, world_size=3)) for r in range(3)]
    assert sorted(x for share in per_rank for x in share) == items and all(per_rank)
