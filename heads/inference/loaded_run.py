"""``heads.load_run(RUN)``: a trained run folder as a predictor of still images::

    from heads import load_run
    run = load_run("runs/gan-dynamic")            # a head, a TSN or a fine-tuning run (or its model file)
    probs = run.predict(["photo.jpg"])            # {stream: [N, C] probabilities}, streams in run.streams
    print(run.classes[int(probs["fused"][0].argmax())])

Heads (``classifier``, ``gan``, ``embed``, the still baselines) featurise images with the still cache's
backbone and weights (verified by sha256; :mod:`featcache.extraction.image_features`) and apply the
rebuilt head (:mod:`heads.inference.head_model`); ``predict_features`` takes cached features directly.
TSN runs score images with their still model and student, fine-tuning runs with their network
(:mod:`heads.inference.backbone_model`); a fine-tuned temporal model (``inputs == "videos"``) labels
videos through the dynamic images or flow stacks ``prepare`` would make of them. ``fused`` and ``fused_calibrated`` are computed as in
training (:func:`heads.evaluation.metrics.fused_streams`, with the run's val-fitted temperatures).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from featcache.backbones.checkpoint import CHECKPOINT_FORMAT as BACKBONE_FORMAT, model_path
from featcache.cache.feature_cache import FeatureCache
from featcache.errors import FeatcacheError
from featcache.extraction.image_features import ImageFeatures, check_image
from featcache.media.images import read_image
from featcache.utils.device import resolve_device
from featcache.utils.safe_load import torch_load
from heads.evaluation.metrics import ALL_STREAMS, METRICS_FILE, fused_streams, read_metrics
from heads.finetune.tsn_seeds import MEMBERS
from heads.inference.backbone_model import (BackboneModel, preprocess, tsn_still_model, video_probabilities,
                                            video_settings)
from heads.inference.head_model import rebuild_head
from heads.training.checkpoint import CHECKPOINT_FORMAT as HEAD_FORMAT, MODEL_FILE
from heads.training.run_dir import read_run_folder

Images = Sequence[Any]  # image paths (str / PathLike) or uint8 [H, W, 3] RGB arrays
VIDEO_STREAM = "temporal"  # a temporal model's stream: its mean softmax over a video's instances


def load_images(images: Images) -> list[np.ndarray]:
    """Paths decoded with :func:`featcache.media.images.read_image` (MediaError naming the file), arrays checked."""
    return [read_image(x) if isinstance(x, (str, os.PathLike)) else check_image(x, i) for i, x in enumerate(images)]


def as_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class LoadedRun:
    """A trained model ready to label stills (``inputs == "images"``) or, a temporal model, videos
    (``inputs == "videos"``). ``classes``: the class names; ``streams``: the streams it predicts
    (``still``, and for transfer methods ``derived``, ``fused``, ``fused_calibrated``; ``temporal``
    for a temporal model: the mean of its softmax over a video's dynamic images or flow stacks)."""

    kind = "run"
    inputs = "images"

    def __init__(self, path: Path, method: str, temporal: str | None, classes: list[str],
                 temperatures: dict[str, float] | None, has_derived: bool):
        self.path, self.method, self.temporal, self.classes = path, method, temporal, list(classes)
        self.temperatures = temperatures
        streams = ["still"] + (["derived", "fused"] if has_derived else [])
        if has_derived and temperatures:
            streams.append("fused_calibrated")
        self.streams = tuple(s for s in ALL_STREAMS if s in streams)

    def predict(self, images: Images) -> dict[str, np.ndarray]:
        """``{stream: probabilities [N, C]}`` of ``images`` (paths or uint8 RGB arrays; a temporal
        model's: video paths)."""
        raise NotImplementedError

    def combine(self, still: torch.Tensor, derived: torch.Tensor | None) -> dict[str, np.ndarray]:
        """Every stream of the run from its still and derived softmaxes, as training computes them."""
        out: dict[str, Any] = {"still": still}
        if derived is not None:
            out["derived"] = derived
            temperatures = self.temperatures or {"still": 1.0, "derived": 1.0}
            out.update(fused_streams(still, derived, temperatures))
        return {name: as_numpy(out[name]) for name in self.streams}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, method={self.method}, streams={list(self.streams)})"


class HeadRunModel(LoadedRun):
    """A head trained on cached features (``train-head``, ``grid``, ``baseline``)."""

    kind = "head"

    def __init__(self, path: Path, checkpoint: dict, device: torch.device):
        self.checkpoint, self.device = checkpoint, device
        self.head = rebuild_head(checkpoint, str(path))
        super().__init__(path, self.head.method, checkpoint.get("temporal"), checkpoint["classes"],
                         run_temperatures(checkpoint, path), self.head.derived is not None)
        self.still_record = checkpoint.get("still_record") or FeatureCache.open(checkpoint["still_cache"]).record()
        self._features: ImageFeatures | None = None

    @property
    def features(self) -> ImageFeatures:
        """The still cache's backbone, weights and preprocessing (loaded on first use)."""
        if self._features is None:
            record = self.still_record
            search = [model_path(Path(record["path"]).parent, "still", record["backbone"])]
            self._features = ImageFeatures(record, self.device, search=search)
        return self._features

    def predict(self, images: Images) -> dict[str, np.ndarray]:
        features, logits = self.features(load_images(images))
        return self.predict_features(features, logits)

    def predict_features(self, features: Any, logits: Any = None) -> dict[str, np.ndarray]:
        """The streams from still features ``[N, D]`` as the still cache holds them (and the backbone's
        logits ``[N, C]`` when the still model is ``logits``)."""
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        expected = self.checkpoint["dims"]["still"]
        if x.dim() != 2 or x.shape[1] != expected:
            raise FeatcacheError(f"{self.path}: expected still features [N, {expected}], got {list(x.shape)}")
        if self.head.still is None:  # still_model=logits: the backbone's own scores
            if logits is None:
                raise FeatcacheError(f"{self.path}: the still model is the backbone's logits; pass them with the features")
            still = torch.as_tensor(np.asarray(logits), dtype=torch.float32).softmax(-1)
        else:
            still = self.head.still(x).softmax(-1)
        derived = None if self.head.derived is None else self.head.derived(x).softmax(-1)
        return self.combine(still, derived)


