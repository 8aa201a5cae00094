"""Key-frame mining for the paper's Baseline 2 (Aug. Still+Frame, section 5).

Per training video: decode up to ``max_frames`` evenly spaced frames, preprocess them as
stills, run the still cache's backbone (same name and weights), cluster the frame
features with x-means (at most ``max_clusters`` clusters, the number chosen by BIC), and
keep the frame nearest each centre. The key frames' features go to
``<cache>/keyframes-<backbone>.h5`` in the feature-cache schema (modality ``keyframes``,
``source`` = video, ``instance`` = frame index, ``split`` = train).

Resumable like ``prepare`` (:mod:`featcache.cache.parts`): each finished video lands in
``keyframes-<backbone>.h5.parts/<hash>.npz``; parts of other settings stop the run (``restart``
discards them); the final file is assembled under a temporary name with ``complete=True`` set last.
Clustering runs on a PCA projection of the frame features (``reduce_dim``): with tens of
frames in 1000+ dimensions, BIC's parameter count would forbid any split.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from featcache.backbones import create_backbone
from featcache.backbones.checkpoint import model_path
from featcache.backbones.preprocessing import build_transform
from featcache.cache.feature_cache import find_cache
from featcache.data.dataset import FolderDataset, Sample
from featcache.media.video import read_frames
from featcache.utils.device import resolve_device
from featcache.errors import CacheError, FeatcacheError, MediaError
from featcache.utils.progress import console, make_progress
from featcache.cache.parts import discard_parts, keeping_parts, open_parts, part_path, parts_folder, read_part, write_part
from featcache.cache.lineage import files_input
from featcache.cache.schema import KEYFRAMES, SPLIT_CODE, feature_cache_path, mark_complete, open_complete, read_root_attrs, write_checksums, write_root_attrs, write_rows
from featcache.utils.atomic import atomic_path
from featcache.extraction.xmeans import XMeans


@dataclass(frozen=True)
class KeyframeSettings:
    max_clusters: int = 5
    max_frames: int = 32
    reduce_dim: int = 16
    seed: int = 0
    batch_size: int = 32


def keyframes_cache_path(cache_dir: str | os.PathLike, backbone: str) -> Path:
    return feature_cache_path(cache_dir, KEYFRAMES, backbone)


# -- selection (pure) ---------------------------------------------------------------
def reduce_features(features: np.ndarray, dim: int) -> np.ndarray:
    """Centred PCA projection onto at most ``dim`` components (fewer if the frames span fewer)."""
    centred = np.asarray(features, dtype=np.float64) - features.mean(axis=0, keepdims=True)
    if dim <= 0 or centred.shape[1] <= dim:
        return centred
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    rank = int((singular > singular[0] * 1e-6).sum()) if singular.size and singular[0] > 0 else 0
    return centred @ vt[: max(1, min(dim, rank))].T


def select_keyframes(features: np.ndarray, max_clusters: int = 5, reduce_dim: int = 16, seed: int = 0) -> np.ndarray:
    """Sorted indices of the frames nearest each x-means centre of ``features [T, D]``."""
    points = reduce_features(features, reduce_dim)
    model = XMeans(max_clusters=min(max_clusters, len(points)), seed=seed).fit(points)
    return np.unique(model.nearest_points(points))


def sample_frame_indices(num_frames: int, max_frames: int) -> np.ndarray:
    """Up to ``max_frames`` evenly spaced frame indices over the whole video."""
    if num_frames <= max_frames:
        return np.arange(num_frames)
    return np.unique(np.linspace(0, num_frames - 1, max_frames).round().astype(np.int64))


# -- backbone -------------------------------------------------------------------
def still_backbone(still_cache: Path, weights: str | os.PathLike | None, device: str):
    """The still cache's backbone with the same weights (checked by sha256), and its transform."""
    with open_complete(still_cache, what="still feature cache") as f:
        attrs = read_root_attrs(f)
    name, expected = attrs.get("backbone"), str(attrs.get("weights", ""))
    if not name:
        raise CacheError(f"{still_cache}: no 'backbone' attribute; not a feature cache")
    if weights is None:  # a still cache built from a fine-tuned model: its default place

        default = model_path(still_cache.parent, "still", name)
        weights = default if expected not in ("", "random") and default.is_file() else None
    if expected == "random" and weights is None:
        raise CacheError(f"{still_cache}: extracted with random weights, which cannot be recreated; pass --weights")
    backbone = create_backbone(name, modality="still", weights=weights)
    if expected and expected != "random" and backbone.weights_id != expected:
        hint = "pass the --weights file the still cache was extracted with" if weights is None else "it is not the still cache's"
        raise CacheError(f"{still_cache}: weights sha256 {expected[:12]} differ from {backbone.weights_id[:12]}; {hint}")
    pre = attrs.get("preprocessing") or {}
    interpolation = str(pre.get("interpolation", "bilinear")).split(",")[0]  # e.g. "bicubic, antialiased" (timm)
    transform = build_transform("still", train=False, crop=int(pre.get("crop", 224)), resize=int(pre.get("resize_short_side", 256)),
                                interpolation=interpolation)
    backbone.eval().to(resolve_device(device))
    return backbone, transform, attrs


def frame_features(frames: np.ndarray, backbone, transform, batch_size: int) -> np.ndarray:
    device = next(backbone.parameters()).device
    out = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            batch = torch.stack([transform(frame) for frame in frames[start : start + batch_size]]).to(device)
            out.append(backbone.forward_features(batch).float().cpu().numpy())
    return np.concatenate(out)


