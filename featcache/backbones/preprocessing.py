"""The one preprocessing of each modality (the paper's, section 4):

- still and dynamic images: resize the short side to ``resize`` (256), crop ``crop`` (224):
  centre crop at extraction, random crop + horizontal flip for training and augmented views;
  then ImageNet mean/std.
- optical-flow stacks (uint8 ``[H, W, 20]``, channels x1, y1, x2, y2, ...): same resize and
  crops, one crop/flip for the whole stack; flipping mirrors the fields and negates x
  (``256 - x`` on the uint8 scale, so that ``(x - 128) / 128`` changes sign exactly and zero
  flow, 128, stays zero); centred at 128: ``(x - 128) / 128``.

``build_transform(...)`` returns a callable ``transform(image, generator=None)``; pass a seeded
``torch.Generator`` for reproducible random views.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from featcache.backbones.base import IMAGENET_MEAN, IMAGENET_STD, modality_channels
from featcache.cache.schema import MODALITIES

FLOW_CENTER = 128.0
FLOW_SCALE = 128.0
INTERPOLATIONS = ("bilinear", "bicubic")  # antialiased resizes F.interpolate offers


def preprocessing_config(modality: str, *, crop: int = 224, resize: int = 256, interpolation: str = "bilinear", **extra) -> dict:
    """What a cache records about how its inputs were made (root attribute ``preprocessing``)."""
    _check(modality, crop, resize, interpolation)
    config = {
        "modality": modality,
        "resize_short_side": int(resize),
        "crop": int(crop),
        "interpolation": f"{interpolation}, antialiased",
        "eval": "center crop",
        "train": "random crop + horizontal flip",
    }
    if modality == "flow":
        config.update(input="(x - 128) / 128 on uint8 flow", channels=modality_channels(modality),
                      flip="mirror stack, x -> 256 - x", center=FLOW_CENTER, scale=FLOW_SCALE)
    else:
        config.update(input="x / 255, ImageNet mean/std", mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))
    config.update(extra)
    return config


def _check(modality: str, crop: int, resize: int, interpolation: str = "bilinear") -> None:
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; expected one of {', '.join(INTERPOLATIONS)}")
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}")
    if not 0 < crop <= resize:
        raise ValueError(f"crop ({crop}) must be positive and at most resize ({resize})")


class Transform:
    """uint8 ``[H, W, C]`` array -> normalised float tensor ``[C, crop, crop]``."""

    def __init__(self, modality: str, *, train: bool, crop: int = 224, resize: int = 256, interpolation: str = "bilinear"):
        _check(modality, crop, resize, interpolation)
        self.modality, self.train, self.crop, self.resize = modality, train, int(crop), int(resize)
        self.interpolation = interpolation
        self.channels = modality_channels(modality)
        if modality == "flow":
            self.mean = torch.full((self.channels, 1, 1), FLOW_CENTER)
            self.std = torch.full((self.channels, 1, 1), FLOW_SCALE)
        else:  # normalise 0..255 directly: (x/255 - m)/s = (x - 255 m)/(255 s)
            self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1) * 255.0
            self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1) * 255.0

    def __call__(self, image: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        image = np.asarray(image)
        if not image.flags.writeable:  # h5py/PIL buffers may be read-only; torch wants to own one
            image = image.copy()
        if image.ndim != 3 or image.shape[2] != self.channels:
            raise ValueError(f"{self.modality} input must be [H, W, {self.channels}], got {list(image.shape)}")
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
        x = resize_short_side(x, self.resize, self.interpolation)
        if self.train:
            top, left, flip = random_crop_params(x.shape[1:], self.crop, generator)
        else:
            (top, left), flip = center_crop_params(x.shape[1:], self.crop), False
        x = x[:, top : top + self.crop, left : left + self.crop]
        if flip:
            x = hflip(x, flow=self.modality == "flow")
        return ((x - self.mean) / self.std).contiguous()

    def __repr__(self) -> str:
        return f"Transform({self.modality!r}, train={self.train}, crop={self.crop}, resize={self.resize})"


def build_transform(modality: str, *, train: bool, crop: int = 224, resize: int = 256, interpolation: str = "bilinear") -> Transform:
    return Transform(modality, train=train, crop=crop, resize=resize, interpolation=interpolation)


def transform_from_config(config: dict) -> Transform:
    """The centre-crop transform a cache's recorded ``preprocessing`` (:func:`preprocessing_config`)
    describes: how its view 0 was made, for computing features of new images the same way."""
    interpolation = str(config.get("interpolation", "bilinear")).split(",")[0].strip()
    return build_transform(config["modality"], train=False, crop=int(config["crop"]),
                           resize=int(config["resize_short_side"]), interpolation=interpolation)


def resize_short_side(x: torch.Tensor, size: int, interpolation: str = "bilinear") -> torch.Tensor:
    """Resize float ``[C, H, W]`` so that min(H, W) == size, keeping the aspect ratio."""
    h, w = x.shape[1:]
    if min(h, w) == size:
        return x
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    out = F.interpolate(x[None], size=(new_h, new_w), mode=interpolation, align_corners=False, antialias=True)
    return out[0].clamp_(0.0, 255.0)


def center_crop_params(hw, crop: int) -> tuple[int, int]:
    h, w = hw
    return (h - crop) // 2, (w - crop) // 2


def random_crop_params(hw, crop: int, generator: torch.Generator | None) -> tuple[int, int, bool]:
    h, w = hw
    top = int(torch.randint(0, h - crop + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - crop + 1, (1,), generator=generator))
    flip = bool(torch.rand(1, generator=generator) < 0.5)
    return top, left, flip


def hflip(x: torch.Tensor, *, flow: bool) -> torch.Tensor:
    """Mirror ``[C, H, W]``; for a flow stack the x components (even channels) change sign
    about the zero-flow level 128 (``256 - x``: exact in the normalised ``(x - 128) / 128``)."""
    x = torch.flip(x, dims=[2])
    if flow:
        x[0::2] = 2.0 * FLOW_CENTER - x[0::2]
    return x
