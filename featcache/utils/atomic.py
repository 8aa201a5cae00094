"""The one atomic file write: a temporary sibling renamed into place only when finished,
and the one translation of an OS-level write failure into a one-line :class:`WriteError`.

A crash (kill -9 included) leaves at most a ``<name>.<pid>.tmp`` file, never a half-written
file under the final name; :func:`remove_stale_temporaries` clears those of dead processes.
A full disk, a read-only file system, a permission or a quota refused while writing raise
:class:`featcache.errors.WriteError` (what, where, why, what was kept, how to resume) from
:func:`writing`, which :func:`atomic_path` and each command's outer block share.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path
from typing import Callable, Iterator

from featcache.errors import WriteError

# errno -> (reason, what to do about it)
WRITE_FAILURES = {
    errno.ENOSPC: ("no space left on device", "free space there"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota"),
    errno.EROFS: ("read-only file system", "write to a writable folder"),
    errno.EACCES: ("permission denied", "make the folder writable"),
    errno.EPERM: ("operation not permitted", "make the folder writable"),
}
_H5_ERRNO = re.compile(r"errno = (\d+)")
Text = str | Callable[[], str] | None


def write_failure(exc: BaseException) -> int | None:
    """The errno of ``exc`` when it is a write failure of :data:`WRITE_FAILURES` (h5py's included), else None."""
    if not isinstance(exc, OSError):
        return None
    code = exc.errno if exc.errno in WRITE_FAILURES else None
    if code is None:  # h5py puts the system errno inside its message
        found = _H5_ERRNO.search(str(exc))
        code = int(found.group(1)) if found and int(found.group(1)) in WRITE_FAILURES else None
    return code


def _text(value: Text) -> str | None:
    return value() if callable(value) else value


@contextlib.contextmanager
def writing(what: str | None = None, path: str | os.PathLike | None = None, *,
            kept: Text = None, resume: Text = None) -> Iterator[None]:
    """Turn a write failure inside the block into one :class:`WriteError`.

    The innermost block names ``what`` and ``path``; an outer (command) block adds ``kept`` and
    ``resume`` (strings, or callables evaluated when the failure happens) where they are missing.
    """
    try:
        yield
    except WriteError as exc:
        exc.kept = exc.kept or _text(kept)
        exc.resume = exc.resume or _text(resume)
        raise
    except OSError as exc:
        code = write_failure(exc)
        if code is None:
            raise
        reason, fix = WRITE_FAILURES[code]
        where = exc.filename if path is None and exc.filename else path
        raise WriteError(what or "file", str(where or "?"), reason, fix, _text(kept), _text(resume)) from None


def reserve_space(path: str | os.PathLike, nbytes: int) -> None:
    """Check that ``nbytes`` can be written beside ``path`` (allocated, then released), so a full disk
    stops a write with one line before HDF5 starts it: HDF5 does not recover from a failed write."""
    path = Path(path)
    probe = path.with_name(path.name + f".{os.getpid()}.reserve")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        try:
            os.posix_fallocate(fd, 0, max(int(nbytes), 1))
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            free = os.statvfs(path.parent)
            if free.f_bavail * free.f_frsize < nbytes:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        finally:
            os.close(fd)
    finally:
        probe.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, what: str = "file", *, reserve: int = 0) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds.

    A write failure raises one :class:`WriteError` naming ``what`` and ``path``; ``reserve``
    (bytes) checks first that that much fits (HDF5 writers pass their file's size).
    """
    path = Path(path)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with writing(what, path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if reserve:
                reserve_space(path, reserve)
            yield tmp
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


class _WriteRecorder:
    """A file object for ``torch.save`` that keeps the ``OSError`` of a failed write: torch
    reports it as a RuntimeError of its zip writer, which says nothing of a full disk."""

    def __init__(self, fh):
        self.fh, self.error = fh, None

    def write(self, data) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def save_torch(obj, path: str | os.PathLike, what: str = "checkpoint") -> Path:
    """``torch.save`` atomically and synced to disk, a failed write raised as the ``OSError`` it
    was (so :func:`writing` names it); the one writer of ``torch.save`` files."""
    import torch

    path = Path(path)
    with atomic_path(path, what) as tmp:
        with open(tmp, "wb") as fh:
            recorder = _WriteRecorder(fh)
            try:
                torch.save(obj, recorder)
            except RuntimeError:
                if recorder.error is not None:
                    raise recorder.error from None
                raise
            fh.flush()
            os.fsync(fh.fileno())
    return path


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
