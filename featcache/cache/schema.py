"""The one definition of featcache's on-disk HDF5 schema (see CONTRACT.md).

Feature caches: ``<cache>/<modality>-<backbone>.h5`` with row datasets ``features``,
``labels``, ``split``, ``source``, ``instance`` and optional ``logits``.
Temporal representations: ``<cache>/temporal.h5`` with one group per kind
(``/dynamic``, ``/flow``), each holding ``data`` and the same row datasets.

Every file is written under a temporary name (:func:`featcache.utils.atomic.atomic_path`) and
renamed into place only when finished, and carries ``complete = True`` only then, so a half-written file is never read as done.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from featcache.errors import CacheError

SCHEMA_VERSION = "1"

SPLITS = ("train", "val", "test")
SPLIT_CODE = {name: code for code, name in enumerate(SPLITS)}
VIDEO_SPLITS = ("train", "val", "test")  # val optional: carved from train when absent

MODALITIES = ("still", "dynamic", "flow")
KEYFRAMES = "keyframes"  # a still-backbone cache of videos' key frames (Baseline 2), same schema
FEATURE_CACHE_KINDS = (*MODALITIES, KEYFRAMES)
TEMPORAL_KINDS = ("dynamic", "flow")
FLOW_STACK = 10  # x/y flow pairs per stack -> 20 channels
FLOW_CHANNELS = 2 * FLOW_STACK
FLOW_BOUND = 20.0  # flow clipped to +-FLOW_BOUND before mapping to 0..255

STRING_DTYPE = h5py.string_dtype("utf-8")
# Row datasets every cache and every temporal group has, with their dtypes.
ROW_FIELDS = {"labels": np.int64, "split": np.int8, "source": STRING_DTYPE, "instance": np.int32}
# Root attributes stored as JSON text.
JSON_ATTRS = ("preprocessing", "classes", "video_split", "input")

TEMPORAL_FILE = "temporal.h5"
# Every numeric dataset carries checksums: block sums of BLOCK_ROWS rows in /checksums (feature caches,
# row datasets), HDF5's Fletcher-32 on temporal.h5's row chunks. False: only benchmarks/checksums.py sets
# it, to time the same writes without them.
CHECKSUMS = True
CHECKSUM_GROUP = "checksums"
BLOCK_ROWS = 256
RAW_PIECE_BYTES = 8 << 20  # a checked read's pieces: few hand-offs to the summing thread, each still in L3


def feature_cache_path(cache_dir: str | os.PathLike, modality: str, backbone: str) -> Path:
    """``DIR/<modality>-<backbone>.h5`` (``timm:convnext_tiny`` -> ``still-timm-convnext_tiny.h5``:
    no colon in a file name, which Windows refuses)."""
    if modality not in FEATURE_CACHE_KINDS:
        raise CacheError(f"unknown modality {modality!r}; expected one of {', '.join(FEATURE_CACHE_KINDS)}")
    return Path(cache_dir) / f"{modality}-{backbone_file_tag(backbone)}.h5"


def backbone_file_tag(backbone: str) -> str:
    """A backbone name as it appears in file names (``timm:resnet18`` -> ``timm-resnet18``)."""
    return backbone.replace(":", "-")


def temporal_cache_path(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / TEMPORAL_FILE


def write_root_attrs(f: h5py.File, **attrs: Any) -> None:
    """Set root attributes; dicts and lists are stored as JSON, ``version`` always set."""
    f.attrs["version"] = SCHEMA_VERSION
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, (dict, list, tuple)):
            value = json.dumps(value, sort_keys=isinstance(value, dict))
        f.attrs[key] = value
    if "complete" not in f.attrs:
        f.attrs["complete"] = False


def read_root_attrs(f: h5py.File) -> dict[str, Any]:
    """Root attributes as Python values, JSON attributes decoded."""
    out: dict[str, Any] = {}
    for key, value in f.attrs.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if isinstance(value, np.generic):
            value = value.item()
        if key in JSON_ATTRS and isinstance(value, str):
            value = json.loads(value)
        out[key] = value
    return out


def is_complete(f: h5py.File) -> bool:
    return bool(f.attrs.get("complete", False))


def mark_complete(f: h5py.File) -> None:
    f.attrs["complete"] = True


def checksum_filter() -> bool:
    """Whether new datasets get checksums (:data:`CHECKSUMS`): ``temporal.h5``'s row data through
    HDF5's Fletcher-32 filter, every other numeric dataset through :func:`write_checksums`."""
    return CHECKSUMS


