"""``featcache prepare``: videos -> dynamic images and optical-flow stacks in ``temporal.h5``.

Crash safety (kill -9 at any moment loses at most the videos in flight):

1. Each finished video is written to ``DIR/temporal.h5.parts/<hash>.npz`` under a temporary
   name and renamed into place. ``settings.json`` in that folder records the settings the
   parts were made with; parts made with other settings are never mixed in (the run stops
   and says so; ``restart=True`` clears them).
2. When every video is done, ``temporal.h5`` is assembled from the parts in canonical
   dataset order (chunked, gzip-compressed) under a temporary name, ``complete=True`` is
   set last, and the file is renamed into place. The parts folder is then removed.

A rerun skips videos that have a part; a rerun against a complete ``temporal.h5`` with the
same settings and the same videos (path, label, split, size and mtime) does nothing.
When only the video list changed, rows of the old file are reused and only new or changed
videos are computed. Broken videos are reported by path and skipped; the run fails only
when no video at all could be prepared.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np
import torch

from featcache.utils import distributed
from featcache.data.dataset import FolderDataset, Sample
from featcache.errors import CacheError, DatasetError, FeatcacheError, MediaError
from featcache.utils.progress import console, make_progress
from featcache.representations import dynamic_image, optical_flow, torch_preprocessing
from featcache.representations.tvl1_torch import TVL1Params
from featcache.cache.schema import (
    FLOW_BOUND,
    FLOW_STACK,
    SCHEMA_VERSION,
    SPLIT_CODE,
    TEMPORAL_KINDS,
    is_complete,
    mark_complete,
    read_root_attrs,
    read_rows,
    temporal_cache_path,
    write_root_attrs,
    write_rows,
)
from featcache.cache.temporal_cache import INDEX_GROUP, read_failed, read_index
from featcache.media.files import frame_files
from featcache.media.video import probe_video, read_middle_frames
from featcache.utils.atomic import atomic_path

DEFAULT_SIZE = (256, 340)  # UCF-101 flow convention: frames resized to H=256, W=340
PARTS_SUFFIX = ".parts"
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class PrepareSettings:
    """Everything that changes the stored representations; recorded in the file."""

    size: tuple[int, int] = DEFAULT_SIZE
    kinds: tuple[str, ...] = TEMPORAL_KINDS
    window: int = dynamic_image.WINDOW
    stride: int = dynamic_image.STRIDE
    count: int = dynamic_image.COUNT
    flow_method: str = "tvl1"
    flow_frames: int = optical_flow.NUM_FLOWS
    stack: int = FLOW_STACK
    bound: float = FLOW_BOUND
    # Where tvl1-torch runs and how many pairs per solver call: not recorded, as the flow does
    # not depend on the batch, and CPU and CUDA agree up to float rounding.
    flow_device: str = "auto"
    flow_batch: int = 0  # 0: chosen from frame size and free memory

    def __post_init__(self):
        if len(self.size) != 2 or min(self.size) < 8:
            raise FeatcacheError(f"bad frame size {self.size}; expected HxW with both at least 8, e.g. 256x340")
        unknown = [k for k in self.kinds if k not in TEMPORAL_KINDS]
        if unknown or not self.kinds:
            raise FeatcacheError(f"unknown kind(s) {unknown or '(none)'}; expected {', '.join(TEMPORAL_KINDS)}")
        if self.window < 2 or self.stride < 1 or self.count < 1 or self.flow_frames < 1 or self.stack < 1:
            raise FeatcacheError(
                f"bad settings window={self.window} stride={self.stride} count={self.count} "
                f"flow frames={self.flow_frames}; need window >= 2 and the others >= 1"
            )
        if self.flow_batch < 0:
            raise FeatcacheError(f"bad --flow-batch {self.flow_batch}; expected 0 (automatic) or a positive count")
        if self.flow_method not in optical_flow.FLOW_METHODS:
            raise FeatcacheError(
                f"unknown flow method {self.flow_method!r}; expected {', '.join(optical_flow.FLOW_METHODS)}"
            )

    def group_preprocessing(self, kind: str) -> dict[str, Any]:
        if kind == "dynamic":
            return {"window": self.window, "stride": self.stride, "count": self.count}
        flow = {"method": self.flow_method, "frames": self.flow_frames, "stack": self.stack, "bound": self.bound}
        if self.flow_method.startswith("tvl1-"):
            flow["tvl1"] = TVL1Params().as_dict()
        return flow

    def preprocessing(self) -> dict[str, Any]:
        """The root ``preprocessing`` JSON (DESIGN item 4)."""
        out: dict[str, Any] = {"size": list(self.size), "kinds": list(self.kinds)}
        for kind in self.kinds:
            out[kind] = self.group_preprocessing(kind)
        return out

    def frames_to_read(self) -> int:
        """Middle frames both representations need (61 for 60 flows, 40 for 6 windows)."""
        needed = 0
        if "dynamic" in self.kinds:
            needed = dynamic_image.frames_needed(self.window, self.stride, self.count)
        if "flow" in self.kinds:
            needed = max(needed, self.flow_frames + 1)
        return needed


@dataclass
class PrepareReport:
    path: Path
    videos: int = 0
    computed: int = 0
    reused: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    up_to_date: bool = False
    unsupported: list[tuple[str, str]] = field(default_factory=list)  # files of other types in the tree, skipped
    assembled: bool = True  # False on the ranks > 0 of a torchrun job

    @property
    def prepared(self) -> int:
        return self.videos - len(self.failed)


# -- one video ----------------------------------------------------------------
def file_stamp(path: Path) -> str:
    """Size and mtime (of a frame folder: its frames' total size, latest mtime and count):
    a changed video is computed again."""
    if path.is_dir():
        stats = [f.stat() for f in frame_files(path)]
        return f"{sum(s.st_size for s in stats)}:{max((s.st_mtime_ns for s in stats), default=0)}:{len(stats)}"
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def part_name(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:20] + ".npz"


def decode_video(path: Path, settings: PrepareSettings) -> tuple[np.ndarray, int]:
    """The middle frames a video's representations need, resized, and its frame count."""
    return read_middle_frames(path, settings.frames_to_read(), size=settings.size)


def compute_video(path: Path, settings: PrepareSettings, decoded=None) -> tuple[dict[str, np.ndarray], int, list[str]]:
    """Representations of one video, its frame count, and notes about short videos.

    ``decoded``: a future of :func:`decode_video` started earlier (decoding overlaps the flow).
    """
    frames, num_frames = decoded.result() if decoded is not None else decode_video(path, settings)
    if on_device(settings):
        return compute_on_device(frames, num_frames, settings)
    arrays: dict[str, np.ndarray] = {}
    notes = []
    if "dynamic" in settings.kinds:
        arrays["dynamic"] = dynamic_image.dynamic_images(frames, settings.window, settings.stride, settings.count)
    if "flow" in settings.kinds:
        # A fresh estimator per video (flow_stacks creates it once, outside its frame loop):
        # DIS carries state from one call to the next, so sharing one across videos would make
        # a video's flow depend on which videos its worker happened to process before it.
        arrays["flow"] = optical_flow.flow_stacks(
            frames, settings.flow_method, settings.flow_frames, settings.stack, settings.bound,
            device=settings.flow_device, batch=settings.flow_batch or None,
        )
    return arrays, num_frames, notes + short_video_notes(arrays, num_frames, settings)


def short_video_notes(arrays: dict[str, np.ndarray], num_frames: int, settings: PrepareSettings) -> list[str]:
    notes = []
    if "dynamic" in arrays and len(arrays["dynamic"]) < settings.count:
        notes.append(f"{num_frames} frames -> {len(arrays['dynamic'])}/{settings.count} dynamic images")
    wanted = settings.flow_frames // settings.stack
    if "flow" in arrays and len(arrays["flow"]) < wanted:
        padded = " (padded)" if num_frames - 1 < settings.stack else ""
        notes.append(f"{num_frames} frames -> {len(arrays['flow'])}/{wanted} flow stacks{padded}")
    return notes


# Tests set this to run the device path on the CPU (it is only chosen for CUDA otherwise).
FORCE_DEVICE_PATH = False


def on_device(settings: PrepareSettings) -> bool:
    """Grey, TV-L1, quantisation and dynamic images as torch ops on the flow device: for
    tvl1-torch on CUDA only. On the CPU the numpy/OpenCV path stays: it is faster there
    (benchmarks/prepare.py --preprocessing-only, 3 real clips x 61 frames at 256x340, 2026-12-02:
    torch 0.36-0.42x its speed by wall clock, 0.54-0.59x by CPU time, 3 runs)."""
    tvl1_torch_run = "flow" in settings.kinds and settings.flow_method == "tvl1-torch"
    return tvl1_torch_run and (FORCE_DEVICE_PATH or settings.flow_device.startswith("cuda"))


def compute_on_device(frames: np.ndarray, num_frames: int, settings: PrepareSettings):
    """:func:`compute_video` with the frames uploaded once; only uint8 results come back."""
    uploaded = torch.from_numpy(frames).to(settings.flow_device)
    arrays = {}
    if "dynamic" in settings.kinds:
        arrays["dynamic"] = torch_preprocessing.dynamic_images(uploaded, settings.window, settings.stride, settings.count)
    arrays["flow"] = torch_preprocessing.flow_stacks(
        uploaded, settings.flow_frames, settings.stack, settings.bound, batch=settings.flow_batch or None
    )
    return arrays, num_frames, short_video_notes(arrays, num_frames, settings)


def write_part(part: Path, source: str, stamp: str, num_frames: int, arrays: dict[str, np.ndarray]) -> None:
    """Atomically write one video's result (temp name + os.replace)."""
    tmp = part.with_name(part.name + f".{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, source=np.array(source), stamp=np.array(stamp), frames=np.array(num_frames), **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, part)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_part(part: Path, source: str, stamp: str, kinds, arrays: bool = True) -> dict[str, Any] | None:
    """A finished part for this exact video file, or None (missing, stale, torn or unreadable).

    ``arrays=False`` only checks it (reads the small fields, not the representations).
    """
    try:
        with np.load(part, allow_pickle=False) as npz:
            if str(npz["source"]) != source or str(npz["stamp"]) != stamp:
                return None
            if any(kind not in npz.files for kind in kinds):
                return None
            result: dict[str, Any] = {"frames": int(npz["frames"])}
            if arrays:
                result.update({kind: npz[kind] for kind in kinds})
            return result
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def prepare_one(path: str, source: str, stamp: str, part: str, settings: PrepareSettings, decoded=None):
    """Worker entry point: compute one video and write its part. Returns (source, error, notes)."""
    try:
        arrays, num_frames, notes = compute_video(Path(path), settings, decoded)
    except MediaError as exc:
        return source, str(exc), []
    except Exception as exc:  # noqa: BLE001  -- e.g. cv2.error on garbage frames: report it, keep going
        reason = (str(exc).strip().splitlines() or [""])[-1]
        return source, f"{path}: {type(exc).__name__}: {reason}", []
    write_part(Path(part), source, stamp, num_frames, arrays)
    return source, None, notes


# -- bookkeeping ----------------------------------------------------------------
def video_list_digest(samples: list[Sample], stamps: dict[str, str]) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(f"{s.path}\t{s.label}\t{s.split}\t{stamps[s.path]}\n".encode("utf-8"))
    return h.hexdigest()


def check_parts_settings(parts: Path, settings: PrepareSettings, restart: bool) -> None:
    """Create the parts folder, or verify it was made with these settings."""
    settings_file = parts / SETTINGS_FILE
    wanted = settings.preprocessing()
    if parts.exists() and restart:
        shutil.rmtree(parts)
    if parts.exists():
        try:
            found = json.loads(settings_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = None
        if found != wanted:
            raise CacheError(
                f"{parts}: unfinished parts were made with other settings ({describe(found)}; now {describe(wanted)}); "
                "rerun with the same options to finish them, or pass --restart to discard them"
            )
        return
    parts.mkdir(parents=True)
    with atomic_path(settings_file) as tmp:
        tmp.write_text(json.dumps(wanted, sort_keys=True), encoding="utf-8")


def describe(pre: dict | None) -> str:
    if not pre:
        return "unknown settings"
    bits = [f"size={'x'.join(str(v) for v in pre.get('size', []))}", f"kinds={','.join(pre.get('kinds', []))}"]
    if "flow" in pre:
        bits.append(f"flow={pre['flow'].get('method')}")
    if "dynamic" in pre:
        d = pre["dynamic"]
        bits.append(f"window={d.get('window')} stride={d.get('stride')} count={d.get('count')}")
    return " ".join(bits)


def resolve_flow_settings(settings: PrepareSettings, env: distributed.DistEnv) -> PrepareSettings:
    """The flow device resolved (auto -> cuda or cpu; a bare cuda is this rank's GPU under torchrun)
    and ``tvl1`` named by its implementation."""
    if "flow" not in settings.kinds:
        return settings
    from featcache.utils.device import resolve_device  # the one device resolver (imports torch: late)

    device = str(distributed.rank_device(resolve_device(settings.flow_device), env))
    return dataclasses.replace(settings, flow_device=device, flow_method=optical_flow.resolve_flow_method(settings.flow_method, device))


def refuse_other_tvl1(path: Path, found: dict | None, wanted: dict) -> None:
    """Flows of one TV-L1 implementation are never silently replaced by the other's.

    ``tvl1`` resolves by device, so a rerun on another machine would otherwise discard hours
    of flow without a word; the user decides (same --flow, or --restart).
    """
    old = ((found or {}).get("flow") or {}).get("method")
    new = (wanted.get("flow") or {}).get("method")
    family = ("tvl1", "tvl1-torch", "tvl1-opencv")
    if old != new and old in family and new in family:
        raise CacheError(
            f"{path}: its flow was computed with {old}, this run would use {new}; rerun with --flow {old} "
            f"to keep it, or pass --restart to rebuild it with {new}"
        )


def existing_final(path: Path, settings: PrepareSettings, restart: bool = False) -> tuple[dict | None, str]:
    """(root attrs of a complete temporal.h5 with the same settings or None, why not)."""
    if not path.exists():
        return None, ""
    try:
        with h5py.File(path, "r") as f:
            if not is_complete(f):
                return None, f"{path} is unfinished; rebuilding"
            attrs = read_root_attrs(f)
    except OSError:
        return None, f"{path} is not readable HDF5; rebuilding"
    if attrs.get("preprocessing") != settings.preprocessing():
        if not restart:
            refuse_other_tvl1(path, attrs.get("preprocessing"), settings.preprocessing())
        return None, (
            f"{path} was built with other settings ({describe(attrs.get('preprocessing'))}); "
            f"rebuilding with {describe(settings.preprocessing())}"
        )
    return attrs, ""


def seed_parts_from_final(final: Path, parts: Path, samples, stamps, settings: PrepareSettings) -> int:
    """Copy rows of an old complete temporal.h5 (same settings) into parts for videos still wanted."""
    wanted = {s.path for s in samples}
    seeded = 0
    with h5py.File(final, "r") as f:
        index = read_index(f)
        row_sources = {kind: np.array(read_rows(f[kind])["source"]) for kind in settings.kinds}
        for source, stamp, frames, error in zip(index["source"], index["stamp"], index["frames"], index["error"]):
            part = parts / part_name(source)
            if error or source not in wanted or stamps.get(source) != stamp or part.exists():
                continue
            arrays = {kind: f[kind]["data"][np.flatnonzero(row_sources[kind] == source)] for kind in settings.kinds}
            write_part(part, source, stamp, int(frames), arrays)
            seeded += 1
    return seeded


# -- assembly -----------------------------------------------------------------
def assemble(out: Path, dataset: FolderDataset, samples, stamps, parts: Path, settings, errors, digest) -> dict[str, int]:
    """Write temporal.h5 from the parts, in canonical order, complete=True last."""
    rows: dict[str, dict[str, list]] = {k: {"labels": [], "split": [], "source": [], "instance": []} for k in settings.kinds}
    frames_col = []
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        groups = {}
        for kind in settings.kinds:
            channels = 3 if kind == "dynamic" else 2 * settings.stack
            shape = (*settings.size, channels)
            group = f.create_group(kind)
            group.create_dataset(
                "data", shape=(0, *shape), maxshape=(None, *shape), dtype=np.uint8,
                chunks=(1, *shape), compression="gzip", compression_opts=1, shuffle=False,
            )
            groups[kind] = group
        with make_progress() as progress:
            task = progress.add_task("writing temporal.h5", total=len(samples))
            for sample in samples:
                result = None if sample.path in errors else read_part(
                    parts / part_name(sample.path), sample.path, stamps[sample.path], settings.kinds
                )
                frames_col.append(0 if result is None else result["frames"])
                if result is None:
                    errors.setdefault(sample.path, f"{dataset.path(sample)}: no finished result")
                else:
                    for kind in settings.kinds:
                        block = result[kind]
                        data = groups[kind]["data"]
                        data.resize(data.shape[0] + len(block), axis=0)
                        data[-len(block):] = block
                        r = rows[kind]
                        r["labels"] += [sample.label] * len(block)
                        r["split"] += [SPLIT_CODE[sample.split]] * len(block)
                        r["source"] += [sample.path] * len(block)
                        r["instance"] += list(range(len(block)))
                progress.advance(task)
        for kind, group in groups.items():
            write_rows(group, **rows[kind])
            group.attrs["version"] = SCHEMA_VERSION
            group.attrs["modality"] = kind
            group.attrs["classes"] = json.dumps(dataset.classes)
            group.attrs["preprocessing"] = json.dumps({"size": list(settings.size), **settings.group_preprocessing(kind)}, sort_keys=True)
        index = f.create_group(INDEX_GROUP)
        write_index(index, samples, stamps, frames_col, errors)
        write_root_attrs(
            f, modality="temporal", classes=dataset.classes, preprocessing=settings.preprocessing(),
            videos=len(samples), failed=len([s for s in samples if s.path in errors]), video_list_digest=digest,
        )
        mark_complete(f)
    return {kind: len(rows[kind]["labels"]) for kind in settings.kinds}


def write_index(group: h5py.Group, samples, stamps, frames, errors) -> None:
    string = h5py.string_dtype("utf-8")
    group.create_dataset("source", data=np.array([s.path for s in samples], dtype=object), dtype=string)
    group.create_dataset("stamp", data=np.array([stamps[s.path] for s in samples], dtype=object), dtype=string)
    group.create_dataset("frames", data=np.asarray(frames, dtype=np.int64))
    group.create_dataset("error", data=np.array([errors.get(s.path, "") for s in samples], dtype=object), dtype=string)


# -- the work list -------------------------------------------------------------------
def pending_jobs(dataset: FolderDataset, samples, stamps, parts: Path, settings: PrepareSettings) -> list[tuple]:
    """(path, source, stamp, part) of every video without a finished part, in dataset order."""
    jobs = []
    for s in samples:
        part = parts / part_name(s.path)
        if not (part.exists() and read_part(part, s.path, stamps[s.path], settings.kinds, arrays=False) is not None):
            jobs.append((str(dataset.path(s)), s.path, stamps[s.path], str(part)))
    return jobs


def video_cost(num_frames: int, settings: PrepareSettings) -> float:
    """Work per video: frames decoded up to the end of the middle part, plus those turned into
    representations (flow and rank pooling run on at most ``frames_to_read`` frames)."""
    used = min(num_frames, settings.frames_to_read())
    return (num_frames - used) / 2 + 2 * used


def video_costs(jobs: list[tuple], settings: PrepareSettings, env) -> list[float]:
    """Costs for splitting ``jobs`` across ranks; each rank probes every world_size-th video."""
    if not env.distributed:
        return [1.0] * len(jobs)

    def frames(path: str) -> int:
        try:
            return probe_video(path).num_frames
        except MediaError:
            return 2  # cheap: it fails fast and is reported by the rank that gets it
    mine = {i: frames(jobs[i][0]) for i in range(env.rank, len(jobs), env.world_size)}
    counts = {i: n for part in distributed.all_gather(env, mine) for i, n in part.items()}
    return [video_cost(counts[i], settings) for i in range(len(jobs))]


def gather_results(env, errors: dict[str, str], report: PrepareReport) -> dict[str, str]:
    """Every rank's failures, notes and count (for the file's index and the report)."""
    if not env.distributed:
        return errors
    gathered = distributed.all_gather(env, (errors, report.notes, report.computed))
    report.notes = [note for _, notes, _ in gathered for note in notes]
    report.computed = sum(computed for _, _, computed in gathered)
    return {source: error for rank_errors, _, _ in gathered for source, error in rank_errors.items()}


# -- the command ----------------------------------------------------------------
def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def single_threaded() -> None:
    """OpenCV and torch on one CPU thread (worker initializer, and the in-process path)."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def prefetched(jobs, settings: PrepareSettings):
    """``(job, future of its decoded frames)``, decoding the next video while this one computes."""
    with ThreadPoolExecutor(max_workers=1) as decoder:
        pending = decoder.submit(decode_video, Path(jobs[0][0]), settings) if jobs else None
        for i, job in enumerate(jobs):
            current = pending
            pending = decoder.submit(decode_video, Path(jobs[i + 1][0]), settings) if i + 1 < len(jobs) else None
            yield job, current


def run_jobs(jobs, settings: PrepareSettings, workers: int, on_result) -> None:
    """Compute the jobs (path, source, stamp, part), in-process or in a process pool.

    OpenCV and torch run single-threaded either way: multi-threaded DIS/Farneback differ in the
    last bit (and so could a multi-threaded reduction in TV-L1's stopping rule), and the file
    must not depend on --workers. Processes give the parallelism. Flow on a GPU runs
    in-process, one video's pairs in one batch, while a thread decodes the next video.
    """

    with make_progress(rate_unit="videos/s") as progress:
        task = progress.add_task(f"prepare ({settings.flow_method})" if "flow" in settings.kinds else "prepare", total=len(jobs), rate=0.0)
        started = time.perf_counter()

        def done(result):
            on_result(*result)
            progress.advance(task)
            finished = progress.tasks[task].completed
            progress.update(task, rate=finished / max(time.perf_counter() - started, 1e-9))

        if workers <= 1 or settings.flow_device.startswith("cuda"):
            threads = cv2.getNumThreads(), torch.get_num_threads()
            single_threaded()
            try:
                for job, decoded in prefetched(jobs, settings):
                    done(prepare_one(*job, settings, decoded))
            finally:
                cv2.setNumThreads(threads[0])
                torch.set_num_threads(threads[1])
            return
        # spawn, not fork: forking a process whose OpenCV/OpenMP thread pools are running deadlocks.
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=single_threaded
        )
        try:
            futures = [pool.submit(prepare_one, *job, settings) for job in jobs]
            for future in as_completed(futures):
                done(future.result())
        except BrokenProcessPool:
            raise CacheError(
                "a worker process died (out of memory or a decoder crash); finished videos are kept, "
                "rerun the same command to resume (--workers 1 to find the video)"
            ) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def prepare(
    root: str | os.PathLike,
    cache_dir: str | os.PathLike = "cache",
    settings: PrepareSettings | None = None,
    *,
    workers: int | None = None,
    restart: bool = False,
    keep_parts: bool = False,
) -> PrepareReport:
    """Prepare every video of the dataset at ``root`` into ``cache_dir/temporal.h5``.

    Under torchrun the videos are shared out across ranks and rank 0 assembles the file
    (the other ranks return a report of their own share, ``assembled=False``)."""
    env = distributed.setup()
    with distributed.CacheLock(cache_dir, env, "prepare"):
        return _prepare(root, cache_dir, resolve_flow_settings(settings or PrepareSettings(), env), env, workers, restart, keep_parts)


def _prepare(root, cache_dir, settings: PrepareSettings, env, workers, restart, keep_parts) -> PrepareReport:
    started = time.perf_counter()
    dataset = FolderDataset(root)
    if not dataset.has("videos"):
        raise DatasetError(f"{dataset.root}: no videos/ folder; nothing to prepare")
    samples = dataset.videos()
    if not samples:
        raise DatasetError(f"{dataset.root / 'videos'}: no video files; nothing to prepare")
    out = temporal_cache_path(cache_dir)
    parts = out.with_name(out.name + PARTS_SUFFIX)
    report = PrepareReport(path=out, videos=len(samples), unsupported=list(dataset.skipped))
    stamps = {s.path: file_stamp(dataset.path(s)) for s in samples}
    digest = video_list_digest(samples, stamps)

    old_attrs, why = existing_final(out, settings, restart)
    if old_attrs is not None and old_attrs.get("video_list_digest") == digest and not restart:
        report.up_to_date = True
        report.failed = read_failed(out)
        with h5py.File(out, "r") as f:
            report.rows = {kind: int(f[kind]["labels"].shape[0]) for kind in settings.kinds}
        report.seconds = time.perf_counter() - started
        return report
    if why and env.is_main:
        console.print(f"[yellow]note:[/] {why}")

    def start_parts():  # one rank creates, clears or seeds the parts; the others wait for it
        check_parts_settings(parts, settings, restart)
        if old_attrs is not None and not restart:
            seeded = seed_parts_from_final(out, parts, samples, stamps, settings)
            if seeded:
                console.print(f"reusing {seeded} videos from the existing {out.name}")
        return pending_jobs(dataset, samples, stamps, parts, settings)

    errors: dict[str, str] = {}
    jobs = distributed.on_main(env, start_parts)
    report.reused = len(samples) - len(jobs)
    jobs = distributed.my_share(jobs, video_costs(jobs, settings, env), env)

    def on_result(source, error, notes):
        if error:
            errors[source] = error
            console.print(f"[red]failed:[/] {error}", soft_wrap=True)
        else:
            report.computed += 1
            for note in notes:
                report.notes.append((source, note))
                console.print(f"[yellow]short video:[/] {source}: {note}", soft_wrap=True)

    if jobs:
        run_jobs(jobs, settings, workers or (1 if env.distributed else default_workers()), on_result)
    errors = gather_results(env, errors, report)
    if len(errors) == len(samples):
        first = next(iter(errors.values()))
        raise MediaError(f"no video could be prepared ({len(errors)} failed); first: {first}")
    if not env.is_main:  # rank 0 assembles; nothing here waits for it
        report.assembled = False
        report.failed = [(s.path, errors[s.path]) for s in samples if s.path in errors]
        report.seconds = time.perf_counter() - started
        return report

    report.rows = assemble(out, dataset, samples, stamps, parts, settings, errors, digest)
    report.failed = [(s.path, errors[s.path]) for s in samples if s.path in errors]
    if not keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report
