"""The backbone contract every feature extractor follows (timm style).

A :class:`Backbone` maps a normalised batch ``[B, C, H, W]`` to pooled features ``[B, D]``
(``forward_features``) and, when it has a head for a dataset's classes, features to class
scores ``[B, C]`` (``forward_head``). Subclasses only provide ``trunk_features`` (the
network up to its global pool) and ``first_conv`` (so flow inputs can widen it).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from featcache.cache.schema import FLOW_CHANNELS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def modality_channels(modality: str) -> int:
    """Input channels of a modality: 20 for flow stacks (10 x/y pairs), 3 otherwise."""
    return FLOW_CHANNELS if modality == "flow" else 3


def inflate_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of ``conv`` taking ``in_channels`` inputs, filters set by cross-modality
    averaging (TSN): the mean over the RGB input channels, replicated to every new channel."""
    if conv.in_channels == in_channels:
        return conv
    wide = copy.deepcopy(conv)
    mean = conv.weight.detach().mean(dim=1, keepdim=True)
    wide.weight = nn.Parameter(mean.repeat(1, in_channels, 1, 1).contiguous())
    wide.in_channels = in_channels
    return wide


class Backbone(nn.Module):
    """Base class: pooled features, an optional linear head, and provenance.

    Attributes: ``name`` (registry name), ``feature_dim``, ``in_channels``, ``num_classes``
    (0 = no head), ``modality``, ``weights_id`` (sha256 of the weights file or "random"),
    ``weights_path`` (the absolute path of that file; None for random weights),
    ``weights_source`` (what was loaded, for messages), ``classes`` (the head's class names
    when it came from a featcache checkpoint).
    """

    name: str = ""
    feature_dim: int = 0

    def __init__(self, *, modality: str = "still", num_classes: int = 0):
        super().__init__()
        self.modality = modality
        self.in_channels = modality_channels(modality)
        self.num_classes = 0
        self.head: nn.Linear | None = None
        self.weights_id = "random"
        self.weights_path: str | None = None
        self.weights_source = "random initialisation"
        self.classes: list[str] | None = None
        self._renormalize = False
        if num_classes:
            self.reset_head(num_classes)

    def set_native_normalization(self, mean, std) -> None:
        """Inputs arrive normalised with ImageNet mean/std (featcache.backbones.preprocessing, the one
        definition per modality); a backbone trained with other statistics converts them
        here: x_native = (x * std_in + mean_in - mean) / std. Flow inputs are left alone."""
        if self.modality == "flow" or (tuple(mean), tuple(std)) == (IMAGENET_MEAN, IMAGENET_STD):
            return
        std_in, mean_in = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
        mean, std = torch.tensor(mean), torch.tensor(std)
        self.register_buffer("input_scale", (std_in / std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_shift", ((mean_in - mean) / std).view(1, 3, 1, 1), persistent=False)
        self._renormalize = True

    # -- what subclasses provide ------------------------------------------------
    def trunk_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def first_conv(self) -> nn.Conv2d:
        raise NotImplementedError

    def set_first_conv(self, conv: nn.Conv2d) -> None:
        raise NotImplementedError

    def data_config(self) -> dict:
        """The input this backbone expects: ``crop``, short-side ``resize``, ``interpolation``
        (and ``native``, a model's own pretrained config, for timm models). Built-ins take
        featcache's one preprocessing, the paper's."""
        return {"crop": 224, "resize": 256, "interpolation": "bilinear"}

    # -- the contract -----------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[B, feature_dim]`` of a preprocessed batch."""
        if self._renormalize:
            x = x * self.input_scale.to(x.dtype) + self.input_shift.to(x.dtype)
        return torch.flatten(self.trunk_features(x), 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            raise RuntimeError(f"backbone {self.name} has no classification head (num_classes=0)")
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores when there is a head, pooled features otherwise."""
        features = self.forward_features(x)
        return self.forward_head(features) if self.head is not None else features

    def reset_head(self, num_classes: int) -> None:
        """A fresh linear head for ``num_classes`` classes (0 removes it)."""
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.feature_dim, num_classes) if num_classes else None
        self.classes = None

    def adapt_input_channels(self) -> None:
        """Widen the first conv to this modality's channels by cross-modality averaging."""
        conv = self.first_conv()
        if conv.in_channels != self.in_channels:
            self.set_first_conv(inflate_first_conv(conv, self.in_channels))

    def describe(self) -> str:
        head = f", head for {self.num_classes} classes" if self.head is not None else ""
        weights = self.weights_id if self.weights_id == "random" else self.weights_id[:12]
        return f"{self.name} ({self.modality}, {self.feature_dim}-d; weights: {self.weights_source}, sha256 {weights}{head})"