def block_checksums(array: np.ndarray, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """One uint64 per ``block_rows`` rows: the sum, wrapping at 2**64, of the block's bytes read as
    little-endian 64-bit words (zero-padded). Any change within one word (every flipped bit or byte,
    any torn sector but for a 2**-64 chance) changes it; it runs at memory speed (a Fletcher-32
    filter doubles a feature cache's load time, benchmarks/checksums.py)."""
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    block_bytes = block_rows * (data.size // len(array) if len(array) else 0)
    full = data.size // block_bytes if block_bytes else 0
    out = np.empty(-(-len(array) // block_rows), dtype=np.uint64)
    if full and block_bytes % 8 == 0:  # whole words a block: one vectorised pass over the full blocks
        out[:full] = data[: full * block_bytes].view("<u8").reshape(full, -1).sum(axis=1, dtype=np.uint64)
    else:
        full = 0
    for b in range(full, len(out)):  # the short last block (zero-padded), or blocks of odd byte counts
        block = data[b * block_bytes : (b + 1) * block_bytes]
        out[b] = np.concatenate([block, np.zeros(-len(block) % 8, np.uint8)]).view("<u8").sum(dtype=np.uint64)
    return out


def _checksum_key(dataset: h5py.Dataset) -> str:
    return dataset.name.strip("/").replace("/", ".")


def write_checksums(dataset: h5py.Dataset) -> None:
    """Store the block checksums of a finished ``dataset`` in ``/checksums/<name>`` (read back
    ``64 * BLOCK_ROWS`` rows at a time); every read by :func:`read_checked` verifies them. Call it
    again after changing a dataset in place (e.g. relabelled rows): it replaces them."""
    if not CHECKSUMS or not dataset.shape or dataset.dtype.kind not in "iuf":
        return
    step = 64 * BLOCK_ROWS
    sums = [block_checksums(dataset[s : s + step]) for s in range(0, dataset.shape[0], step)]
    group = dataset.file.require_group(CHECKSUM_GROUP)
    if _checksum_key(dataset) in group:
        del group[_checksum_key(dataset)]
    stored = group.create_dataset(
        _checksum_key(dataset), data=np.concatenate(sums) if sums else np.zeros(0, np.uint64))
    stored.attrs["block_rows"] = BLOCK_ROWS


def stored_checksums(dataset: h5py.Dataset) -> tuple[np.ndarray, int] | None:
    """(block checksums, rows per block) of ``dataset``, or None when it has none of its own.
    Read through h5py's low-level calls: a third of the high-level ones' cost, paid on every read."""
    try:
        stored = h5py.h5d.open(dataset.file.id, f"/{CHECKSUM_GROUP}/{_checksum_key(dataset)}".encode())
    except KeyError:
        return None
    sums = np.empty(stored.shape, np.uint64)
    stored.read(h5py.h5s.ALL, h5py.h5s.ALL, sums)
    block_rows = np.empty((), np.int64)
    h5py.h5a.open(stored, b"block_rows").read(block_rows)
    return sums, int(block_rows)


def write_rows(group: h5py.Group, *, labels, split, source, instance) -> None:
    """Write the four row datasets (labels, split, source, instance) into ``group``; the numeric
    ones checksummed (a string dataset's text lives on HDF5's heap, where no checksum reaches)."""
    values = {"labels": labels, "split": split, "source": source, "instance": instance}
    for name, dtype in ROW_FIELDS.items():
        data = values[name]
        if dtype is STRING_DTYPE:
            group.create_dataset(name, data=np.array([str(s) for s in data], dtype=object), dtype=dtype)
        else:
            write_checksums(group.create_dataset(name, data=np.asarray(data, dtype=dtype), dtype=dtype))


def has_checksums(dataset: h5py.Dataset) -> bool:
    return bool(dataset.fletcher32) or stored_checksums(dataset) is not None


def rebuild_hint(f: h5py.File) -> str:
    """How to write ``f`` again: the command that made it, with ``--restart``."""
    modality = f.attrs.get("modality", "")
    modality = modality.decode() if isinstance(modality, bytes) else str(modality)
    command = {"temporal": "prepare", KEYFRAMES: "keyframes"}.get(modality, "extract")
    return f"rerun featcache {command} with --restart to write it again"


_NOTICED: set[str] = set()


def notice_unchecked(dataset: h5py.Dataset, stored: tuple | None = None) -> None:
    """One line on stderr, once per file, when ``dataset`` carries no checksums (written by an older featcache)."""
    path = dataset.file.filename
    if path in _NOTICED or dataset.dtype.kind not in "iuf" or dataset.size == 0 or dataset.fletcher32 or stored:
        return
    if stored is None and stored_checksums(dataset) is not None:
        return
    _NOTICED.add(path)
    print(f"note: {path} has no checksums (written by an older featcache), so damage in it cannot be detected; "
          f"{rebuild_hint(dataset.file)} with them", file=sys.stderr)


def _mismatches(data: np.ndarray, sums: np.ndarray, block_rows: int, first_block: int = 0) -> list[tuple[int, int]]:
    found = block_checksums(data, block_rows)
    bad = np.flatnonzero(found != sums[first_block : first_block + len(found)])
    start = first_block * block_rows
    return [(start + b * block_rows, min(start + (b + 1) * block_rows, start + len(data))) for b in bad]


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in ranges:
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def damaged_rows(dataset: h5py.Dataset) -> list[tuple[int, int]]:
    """The ``[start, stop)`` row ranges of ``dataset`` that fail a checksum (its own block sums, or
    HDF5's Fletcher-32/gzip on a chunk), read a block or chunk at a time."""
    n = dataset.shape[0] if dataset.shape else 0
    stored = stored_checksums(dataset)
    step = stored[1] if stored else dataset.chunks[0] if dataset.chunks else max(n, 1)
    bad: list[tuple[int, int]] = []
    for block, start in enumerate(range(0, n, step)):
        stop = min(start + step, n)
        try:
            data = dataset[start:stop]
        except OSError:
            bad.append((start, stop))
            continue
        if stored:
            bad += _mismatches(data, stored[0], step, block)
    return _merge(bad)


def damage_error(dataset: h5py.Dataset, rows: list[tuple[int, int]]) -> CacheError:
    """The one-line error of a dataset that fails its checksum: the file, the dataset, the rows."""
    shown = ", ".join(f"{a}-{b - 1}" if b - a > 1 else str(a) for a, b in rows[:6]) + (", ..." if len(rows) > 6 else "")
    count = sum(b - a for a, b in rows)
    return CacheError(f"{dataset.file.filename}: dataset {dataset.name} rows {shown or '?'} ({count} of "
                      f"{dataset.shape[0]}) fail their checksum: the file is damaged on disk; {rebuild_hint(dataset.file)}")


def _read_raw_checked(dataset: h5py.Dataset, sums: np.ndarray, block_rows: int) -> np.ndarray | None:
    """A contiguous, unfiltered ``dataset`` read straight from its file about 8 MiB at a time, each
    piece summed by a helper thread while the next one is read: where a second core is free the sums
    cost no wall time (benchmarks/checksums.py). None when the layout does not allow it or any sum
    differs: the caller then reads through HDF5 and names the damaged rows, so a wrong offset can
    never pass as data."""
    offset = dataset.id.get_offset()
    if offset is None or dataset.chunks or not dataset.dtype.isnative or not dataset.shape[0]:
        return None
    out = np.empty(dataset.shape, dataset.dtype)
    flat = out.reshape(-1).view(np.uint8)
    row_bytes = flat.size // len(out)
    step = block_rows * max(1, RAW_PIECE_BYTES // max(1, block_rows * row_bytes))
    found = np.empty(-(-len(out) // block_rows), np.uint64)
    pieces = [(start, min(start + step, len(out))) for start in range(0, len(out), step)]
    summed: list[int] = []

    def check(start: int, stop: int) -> None:
        found[start // block_rows : -(-stop // block_rows)] = block_checksums(out[start:stop], block_rows)
        summed.append(start)

    # A plain thread fed by a SimpleQueue: a pool's futures cost about 40 us a piece, a third of what
    # the sums themselves cost. A dataset of one piece is summed inline.
    ready: queue.SimpleQueue = queue.SimpleQueue()

    def sum_pieces() -> None:
        for start, stop in iter(ready.get, None):
            check(start, stop)

    summer = threading.Thread(target=sum_pieces, daemon=True) if len(pieces) > 1 else None
    if summer:
        summer.start()
    try:
        with open(dataset.file.filename, "rb", buffering=0) as raw:
            raw.seek(offset)
            for start, stop in pieces:
                if raw.readinto(flat[start * row_bytes : stop * row_bytes]) != (stop - start) * row_bytes:
                    return None
                if summer:
                    ready.put((start, stop))
                else:
                    check(start, stop)
    finally:
        if summer:
            ready.put(None)
            summer.join()
    return out if len(summed) == len(pieces) and np.array_equal(found, sums) else None


def read_checked(dataset: h5py.Dataset, index: Any = ()) -> np.ndarray:
    """``dataset[index]`` (all of it by default), its checksums verified as it is read; a mismatch
    raises :func:`damage_error` naming the file, the dataset and the damaged rows."""
    stored = stored_checksums(dataset) if index == () or not dataset.fletcher32 else None
    notice_unchecked(dataset, stored or ())
    # The direct read pays for itself on large data only; small datasets read through HDF5, then are summed.
    direct = index == () and stored is not None and dataset.nbytes > RAW_PIECE_BYTES
    if direct and (data := _read_raw_checked(dataset, *stored)) is not None:
        return data
    try:
        data = dataset[index]
    except OSError:  # HDF5's Fletcher-32 (or gzip) refused a chunk
        rows = damaged_rows(dataset) if index == () else [(int(index), int(index) + 1)] if np.ndim(index) == 0 else []
        raise damage_error(dataset, rows) from None
    if index == () and stored is not None and (bad := _mismatches(data, *stored)):
        raise damage_error(dataset, _merge(bad))
    return data


def read_rows(group: h5py.Group) -> dict[str, np.ndarray]:
    """The four row datasets of ``group`` as numpy arrays (``source`` as str objects)."""
    rows = {name: read_checked(group[name]) for name in ROW_FIELDS}
    rows["source"] = np.array(
        [s.decode("utf-8") if isinstance(s, bytes) else s for s in rows["source"]], dtype=object
    )
    return rows


def open_complete(path: str | os.PathLike, *, what: str = "cache") -> h5py.File:
    """Open a finished HDF5 file read-only, or raise a one-line CacheError saying why not."""
    path = Path(path)
    if not path.exists():
        raise CacheError(f"{what} not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CacheError(f"{what} is not a readable HDF5 file: {path} ({exc})") from None
    if not is_complete(f):
        f.close()
        raise CacheError(f"{what} is unfinished (complete != true): {path}; rerun the command that writes it")
    return f
