"""User-facing errors. The CLI prints them as one line on stderr, never a traceback."""


class FeatcacheError(Exception):
    """Something the user can fix: a wrong path, a broken file, an incompatible cache."""


class DatasetError(FeatcacheError):
    """A dataset folder does not follow the folder layout."""


class CacheError(FeatcacheError):
    """An HDF5 cache is missing, unfinished, or was built with other settings."""


class MediaError(FeatcacheError):
    """An image or video cannot be decoded (corrupt, empty, too short)."""
