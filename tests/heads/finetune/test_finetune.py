"""The fine-tuning engine and ``featcache finetune`` on a tiny dataset with a tiny backbone.

The helpers here (``TinyNet``, ``make_dataset``) are shared with test_tsn.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from featcache.backbones import Backbone, create_backbone, load_checkpoint
from featcache.backbones.base import IMAGENET_MEAN, IMAGENET_STD
from featcache.backbones.registry import BackboneConfig, register_backbone
from featcache.errors import CacheError, DatasetError
from featcache.cache.schema import SPLIT_CODE, mark_complete, write_root_attrs, write_rows
from heads.finetune import engine, finetune
from heads.finetune.defaults import FinetuneSettings

CLASSES = ["jump", "run", "wave"]
TINY = "tiny-test-net"
SIZE = (36, 44)  # H, W of the tiny images: resize 32, crop 28 keeps every step cheap
CROP, RESIZE = 28, 32
CPU_RUN = engine.RunContext(engine.DistEnv(), torch.device("cpu"), amp=False, channels_last=False, workers=0, start=0.0)


@register_backbone(BackboneConfig(name=TINY, feature_dim=16, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                  weights="random only (tests)", offline=True))
class TinyNet(Backbone):
    """Four conv+BN layers and a global pool: the Backbone contract at test speed."""

    def __init__(self, *, modality: str = "still", num_classes: int = 0):
        super().__init__(modality=modality, num_classes=num_classes)
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16)
        self.conv3, self.bn3 = nn.Conv2d(16, 16, 1, bias=False), nn.BatchNorm2d(16)
        self.conv4, self.bn4 = nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def trunk_features(self, x):
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3), (self.conv4, self.bn4)):
            x = torch.relu(bn(conv(x)))
        return self.pool(x)

    def first_conv(self):
        return self.conv1

    def set_first_conv(self, conv):
        self.conv1 = conv


def class_image(rng, label: int, channels: int, size=SIZE) -> np.ndarray:
    """A noisy image whose brightest channel group says its class."""
    image = rng.integers(0, 90, size=(*size, channels))
    image[..., label::len(CLASSES)] += 150
    return image.clip(0, 255).astype(np.uint8)


def make_dataset(root: Path, *, stills=(8, 3, 3), videos=(4, 2), instances=2, seed=0) -> Path:
    """Folder-layout stills (train/val/test per class) and a finished ``cache/temporal.h5``
    with dynamic images and flow stacks (train/test), in the CONTRACT schema."""
    rng = np.random.default_rng(seed)
    for split, count in zip(("train", "val", "test"), stills):
        for label, name in enumerate(CLASSES):
            folder = root / "stills" / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(class_image(rng, label, 3)).save(folder / f"{i}.png")
    cache = root / "cache"
    cache.mkdir(exist_ok=True)
    with h5py.File(cache / "temporal.h5", "w") as f:
        write_root_attrs(f, modality="temporal", classes=CLASSES, preprocessing={"size": list(SIZE)})
        for kind, channels in (("dynamic", 3), ("flow", 20)):
            group = f.create_group(kind)
            rows = {"labels": [], "split": [], "source": [], "instance": []}
            data = []
            for split, count in zip(("train", "test"), videos):
                for label, name in enumerate(CLASSES):
                    for v in range(count):
                        for k in range(instances):
                            data.append(class_image(rng, label, channels))
                            rows["labels"].append(label)
                            rows["split"].append(SPLIT_CODE[split])
                            rows["source"].append(f"videos/{split}/{name}/v{v}.avi")
                            rows["instance"].append(k)
            group.create_dataset("data", data=np.stack(data))
            write_rows(group, **rows)
            write_root_attrs(group, modality=kind, classes=CLASSES, preprocessing={"kind": kind})
            group.attrs["complete"] = True
        mark_complete(f)
    return root


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("tiny"))


def run_finetune(root: Path, modality: str, tmp: Path, **kwargs):
    paths = dict(cache_dir=root / "cache", out=tmp / f"{modality}.pt", run_dir=tmp / f"run-{modality}", resume=None)
    options = dict(backbone=TINY, weights="random", epochs=3, lr=0.05, batch_size=8, crop=CROP, resize=RESIZE,
                   device="cpu", seed=0)
    for name, value in kwargs.items():
        (paths if name in paths else options)[name] = value
    return finetune.finetune_model(root, FinetuneSettings(modality=modality, **options), **paths)


def test_finetune_still_learns_and_writes_an_extractable_checkpoint(tiny_root, tmp_path):
    metrics = run_finetune(tiny_root, "still", tmp_path, epochs=4)
    history = load_checkpoint(tmp_path / "still.pt")["extra"]["history"]
    assert history[-1]["loss_ce"] < history[0]["loss_ce"]
    assert metrics["method"] == "finetune-still" and metrics["derived"] is None and metrics["fused"] is None
    assert metrics["still"]["val"] > 100 / 3 and metrics["still"]["test"] is not None
    saved = json.loads((tmp_path / "run-still" / "metrics.json").read_text())
    assert saved["still"] == metrics["still"]
    # The checkpoint is a backbone create_backbone(weights=PATH) accepts, with a head for these classes.
    model = create_backbone(TINY, modality="still", weights=tmp_path / "still.pt")
    assert model.num_classes == len(CLASSES) and model.classes == CLASSES


@pytest.mark.parametrize("modality,channels", [("dynamic", 3), ("flow", 20)])
def test_finetune_temporal_selects_on_val_videos_never_test(tiny_root, tmp_path, modality, channels):
    metrics = run_finetune(tiny_root, modality, tmp_path, epochs=2)
    ckpt = load_checkpoint(tmp_path / f"{modality}.pt")
    assert ckpt["modality"] == modality and ckpt["in_channels"] == channels
    assert ckpt["state_dict"]["conv1.weight"].shape[1] == channels
    assert metrics["temporal"] == modality
    assert metrics["still"]["val"] is not None and metrics["still"]["test"] is not None
    # This temporal.h5 has no val videos (written as the old code did): val is carved from its train videos.
    assert metrics["config"]["selected_on"].startswith("val videos: val carved from the train videos of temporal.h5")


def state_of(path: Path) -> dict:
    return load_checkpoint(path)["state_dict"]


def test_resume_continues_the_same_run(tiny_root, tmp_path, monkeypatch):
    run_finetune(tiny_root, "still", tmp_path, epochs=2, run_dir=tmp_path / "a", out=tmp_path / "a.pt")
    # The same run killed during its second epoch: what is left is the checkpoint of epoch 1.
    real_train = engine.train_one_epoch

    def dies_in_epoch_2(*args, **kwargs):
        if args[5] == 1:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(engine, "train_one_epoch", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_finetune(tiny_root, "still", tmp_path, epochs=2, run_dir=tmp_path / "b", out=tmp_path / "b.pt")
    assert not (tmp_path / "b.pt").exists()  # no finished-looking model from a killed run
    assert engine.load_training_state(tmp_path / "b" / finetune.CHECKPOINT_FILE)["epoch"] == 1
    monkeypatch.setattr(engine, "train_one_epoch", real_train)
    run_finetune(tiny_root, "still", tmp_path, epochs=2, run_dir=tmp_path / "b", out=tmp_path / "b.pt")
    straight = engine.load_training_state(tmp_path / "a" / finetune.CHECKPOINT_FILE)
    resumed = engine.load_training_state(tmp_path / "b" / finetune.CHECKPOINT_FILE)
    assert resumed["epoch"] == straight["epoch"] == 2
    for name, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][name]), name
    assert [h["loss_ce"] for h in straight["history"]] == [h["loss_ce"] for h in resumed["history"]]
    for name, value in state_of(tmp_path / "a.pt").items():
        assert torch.equal(value, state_of(tmp_path / "b.pt")[name]), name
    # The same bytes (no wall times inside): the model's sha256, the identity caches record, is the same too.
    a, b = (torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in "ab")
    assert {k: v for k, v in a.items() if k != "state_dict"} == {k: v for k, v in b.items() if k != "state_dict"}
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_resume_ignores_a_checkpoint_of_other_settings_and_no_resume_restarts(tiny_root, tmp_path):
    run_finetune(tiny_root, "still", tmp_path, epochs=1, run_dir=tmp_path / "r")
    first = engine.load_training_state(tmp_path / "r" / finetune.CHECKPOINT_FILE)
    run_finetune(tiny_root, "still", tmp_path, epochs=1, lr=0.01, run_dir=tmp_path / "r")  # other lr: fresh
    second = engine.load_training_state(tmp_path / "r" / finetune.CHECKPOINT_FILE)
    assert second["run_key"]["lr"] == 0.01 and second["epoch"] == 1
    with pytest.raises(Exception, match="other settings"):
        run_finetune(tiny_root, "still", tmp_path, epochs=1, lr=0.05, run_dir=tmp_path / "r", resume=True)
    assert first["run_key"]["lr"] == 0.05


def test_train_one_epoch_lowers_the_loss_and_evaluate_keeps_order():
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = (x[:, 0] > 0).long()
    model = nn.Linear(5, 2)
    data = torch.utils.data.TensorDataset(x, y)
    loader = engine.train_loader(data, 16, engine.DistEnv(), seed=0, workers=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for epoch in range(5):
        loader.sampler.set_epoch(epoch)
        losses.append(engine.train_one_epoch(model, nn.CrossEntropyLoss(), optimizer, loader, torch.device("cpu"), epoch))
    assert losses[-1] < losses[0] * 0.7
    logits = engine.evaluate(model, engine.eval_loader(data, 7, engine.DistEnv(), workers=0), torch.device("cpu"))
    assert torch.allclose(logits, model(x), atol=1e-6)  # brute force, in dataset order


def test_frozen_norm_layers_stay_in_eval_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))
    for p in list(model[0].parameters()) + list(model[1].parameters()):
        p.requires_grad_(False)
    engine.set_train_mode(model)
    assert not model[1].training and model[3].training and model[0].training


def test_bad_inputs_give_clear_errors(tiny_root, tmp_path):
    with pytest.raises(CacheError, match="temporal cache not found"):
        run_finetune(tiny_root, "dynamic", tmp_path, cache_dir=tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="not found"):
        run_finetune(tmp_path / "missing", "still", tmp_path)


def test_cli_reports_a_missing_dataset_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cli", "finetune", "still", str(tmp_path / "nope"), "--device", "cpu",
         "--backbone", "efficientnet-lite0", "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[3])
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope" in lines[0] and "Traceback" not in result.stderr


def cli_finetune(root: Path, run: Path, *extra: str) -> dict:
    from typer.testing import CliRunner

    from cli.app import app

    result = CliRunner().invoke(app, ["finetune", "still", str(root), "--cache", str(root / "cache"), "--out", str(run),
                                      "--model", str(run / "model.pt"), *extra])
    assert result.exit_code == 0, result.output
    return json.loads((run / "metrics.json").read_text())


def test_config_yaml_reruns_finetune_with_identical_metrics(tiny_root, tmp_path):
    first = cli_finetune(tiny_root, tmp_path / "a", "--backbone", TINY, "--weights", "random", "--epochs", "2",
                         "--lr", "0.05", "--batch-size", "8", "--crop", str(CROP), "--resize", str(RESIZE),
                         "--device", "cpu", "--seed", "3")
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert saved == FinetuneSettings(modality="still", backbone=TINY, weights="random", epochs=2, lr=0.05, batch_size=8,
                                     crop=CROP, resize=RESIZE, device="cpu", seed=3).as_dict()
    again = cli_finetune(tiny_root, tmp_path / "b", "--config", str(tmp_path / "a" / "config.yaml"))
    assert again["still"] == first["still"] and again["per_class"] == first["per_class"]
    assert {k: v for k, v in again["config"].items() if k != "checkpoint"} == \
        {k: v for k, v in first["config"].items() if k != "checkpoint"}
    for name, value in state_of(tmp_path / "a" / "model.pt").items():
        assert torch.equal(value, state_of(tmp_path / "b" / "model.pt")[name]), name
    wins = cli_finetune(tiny_root, tmp_path / "c", "--config", str(tmp_path / "a" / "config.yaml"), "--epochs", "1")
    assert wins["config"]["epochs"] == 1 and wins["config"]["seed"] == 3  # the command line wins over the file


def test_finetune_settings_are_checked_once_with_one_line_errors(tmp_path):
    from featcache.errors import FeatcacheError

    with pytest.raises(FeatcacheError, match="finetune: epochs: 0: expected an integer >= 1"):
        FinetuneSettings(epochs=0)
    with pytest.raises(FeatcacheError, match="expected one of still, dynamic, flow"):
        FinetuneSettings(modality="rgb")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 2\nalpha: 1\n")
    with pytest.raises(FeatcacheError, match="unknown key alpha for finetune; valid keys: amp, backbone"):
        FinetuneSettings.resolve(bad)
    bad.write_text("lr: -1\n")
    with pytest.raises(FeatcacheError, match=f"{bad}: lr: -1: expected a number > 0"):
        FinetuneSettings.resolve(bad)
