"""Stage 2 of featcache: heads trained on cached features (classifiers, GAN, triplet
embedding), evaluation and fusion, grids, the teacher-student network, and reports.

Data flows one way: heads read feature caches written by :mod:`featcache`; nothing in
:mod:`featcache` imports from here.

From Python: ``from heads import fit_head, fit_grid`` (see :mod:`heads.api`); ``load_run(RUN)`` applies a
trained run to new images (see :mod:`heads.inference.loaded_run`).
"""

from typing import TYPE_CHECKING

from featcache.utils.lazy import lazy_names

# The Python API of stage 2, imported on first use (torch is heavy).
_API = {
    "fit_head": "heads.api", "fit_grid": "heads.api", "HeadRun": "heads.api", "GridResult": "heads.api",
    "resolve_head_config": "heads.api", "default_config": "heads.training.methods", "HeadData": "heads.training.head_data",
    "list_methods": "heads.training.methods", "HeadMethod": "heads.training.registry",
    "register_head_method": "heads.training.registry",
    "History": "heads.evaluation.history", "read_history": "heads.evaluation.history", "read_metrics": "heads.evaluation.metrics",
    "load_run": "heads.inference.loaded_run", "LoadedRun": "heads.inference.loaded_run",
}
__all__ = list(_API)

if TYPE_CHECKING:  # what static type checkers see behind the lazy names
    from heads.api import GridResult, HeadRun, fit_grid, fit_head, resolve_head_config
    from heads.training.methods import default_config, list_methods
    from heads.training.registry import HeadMethod, register_head_method
    from heads.evaluation.metrics import read_metrics
    from heads.training.head_data import HeadData
    from heads.evaluation.history import History, read_history
    from heads.inference.loaded_run import LoadedRun, load_run


__getattr__, __dir__ = lazy_names('heads', _API, globals())
