"""A feature cache's lineage: the identity of the input it was computed from, recorded by
``featcache extract`` in the cache's ``input`` attribute and checked on every read.

- temporal modalities (``dynamic``, ``flow``): the ``temporal.h5`` group that was read, by its
  settings (the group's ``preprocessing``) and a checksum of its content (``content_sha256``,
  computed once by ``prepare`` while it writes the group: every row's data, label, split and source);
- stills (and key frames): the files read, by a digest of their paths, sizes and mtimes.

A reader compares the recorded input with what is there now (``temporal.h5`` next to the cache,
the files under the recorded dataset root) and refuses a stale cache with one line
(:class:`StaleCacheError`); when the input is not there to compare with, the cache opens as is.
Caches made before lineage existed open with a one-line notice.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np

from featcache.cache.schema import TEMPORAL_FILE, is_complete
from featcache.errors import CacheError
from featcache.utils.progress import console

INPUT_ATTR = "input"  # root attribute of a feature cache (JSON)
CONTENT_ATTR = "content_sha256"  # attribute of each temporal.h5 group
COMPARED = {"temporal": ("kind", "preprocessing", CONTENT_ATTR), "files": ("files_sha256",), "synthetic": ()}

_noticed: set[str] = set()  # caches without lineage already noted in this process


class StaleCacheError(CacheError):
    """A feature cache whose input (temporal.h5 or the image files) changed after it was extracted."""


def hash_rows(h: "hashlib._Hash", block: np.ndarray, source: str, label: int, split: int) -> None:
    """Add one video's rows of a temporal group to its content checksum (the writer's one call)."""
    h.update(f"{source}\t{label}\t{split}\t{len(block)}\n".encode("utf-8"))
    h.update(np.ascontiguousarray(block).tobytes())


def temporal_input(temporal_path: str | os.PathLike, kind: str, root: str | os.PathLike | None) -> dict[str, Any]:
    """The identity of ``temporal.h5``'s ``kind`` group (a file written before lineage: no checksum)."""
    with h5py.File(temporal_path, "r") as f:
        attrs = f[kind].attrs
        pre = attrs.get("preprocessing", "{}")
        checksum = attrs.get(CONTENT_ATTR)
    return {
        "from": "temporal", "file": TEMPORAL_FILE, "kind": kind, "root": _root(root),
        "preprocessing": json.loads(pre.decode() if isinstance(pre, bytes) else pre),
        CONTENT_ATTR: None if checksum is None else str(checksum),
    }


def files_input(root: str | os.PathLike, sources: Iterable[str]) -> dict[str, Any]:
    """The identity of the files under ``root`` that a cache reads: paths, sizes and mtimes."""
    names = sorted(set(sources))
    return {"from": "files", "root": _root(root), "files": len(names), "files_sha256": files_digest(Path(root), names)}


def files_digest(root: Path, names: list[str]) -> str:
    h = hashlib.sha256()
    for name in names:
        try:
            stat = (root / name).stat()
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{name}\t{stamp}\n".encode("utf-8"))
    return h.hexdigest()


def same_input(recorded: dict[str, Any], current: dict[str, Any]) -> bool:
    if recorded.get("from") != current.get("from"):
        return False
    return all(recorded.get(key) == current.get(key) for key in COMPARED.get(recorded.get("from"), ()))


def describe_input(inp: dict[str, Any]) -> str:
    if inp.get("from") == "temporal":
        pre = inp.get("preprocessing") or {}
        size = "x".join(str(v) for v in pre.get("size", [])) or "?"
        rest = " ".join(f"{k}={v}" for k, v in sorted(pre.items()) if k not in ("size", "tvl1"))
        checksum = (inp.get(CONTENT_ATTR) or "none recorded")[:12]
        return f"{inp.get('file')} /{inp.get('kind')} (size={size} {rest}, content {checksum})"
    if inp.get("from") == "files":
        return f"{inp.get('files')} files under {inp.get('root')} (sizes/mtimes {str(inp.get('files_sha256'))[:12]})"
    return str(inp.get("from"))


def current_input(cache_path: Path, recorded: dict[str, Any], sources: Iterable[str]) -> dict[str, Any] | None:
    """What the recorded input is now, or None when it is not here to compare with."""
    if recorded.get("from") == "temporal":
        temporal = cache_path.parent / str(recorded.get("file", TEMPORAL_FILE))
        try:
            with h5py.File(temporal, "r") as f:
                if not is_complete(f):
                    return None
                if recorded.get("kind") not in f:
                    return {"from": "temporal", "file": temporal.name, "kind": "(no such group)", "preprocessing": {}}
        except OSError:
            return None
        return temporal_input(temporal, str(recorded["kind"]), recorded.get("root"))
    if recorded.get("from") == "files" and recorded.get("root") and Path(recorded["root"]).is_dir():
        return files_input(recorded["root"], sources)
    return None


def stale_message(cache_path: Path, recorded: dict[str, Any], current: dict[str, Any], modality: str, cache_dir: str | None = None) -> str:
    root = recorded.get("root") or "ROOT"
    cache = f" --cache {cache_dir}" if cache_dir is not None else f" --cache {cache_path.parent}"
    return (
        f"{cache_path} is stale: extracted from {describe_input(recorded)}, which now holds {describe_input(current)}; "
        f"extract it again: featcache extract {root} --modality {modality}{cache} --restart"
    )


def check_input(cache_path: Path, attrs: dict[str, Any], sources: Iterable[str]) -> None:
    """Refuse a stale cache (one line); note once that a cache without lineage cannot be checked."""
    recorded = attrs.get(INPUT_ATTR)
    if not isinstance(recorded, dict):
        if str(cache_path) not in _noticed:
            _noticed.add(str(cache_path))
            console.print(f"[yellow]note:[/] {cache_path} records no input lineage (extracted before it was recorded): "
                          f"it cannot be checked against its input; extract it again with --restart to record it",
                          highlight=False, soft_wrap=True)
        return
    current = current_input(cache_path, recorded, sources)
    if current is not None and not same_input(recorded, current):
        raise StaleCacheError(stale_message(cache_path, recorded, current, str(attrs.get("modality", "?"))))


def _root(root: str | os.PathLike | None) -> str | None:
    return None if root is None else str(Path(root).resolve())
