"""The one settings resolver: defaults < ``--config FILE.yaml`` < Python values < ``--set KEY=VALUE``.

Every value goes through its key's declaration (:mod:`heads.training.settings`) once, as a value:
a ``--set`` text is parsed, a YAML or Python value is converted and checked; nothing is turned back
into ``"k=v"`` text. The valid keys of a command are those of its defaults. ``train-head``, ``grid``,
``baseline``, the oracle and :mod:`heads.api` all resolve here; a grid is the same with lists
(``KEY=V1,V2`` and YAML lists vary a key). The heads' defaults and these calls meet in
:func:`heads.training.methods.head_config` and :func:`~heads.training.methods.head_grid`.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Iterable, Iterator, Mapping, Sequence

from featcache.errors import FeatcacheError
from heads.training.config import read_config_file
from heads.training.settings import KEYS, Key


def split_assignment(item: str, valid: Mapping[str, Any], command: str, *, values_list: bool = False) -> tuple[str, str]:
    """The one ``--set KEY=TEXT`` parser: ``(key, text)`` for a key of ``valid``, else FeatcacheError
    listing the valid keys. ``values_list`` (grids: ``KEY=V1,V2,...``) also refuses an empty TEXT."""
    form = "KEY=V1,V2,..." if values_list else "KEY=VALUE"
    name, sep, text = item.partition("=")
    name = name.strip()
    if not sep or not name or (values_list and not text.strip()):
        raise FeatcacheError(f"--set {item!r}: expected {form}")
    if name not in valid:
        raise FeatcacheError(f"--set {name}: unknown key for {command}; valid keys: {', '.join(sorted(valid))}")
    return name, text


def file_items(path: str | os.PathLike, valid: Mapping[str, Any], command: str) -> Iterator[tuple[str, Any]]:
    """The ``(key, value)`` items of a config file in order, each key one of ``valid`` (else the valid ones are listed)."""
    for name, value in read_config_file(path).items():
        if name not in valid:
            raise FeatcacheError(f"{path}: unknown key {name} for {command}; valid keys: {', '.join(sorted(valid))}")
        yield name, value


def value_items(values: Mapping[str, Any] | None, valid: Mapping[str, Any], command: str) -> Iterator[tuple[str, Any]]:
    """The items of a Python mapping (``fit_head(config=...)``), each key one of ``valid``."""
    for name, value in (values or {}).items():
        if name not in valid:
            raise FeatcacheError(f"config: unknown key {name} for {command}; valid keys: {', '.join(sorted(valid))}")
        yield name, value


def unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))  # drop repeats, keep order


def resolve(defaults: Mapping[str, Any], command: str, *, config_file: str | os.PathLike | None = None,
            values: Mapping[str, Any] | None = None, sets: Iterable[str] = (),
            keys: Mapping[str, Key] = KEYS) -> dict[str, Any]:
    """``defaults``, then the keys of ``config_file`` (a run's ``config.yaml``), then ``values``,
    then the ``KEY=VALUE`` strings (the command line wins); unknown keys list the valid ones.
    ``keys``: the table declaring each key (the heads' by default; fine-tuning and TSN have their own)."""
    key = keys.__getitem__
    config = dict(defaults)
    if config_file is not None:
        for name, value in file_items(config_file, config, command):
            config[name] = key(name).coerce(value, str(config_file))
    for name, value in value_items(values, config, command):
        config[name] = key(name).coerce(value, "config")
    for item in sets or ():
        name, text = split_assignment(item, config, command)
        config[name] = key(name).parse(text)
    return config


def resolve_grid(defaults: Mapping[str, Any], command: str, *, config_file: str | os.PathLike | None = None,
                 grid: Mapping[str, Sequence[Any]] | None = None,
                 sets: Iterable[str] = ()) -> tuple[list[dict[str, Any]], list[str]]:
    """Every combination (cartesian product, the first key varying slowest) of the lists of a grid
    over ``defaults``, and the keys that vary. In order: ``config_file`` (a single value fixes a key, a
    list varies it), ``grid`` (``{key: [values]}``), ``--set KEY=V1,V2,...`` (the command line wins)."""
    key = KEYS.__getitem__
    base, lists = dict(defaults), {}
    if config_file is not None:
        for name, value in file_items(config_file, base, command):
            if isinstance(value, list):
                lists[name] = unique(key(name).coerce(v, str(config_file)) for v in value)
            else:
                base[name] = key(name).coerce(value, str(config_file))
    for name, value in value_items(grid, base, command):
        values = value if isinstance(value, (list, tuple)) else [value]
        lists[name] = unique(key(name).coerce(v, "grid") for v in values)
    given = set()
    for item in sets or ():
        name, text = split_assignment(item, base, command, values_list=True)
        if name in given:
            raise FeatcacheError(f"--set {name}: given twice; list every value in one --set {name}=V1,V2,...")
        given.add(name)
        lists[name] = unique(key(name).parse(part) for part in text.split(",") if part.strip())
    configs = [{**base, **dict(zip(lists, combo))} for combo in itertools.product(*lists.values())]
    return configs, [k for k, v in lists.items() if len(v) > 1] or list(lists)
