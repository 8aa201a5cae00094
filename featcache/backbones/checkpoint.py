"""featcache backbone checkpoints: plain dicts, loadable by ``create_backbone(weights=PATH)``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from featcache.backbones.weights import load_weights_file
from featcache.errors import FeatcacheError
from featcache.cache.schema import backbone_file_tag
from featcache.utils.atomic import save_torch

CHECKPOINT_FORMAT = "featcache-backbone"
CHECKPOINT_KEYS = ("format", "backbone", "modality", "in_channels", "num_classes", "classes", "state_dict", "extra")


def model_path(cache_dir: str | os.PathLike, modality: str, backbone: str) -> Path:
    """Where a fine-tuned model lives by default: ``<cache>/models/<modality>-<backbone>.pt``."""
    return Path(cache_dir) / "models" / f"{modality}-{backbone_file_tag(backbone)}.pt"


def save_checkpoint(path: str | os.PathLike, backbone, *, classes: list[str], modality: str, extra: dict | None = None) -> Path:
    """Write ``backbone`` (trunk + head) as a plain dict, atomically."""
    if backbone.num_classes and len(classes) != backbone.num_classes:
        raise ValueError(f"{len(classes)} class names for a head with {backbone.num_classes} outputs")
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "backbone": backbone.name,
        "modality": modality,
        "in_channels": backbone.in_channels,
        "num_classes": backbone.num_classes,
        "classes": list(classes),
        "state_dict": {k: v.detach().cpu() for k, v in backbone.state_dict().items()},
        "extra": dict(extra or {}),
    }
    return save_torch(checkpoint, path, "backbone checkpoint")


def is_checkpoint(state: dict) -> bool:
    return state.get("format") == CHECKPOINT_FORMAT


def check_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise FeatcacheError(f"{path}: featcache checkpoint without {', '.join(missing)}; file is damaged or too old")
    return state


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint dict at ``path``, checked for the featcache format."""
    state = load_weights_file(path)
    if not is_checkpoint(state):
        raise FeatcacheError(f"{path}: not a featcache backbone checkpoint (format != {CHECKPOINT_FORMAT!r})")
    return check_checkpoint(state, path)
