"""The head methods: the built-in ones registered (as :mod:`featcache.backbones.factory` does for
backbones), and what the rest of the code asks of the registry: names, records, defaults, the
stacked shape, the ``--help`` defaults table and the report's transfer methods."""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Sequence

from featcache.cache.schema import TEMPORAL_KINDS
from featcache.errors import FeatcacheError
from heads.training import classifier  # noqa: F401  (registers the built-in methods, in this order)
from heads.training import gan  # noqa: F401
from heads.training import embedding  # noqa: F401
from heads.training.config import DIMRED_DEFAULTS, STILL_DEFAULTS
from heads.training.registry import HeadMethod, registered_method, registered_methods
from heads.training.resolve import resolve, resolve_grid
from heads.training.settings import KEYS, key


def get_method(name: str) -> HeadMethod:
    """The record of head method ``name``; FeatcacheError listing the registered ones."""
    return registered_method(name)


def list_methods() -> list[str]:
    """The names of the registered head methods, in registration order."""
    return [m.name for m in registered_methods()]


def transfer_methods() -> list[HeadMethod]:
    """The methods that derive a stream from the temporal knowledge (those with a report label)."""
    return [m for m in registered_methods() if m.label is not None]


def default_config(method: str, temporal: str) -> dict[str, Any]:
    """The paper's defaults for ``method`` on temporal modality ``temporal``: the still model's and
    the dim-reduction network's, then the method's own, then its per-modality ones."""
    record = get_method(method)
    if temporal not in TEMPORAL_KINDS:
        raise FeatcacheError(f"unknown temporal modality {temporal!r}; expected one of {', '.join(TEMPORAL_KINDS)}")
    config = {**STILL_DEFAULTS, **DIMRED_DEFAULTS, **record.defaults, **record.temporal_defaults.get(temporal, {})}
    for name, value in config.items():
        key(name).check(value)  # a default outside its own range is a bug of the record
    return config


def shape_keys(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys of ``config`` that fix the stacked model's shape or its number of steps."""
    return tuple(k for k in config if KEYS[k].shape)


def shape_key(method: str, config: Mapping[str, Any]) -> tuple:
    """What configurations trained together in one stacked group must share."""
    return (method, *((k, config[k]) for k in shape_keys(config)))


def default_columns() -> list[tuple[str, str | None]]:
    """``(method, temporal)`` per column of the defaults table: one column per method, one per
    modality for a method whose defaults differ by modality."""
    columns: list[tuple[str, str | None]] = []
    for record in registered_methods():
        kinds = [t for t in TEMPORAL_KINDS if record.temporal_defaults.get(t)]
        columns += [(record.name, t) for t in kinds] if kinds else [(record.name, None)]
    return columns


def defaults_table() -> str:
    """Every ``--set`` key with its default per method (and modality where they differ)."""
    columns = default_columns()
    configs = [default_config(method, temporal or TEMPORAL_KINDS[0]) for method, temporal in columns]
    keys = list(dict.fromkeys(k for c in configs for k in c))
    header = ["key", *(method if temporal is None else f"{method} {temporal}" for method, temporal in columns)]
    rows = [[k, *("-" if k not in c else str(c[k]) for c in configs)] for k in keys]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])


def methods_help() -> str:
    """``name: help`` of every method, for the CLI."""
    return "; ".join(f"{m.name}: {m.help}" for m in registered_methods()) + "."


def head_config(method: str, temporal: str, *, config_file: str | os.PathLike | None = None,
                values: Mapping[str, Any] | None = None, sets: Iterable[str] = ()) -> dict[str, Any]:
    """A head's settings: :func:`heads.training.resolve.resolve` over ``method``'s defaults on ``temporal``."""
    return resolve(default_config(method, temporal), f"train-head {method}", config_file=config_file,
                   values=values, sets=sets)


def head_grid(method: str, temporal: str, *, config_file: str | os.PathLike | None = None,
              grid: Mapping[str, Sequence[Any]] | None = None, sets: Iterable[str] = ()):
    """A grid's configurations and varied keys: :func:`heads.training.resolve.resolve_grid` over ``method``'s defaults."""
    return resolve_grid(default_config(method, temporal), f"grid {method}", config_file=config_file,
                        grid=grid, sets=sets)
