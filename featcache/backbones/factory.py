"""The backbone factory: ``create_backbone(name, modality=, weights=)`` over the registry
(:mod:`featcache.backbones.registry`), loading ImageNet weights, a plain state dict or a
featcache checkpoint; ``default_backbone`` picks resnet50 when its weights are here."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from featcache.backbones import efficientnet_lite0, resnet50, timm_backbone  # noqa: F401  (register them)
from featcache.backbones.base import Backbone
from featcache.backbones.checkpoint import check_checkpoint, is_checkpoint
from featcache.backbones.registry import get_backbone_class, list_backbones
from featcache.backbones.weights import load_weights_file, sha256_file
from featcache.cache.schema import MODALITIES
from featcache.errors import FeatcacheError

RANDOM_WEIGHTS_SEED = 0  # weights="random": the same network in every process

__all__ = ["create_backbone", "default_backbone", "list_backbones"]

OFFLINE_BACKBONE = "efficientnet-lite0"


def default_backbone() -> str:
    """resnet50 (the paper's) when its ImageNet weights are on this machine, else the offline one."""
    try:
        resnet50.ResNet50.locate_default_weights(download=False)
        return "resnet50"
    except FeatcacheError:
        return OFFLINE_BACKBONE


def create_backbone(
    name: str, *, modality: str = "still", weights: str | os.PathLike | None = None, num_classes: int = 0
) -> Backbone:
    """Build backbone ``name`` for ``modality`` with ``weights`` (see module doc).

    ``num_classes=0`` keeps whatever head a featcache checkpoint has (none otherwise);
    ``num_classes=C`` gives a head for C classes (the checkpoint's if it has C, else a fresh one).
    """
    if modality not in MODALITIES:
        raise FeatcacheError(f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}")
    if weights is not None and str(weights) == "random":
        # Seeded: every process (each torchrun rank, each rerun) builds the same network; the caller's RNG is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            model = get_backbone_class(name)(modality=modality)
            model.adapt_input_channels()
    else:
        model = get_backbone_class(name)(modality=modality)
        path = Path(weights).expanduser() if weights is not None else model.locate_default_weights()
        state = load_weights_file(path)
        if is_checkpoint(state):
            _load_featcache_checkpoint(model, check_checkpoint(state, path), path)
        else:
            _load_plain_state_dict(model, state, path)
            model.weights_source = "ImageNet, " + path.name if weights is None else str(path)
        model.weights_id = sha256_file(path)
        model.weights_path = str(path.resolve())
    if num_classes and num_classes != model.num_classes:
        model.reset_head(num_classes)
    return model


def _load_plain_state_dict(model: Backbone, state: dict, path: Path) -> None:
    """An RGB state dict of the network (e.g. torchvision's file); flow widens conv1 after."""
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        model.load_pretrained(state)
    except (ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0]
        raise FeatcacheError(f"{path}: weights do not fit backbone {model.name} ({reason})") from None
    model.adapt_input_channels()


def _load_featcache_checkpoint(model: Backbone, ckpt: dict, path: Path) -> None:
    if ckpt["backbone"] != model.name:
        raise FeatcacheError(f"{path}: checkpoint is for backbone {ckpt['backbone']!r}, not {model.name!r}; pass --backbone {ckpt['backbone']}")
    saved_channels = int(ckpt["in_channels"])
    if saved_channels not in (3, model.in_channels):
        raise FeatcacheError(
            f"{path}: checkpoint takes {saved_channels}-channel input ({ckpt['modality']}), "
            f"modality {model.modality} needs {model.in_channels}"
        )
    if saved_channels != 3:
        model.adapt_input_channels()  # shapes must match before loading
    model.reset_head(int(ckpt["num_classes"]))
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        raise FeatcacheError(f"{path}: checkpoint state does not fit {model.name} ({str(exc).splitlines()[0]})") from None
    model.adapt_input_channels()  # an RGB checkpoint used for flow: cross-modality averaging
    model.classes = list(ckpt["classes"]) if model.num_classes else None
    model.weights_source = f"featcache checkpoint {path}"
