"""Registry of head methods (timm style, as :mod:`featcache.backbones.registry` for backbones).

A method is one record, registered in the module that defines it::

    register_head_method(HeadMethod(name="gan", fit=fit_gan, help="adversarial (3.1)", label="GAN",
                                    defaults={"d2": 256, ...}, keys=(positive_int("d2", shape=True), ...)))

Every head trains the still model and the dim-reduction network first (their keys are in every
configuration); ``fit(data, configs, device, phases, still, dimred)`` then trains the method's own
parts for G stacked configurations and returns ``(derived, parts, epochs)``: the derived stream's
softmax per split (``{"val": [G, N, C], "test": ...}``, or None for a method without one), the
trained modules by name (saved in ``model.pt`` under ``state``) and the selected epoch per member.
:mod:`heads.training.methods` imports the built-in methods and answers for the registry
(``get_method``, ``list_methods``, ``default_config``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from featcache.errors import FeatcacheError
from heads.training.settings import Key, declare


@dataclass(frozen=True)
class HeadMethod:
    """A head method: its name, fit function and settings.

    ``defaults``: its settings beyond the still model's and the dim-reduction network's (every key
    declared in :mod:`heads.training.settings` or in ``keys``); ``temporal_defaults``: values that
    differ per temporal modality (``{"flow": {...}, "dynamic": {...}}``); ``keys``: the settings
    keys only this method uses, with their type and range; ``help``: one line for the CLI;
    ``label``: its name in the report's tables (None: not a transfer method, e.g. the classifier);
    ``load_predictor(checkpoint)``: rebuilds, from a ``model.pt`` dict, the module that maps still
    features ``[N, D]`` to the derived stream's logits ``[N, C]`` (None: no derived stream).
    """

    name: str
    fit: Callable[..., tuple[Any, dict, list[int]]]
    help: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    temporal_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    keys: tuple[Key, ...] = ()
    label: str | None = None
    load_predictor: Callable[[Mapping[str, Any]], Any] | None = None


_METHODS: dict[str, HeadMethod] = {}


def register_head_method(method: HeadMethod) -> HeadMethod:
    """Add ``method`` (its ``keys`` join the settings table); registering a name twice is an error."""
    if method.name in _METHODS and _METHODS[method.name] is not method:
        raise ValueError(f"head method {method.name!r} is already registered")
    declare(*method.keys)
    _METHODS[method.name] = method
    return method


def unregister_head_method(name: str) -> None:
    """Remove a method (tests that register one of their own)."""
    _METHODS.pop(name, None)


def registered_method(name: str) -> HeadMethod:
    try:
        return _METHODS[name]
    except KeyError:
        raise FeatcacheError(f"unknown head method {name!r}; expected one of {', '.join(_METHODS)}") from None


def registered_methods() -> list[HeadMethod]:
    """The registered methods, in registration order."""
    return list(_METHODS.values())
