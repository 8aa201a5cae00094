"""The one atomic file write: a temporary sibling renamed into place only when finished.

A crash (kill -9 included) leaves at most a ``<name>.<pid>.tmp`` file, never a half-written
file under the final name; :func:`remove_stale_temporaries` clears those of dead processes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Delete ``<path>.<pid>.tmp`` files left by a killed run (their pid is gone)."""
    path = Path(path)
    for tmp in path.parent.glob(path.name + ".*.tmp"):
        try:
            pid = int(tmp.name[len(path.name) + 1 : -len(".tmp")])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError):
            continue
