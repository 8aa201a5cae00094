"""``featcache finetune still|dynamic|flow``: the paper's Resnet-Still, Resnet-Dyn and Resnet-Opt.

ImageNet-initialised backbone (flow: conv1 widened to 20 channels by cross-modality averaging),
a new linear head for the dataset's classes, SGD with momentum 0.9 (paper, section 5), random
crop + flip (one crop/flip for a whole flow stack), cosine learning-rate decay.

- still: train on stills/train, select the epoch on stills/val (without it: on a seeded 20% carved
  from the train stills), report val and test.
- dynamic / flow: train on the video train instances of ``temporal.h5`` and select the epoch on its
  val videos (``videos/val`` or the share ``prepare`` carved from the train videos); the paper
  selects on the test videos, we never do. Metrics report val and test videos as val and test.

The best epoch's weights are written with ``featcache.backbones.save_checkpoint`` (default
``<cache>/models/<modality>-<backbone>.pt``), so ``featcache extract --weights`` can rebuild the
feature cache from the fine-tuned model (with ``logits`` for these classes).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from featcache.backbones import create_backbone, default_backbone, save_checkpoint, sha256_file
from featcache.backbones.checkpoint import model_path  # the default place of fine-tuned models
from featcache.backbones.preprocessing import build_transform
from featcache.cache.temporal_cache import root_preprocessing
from featcache.data.dataset import FolderDataset
from featcache.data.val_split import describe_split
from featcache.errors import DatasetError
from featcache.utils.progress import console
from featcache.cache.schema import backbone_file_tag, temporal_cache_path
from heads.evaluation.metrics import accuracy, build_metrics, print_metrics, softmax, write_metrics
from heads.finetune import engine
from heads.finetune.datasets import StillImages, TemporalInstances, carve_stills_val, temporal_train_val
from heads.finetune.defaults import FinetuneSettings, input_sizes
from heads.training.config import write_config
from heads.training.run_dir import TRAINING_STATE_FILE, default_run_dir

CHECKPOINT_FILE = TRAINING_STATE_FILE  # the training state a run resumes from



def build_datasets(root, modality: str, cache_dir, *, crop: int, resize: int) -> dict[str, Any]:
    """train / val / test datasets for ``modality`` and the class list.

    Temporal models select on the val videos (``temporal_train_val``), stills on the val stills (without
    ``stills/val``: a seeded share carved from the train stills); ``selected_on`` says where val came from.
    """
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
        train = StillImages(dataset, "train", train_tf)
        if "val" in splits:
            val, selected_on = StillImages(dataset, "val", eval_tf), "val stills"
        else:
            train, val, record = carve_stills_val(train, eval_tf)
            selected_on = f"val stills: {describe_split(record)}"
        return {"classes": dataset.classes, "train": train, "val": val,
                "test": StillImages(dataset, "test", eval_tf), "selected_on": selected_on}
    path = temporal_cache_path(cache_dir)
    train, val, record = temporal_train_val(path, modality, train_tf, eval_tf)
    test = TemporalInstances(path, modality, "test", eval_tf)
    if train.classes and list(train.classes) != list(dataset.classes):
        raise DatasetError(f"{path}: classes differ from {dataset.root}; rerun featcache prepare {dataset.root} --cache {path.parent} --restart")
    return {"classes": dataset.classes, "train": train, "val": val, "test": test,
            "selected_on": f"val videos: {describe_split(record)}", "video_split": record}


def finetune_model(root, settings: FinetuneSettings, *, cache_dir: str | os.PathLike = "cache",
                   out: str | os.PathLike | None = None, run_dir: str | os.PathLike | None = None,
                   resume: bool | None = None) -> dict[str, Any]:
    """Fine-tune one backbone end to end as ``settings`` say; the model goes to ``out`` (default
    ``<cache>/models/<modality>-<backbone>.pt``), the run to ``run_dir`` (its ``config.yaml`` is the
    resolved ``settings``, which ``--config`` reruns). Returns the run's metrics dict."""
    with engine.run_context(settings.device, amp=settings.amp, channels_last=settings.channels_last,
                            workers=settings.workers) as run:
        crop, resize = input_sizes(run.device.type, settings.crop, settings.resize)
        settings = replace(settings, backbone=settings.backbone or default_backbone(), crop=crop, resize=resize)
        modality, backbone = settings.modality, settings.backbone
        method = f"finetune-{modality}"
        out = Path(out) if out else model_path(cache_dir, modality, backbone)
        run_dir = Path(run_dir) if run_dir else default_run_dir(method, backbone_file_tag(backbone))
        data = build_datasets(root, modality, cache_dir, crop=crop, resize=resize)
        classes = data["classes"]
        engine.seed_everything(settings.seed, run.env)
        model = create_backbone(backbone, modality=modality, weights=settings.weights, num_classes=len(classes))
        model = engine.prepare_model(model, run.device, channels_last=run.channels_last)
        if run.env.is_main:
            console.print(f"fine-tuning {model.describe()} on {len(data['train'])} {modality} training inputs; "
                          f"epoch selected on {data['selected_on']}")
        optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                    weight_decay=settings.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
        config = {"modality": modality, "backbone": backbone, "weights": model.weights_id, "epochs": settings.epochs,
                  "lr": settings.lr, "batch_size": settings.batch_size * run.env.world_size,
                  "momentum": settings.momentum, "weight_decay": settings.weight_decay, "crop": crop, "resize": resize,
                  "seed": settings.seed, "optimizer": "sgd", "schedule": "cosine", "world_size": run.env.world_size}
        if run.env.is_main:
            write_config(run_dir, settings.as_dict(), f"featcache finetune {modality} {root}: resolved settings of "
                         "this run (batch_size per process); rerun it with --config this-file")
        state = engine.fit(  # the epoch chosen on the val split, never the test split
            model, optimizer, scheduler, cross_entropy_objective(data), data["train"], data["val"], run,
            epochs=settings.epochs, batch_size=settings.batch_size, checkpoint_path=run_dir / CHECKPOINT_FILE,
            run_key={**config, "classes": classes}, seed=settings.seed, resume=resume)
        probs, labels = evaluate_splits(model, data, settings.batch_size, run)
        if not run.env.is_main:
            return {}
        config.update(best_epoch=state["best_epoch"], selected_on=data["selected_on"], checkpoint=str(out))
        # Temporal instances: several per video, so their intervals resample videos (clusters).
        clusters = None if modality == "still" else {s: data[s].sources for s in ("val", "test") if data[s] is not None}
        metrics = build_metrics(method, None if modality == "still" else modality, config, still=probs,
                                derived=None, labels=labels, classes=classes, seconds=time.perf_counter() - run.start,
                                clusters=clusters)
        save_checkpoint(out, model, classes=classes, modality=modality, extra={
            "method": method, "val": metrics["still"]["val"], "test": metrics["still"]["test"],
            "best_epoch": state["best_epoch"], "history": engine.model_history(state["history"]), "crop": crop, "resize": resize,
            **temporal_record(cache_dir, modality),
        })
        metrics["model"] = {"path": str(out.resolve()), "sha256": sha256_file(out)}  # what `featcache predict RUN_DIR` loads
        write_metrics(run_dir, metrics)
        print_metrics(metrics)
        console.print(f"model: {out}\nrun: {run_dir}")
        return metrics


def cross_entropy_objective(data: dict[str, Any]) -> engine.Objective:
    """Cross-entropy, each epoch scored by accuracy on the val split (named in the log: val stills/videos)."""
    labels = torch.as_tensor(data["val"].labels)
    return engine.Objective(torch.nn.CrossEntropyLoss(), lambda logits: accuracy(logits, labels), phase="finetune",
                            loss_name="loss_ce", selects=data["selected_on"].split(":")[0])


def temporal_record(cache_dir, modality: str) -> dict[str, Any]:
    """For a temporal model, how its inputs were made from videos (``temporal.h5``'s root
    ``preprocessing``): what ``featcache predict`` needs to label a new video the same way."""
    if modality == "still":
        return {}
    return {"temporal_preprocessing": root_preprocessing(temporal_cache_path(cache_dir))}


def evaluate_splits(model, data: dict[str, Any], batch_size: int, run: engine.RunContext) -> tuple[dict, dict]:
    """Softmax and labels of the val and test splits (None for a missing split)."""
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
