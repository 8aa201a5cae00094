"""Registry of named backbones with their pretrained configs (timm style)."""

from __future__ import annotations

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


def get_backbone_class(name: str):
    try:
        return _BUILDERS[name]
    except KeyError:
        raise FeatcacheError(f"unknown backbone {name!r}; choose one of {', '.join(sorted(_BUILDERS))}") from None


def get_config(name: str) -> BackboneConfig:
    get_backbone_class(name)
    return _CONFIGS[name]


def list_backbones() -> list[str]:
    return sorted(_BUILDERS)
