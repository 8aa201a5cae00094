"""ResNet-50 (the paper's backbone): torchvision's network, pool5 = the 2048-d global average pool."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet50

from featcache.backbones.base import IMAGENET_MEAN, IMAGENET_STD, Backbone
from featcache.backbones.registry import BackboneConfig, register_backbone
from featcache.backbones.weights import download_to_hub_cache, find_in_hub_cache, hub_checkpoint_dir
from featcache.errors import FeatcacheError

# torchvision's ResNet50_Weights.IMAGENET1K_V1 (the classic one) and IMAGENET1K_V2.
RESNET50_URLS = (
    "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
)
RESNET50_FILES = tuple(Path(url).name for url in RESNET50_URLS)


@register_backbone(
    BackboneConfig(
        name="resnet50",
        feature_dim=2048,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        weights="torchvision ImageNet (IMAGENET1K_V1, else V2) from --weights, the torch hub cache or a download",
        offline=False,
    )
)
class ResNet50(Backbone):
    def __init__(self, *, modality: str = "still", num_classes: int = 0):
        super().__init__(modality=modality, num_classes=num_classes)
        self.model = resnet50(weights=None)
        self.model.fc = nn.Identity()  # the ImageNet head is not a head for our classes

    def trunk_features(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
        return m.avgpool(x)

    def first_conv(self) -> nn.Conv2d:
        return self.model.conv1

    def set_first_conv(self, conv: nn.Conv2d) -> None:
        self.model.conv1 = conv

    def load_pretrained(self, state_dict: dict) -> None:
        """Load a torchvision ResNet-50 state dict (its fc is dropped)."""
        trunk = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
        missing, unexpected = self.model.load_state_dict(trunk, strict=False)
        if missing or unexpected:
            raise ValueError(f"not a ResNet-50 state dict (missing {missing[:3]}, unexpected {unexpected[:3]})")

    @staticmethod
    def locate_default_weights(download: bool = True) -> Path:
        """The ImageNet weights file: hub cache first, then a download; else a clear error."""
        path = find_in_hub_cache(RESNET50_FILES)
        if path is None and download:
            path = download_to_hub_cache(RESNET50_URLS[0])
        if path is None:
            raise FeatcacheError(
                f"ResNet-50 ImageNet weights not found (looked for {' or '.join(RESNET50_FILES)} in "
                f"{hub_checkpoint_dir()}, download failed); pass --weights PATH to a torchvision resnet50 .pth, "
                f"or use the offline backbone: --backbone efficientnet-lite0"
            )
        return path
