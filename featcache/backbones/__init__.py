"""Backbones behind one contract, created by name (timm style)::

    backbone = create_backbone("resnet50", modality="flow", weights=None)  # ImageNet, 20-ch conv1
    features = backbone.forward_features(batch)                            # [B, 2048]

``weights``: None -> the backbone's ImageNet weights (resnet50: torch hub cache or download;
efficientnet-lite0: shipped in its package); ``"random"`` -> random initialisation, seeded (the same network in every process: tests);
a path -> a featcache checkpoint (trunk + head for a dataset's classes) or a plain state dict
(``.pth`` or ``.safetensors``). ``timm:<model>`` names any timm model (``pip install featcache[timm]``);
it has no default weights: pass a local file or ``"random"``.
"""

from featcache.backbones.base import Backbone, inflate_first_conv, modality_channels
from featcache.backbones.checkpoint import load_checkpoint, save_checkpoint
from featcache.backbones.factory import OFFLINE_BACKBONE, create_backbone, default_backbone
from featcache.backbones.registry import BackboneConfig, get_config, list_backbones
from featcache.backbones.weights import sha256_file

__all__ = [
    "OFFLINE_BACKBONE",
    "Backbone",
    "BackboneConfig",
    "create_backbone",
    "default_backbone",
    "get_config",
    "inflate_first_conv",
    "list_backbones",
    "load_checkpoint",
    "modality_channels",
    "sha256_file",
    "save_checkpoint",
]