# -- one video ------------------------------------------------------------------
def mine_video(path: Path, backbone, transform, settings: KeyframeSettings) -> tuple[np.ndarray, np.ndarray]:
    """(frame indices [k], features [k, D]) of one video's key frames."""
    frames = read_frames(path)
    chosen = sample_frame_indices(len(frames), settings.max_frames)
    features = frame_features(frames[chosen], backbone, transform, settings.batch_size)
    keep = select_keyframes(features, settings.max_clusters, settings.reduce_dim, settings.seed)
    return chosen[keep].astype(np.int32), features[keep].astype(np.float32)


def write_video_part(part: Path, source: str, indices: np.ndarray, features: np.ndarray) -> None:
    write_part(part, {"source": np.array(source), "indices": indices, "features": features})


def read_video_part(part: Path, source: str) -> tuple[np.ndarray, np.ndarray] | None:
    found = read_part(part, ("source", "indices", "features"))
    if found is None or str(found["source"]) != source:
        return None
    return found["indices"], found["features"]


def existing_is_current(path: Path, fingerprint: dict) -> bool:
    if not path.exists():
        return False
    try:
        with open_complete(path) as f:
            return read_root_attrs(f).get("preprocessing", {}).get("keyframes") == fingerprint
    except CacheError:
        return False


# -- the command ----------------------------------------------------------------
def mine_keyframes(
    root: str | os.PathLike,
    cache_dir: str | os.PathLike = "cache",
    *,
    backbone: str | None = None,
    weights: str | os.PathLike | None = None,
    settings: KeyframeSettings = KeyframeSettings(),
    device: str = "cpu",
    restart: bool = False,
) -> Path:
    """Mine key frames of every train video of ``root`` into ``<cache>/keyframes-<backbone>.h5``
    (resumed per video; ``restart`` discards the file and its parts first)."""
    dataset = FolderDataset(root)
    if not dataset.has("videos") or "train" not in dataset.splits("videos"):
        raise FeatcacheError(f"{dataset.root}: no videos/train folder; key frames come from training videos")
    still_cache = find_cache(cache_dir, "still", backbone)
    model, transform, attrs = still_backbone(still_cache, weights, device)
    if list(attrs["classes"]) != dataset.classes:
        raise CacheError(f"{still_cache}: classes differ from {dataset.root}'s; extract the still cache from this dataset")
    out = keyframes_cache_path(cache_dir, model.name)
    fingerprint = {**asdict(settings), "backbone": model.name, "weights": model.weights_id, "root": str(dataset.root.resolve())}
    fingerprint.pop("batch_size")
    parts = parts_folder(out)
    if restart:
        discard_parts(parts)
        out.unlink(missing_ok=True)
    if existing_is_current(out, fingerprint):
        console.print(f"key frames up to date: {out}")
        return out
    with keeping_parts(out, "videos"):
        open_parts(parts, fingerprint, what="key-frame mining")
        videos = dataset.videos("train")
        results = _mine_videos(dataset, videos, parts, model, transform, settings)
        assemble(out, videos, results, attrs, model, fingerprint, dataset.root)
    discard_parts(parts)
    return out


def _mine_videos(dataset: FolderDataset, videos: list[Sample], parts: Path, model, transform,
                 settings: KeyframeSettings) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each video's key frames, from its part when one is finished (written as it is mined)."""
    results: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    errors: list[str] = []
    with make_progress(rate_unit="videos/s") as progress:
        task = progress.add_task("key frames", total=len(videos), rate=0.0)
        for video in videos:
            part = part_path(parts, video.path)
            found = read_video_part(part, video.path) if part.exists() else None
            if found is None:
                try:
                    found = mine_video(dataset.path(video), model, transform, settings)
                except MediaError as exc:
                    errors.append(str(exc))
                    progress.update(task, advance=1)
                    continue
                write_video_part(part, video.path, *found)
            results[video.path] = found
            progress.update(task, advance=1, rate=progress.tasks[task].speed or 0.0)
    for line in errors:
        console.print(f"[yellow]skipped[/] {line}")
    if not results:
        raise FeatcacheError(f"{dataset.root}: no training video could be decoded; see the messages above")
    return results


def assemble(out: Path, videos: list[Sample], results, still_attrs: dict, model, fingerprint: dict, dataset_root: Path) -> None:
    done = [v for v in videos if v.path in results]
    counts = [len(results[v.path][0]) for v in done]
    features = np.concatenate([results[v.path][1] for v in done]).astype(np.float32)
    with atomic_path(out, "key-frame cache", reserve=features.nbytes + 64 * len(features) + 2**20) as tmp, \
            h5py.File(tmp, "w") as f:
        write_root_attrs(
            f, modality=KEYFRAMES, backbone=model.name, weights=model.weights_id, classes=list(still_attrs["classes"]),
            preprocessing={**(still_attrs.get("preprocessing") or {}), "keyframes": fingerprint},
            input=files_input(dataset_root, [v.path for v in done]),
        )
        write_checksums(f.create_dataset("features", data=features))
        write_rows(
            f,
            labels=np.repeat([v.label for v in done], counts),
            split=np.full(sum(counts), SPLIT_CODE["train"]),
            source=[v.path for v, n in zip(done, counts) for _ in range(n)],
            instance=np.concatenate([results[v.path][0] for v in done]),
        )
        mark_complete(f)
    console.print(f"{sum(counts)} key frames from {len(done)} videos -> {out}")
