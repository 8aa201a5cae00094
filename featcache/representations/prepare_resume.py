"""What a rerun of ``featcache prepare`` can keep: a finished ``temporal.h5`` of the same
settings and videos (nothing to do), its rows for videos still wanted (seeded as parts), and
the parts of a killed run (:mod:`featcache.cache.parts`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np

from featcache.cache.parts import open_parts, part_path, parts_folder
from featcache.cache.schema import is_complete, read_root_attrs, read_rows
from featcache.cache.temporal_cache import read_index
from featcache.data.dataset import FolderDataset, Sample
from featcache.errors import CacheError
from featcache.representations.prepare_settings import PrepareSettings, describe
from featcache.representations.prepare_video import read_video_part, write_video_part
from featcache.utils.progress import console


def video_list_digest(samples: list[Sample], stamps: dict[str, str]) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(f"{s.path}\t{s.label}\t{s.split}\t{stamps[s.path]}\n".encode("utf-8"))
    return h.hexdigest()


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


def options_to_keep(old: dict | None, new: dict) -> str:
    """The prepare options that give the old file's settings where they differ from this run's."""
    old = old or {}
    bits = []
    if old.get("size") != new.get("size") and old.get("size"):
        bits.append(f"--size {'x'.join(str(v) for v in old['size'])}")
    if old.get("kinds") and old.get("kinds") != new.get("kinds"):
        bits.append(f"--only {old['kinds'][0]}" if len(old["kinds"]) == 1 else "no --only")
    flow_old, flow_new = old.get("flow") or {}, new.get("flow") or {}
    if flow_old and flow_old.get("method") != flow_new.get("method"):
        bits.append(f"--flow {flow_old['method']}")
    if flow_old and flow_new and flow_old.get("frames") != flow_new.get("frames"):
        bits.append(f"--flow-frames {flow_old['frames']}")
    dyn_old, dyn_new = old.get("dynamic") or {}, new.get("dynamic") or {}
    for key in ("window", "stride", "count"):
        if dyn_old and dyn_new and dyn_old.get(key) != dyn_new.get(key):
            bits.append(f"--{key} {dyn_old[key]}")
    return " ".join(bits) or "the same options as before"


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
            raise CacheError(
                f"{path} was built with other settings ({describe(attrs.get('preprocessing'))}); this run would use "
                f"{describe(settings.preprocessing())}; rerun with {options_to_keep(attrs.get('preprocessing'), settings.preprocessing())} "
                f"to keep it, or pass --restart to rebuild it (the feature caches extracted from it then go stale)"
            )
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
            part = part_path(parts, source)
            if error or source not in wanted or stamps.get(source) != stamp or part.exists():
                continue
            try:
                arrays = {kind: f[kind]["data"][np.flatnonzero(row_sources[kind] == source)] for kind in settings.kinds}
            except OSError:  # a damaged row (checksum or codec): this video is computed again
                continue
            write_video_part(part, source, stamp, int(frames), arrays)
            seeded += 1
    return seeded


def start_parts(out: Path, dataset: FolderDataset, samples, stamps, settings: PrepareSettings, old_attrs, restart: bool) -> list[tuple]:
    """Create, clear or check the parts folder, seed it from an old file of the same settings,
    and list the videos still to compute (run by one rank; the others wait for it)."""
    parts = parts_folder(out)
    open_parts(parts, settings.preprocessing(), restart=restart, what="prepare", describe=describe)
    if old_attrs is not None and not restart:
        seeded = seed_parts_from_final(out, parts, samples, stamps, settings)
        if seeded:
            console.print(f"reusing {seeded} videos from the existing {out.name}")
    return pending_jobs(dataset, samples, stamps, parts, settings)


def pending_jobs(dataset: FolderDataset, samples, stamps, parts: Path, settings: PrepareSettings) -> list[tuple]:
    """(path, source, stamp, part) of every video without a finished part, in dataset order."""
    jobs = []
    for s in samples:
        part = part_path(parts, s.path)
        if not (part.exists() and read_video_part(part, s.path, stamps[s.path], settings.kinds, arrays=False) is not None):
            jobs.append((str(dataset.path(s)), s.path, stamps[s.path], str(part)))
    return jobs
