"""Throughput of `featcache extract` against a plain per-image loop, same images and backbone.

The plain loop is what one writes first: PIL decode, torchvision transforms, one image per
forward pass, features appended to a list. The extractor batches, decodes in DataLoader
workers, runs under inference_mode (AMP + channels_last on CUDA) and writes the HDF5 cache.
Both timings include building the backbone; the extractor's includes writing its cache.

    python benchmarks/extract.py ROOT [--backbone efficientnet-lite0] [--device cpu|cuda]
        [--limit 200] [--batch-size N] [--workers 2] [--resize 256] [--crop 224]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from featcache.backbones import create_backbone, default_backbone
from featcache.data.dataset import FolderDataset
from featcache.utils.device import resolve_device
from featcache.extraction.extract import ExtractSettings, extract
from featcache.cache.feature_cache import FeatureCache


def plain_loop(root: Path, paths: list[str], args, device: torch.device) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    backbone = create_backbone(args.backbone, weights=args.weights).eval().to(device)
    transform = transforms.Compose([
        transforms.Resize(args.resize),
        transforms.CenterCrop(args.crop),
        transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    features = []
    with torch.inference_mode():
        for path in paths:
            with Image.open(root / path) as image:
                x = transform(image.convert("RGB"))[None].to(device)
            features.append(backbone.forward_features(x)[0].float().cpu().numpy())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, np.stack(features)


def limited_root(root: Path, limit: int, workdir: Path) -> tuple[Path, list[str]]:
    """A folder-layout view (symlinks) of the first ``limit`` stills, so both sides see the same files."""
    samples = FolderDataset(root).stills()[:limit]
    view = workdir / "dataset"
    for s in samples:
        target = view / s.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((root / s.path).resolve())
    if (root / "classes.txt").exists():
        (view / "classes.txt").symlink_to((root / "classes.txt").resolve())
    return view, [s.path for s in samples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="dataset in folder layout (its stills are used)")
    parser.add_argument("--backbone", default=None)
    parser.add_argument("--weights", default=None, help="default: ImageNet weights; 'random' for a quick run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--limit", type=int, default=200, help="number of stills")
    parser.add_argument("--batch-size", type=int, default=None, help="default: featcache extract's (4 on the CPU, 64 on CUDA)")
    parser.add_argument("--workers", type=int, default=None, help="default: featcache extract's")
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    args = parser.parse_args()
    args.backbone = args.backbone or default_backbone()
    device = resolve_device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        root, paths = limited_root(args.root, args.limit, Path(tmp))
        n = len(paths)
        plain_s, plain_features = plain_loop(root, paths, args, device)

        settings = ExtractSettings(
            backbone=args.backbone, weights=args.weights, device=args.device, batch_size=args.batch_size,
            workers=args.workers, resize=args.resize, crop=args.crop,
        )
        start = time.perf_counter()
        report = extract(root, Path(tmp) / "cache", settings, on_event=lambda m: None)
        extract_s = time.perf_counter() - start
        cached = FeatureCache.open(report.path)
        ours = np.concatenate([cached.split(s).features.numpy() for s in cached.split_names()])

    cos = np.sum(ours * plain_features, 1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(plain_features, axis=1) + 1e-12)
    print(f"{n} stills from {args.root}, backbone {args.backbone}, {device}, "
          f"resize {args.resize} crop {args.crop}, torch threads {torch.get_num_threads()}")
    print(f"{'method':<44}{'seconds':>10}{'images/s':>12}")
    print(f"{'plain loop (PIL, one image per forward)':<44}{plain_s:>10.2f}{n / plain_s:>12.1f}")
    label = f"featcache extract (batch {args.batch_size or 'auto'}, {'auto' if args.workers is None else args.workers} workers)"
    print(f"{label:<44}{extract_s:>10.2f}{n / extract_s:>12.1f}")
    print(f"speed-up: {plain_s / extract_s:.2f}x; feature cosine similarity plain vs extract: "
          f"mean {cos.mean():.4f}, min {cos.min():.4f} (resize differs slightly: PIL vs torch antialias)")


if __name__ == "__main__":
    main()
