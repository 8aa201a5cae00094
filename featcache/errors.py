"""User-facing errors. The CLI prints them as one line on stderr, never a traceback."""


class FeatcacheError(Exception):
    """Something the user can fix: a wrong path, a broken file, an incompatible cache."""


class DatasetError(FeatcacheError):
    """A dataset folder does not follow the folder layout."""


class CacheError(FeatcacheError):
    """An HDF5 cache is missing, unfinished, or was built with other settings."""


class MediaError(FeatcacheError):
    """An image or video cannot be decoded (corrupt, empty, too short)."""


class WriteError(FeatcacheError):
    """A file could not be written: no space, a read-only file system, no permission, over quota.

    Its one line says what was being written and where, why, what was kept and how to resume;
    :func:`featcache.utils.atomic.writing` builds it from the ``OSError`` (the one translation).
    """

    def __init__(self, what: str, path: str, reason: str, fix: str, kept: str | None = None, resume: str | None = None):
        super().__init__(what, path, reason)
        self.what, self.path, self.reason, self.fix = what, path, reason, fix
        self.kept, self.resume = kept, resume

    def __reduce__(self):  # rebuilt whole when it crosses from a worker process
        return type(self), (self.what, self.path, self.reason, self.fix, self.kept, self.resume)

    def __str__(self) -> str:
        kept = self.kept or "finished work is kept"
        resume = self.resume or "rerun the same command to resume"
        return f"could not write {self.what} {self.path}: {self.reason}; {kept}; {self.fix}, then {resume}"
