"""Trained runs to predict with (tests/heads/inference, tests/cli): a tiny dataset, a tiny backbone
fine-tuned on its stills and dynamic images, caches extracted with those weights, a GAN head (linear
still model), a classifier head (the backbone's logits as still model) and a TSN run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from featcache.data.dataset import FolderDataset
from featcache.extraction.extract import ExtractSettings, extract
from heads.api import HeadRun, fit_head
from heads.finetune.tsn import train_tsn
from tests.heads.finetune.test_finetune import CROP, RESIZE, TINY, make_dataset, run_finetune
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
    train_tsn(root, temporal="dynamic", backbone=TINY, cache_dir=cache, out=base / "tsn", epochs=1, lr=1e-3,
              batch_size=8, crop=CROP, resize=RESIZE, device="cpu", seed=0)
    return TrainedRuns(root, gan, classifier, base / "tsn", base / "ft-still")
