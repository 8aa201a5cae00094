"""Stage 1 and grids across processes, GPUs and machines under ``torchrun``.

``featcache prepare|extract|grid`` detect a torchrun job from its environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ...); without one they run as one process, as always.
Under torchrun every rank joins a **gloo** process group (also on GPU nodes: it carries only
barriers and small Python objects, never tensors), takes its share of the work items
(:func:`split_by_cost`: greedy longest-processing-time, so ranks finish together), writes
its own part files (one file, one writer), and rank 0 assembles the final file after the
others are done.

:class:`CacheLock` keeps a second job off a folder while one runs: a lock file holding
host, pid, process start time and job id. It is taken over when its holder is provably
gone (same host: the pid is dead, a zombie or reused; another host: its heartbeat, the
file's mtime refreshed every ``HEARTBEAT_S``, is older than ``STALE_AFTER_S``).
"""

from __future__ import annotations

import atexit
import datetime
import heapq
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import cv2
import torch
import torch.distributed as dist

from featcache.errors import CacheError, FeatcacheError, WriteError
from featcache.utils.atomic import writing

LOCK_FILE = ".featcache.lock"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0  # a lock from another host whose heartbeat stopped this long ago is stale
# Ranks that finish early wait at a barrier for the slowest; generous, since a dead rank makes
# torchrun stop the whole job anyway. FEATCACHE_DIST_TIMEOUT_S overrides it.
DEFAULT_TIMEOUT_S = 6 * 3600

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def detect_env() -> DistEnv:
    """The torchrun environment of this process (variables torchrun/srun wrappers set)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return DistEnv(
        rank=int(os.environ.get("RANK", "0")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=world_size,
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size))),
    )


def setup() -> DistEnv:
    """Join the gloo group once per process when under torchrun; set this rank's CPU threads."""
    env = detect_env()
    if not env.distributed:
        return env

    if not dist.is_initialized():
        timeout = float(os.environ.get("FEATCACHE_DIST_TIMEOUT_S", DEFAULT_TIMEOUT_S))
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=timeout))
        atexit.register(_teardown)
        torch.set_num_threads(rank_threads(env))
        cv2.setNumThreads(rank_threads(env))  # decoding and resizing: no more threads than the rank's share
    return env


def _teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_threads(env: DistEnv) -> int:
    """CPU threads per rank: ``OMP_NUM_THREADS`` when set (torchrun sets 1), else a fair share."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, (os.cpu_count() or 1) // max(1, env.local_world_size))


def rank_device(device, env: DistEnv):
    """A bare ``cuda`` becomes this rank's GPU, ``cuda:LOCAL_RANK``; other devices are kept."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and env.distributed:
        device = torch.device("cuda", env.local_rank % max(1, torch.cuda.device_count()))
    return device


