"""featcache: Temporal-to-Still Image Learning (T2SIL) as a two-stage feature-cache system.

Data flows one way: files -> representations -> features in HDF5 -> heads -> reports.
This package holds stage 1 (datasets, temporal representations, backbones, the cache).
"""

__version__ = "0.1.0"  # the one version source: pyproject.toml reads it (dynamic version)
