"""Features of new images, computed as a feature cache computed its rows (``featcache predict``,
``heads.load_run``): the cache's backbone with the very weights it recorded (their sha256), its
recorded preprocessing (view 0: the centre crop), the extractor's forward pass and its feature dtype::

    features = ImageFeatures(cache.record(), device="cpu")   # FeatureCache.record(), or a run's copy
    x, logits = features(images)      # uint8 [H, W, 3] arrays -> float32 [N, D] (logits [N, C] or None)

``featcache extract`` runs the same :func:`backbone_outputs` on the same :func:`prepare_backbone`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from featcache.backbones import create_backbone
from featcache.backbones.preprocessing import transform_from_config
from featcache.backbones.registry import get_backbone_class
from featcache.backbones.weights import sha256_file
from featcache.errors import FeatcacheError, MediaError
from featcache.utils.device import resolve_device


def default_batch_size(device: torch.device) -> int:
    """64 on CUDA and 4 on the CPU: on a 2-core CPU, batches of 4 in channels_last ran ~2x faster
    per image than batches of 32 (memory-bound activations)."""
    return 64 if device.type == "cuda" else 4


def prepare_backbone(backbone, device: torch.device):
    """Eval mode on ``device``; channels_last on the CPU too: ~1.5x faster per image here than contiguous."""
    return backbone.eval().to(device).to(memory_format=torch.channels_last)


def backbone_outputs(backbone, x: torch.Tensor, device: torch.device, logits: bool):
    """Pooled features ``[B, D]`` (and class scores ``[B, C]`` when ``logits``) of a preprocessed batch
    ``[B, C, H, W]``, float32 on the CPU; CUDA runs under float16 autocast."""
    x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda"):
        features = backbone.forward_features(x)
        scores = backbone.forward_head(features) if logits else None
    return features.float().cpu(), None if scores is None else scores.float().cpu()


def default_weights_path(backbone: str) -> Path | None:
    """Where ``backbone``'s default (ImageNet) weights are on this machine, without downloading; None if nowhere."""
    locate = getattr(get_backbone_class(backbone), "locate_default_weights", None)
    if locate is None:
        return None
    try:
        return Path(locate(download=False))
    except (FeatcacheError, TypeError):
        return None


def locate_weights(record: dict[str, Any], search: Iterable[str | os.PathLike] = ()) -> Path:
    """The weights file whose sha256 is the one ``record`` (a cache's record) holds: its recorded
    ``weights_path``, then ``search``, then the backbone's default weights. One-line FeatcacheError
    when the weights were random, are nowhere, or every candidate differs from the recorded sha256."""
    expected, name, where = str(record.get("weights") or ""), record["backbone"], record.get("path", "the cache")
    if expected in ("", "random"):
        raise FeatcacheError(f"{where}: its features came from randomly initialised {name} weights that were "
                             "never saved, so new images cannot be featurised the same way; extract with --weights FILE")
    candidates: list[Path] = []
    for path in (record.get("weights_path"), *search, default_weights_path(name)):
        if path and Path(path) not in candidates:
            candidates.append(Path(path))
    differing = []
    for path in candidates:
        if path.is_file():
            actual = sha256_file(path)
            if actual == expected:
                return path
            differing.append((path, actual))
    if differing:
        path, actual = differing[0]
        raise FeatcacheError(f"{path}: sha256 {actual[:12]} differs from {expected[:12]} recorded by {where}; "
                             f"these are not the weights its {name} features came from")
    recorded = record.get("weights_path") or "no path recorded"
    raise FeatcacheError(f"weights of {name} for {where} not found ({recorded}; sha256 {expected[:12]}); "
                         "put the file back where it was")


def check_image(image: Any, index: int) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise MediaError(f"image {index}: expected a uint8 [H, W, 3] RGB array, got {array.dtype} {list(array.shape)}")
    return array


class ImageFeatures:
    """A feature cache's backbone, weights and preprocessing, applied to new images."""

    def __init__(self, record: dict[str, Any], device: str | torch.device = "cpu",
                 search: Iterable[str | os.PathLike] = ()):
        self.record = dict(record)
        self.weights = locate_weights(record, search)
        self.device = resolve_device(device)
        backbone = create_backbone(record["backbone"], modality=record["modality"], weights=self.weights)
        self.logits = bool(record.get("logits"))
        if self.logits and backbone.head is None:
            raise FeatcacheError(f"{self.weights}: no classification head, but {record.get('path')} holds logits")
        self.backbone = prepare_backbone(backbone, self.device)
        self.transform = transform_from_config(record["preprocessing"])
        self.dtype = np.dtype(record.get("dtype") or "float32")
        self.batch_size = default_batch_size(self.device)

    @property
    def feature_dim(self) -> int:
        return int(self.backbone.feature_dim)

    @torch.inference_mode()
    def __call__(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features ``[N, D]`` float32 (rounded through the cache's dtype, as stored) and logits
        ``[N, C]`` float32 (None when the cache has none) of uint8 ``[H, W, 3]`` RGB images."""
        features, scores = [], []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            x = torch.stack([self.transform(check_image(im, start + i)) for i, im in enumerate(chunk)])
            f, s = backbone_outputs(self.backbone, x, self.device, self.logits)
            features.append(f)
            scores.append(s)
        if not features:
            return torch.zeros(0, self.feature_dim), None
        stored = torch.cat(features).numpy().astype(self.dtype).astype(np.float32)
        return torch.from_numpy(stored), torch.cat(scores) if self.logits else None
