"""``featcache finetune still|dynamic|flow``: the paper's Resnet-Still, Resnet-Dyn and Resnet-Opt.

ImageNet-initialised backbone (flow: conv1 widened to 20 channels by cross-modality averaging),
a new linear head for the dataset's classes, SGD with momentum 0.9 (paper, section 5), random
crop + flip (one crop/flip for a whole flow stack), cosine learning-rate decay.

- still: train on stills/train, select the epoch on stills/val, report val and test.
- dynamic / flow: train on the video train instances of ``temporal.h5`` and validate on the video
  test instances, as the paper does (videos have no val split); metrics report them as test.

The best epoch's weights are written with ``featcache.backbones.save_checkpoint`` (default
``<cache>/models/<modality>-<backbone>.pt``), so ``featcache extract --weights`` can rebuild the
feature cache from the fine-tuned model (with ``logits`` for these classes).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from featcache.backbones.checkpoint import model_path  # the default place of fine-tuned models
from featcache.errors import DatasetError, FeatcacheError
from featcache.utils.progress import console
from featcache.cache.schema import MODALITIES, backbone_file_tag, temporal_cache_path
from heads.finetune import engine
from heads.finetune.defaults import FINETUNE_DEFAULTS as DEFAULTS
from heads.training.run_dir import default_run_dir

CHECKPOINT_FILE = "checkpoint.pt"



def build_datasets(root, modality: str, cache_dir, *, crop: int, resize: int) -> dict[str, Any]:
    """train / val / test datasets for ``modality`` and the class list.

    Temporal models validate on the video test instances (the paper does this): ``val`` is None.
    """
    from featcache.data.dataset import FolderDataset
    from featcache.backbones.preprocessing import build_transform
    from heads.finetune.datasets import StillImages, TemporalInstances

    dataset = FolderDataset(root)
    train_tf = build_transform(modality, train=True, crop=crop, resize=resize)
    eval_tf = build_transform(modality, train=False, crop=crop, resize=resize)
    if modality == "still":
        if not dataset.has("stills"):
            raise DatasetError(f"{dataset.root}: no stills/ folder to fine-tune on")
        splits = dataset.splits("stills")
        for needed in ("train", "test"):
            if needed not in splits:
                raise DatasetError(f"{dataset.root / 'stills' / needed}: split missing")
        val = StillImages(dataset, "val", eval_tf) if "val" in splits else None
        return {"classes": dataset.classes, "train": StillImages(dataset, "train", train_tf), "val": val,
                "test": StillImages(dataset, "test", eval_tf)}
    path = temporal_cache_path(cache_dir)
    train = TemporalInstances(path, modality, "train", train_tf)
    test = TemporalInstances(path, modality, "test", eval_tf)
    if train.classes and list(train.classes) != list(dataset.classes):
        raise DatasetError(f"{path}: classes differ from {dataset.root}; rerun featcache prepare {dataset.root} --cache {path.parent} --restart")
    return {"classes": dataset.classes, "train": train, "val": None, "test": test}


def finetune_model(root, modality: str, *, backbone: str | None = None, weights: str | None = None,
                   cache_dir: str | os.PathLike = "cache", out: str | os.PathLike | None = None,
                   run_dir: str | os.PathLike | None = None, epochs: int = DEFAULTS["epochs"],
                   lr: float = DEFAULTS["lr"], batch_size: int = DEFAULTS["batch_size"],
                   momentum: float = DEFAULTS["momentum"], weight_decay: float = DEFAULTS["weight_decay"],
                   crop: int = 224, resize: int = 256, device: str = "auto", workers: int | None = None,
                   seed: int = 0, resume: bool | None = None, channels_last: bool | None = None,
                   amp: bool | None = None) -> dict[str, Any]:
    """Fine-tune one backbone end to end; returns the run's metrics dict."""
    from featcache.backbones import create_backbone, default_backbone, save_checkpoint
    from heads.training.config import write_config
    from heads.evaluation.metrics import accuracy, build_metrics, print_metrics, write_metrics

    if modality not in MODALITIES:
        raise FeatcacheError(f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}")
    engine.check_schedule(epochs, batch_size, lr)
    with engine.run_context(device, amp=amp, channels_last=channels_last, workers=workers) as run:
        backbone = backbone or default_backbone()
        method = f"finetune-{modality}"
        out = Path(out) if out else model_path(cache_dir, modality, backbone)
        run_dir = Path(run_dir) if run_dir else default_run_dir(method, backbone_file_tag(backbone))
        data = build_datasets(root, modality, cache_dir, crop=crop, resize=resize)
        classes = data["classes"]
        engine.seed_everything(seed, run.env)
        model = create_backbone(backbone, modality=modality, weights=weights, num_classes=len(classes))
        model = engine.prepare_model(model, run.device, channels_last=run.channels_last)
        if run.env.is_main:
            console.print(f"fine-tuning {model.describe()} on {len(data['train'])} {modality} training inputs")
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        config = {"modality": modality, "backbone": backbone, "weights": model.weights_id, "epochs": epochs,
                  "lr": lr, "batch_size": batch_size * run.env.world_size, "momentum": momentum,
                  "weight_decay": weight_decay, "crop": crop, "resize": resize, "seed": seed,
                  "optimizer": "sgd", "schedule": "cosine", "world_size": run.env.world_size}
        if run.env.is_main:
            write_config(run_dir, config, f"featcache finetune {modality} {root}: resolved settings of this run")
        select = data["val"] if data["val"] is not None else data["test"]
        select_labels = torch.as_tensor(select.labels)
        state = engine.fit(
            model=model, criterion=torch.nn.CrossEntropyLoss(), optimizer=optimizer, scheduler=scheduler,
            train_data=data["train"], val_data=select, score_fn=lambda logits: accuracy(logits, select_labels),
            epochs=epochs, batch_size=batch_size, checkpoint_path=run_dir / CHECKPOINT_FILE,
            run_key={**config, "classes": classes}, device=run.device, env=run.env, seed=seed, workers=run.workers,
            resume=resume, amp=run.amp, channels_last=run.channels_last, phase="finetune", loss_name="loss_ce",
            selects="val" if data["val"] is not None else f"test{' videos' if modality != 'still' else ''} (no val split)")
        probs, labels = evaluate_splits(model, data, batch_size, run)
        if not run.env.is_main:
            return {}
        config.update(best_epoch=state["best_epoch"], selected_on="val" if data["val"] is not None else "test",
                      checkpoint=str(out))
        metrics = build_metrics(method, None if modality == "still" else modality, config, still=probs,
                                derived=None, labels=labels, classes=classes, seconds=time.perf_counter() - run.start)
        save_checkpoint(out, model, classes=classes, modality=modality, extra={
            "method": method, "val": metrics["still"]["val"], "test": metrics["still"]["test"],
            "best_epoch": state["best_epoch"], "history": state["history"], "crop": crop, "resize": resize,
        })
        write_metrics(run_dir, metrics)
        print_metrics(metrics)
        console.print(f"model: {out}\nrun: {run_dir}")
        return metrics


def evaluate_splits(model, data: dict[str, Any], batch_size: int, run: engine.RunContext) -> tuple[dict, dict]:
    """Softmax and labels of the val and test splits (None for a missing split)."""
    from heads.evaluation.metrics import softmax

    probs, labels = {}, {}
    for split in ("val", "test"):
        dataset = data[split]
        if dataset is None:
            probs[split] = labels[split] = None
            continue
        loader = engine.eval_loader(dataset, batch_size, run.env, workers=run.workers)
        probs[split] = softmax(engine.evaluate(model, loader, run.device, run.env, amp=run.amp,
                                               channels_last=run.channels_last))
        labels[split] = dataset.labels
    return probs, labels