# -- small messages ------------------------------------------------------------------------
def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def all_gather(env: DistEnv, obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
    if not env.distributed:
        return [obj]

    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast(env: DistEnv, obj: T) -> T:
    """Rank 0's ``obj`` on every rank."""
    if not env.distributed:
        return obj

    box = [obj if env.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(env: DistEnv, fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its result to every rank; a user error raised there
    is raised on every rank (so no rank waits forever for one that stopped)."""
    result: tuple[str, Any] = ("ok", None)
    if env.is_main:
        try:
            result = ("ok", fn())
        except FeatcacheError as exc:
            result = ("error", exc)
    kind, value = broadcast(env, result)
    if kind == "error":
        raise value
    return value


# -- splitting work ------------------------------------------------------------------------
def split_by_cost(costs: Sequence[float], world_size: int) -> list[list[int]]:
    """Item indices per rank, greedy longest-processing-time first: each item, largest first,
    goes to the least-loaded rank (ties: lower index). Within a rank, indices are in order.
    Deterministic, so every rank computes the same split from the same list."""
    loads = [(0.0, r) for r in range(world_size)]
    shares: list[list[int]] = [[] for _ in range(world_size)]
    for i in sorted(range(len(costs)), key=lambda i: (-float(costs[i]), i)):
        load, r = heapq.heappop(loads)
        shares[r].append(i)
        heapq.heappush(loads, (load + float(costs[i]), r))
    return [sorted(share) for share in shares]


def my_share(items: Sequence[T], costs: Sequence[float], env: DistEnv) -> list[T]:
    """This rank's items under :func:`split_by_cost` (all of them in one process)."""
    if not env.distributed:
        return list(items)
    return [items[i] for i in split_by_cost(costs, env.world_size)[env.rank]]


# -- the cache lock ------------------------------------------------------------------------
def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against pid reuse), or None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False  # killed, not yet reaped by its parent
    except OSError:
        pass
    return start is None or _process_start(pid) in (None, start)


def job_id() -> str:
    return os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("SLURM_JOB_ID") or f"pid-{os.getpid()}"


_HELD: dict[Path, int] = {}  # lock path -> nesting depth in this process


class CacheLock:
    """One job per folder at a time: ``with CacheLock(folder, env, "prepare"):``.

    Rank 0 takes the lock and tells the others; every rank of a refused job raises the same
    one-line :class:`CacheError`. Re-entrant within a process (a pipeline calling prepare and
    then extract keeps it)."""

    def __init__(self, folder: str | os.PathLike, env: DistEnv | None = None, what: str = "job"):
        self.path = Path(folder) / LOCK_FILE
        self.env = env or DistEnv()
        self.what = what
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._created = False

    def __enter__(self) -> "CacheLock":
        on_main(self.env, self._acquire)
        return self

    def __exit__(self, *exc) -> None:
        if self.env.is_main:
            self._release()

    def _acquire(self) -> None:
        key = self.path.resolve()
        if key in _HELD:
            _HELD[key] += 1
            return
        self._created = not self.path.parent.exists()  # removed again if the job leaves it empty
        me = {"host": socket.gethostname(), "pid": os.getpid(), "start": _process_start(os.getpid()),
              "job": job_id(), "command": self.what, "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):
            try:
                with writing("lock file", self.path, kept="nothing was started"):
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            try:
                with writing("lock file", self.path, kept="nothing was started"), os.fdopen(fd, "w") as fh:
                    json.dump(me, fh)
            except WriteError:
                self.path.unlink(missing_ok=True)  # an empty lock would block the next run
                raise
            _HELD[key] = 1
            self._thread = threading.Thread(target=self._heartbeat, daemon=True)
            self._thread.start()
            return
        raise CacheError(f"{self.path}: could not take the lock (another job keeps taking it)")

    def _take_over_if_stale(self) -> None:
        """Refuse with one line if the holder lives; move a stale lock aside otherwise."""
        try:
            text = self.path.read_text()
            holder = json.loads(text)
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return  # released meanwhile: try again
        except (OSError, ValueError):
            holder, text, age = {}, None, time.time() - self.path.stat().st_mtime
        stale = self._is_stale(holder, age)
        if not stale:
            raise CacheError(
                f"{self.path.parent} is in use by another featcache job ({holder.get('command', '?')}, job "
                f"{holder.get('job', '?')}, pid {holder.get('pid', '?')} on {holder.get('host', '?')} since "
                f"{holder.get('since', '?')}); wait for it to finish, or delete {self.path} if that job is gone"
            )
        aside = self.path.with_name(f"{LOCK_FILE}.stale.{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return
        if text is not None and aside.read_text() != text:  # another job took it over meanwhile
            os.replace(aside, self.path)
            raise CacheError(f"{self.path.parent} was just taken by another featcache job; try again later")
        aside.unlink(missing_ok=True)

    @staticmethod
    def _is_stale(holder: dict, age: float) -> bool:
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            return not _pid_alive(holder["pid"], holder.get("start"))
        return age > STALE_AFTER_S  # another host (or unreadable): trust the heartbeat

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except OSError:
                return

    def _release(self) -> None:
        key = self.path.resolve()
        if key not in _HELD:
            return
        _HELD[key] -= 1
        if _HELD[key] > 0:
            return
        del _HELD[key]
        self._stop.set()
        self.path.unlink(missing_ok=True)
        if self._created and not any(self.path.parent.iterdir()):
            self.path.parent.rmdir()
