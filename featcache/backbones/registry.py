"""Registry of named backbones with their pretrained configs (timm style)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

from featcache.errors import FeatcacheError


@dataclass(frozen=True)
class BackboneConfig:
    """What a backbone needs and gives: feature size, native input normalisation, weights."""

    name: str
    feature_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: str  # where the default (ImageNet) weights come from, in words
    offline: bool  # default weights ship with an installed package
    extra: dict = field(default_factory=dict)


_BUILDERS: dict[str, Callable] = {}
_CONFIGS: dict[str, BackboneConfig] = {}
_FAMILIES: dict[str, Callable] = {}  # "timm:" -> builder(model_name, modality=...)


def register_backbone(config: BackboneConfig) -> Callable:
    """Class decorator: ``@register_backbone(BackboneConfig(...))``."""

    def wrap(cls):
        _BUILDERS[config.name] = cls
        _CONFIGS[config.name] = config
        cls.name = config.name
        cls.feature_dim = config.feature_dim
        cls.config = config
        return cls

    return wrap


def register_backbone_family(prefix: str, builder: Callable) -> None:
    """Backbones named ``<prefix><model>`` (e.g. ``timm:resnet18``), built by ``builder(model, modality=...)``."""
    _FAMILIES[prefix] = builder


def get_backbone_class(name: str):
    """The builder of backbone ``name``: called as ``builder(modality=...)``."""
    for prefix, builder in _FAMILIES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return functools.partial(builder, name[len(prefix):])
    try:
        return _BUILDERS[name]
    except KeyError:
        families = "".join(f", {p}<model>" for p in sorted(_FAMILIES))
        raise FeatcacheError(f"unknown backbone {name!r}; choose one of {', '.join(sorted(_BUILDERS))}{families}") from None


def get_config(name: str) -> BackboneConfig:
    """The registered config of a built-in backbone (family members describe themselves)."""
    get_backbone_class(name)
    if name not in _CONFIGS:
        raise FeatcacheError(f"{name}: no registered config; its model's own config is Backbone.data_config()")
    return _CONFIGS[name]


def list_backbones() -> list[str]:
    return sorted(_BUILDERS)
