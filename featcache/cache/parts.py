"""The one resumable-parts mechanism of ``prepare``, ``extract`` and ``keyframes``.

A long run writes each finished unit of work (a video, a shard of rows) as one ``.npz`` file
in ``<final file>.parts/``, atomically, beside a marker file (``settings.json``) holding
the settings the parts were made with. A killed run (kill -9 included) resumes from the parts
it finds; parts of other settings are never mixed in: the run stops with one line naming the
folder, and ``restart`` discards them. When the final file is assembled the folder goes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from featcache.errors import CacheError
from featcache.utils.atomic import atomic_path, writing

PARTS_SUFFIX = ".parts"
SETTINGS_FILE = "settings.json"


def parts_folder(final: str | os.PathLike) -> Path:
    """``<final>.parts``: where the parts of ``final`` wait to be assembled."""
    final = Path(final)
    return final.with_name(final.name + PARTS_SUFFIX)


def part_path(folder: Path, key: str) -> Path:
    """The part of one unit of work named by ``key`` (a video's source path): a short hash."""
    return folder / (hashlib.sha1(key.encode("utf-8")).hexdigest()[:20] + ".npz")


def open_parts(
    folder: Path,
    settings: dict[str, Any],
    *,
    restart: bool = False,
    what: str = "run",
    marker: str = SETTINGS_FILE,
    describe: Callable[[dict | None], str] | None = None,
) -> None:
    """Create ``folder`` for parts of ``settings``, or check that the parts in it are of them.

    ``restart`` discards what is there first. Parts of other settings raise a one-line
    :class:`CacheError` (``what`` names the run, ``describe`` renders settings in it).
    """
    marker_file = folder / marker
    wanted = json.loads(json.dumps(settings))  # tuples -> lists, as read back
    if folder.exists() and (restart or not any(folder.iterdir())):  # an empty folder: killed before its marker
        shutil.rmtree(folder)
    if folder.exists():
        try:
            found = json.loads(marker_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = None
        if found != wanted:
            detail = f" ({describe(found)}; now {describe(wanted)})" if describe else ""
            raise CacheError(
                f"{folder} holds an unfinished {what} with other settings{detail}; rerun with the same "
                "settings to resume, or pass --restart to discard it"
            )
        return
    with writing("parts folder", folder):
        folder.mkdir(parents=True)
    with atomic_path(marker_file, "parts marker") as tmp:
        tmp.write_text(json.dumps(wanted, indent=1, sort_keys=True), encoding="utf-8")


def keeping_parts(final: str | os.PathLike, unit: str):
    """The outer :func:`~featcache.utils.atomic.writing` block of a resumable run writing ``final``:
    a write failure says how many finished parts (``unit``: videos, shards) ``<final>.parts`` keeps."""
    folder = parts_folder(final)

    def kept() -> str:
        done = len(list(folder.glob("*.npz"))) if folder.is_dir() else 0
        return f"{done} finished {unit} kept in {folder}" if done else f"no finished {unit} yet"

    return writing(kept=kept, resume="rerun the same command to resume")


def discard_parts(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def write_part(path: Path, arrays: dict[str, Any], *, compressed: bool = False) -> None:
    """One finished unit of work as an ``.npz`` of plain arrays, atomically and synced to disk."""
    save = np.savez_compressed if compressed else np.savez
    with atomic_path(path, "part") as tmp:
        with open(tmp, "wb") as fh:  # a file object keeps numpy from appending ".npz"
            save(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())


def read_part(path: Path, names: Iterable[str] | None = None, require: Iterable[str] = ()) -> dict[str, np.ndarray] | None:
    """The arrays ``names`` (all when None) of a part, or None when it is missing, torn,
    unreadable (pickled objects included: never unpickled) or lacks one of ``require``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if any(name not in npz.files for name in require):
                return None
            return {name: npz[name] for name in (npz.files if names is None else names)}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
