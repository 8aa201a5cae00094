"""Any timm model as a backbone: ``--backbone timm:<model_name>`` (e.g. ``timm:convnext_tiny``).

The network comes from ``timm.create_model(name, pretrained=False, num_classes=0, in_chans=C)``
(C = 20 for flow stacks), so timm never downloads anything; its weights come from a local
``--weights`` file (``.safetensors`` or ``.pth``, an RGB state dict: the first conv is widened for
flow by cross-modality averaging, as for the built-ins). The model's own pretrained config gives
its input size, crop fraction, interpolation and mean/std (:meth:`data_config`), which the
extractor uses and records in the cache's ``preprocessing``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from featcache.backbones.base import Backbone
from featcache.backbones.registry import register_backbone_family
from featcache.errors import FeatcacheError

TIMM_PREFIX = "timm:"
SUPPORTED_INTERPOLATIONS = ("bilinear", "bicubic")  # what the one resize (antialiased) offers


def import_timm():
    try:  # optional (featcache[timm]): only timm backbones need it
        import timm
    except ImportError:
        raise FeatcacheError("timm backbones need the timm package: pip install 'featcache[timm]'") from None
    return timm


class TimmBackbone(Backbone):
    """A timm classification model with its classifier removed (``num_classes=0``)."""

    def __init__(self, model_name: str, *, modality: str = "still", num_classes: int = 0):
        super().__init__(modality=modality)
        timm = import_timm()
        try:
            self.model = timm.create_model(model_name, pretrained=False, num_classes=0, in_chans=self.in_channels)
        except RuntimeError as exc:  # timm: "Unknown model (...)"
            raise FeatcacheError(f"timm:{model_name}: {str(exc).splitlines()[0]}") from None
        self.name = TIMM_PREFIX + model_name
        self.feature_dim = int(self.model.num_features)
        self.timm_config = timm.data.resolve_data_config({}, model=self.model)
        self.set_native_normalization(self.timm_config["mean"], self.timm_config["std"])
        if num_classes:
            self.reset_head(num_classes)

    def trunk_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # num_classes=0: timm's forward ends at the pooled features

    def first_conv_name(self) -> str:
        name = self.model.pretrained_cfg.get("first_conv")
        return name[0] if isinstance(name, (list, tuple)) else name

    def first_conv(self) -> nn.Conv2d:
        return self.model.get_submodule(self.first_conv_name())

    def set_first_conv(self, conv: nn.Conv2d) -> None:
        parent, _, child = self.first_conv_name().rpartition(".")
        setattr(self.model.get_submodule(parent) if parent else self.model, child, conv)

    def data_config(self) -> dict:
        """Crop, short-side resize, interpolation and native mean/std from timm's pretrained config."""
        cfg = self.timm_config
        crop = int(cfg["input_size"][-1])
        interpolation = cfg.get("interpolation", "bilinear")
        return {
            "crop": crop,
            "resize": int(math.floor(crop / float(cfg.get("crop_pct", 0.875)))),
            "interpolation": interpolation if interpolation in SUPPORTED_INTERPOLATIONS else "bilinear",
            "native": {
                "source": f"timm pretrained_cfg of {self.name}",
                "input_size": list(cfg["input_size"]),
                "crop_pct": float(cfg.get("crop_pct", 0.875)),
                "crop_mode": cfg.get("crop_mode", "center"),
                "interpolation": interpolation,
                "mean": [float(v) for v in cfg["mean"]],
                "std": [float(v) for v in cfg["std"]],
            },
        }

    def load_pretrained(self, state_dict: dict) -> None:
        """Load a timm state dict of this architecture (RGB; its classifier is dropped)."""
        classifier = self.model.pretrained_cfg.get("classifier") or ()
        prefixes = tuple(c + "." for c in ([classifier] if isinstance(classifier, str) else classifier))
        trunk = {k: v for k, v in state_dict.items() if not (prefixes and k.startswith(prefixes))}
        key = self.first_conv_name() + ".weight"
        if key in trunk and trunk[key].shape[1] == 3 and self.in_channels != 3:  # RGB weights for flow
            trunk[key] = trunk[key].mean(dim=1, keepdim=True).repeat(1, self.in_channels, 1, 1).contiguous()
        missing, unexpected = self.model.load_state_dict(trunk, strict=False)
        if missing or unexpected:
            raise ValueError(f"not a {self.name} state dict (missing {missing[:3]}, unexpected {unexpected[:3]})")

    def locate_default_weights(self, download: bool = False) -> Path:
        raise FeatcacheError(
            f"{self.name} has no default weights here (nothing is downloaded at run time): pass --weights PATH "
            f"to a local .safetensors/.pth of the model, or --weights random"
        )


register_backbone_family(TIMM_PREFIX, TimmBackbone)
