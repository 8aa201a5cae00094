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


def write_rows(group: h5py.Group, *, labels, split, source, instance) -> None:
    """Write the four row datasets (labels, split, source, instance) into ``group``."""
    values = {"labels": labels, "split": split, "source": source, "instance": instance}
    for name, dtype in ROW_FIELDS.items():
        data = values[name]
        if dtype is STRING_DTYPE:
            data = np.array([str(s) for s in data], dtype=object)
        else:
            data = np.asarray(data, dtype=dtype)
        group.create_dataset(name, data=data, dtype=dtype)


def read_rows(group: h5py.Group) -> dict[str, np.ndarray]:
    """The four row datasets of ``group`` as numpy arrays (``source`` as str objects)."""
    rows = {name: group[name][()] for name in ROW_FIELDS}
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
