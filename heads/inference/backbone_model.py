"""Runs whose model is a whole network (a featcache-backbone checkpoint): a fine-tuned backbone
(``featcache finetune``: Resnet-Still on stills; Resnet-Dyn/-Opt on videos, through their dynamic images
or flow stacks) and the teacher-student network (``featcache tsn``), applied as their training evaluated
them (centre crop at the run's crop/resize, the fine-tuning engine's
:func:`heads.finetune.engine.evaluate`, softmax).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from featcache.backbones import create_backbone, load_checkpoint, sha256_file
from featcache.backbones.preprocessing import build_transform
from featcache.errors import FeatcacheError
from featcache.extraction.image_features import check_image
from featcache.representations.prepare_settings import PrepareSettings
from featcache.representations.prepare_video import video_representations
from heads.evaluation.metrics import softmax
from heads.finetune import engine

EVAL_BATCH = 32


def verified_model_path(path: str | os.PathLike, sha256: str | None, where: str) -> Path:
    """``path`` when it exists and (if one is recorded) has the recorded sha256; one-line FeatcacheError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FeatcacheError(f"{where}: its model {path} is missing; put it back where it was")
    if sha256:
        actual = sha256_file(path)
        if actual != sha256:
            raise FeatcacheError(f"{path}: sha256 {actual[:12]} differs from {sha256[:12]} recorded by {where}; "
                                 "this is not the model the run trained or evaluated")
    return path


class BackboneModel:
    """A featcache-backbone checkpoint with its head, ready to score still images."""

    def __init__(self, path: str | os.PathLike, device: torch.device, *, sha256: str | None = None,
                 where: str | None = None):
        self.path = verified_model_path(path, sha256, where or str(path))
        self.checkpoint = load_checkpoint(self.path)
        self.modality = self.checkpoint["modality"]
        self.classes = [str(c) for c in self.checkpoint["classes"]]
        if not self.checkpoint["num_classes"]:
            raise FeatcacheError(f"{self.path}: a backbone without a classification head; it labels nothing")
        model = create_backbone(self.checkpoint["backbone"], modality=self.modality, weights=self.path)
        self.device = device
        self.model = engine.prepare_model(model, device, channels_last=True).eval()

    def transform(self, crop: int, resize: int):
        return build_transform(self.modality, train=False, crop=int(crop), resize=int(resize))

    def probabilities(self, inputs: torch.Tensor) -> torch.Tensor:
        """Softmax ``[N, C]`` (CPU) of preprocessed inputs ``[N, C_in, crop, crop]``."""
        if not len(inputs):
            return torch.zeros(0, len(self.classes))
        loader = DataLoader(TensorDataset(inputs, torch.zeros(len(inputs))), batch_size=EVAL_BATCH, shuffle=False)
        with torch.no_grad():
            logits = engine.evaluate(self.model, loader, self.device, amp=self.device.type == "cuda", channels_last=True)
        return softmax(logits)


def preprocess(transform, images: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` images -> ``[N, 3, crop, crop]`` through the run's centre-crop transform."""
    if not len(images):
        return torch.zeros(0, 3, transform.crop, transform.crop)
    return torch.stack([transform(check_image(image, i)) for i, image in enumerate(images)])


def video_probabilities(model: BackboneModel, transform, settings, videos: Sequence) -> torch.Tensor:
    """A temporal model's softmax ``[N, C]`` of videos: the mean over each video's dynamic images or flow
    stacks, made as ``prepare`` made the training ones (``settings``: the recorded ``PrepareSettings``)."""
    rows = []
    for video in videos:
        instances = video_representations(Path(video), settings, model.modality)
        rows.append(model.probabilities(torch.stack([transform(x) for x in instances])).mean(0))
    return torch.stack(rows) if rows else torch.zeros(0, len(model.classes))


def video_settings(extra: dict[str, Any], where: str) -> PrepareSettings:
    """The ``prepare`` settings a temporal model's inputs were made with (its checkpoint's ``extra``)."""
    pre = extra.get("temporal_preprocessing") or {}
    try:
        return PrepareSettings.from_preprocessing(pre)
    except (FeatcacheError, KeyError, TypeError) as exc:
        raise FeatcacheError(f"{where}: records no usable temporal preprocessing ({exc}); fine-tune it again "
                             "to label videos with it") from None


def tsn_still_model(extra: dict[str, Any], config: dict[str, Any]) -> tuple[str, str | None]:
    """Path and sha256 of a TSN run's still model (the student's starting point, its still stream)."""
    recorded = extra.get("still_model") or {}
    path = recorded.get("path") or config.get("student")
    if not path:
        raise FeatcacheError("the TSN run records no still model (config 'student'); rerun featcache tsn")
    return path, recorded.get("sha256") or config.get("student_weights")
