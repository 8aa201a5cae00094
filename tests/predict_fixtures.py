"""Trained runs to predict with (tests/heads/inference, tests/cli): a tiny dataset, a tiny backbone
fine-tuned on its stills and dynamic images, caches extracted with those weights, a GAN head (linear
still model), a classifier head (the backbone's logits as still model) and a TSN run; and a tiny video
dataset prepared for real (dynamic images) with a temporal model fine-tuned on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from featcache.data.dataset import FolderDataset
from featcache.extraction.extract import ExtractSettings, extract
from featcache.representations.prepare import prepare
from featcache.representations.prepare_settings import PrepareSettings
from heads.api import HeadRun, fit_head
from tests.heads.finetune.test_finetune import CLASSES, CROP, RESIZE, SIZE, TINY, class_image, make_dataset, run_finetune
from tests.heads.finetune.test_tsn import run_tsn
from tests.heads_fixtures import fast_config


@dataclass
class TrainedRuns:
    root: Path  # the dataset (its cache in root/cache, fine-tuned models in root/cache/models)
    gan: HeadRun
    classifier: HeadRun
    tsn: Path  # run folder
    finetune: Path  # the still model's fine-tuning run folder

    def test_stills(self) -> list[Path]:
        dataset = FolderDataset(self.root)
        return [dataset.path(s) for s in dataset.stills("test")]


def build_trained_runs(base: Path) -> TrainedRuns:
    root = make_dataset(base / "data")
    cache, models = root / "cache", root / "cache" / "models"
    for modality in ("still", "dynamic"):
        run_finetune(root, modality, base, epochs=2, out=models / f"{modality}-{TINY}.pt", run_dir=base / f"ft-{modality}")
        settings = ExtractSettings(modality=modality, backbone=TINY, weights=str(models / f"{modality}-{TINY}.pt"),
                                   crop=CROP, resize=RESIZE, device="cpu", workers=0)
        extract(root, cache, settings, on_event=lambda message: None)
    gan = fit_head(cache, "gan", "dynamic", config=fast_config("gan", "dynamic", still_model="linear"),
                   out=base / "gan", device="cpu")
    classifier = fit_head(cache, "classifier", "dynamic", config=fast_config("classifier", "dynamic"),
                          out=base / "classifier", device="cpu")
    run_tsn(root, base / "tsn", epochs=1)
    return TrainedRuns(root, gan, classifier, base / "tsn", base / "ft-still")


VIDEO_PREPARE = PrepareSettings(size=SIZE, kinds=("dynamic",), window=4, stride=3, count=3)


def write_video(path: Path, rng, label: int, frames: int = 16) -> None:
    """An MJPG .avi whose frames' brightest channel says its class (``class_image``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (SIZE[1], SIZE[0]))
    for _ in range(frames):
        writer.write(class_image(rng, label, 3)[:, :, ::-1].copy())
    writer.release()


def build_video_run(base: Path) -> tuple[Path, Path]:
    """A video dataset, its ``temporal.h5`` made by ``prepare`` (dynamic images), and the run folder of
    a tiny backbone fine-tuned on them (``finetune dynamic``)."""
    root, rng = base / "video-data", np.random.default_rng(5)
    for split, count in (("train", 3), ("test", 2)):
        for label, name in enumerate(CLASSES):
            for v in range(count):
                write_video(root / "videos" / split / name / f"v{v}.avi", rng, label)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    prepare(root, root / "cache", VIDEO_PREPARE, workers=0)
    run_finetune(root, "dynamic", base, epochs=2, out=root / "cache" / "models" / f"dynamic-{TINY}.pt",
                 run_dir=base / "ft-video")
    return root, base / "ft-video"
