"""``featcache prepare``: videos -> dynamic images and optical-flow stacks in ``temporal.h5``.

Crash safety (kill -9 at any moment loses at most the videos in flight):

1. Each finished video is written to ``DIR/temporal.h5.parts/<hash>.npz`` under a temporary
   name and renamed into place (:mod:`featcache.cache.parts`). ``settings.json`` in that
   folder records the settings the parts were made with; parts made with other settings are
   never mixed in (the run stops and says so; ``restart=True`` clears them).
2. When every video is done, ``temporal.h5`` is assembled from the parts in canonical
   dataset order (chunked, gzip-compressed) under a temporary name, ``complete=True`` is
   set last, and the file is renamed into place. The parts folder is then removed.

A rerun skips videos that have a part; a rerun against a complete ``temporal.h5`` with the
same settings and the same videos (path, label, split, size and mtime) does nothing.
When only the video list changed, rows of the old file are reused and only new or changed
videos are computed. Broken videos are reported by path and skipped; the run fails only
when no video at all could be prepared.

This module is the driver (work list, processes, ranks); the settings are in
:mod:`.prepare_settings`, one video's work in :mod:`.prepare_video`, what a rerun keeps in
:mod:`.prepare_resume`, and the assembly of the file in :mod:`.temporal_writer`.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import cv2
import h5py
import torch

from featcache.cache.parts import discard_parts, keeping_parts, parts_folder
from featcache.cache.schema import temporal_cache_path
from featcache.cache.temporal_cache import read_failed
from featcache.data.dataset import FolderDataset
from featcache.errors import CacheError, DatasetError, MediaError
from featcache.media.video import probe_video
from featcache.representations.prepare_resume import existing_final, start_parts, video_list_digest
from featcache.representations.prepare_settings import PrepareReport, PrepareSettings, resolve_flow_settings
from featcache.representations.prepare_video import decode_video, file_stamp, prepare_one
from featcache.representations.temporal_writer import assemble
from featcache.utils import distributed
from featcache.utils.progress import console, make_progress
from featcache.utils.workers import default_workers

__all__ = ["PrepareReport", "PrepareSettings", "prepare"]


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
    with keeping_parts(temporal_cache_path(cache_dir), "videos"), distributed.CacheLock(cache_dir, env, "prepare"):
        return _prepare(root, cache_dir, resolve_flow_settings(settings or PrepareSettings(), env), env, workers, restart, keep_parts)


def _prepare(root, cache_dir, settings: PrepareSettings, env, workers, restart, keep_parts) -> PrepareReport:
    started = time.perf_counter()
    dataset, samples, video_split = _videos(root, settings)
    out = temporal_cache_path(cache_dir)
    report = PrepareReport(path=out, videos=len(samples), unsupported=list(dataset.skipped), video_split=video_split)
    stamps = {s.path: file_stamp(dataset.path(s)) for s in samples}
    digest = video_list_digest(samples, stamps)

    old_attrs, why = existing_final(out, settings, restart)
    if old_attrs is not None and old_attrs.get("video_list_digest") == digest and not restart:
        _report_up_to_date(report, out, settings)
    else:
        if why and env.is_main:
            console.print(f"[yellow]note:[/] {why}")
        jobs = distributed.on_main(env, lambda: start_parts(out, dataset, samples, stamps, settings, old_attrs, restart))
        report.reused = len(samples) - len(jobs)
        errors = _compute(distributed.my_share(jobs, video_costs(jobs, settings, env), env), settings, env, workers, report)
        if env.is_main:  # rank 0 assembles; nothing on the other ranks waits for it
            report.rows = assemble(out, dataset, samples, stamps, parts_folder(out), settings, errors, digest, video_split)
            if not keep_parts:
                discard_parts(parts_folder(out))
        report.assembled = env.is_main
        report.failed = [(s.path, errors[s.path]) for s in samples if s.path in errors]
    report.seconds = time.perf_counter() - started
    return report


def _videos(root, settings: PrepareSettings) -> tuple[FolderDataset, list, dict]:
    """The dataset, its videos with their splits (val carved from train when ROOT/videos/val is
    absent: decided here, once, and recorded in temporal.h5) and the record of that split."""
    dataset = FolderDataset(root)
    if not dataset.has("videos"):
        raise DatasetError(f"{dataset.root}: no videos/ folder; nothing to prepare")
    if not dataset.videos():
        raise DatasetError(f"{dataset.root / 'videos'}: no video files; nothing to prepare")
    samples, video_split = dataset.videos_with_val(settings.val_videos, settings.val_seed)
    return dataset, samples, video_split


def _report_up_to_date(report: PrepareReport, out: Path, settings: PrepareSettings) -> None:
    report.up_to_date = True
    report.failed = read_failed(out)
    with h5py.File(out, "r") as f:
        report.rows = {kind: int(f[kind]["labels"].shape[0]) for kind in settings.kinds}


def _compute(jobs, settings: PrepareSettings, env, workers, report: PrepareReport) -> dict[str, str]:
    """Compute this rank's videos; every rank's failures (source -> error), counted in ``report``."""
    errors: dict[str, str] = {}

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
    if len(errors) == report.videos:
        first = next(iter(errors.values()))
        raise MediaError(f"no video could be prepared ({len(errors)} failed); first: {first}")
    return errors