class BackboneRunModel(LoadedRun):
    """A fine-tuned backbone (its still stream; a temporal one's ``temporal`` stream on videos) or a
    TSN run (still model + student)."""

    kind = "backbone"

    def __init__(self, path: Path, model: BackboneModel, still: BackboneModel | None, info: dict[str, Any]):
        self.model, self.still_model, self.where = model, still, str(path)
        crop, resize = info["crop"], info["resize"]
        self.transform = model.transform(crop, resize)
        super().__init__(path, info["method"], info.get("temporal"), model.classes, info.get("temperatures"),
                         still is not None)
        self.kind = "tsn" if still is not None else "finetune"
        if model.modality != "still":  # Resnet-Dyn / -Opt: labels videos through their representations
            self.inputs, self.streams, self.temporal = "videos", (VIDEO_STREAM,), model.modality

    def predict(self, images: Images) -> dict[str, np.ndarray]:
        if self.inputs == "videos":
            settings = video_settings(self.model.checkpoint.get("extra") or {}, self.where)
            return {VIDEO_STREAM: as_numpy(video_probabilities(self.model, self.transform, settings, images))}
        inputs = preprocess(self.transform, load_images(images))
        if self.still_model is None:
            return self.combine(self.model.probabilities(inputs), None)
        return self.combine(self.still_model.probabilities(inputs), self.model.probabilities(inputs))


def run_temperatures(checkpoint: dict, path: Path) -> dict[str, float] | None:
    """The val-fitted temperatures of ``fused_calibrated``: the checkpoint's, else its metrics.json's (first seed)."""
    found = checkpoint.get("temperatures")
    if found is None:
        folder = path if path.is_dir() else path.parent
        if (folder / METRICS_FILE).is_file():
            metrics = read_metrics(folder)
            found = (metrics.get("per_seed") or [metrics])[0].get("temperatures")
    return dict(found) if found else None


def load_run(path: str | os.PathLike, device: str | torch.device = "auto") -> LoadedRun:
    """The model of run folder ``path`` (or its model file) on ``device``; one-line FeatcacheError when
    it holds none, or its weights are missing or differ from the recorded sha256."""
    path = Path(path)
    torch_device = resolve_device(device)
    if not path.exists():
        raise FeatcacheError(f"{path}: run folder not found")
    if path.is_dir() and (path / METRICS_FILE).is_file():
        read_run_folder(path)  # a damaged run folder stops here, named with why (a lone model.pt is whole: atomic)
    model_file = path if path.is_file() else path / MODEL_FILE
    if model_file.is_file():
        checkpoint = torch_load(model_file, "model file")
        kind = checkpoint.get("format") if isinstance(checkpoint, dict) else None
        if kind == HEAD_FORMAT:
            return HeadRunModel(path, checkpoint, torch_device)
        if kind == BACKBONE_FORMAT:
            return backbone_run(path, model_file, checkpoint, torch_device)
        raise FeatcacheError(f"{model_file}: neither a featcache head nor a featcache backbone checkpoint")
    members = seed_members(path)
    if members:  # tsn --seeds N: the first seed's run, as a multi-seed head predicts with its first seed
        return load_run(members[0], torch_device)
    if (path / METRICS_FILE).is_file():  # a fine-tuning run folder: its model lives at --out
        metrics = read_metrics(path)
        recorded = metrics.get("model") or {}
        target = recorded.get("path") or metrics.get("config", {}).get("checkpoint")
        if target:
            model = BackboneModel(target, torch_device, sha256=recorded.get("sha256"), where=str(path))
            return backbone_run(path, model.path, model.checkpoint, torch_device, model)
    raise FeatcacheError(f"{path}: holds no model ({MODEL_FILE}, or a fine-tuning run's metrics.json naming one)")


def seed_members(path: Path) -> list[Path]:
    """The member run folders of a run trained seed after seed (``RUN_DIR/members/seed-<s>/``), lowest seed first."""
    folders = [p for p in (path / MEMBERS).glob("seed-*") if p.is_dir() and p.name[5:].isdigit()]
    return sorted(folders, key=lambda p: int(p.name[5:]))


def backbone_run(path: Path, model_file: Path, checkpoint: dict, device: torch.device,
                 model: BackboneModel | None = None) -> BackboneRunModel:
    extra = dict(checkpoint.get("extra") or {})
    folder = path if path.is_dir() else path.parent
    config = read_metrics(folder).get("config", {}) if (folder / METRICS_FILE).is_file() else {}
    model = model or BackboneModel(model_file, device)
    info = {"method": extra.get("method") or f"finetune-{checkpoint['modality']}", "temporal": extra.get("temporal"),
            "crop": extra.get("crop") or config.get("crop"), "resize": extra.get("resize") or config.get("resize")}
    if info["crop"] is None or info["resize"] is None:
        raise FeatcacheError(f"{model_file}: records no crop/resize; pass the run folder, whose metrics.json has them")
    still = None
    if info["method"] == "tsn":
        still_path, sha = tsn_still_model(extra, config)
        still = BackboneModel(still_path, device, sha256=sha, where=str(path))
        info["temperatures"] = extra.get("temperatures") or run_temperatures({}, folder)
    return BackboneRunModel(path, model, still, info)
