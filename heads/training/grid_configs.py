"""Expanding a grid: every combination of ``--set KEY=V1,V2,...`` (and a ``--config`` file's lists)
over a head's defaults, each value parsed and range-checked like ``train-head --set``."""

from __future__ import annotations

import itertools
import os
from typing import Any, Iterable

from featcache.errors import FeatcacheError


def parse_grid_sets(method: str, temporal: str, assignments: Iterable[str]) -> dict[str, list[Any]]:
    """``["lr=1e-3,5e-4", "alpha=0.5,1"]`` -> ``{"lr": [0.001, 0.0005], "alpha": [0.5, 1.0]}``,
    each value parsed and range-checked like ``train-head --set``."""
    from heads.training.config import default_config, parse_value, split_assignment

    defaults = default_config(method, temporal)
    values: dict[str, list[Any]] = {}
    for item in assignments or ():
        key, text = split_assignment(item, defaults, method, values_list=True)
        if key in values:
            raise FeatcacheError(f"--set {key}: given twice; list every value in one --set {key}=V1,V2,...")
        parsed = [parse_value(key, part, defaults[key]) for part in text.split(",") if part.strip()]
        values[key] = list(dict.fromkeys(parsed))  # drop repeats, keep order
    return values


def expand_grid(method: str, temporal: str, assignments: Iterable[str],
                config_file: str | os.PathLike | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every combination of the ``--set`` lists over the method's defaults (cartesian
    product, the first key varying slowest), and the keys that vary. A ``config_file``
    (``--config``) sets keys first: a single value fixes a key, a list varies it; ``--set``
    wins over it."""
    from heads.training.config import default_config

    base, values = file_grid(method, temporal, config_file) if config_file else (default_config(method, temporal), {})
    values.update(parse_grid_sets(method, temporal, assignments))
    configs = [{**base, **dict(zip(values, combo))} for combo in itertools.product(*values.values())]
    return configs, [k for k, v in values.items() if len(v) > 1] or list(values)


def file_grid(method: str, temporal: str, path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A config file's single values applied to the defaults, and its lists: ``(base, {key: values})``."""
    from heads.training.config import config_value, default_config, read_config_items

    base = default_config(method, temporal)
    values: dict[str, list[Any]] = {}
    for key, value in read_config_items(path, base, method):
        if isinstance(value, list):
            values[key] = list(dict.fromkeys(config_value(key, v, base[key], str(path)) for v in value))
        else:
            base[key] = config_value(key, value, base[key], str(path))
    return base, values
