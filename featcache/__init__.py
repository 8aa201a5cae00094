"""featcache: Temporal-to-Still Image Learning (T2SIL) as a two-stage feature-cache system.

Data flows one way: files -> representations -> features in HDF5 -> heads -> reports.
This package holds stage 1 (datasets, temporal representations, backbones, the cache).

From Python: ``from featcache import prepare_dataset, extract_features, open_cache, read_temporal``
(see :mod:`featcache.api`); stage 2 is ``from heads import fit_head, fit_grid``.
"""

from typing import TYPE_CHECKING

from featcache.utils.lazy import lazy_names

__version__ = "0.1.0"  # the one version source: pyproject.toml reads it (dynamic version)

# The Python API of stage 1, imported on first use so ``import featcache`` stays light
# (the command line imports it for every command). Stage 2 is ``heads``.
_API = {
    "open_cache": "featcache.api", "prepare_dataset": "featcache.api", "extract_features": "featcache.api",
    "FeatureCache": "featcache.cache.feature_cache", "SplitData": "featcache.cache.feature_cache",
    "find_cache": "featcache.cache.feature_cache", "read_temporal": "featcache.cache.temporal_cache",
    "TemporalSet": "featcache.cache.temporal_cache", "PrepareSettings": "featcache.representations.prepare_settings",
    "PrepareReport": "featcache.representations.prepare_settings",
    "ExtractSettings": "featcache.extraction.extract_settings", "ExtractReport": "featcache.extraction.extract",
    "resolve_device": "featcache.utils.device", "FeatcacheError": "featcache.errors",
}
__all__ = ["__version__", *_API]

if TYPE_CHECKING:  # what static type checkers see behind the lazy names
    from featcache.api import extract_features, open_cache, prepare_dataset
    from featcache.utils.device import resolve_device
    from featcache.errors import FeatcacheError
    from featcache.extraction.extract import ExtractReport
    from featcache.extraction.extract_settings import ExtractSettings
    from featcache.cache.feature_cache import FeatureCache, SplitData, find_cache
    from featcache.cache.temporal_cache import TemporalSet, read_temporal
    from featcache.representations.prepare_settings import PrepareReport, PrepareSettings


__getattr__, __dir__ = lazy_names('featcache', _API, globals())
