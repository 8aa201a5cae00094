"""``featcache tsn``: T2SIL with teacher-student networks, end to end (paper 3.3, 5.1.3, Remark 2, Table 9).

- Student: initialised from the still model (Resnet-Still, ``featcache finetune still``); only its
  final three convolution layers in forward order (ResNet-50: conv1-3 of layer4's last
  bottleneck), the norm layers right after them and its classifier train; the rest is frozen
  (``requires_grad=False``, frozen norm layers kept in eval mode).
- Teacher: the temporal model (Resnet-Dyn / Resnet-Opt, ``featcache finetune dynamic|flow``), frozen.
- Pairs (``pairing``): ``co-class`` (the paper's, Remark 2) pairs every still image with a randomly
  drawn co-class temporal training instance; ``instance`` pairs a still that comes from a video
  (``ROOT/still-videos.csv``) with a random instance of that video (a still without one keeps a
  co-class draw) and adds the unlabelled stills (``ROOT/stills/unlabelled/``), whose only target is
  the teacher's output on their video (cross-modal distillation). Redrawn each epoch, deterministic
  under ``--seed``.
- Loss: :class:`heads.losses.distillation_loss.DistillationLoss` at temperature T (Table 9: 2 for flow,
  10 for dynamic images); RMSProp at 2e-4.
- Teacher targets: ``live`` runs the teacher on the paired instance's centre crop every step;
  ``cached`` looks the same logits up once, from the ``logits`` of the temporal feature cache when
  it was extracted with this teacher at this crop, else by running the teacher over the temporal
  training instances once (stored in ``RUN_DIR/teacher_logits.pt``); ``labels`` uses no teacher: the
  target is the paired instance's label, one-hot (with co-class pairs, the still's own label: the
  same student schedule on the labelled stills alone; with instance pairs the unlabelled stills get
  their video's label, the ceiling of what a teacher could give them).
- Evaluation: derived temporal = the student's softmax; fused = its mean with the still model's
  softmax; the epoch is chosen on fused val accuracy (paper 5.1.3), the student as it starts (the
  still model, epoch 0) among them: an epoch is kept only when it beats it, so a distillation that
  only harms (a teacher with nothing to give) returns the still model unchanged, ``best_epoch`` 0.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featcache.backbones import create_backbone, default_backbone, load_checkpoint, save_checkpoint
from featcache.backbones.preprocessing import build_transform
from featcache.cache.feature_cache import FeatureCache
from featcache.data.dataset import FolderDataset
from featcache.data.still_videos import read_still_videos
from featcache.errors import CacheError, FeatcacheError
from featcache.utils.progress import console, optional_progress
from featcache.cache.schema import backbone_file_tag, feature_cache_path, temporal_cache_path
from featcache.utils.atomic import save_torch
from featcache.utils.safe_load import torch_load
from heads.evaluation.metrics import accuracy, build_metrics, fuse, print_metrics, softmax, write_metrics
from heads.finetune import engine
from heads.finetune.datasets import (CoClassPairs, InstancePairs, StillImages, TemporalInstances, UnlabelledStills,
                                     carve_stills_val, own_video_rows)
from heads.finetune.defaults import TEMPERATURE, TSNSettings, input_sizes
from heads.finetune.finetune import CHECKPOINT_FILE, model_path
from heads.losses.distillation_loss import DistillationLoss
from heads.training.checkpoint import MODEL_FILE
from heads.training.config import write_config
from heads.training.run_dir import default_run_dir

TARGETS_FILE = "teacher_logits.pt"
ONE_HOT_LOGIT = 1e4  # softmax(1e4 / T) is one-hot in float32 at every temperature T <= 100


# -- which layers train -----------------------------------------------------------
def forward_order(backbone: nn.Module, size: int = 64) -> list[nn.Module]:
    """Leaf modules in the order ``forward_features`` runs them (traced on a dummy batch)."""
    calls: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: calls.append(mod))
             for m in backbone.modules() if not list(m.children())]
    was_training = backbone.training
    param = next(backbone.parameters())
    try:
        backbone.eval()
        with torch.no_grad():
            backbone.forward_features(torch.zeros(1, backbone.in_channels, size, size, device=param.device))
    finally:
        for hook in hooks:
            hook.remove()
        backbone.train(was_training)
    return calls


def last_conv_layers(backbone: nn.Module, num_convs: int = 3) -> list[nn.Module]:
    """The last ``num_convs`` convolutions in forward order, each with the norm layer right after it."""
    order = forward_order(backbone)
    conv_positions = [i for i, m in enumerate(order) if isinstance(m, nn.Conv2d)]
    if len(conv_positions) < num_convs:
        raise FeatcacheError(f"{type(backbone).__name__} has only {len(conv_positions)} conv layers")
    chosen: list[nn.Module] = []
    for position in conv_positions[-num_convs:]:
        conv = order[position]
        chosen.append(conv)
        for follower in order[position + 1:]:
            if isinstance(follower, nn.Conv2d):
                break
            if isinstance(follower, engine.NORM_TYPES):
                if getattr(follower, "num_features", conv.out_channels) == conv.out_channels:
                    chosen.append(follower)
                break
    return chosen


def freeze_for_tsn(backbone: nn.Module, num_convs: int = 3) -> list[str]:
    """Freeze everything but the last ``num_convs`` conv layers (+ their norms) and the classifier.

    Returns the names of the parameters that still train.
    """
    if getattr(backbone, "head", None) is None:
        raise FeatcacheError("the student has no classifier head; fine-tune the still model first")
    trainable = last_conv_layers(backbone, num_convs) + [backbone.head]
    for param in backbone.parameters():
        param.requires_grad_(False)
    for module in trainable:
        for param in module.parameters():
            param.requires_grad_(True)
    return [name for name, p in backbone.named_parameters() if p.requires_grad]


# -- models ------------------------------------------------------------------------
def load_model(path: Path, modality: str, classes: list[str], role: str) -> nn.Module:
    """A fine-tuned featcache checkpoint for ``modality`` whose head covers ``classes``."""
    if not path.exists():
        command = f"featcache finetune {modality} ROOT --model {path}"  # writes it where this run looks
        raise CacheError(f"{role} model not found: {path}; run `{command}` first or pass its path")
    ckpt = load_checkpoint(path)
    if ckpt["modality"] != modality:
        raise CacheError(f"{path}: {role} model was trained on {ckpt['modality']}, expected {modality}")
    if list(ckpt["classes"]) != list(classes) or int(ckpt["num_classes"]) != len(classes):
        raise CacheError(f"{path}: {role} model's classes differ from the dataset's; fine-tune it on this dataset")
    return create_backbone(ckpt["backbone"], modality=modality, weights=path, num_classes=len(classes))


# -- teacher targets ---------------------------------------------------------------------
def targets_from_feature_cache(path: Path, keys: list[tuple[str, int]], *, teacher_id: str, classes: list[str],
                               crop: int, resize: int) -> tuple[torch.Tensor | None, str]:
    """Teacher logits of the temporal instances ``keys`` (``(source, instance)``) from a feature cache
    extracted with this teacher at this crop (view 0 = centre crop); ``(None, why not)`` otherwise."""
    if not path.exists():
        return None, f"{path} not found"
    try:
        cache = FeatureCache.open(path)
    except CacheError as exc:
        return None, str(exc)
    pre = cache.attrs.get("preprocessing") or {}
    if cache.attrs.get("weights") != teacher_id:
        return None, f"{path} was extracted with other weights than the teacher"
    if cache.classes != list(classes) or not cache.has_logits:
        return None, f"{path} has no logits for these classes"
    if pre.get("crop") != crop or pre.get("resize_short_side") != resize:
        return None, f"{path} was extracted at crop {pre.get('crop')}/resize {pre.get('resize_short_side')}"
    rows = cache.split("train")
    index = {(s, int(i)): r for r, (s, i) in enumerate(zip(rows.source, rows.instance.tolist()))}
    missing = [k for k in keys if k not in index]
    if missing:
        return None, f"{path} lacks {len(missing)} temporal training instances (e.g. {missing[0][0]})"
    return rows.logits[[index[k] for k in keys]].float(), f"teacher logits from {path}"


def compute_teacher_logits(teacher: nn.Module, instances, device, env, *, batch_size: int, workers: int,
                           amp: bool, channels_last: bool) -> torch.Tensor:
    """Run the frozen teacher once over ``instances`` (centre crops): logits ``[N, C]``."""
    loader = engine.eval_loader(instances, batch_size, env, workers=workers)
    with optional_progress(env.is_main, "inst/s") as progress:
        return engine.evaluate(teacher, loader, device, env, amp=amp, channels_last=channels_last,
                               progress=progress, description="teacher targets")


def cached_teacher_targets(teacher: nn.Module, instances, *, cache_file: Path, store: Path, crop: int, resize: int,
                           classes: list[str], device, env, batch_size: int, workers: int, amp: bool,
                           channels_last: bool) -> torch.Tensor:
    """Teacher logits for every temporal training instance: from the feature cache, from an earlier
    run's ``store``, or computed once and stored there."""
    keys = instances.keys()
    logits, why = targets_from_feature_cache(cache_file, keys, teacher_id=teacher.weights_id, classes=classes,
                                             crop=crop, resize=resize)
    if logits is not None:
        if env.is_main:
            console.print(why)
        return logits
    stamp = {"teacher": teacher.weights_id, "crop": crop, "resize": resize, "keys": keys}
    if store.exists():
        saved = torch_load(store, "teacher-targets file")  # tensors and plain types only
        if isinstance(saved, dict) and saved.get("stamp") == stamp:
            return saved["logits"]
    if env.is_main:
        console.print(f"computing teacher targets once ({why})")
    logits = compute_teacher_logits(teacher, instances, device, env, batch_size=batch_size, workers=workers,
                                    amp=amp, channels_last=channels_last)
    if env.is_main:
        save_torch({"stamp": stamp, "logits": logits}, store, "teacher-targets file")
    return logits


def explain_targets(targets, temperature: float, classes: list[str]) -> list[str]:
    """What the distillation loss printed per epoch is and where its floor lies (it cannot fall below
    T² times the teacher targets' entropy), and a warning when the teacher gives one class for every
    instance (the student can then learn nothing else)."""
    lines = [f"loss_distillation: T² x cross-entropy of the student's softmax against the teacher's, both at "
             f"T={temperature:g} (paper eq. 6), mean over the epoch's pairs"]
    if not isinstance(targets, torch.Tensor):  # live targets: the floor is only bounded
        return [lines[0] + f"; at least T² x the teacher targets' entropy (at most T² ln {len(classes)} = "
                f"{temperature ** 2 * math.log(len(classes)):.1f})"]
    probs = torch.softmax(targets.float() / temperature, dim=1)
    floor = float(-(probs * probs.clamp_min(1e-12).log()).sum(1).mean()) * temperature ** 2
    lines[0] += (f"; it cannot fall below T² x the teacher targets' entropy, {floor:.1f} here "
                 f"(uniform targets over {len(classes)} classes: {temperature ** 2 * math.log(len(classes)):.1f}): "
                 f"only its excess over that floor is learnt")
    predicted = targets.argmax(1).unique()
    if len(predicted) == 1 and len(targets) > 1:
        lines.append(f"[yellow]warning:[/] the teacher predicts {classes[int(predicted[0])]} for all {len(targets)} "
                     f"temporal training instances: the student can learn only that class (its derived stream then "
                     f"misses every still of another class); fine-tune the teacher longer")
    return lines


# -- the run ---------------------------------------------------------------------------------
def tsn_datasets(dataset, temporal: str, cache_dir, crop: int, resize: int) -> dict[str, Any]:
    """The student's augmented train stills, its val/test stills (None when absent) and the teacher's
    temporal training instances (centre crops)."""
    still_eval = build_transform("still", train=False, crop=crop, resize=resize)
    train_stills = StillImages(dataset, "train", build_transform("still", train=True, crop=crop, resize=resize))
    splits = dataset.splits("stills")
    evals = {s: StillImages(dataset, s, still_eval) if s in splits else None for s in ("val", "test")}
    still_val = {"val": "folder"}
    if evals["val"] is None:  # no stills/val: the epoch is chosen on a share carved from the train stills
        train_stills, evals["val"], still_val = carve_stills_val(train_stills, still_eval)
    temporal_path = temporal_cache_path(cache_dir)
    instances = TemporalInstances(temporal_path, temporal, "train",
                                  build_transform(temporal, train=False, crop=crop, resize=resize))
    return {"train": train_stills, "evals": evals, "instances": instances, "temporal_path": temporal_path,
            "still_val": still_val}


def teacher_targets(targets: str, teacher_model: nn.Module, instances, run: engine.RunContext, *, run_dir: Path,
                    cache_dir, temporal: str, crop: int, resize: int, classes: list[str], batch_size: int):
    """What the loss gets for temporal instance j: the teacher's cached logits, its input (``live``),
    or (``labels``, no teacher) the instance's label as one-hot logits."""
    if targets == "labels":
        return torch.nn.functional.one_hot(torch.as_tensor(instances.labels), len(classes)).float() * ONE_HOT_LOGIT
    if targets == "live":
        return instances
    return cached_teacher_targets(
        teacher_model, instances, cache_file=feature_cache_path(cache_dir, temporal, teacher_model.name),
        store=run_dir / TARGETS_FILE, crop=crop, resize=resize, classes=classes, device=run.device,
        env=run.env, batch_size=batch_size, workers=run.workers, amp=run.amp, channels_last=run.channels_last)


def make_pairs(dataset, data: dict, pair_targets, pairing: str, seed: int, crop: int, resize: int):
    """The student's training pairs: co-class, or each still with its own video (+ the unlabelled stills)."""
    instances, where = data["instances"], str(data["temporal_path"])
    if pairing == "co-class":
        return CoClassPairs(data["train"], instances.labels, pair_targets, seed=seed, where=where)
    links = read_still_videos(dataset.root)
    transform = build_transform("still", train=True, crop=crop, resize=resize)
    labelled_rows = own_video_rows(data["train"].sources, links, instances.sources, where=where, required=False)
    found = own_video_rows(dataset.unlabelled_stills(), links, instances.sources, where=where, required=True)
    # Stills of val/test videos (no training rows) stay out: training on them would see those videos.
    unlabelled = UnlabelledStills(dataset, transform, [s for s, r in zip(dataset.unlabelled_stills(), found) if r is not None])
    if not any(r is not None for r in labelled_rows) and not len(unlabelled):
        raise FeatcacheError(f"{dataset.root}: --pairing instance needs stills linked to train videos "
                             f"(still-videos.csv: featcache data midframes, or data synth --unlabelled-stills)")
    unlabelled_rows = [r for r in found if r is not None]
    return InstancePairs(data["train"], instances.labels, pair_targets, labelled_rows + unlabelled_rows,
                         unlabelled if len(unlabelled) else None, seed=seed, where=where)


def predict_splits(model: nn.Module, evals: dict, batch_size: int, run: engine.RunContext) -> dict:
    """``model``'s softmax on the val and test stills (None for a missing split)."""
    def predict(split):
        loader = engine.eval_loader(evals[split], batch_size, run.env, workers=run.workers)
        return softmax(engine.evaluate(model, loader, run.device, run.env, amp=run.amp,
                                       channels_last=run.channels_last))

    return {s: predict(s) if evals[s] is not None else None for s in ("val", "test")}


def train_tsn(root, settings: TSNSettings, *, cache_dir: str | os.PathLike = "cache",
              out: str | os.PathLike | None = None, resume: bool | None = None,
              keep_probs: list | None = None) -> dict[str, Any]:
    """Distil the temporal teacher into the still student as ``settings`` say, into the run folder
    ``out`` (default ``runs/tsn-<temporal>-<backbone>``; its ``config.yaml`` is the resolved
    ``settings``, which ``--config`` reruns); returns the run's metrics dict (``keep_probs``: a list
    that receives the run's still and derived softmaxes and labels, for ``heads.finetune.tsn_seeds``)."""
    temporal = settings.temporal
    with engine.run_context(settings.device, amp=settings.amp, channels_last=settings.channels_last,
                            workers=settings.workers) as run:
        crop, resize = input_sizes(run.device.type, settings.crop, settings.resize)
        backbone = settings.backbone or default_backbone()
        student_path = Path(settings.student) if settings.student else model_path(cache_dir, "still", backbone)
        teacher_path = Path(settings.teacher) if settings.teacher else model_path(cache_dir, temporal, backbone)
        settings = replace(settings, backbone=backbone, crop=crop, resize=resize, student=str(student_path),
                           teacher=str(teacher_path), temperature=settings.temperature or TEMPERATURE[temporal])
        run_dir = Path(out) if out else default_run_dir("tsn", temporal, backbone_file_tag(backbone))
        dataset = FolderDataset(root)
        classes = dataset.classes
        still_model = load_model(student_path, "still", classes, "student (still)")
        teacher_model = load_model(teacher_path, temporal, classes, "teacher (temporal)")
        teacher_model.eval().requires_grad_(False)
        engine.seed_everything(settings.seed, run.env)
        data = tsn_datasets(dataset, temporal, cache_dir, crop, resize)
        still_model = engine.prepare_model(still_model, run.device, channels_last=run.channels_last)
        teacher_model = engine.prepare_model(teacher_model, run.device, channels_last=run.channels_last)
        trainable = freeze_for_tsn(still_model, settings.num_convs)
        if run.env.is_main:
            console.print(f"student {still_model.describe()}: {len(trainable)} trainable tensors "
                          f"({', '.join(trainable)}); teacher {teacher_model.describe()}")
        still_probs = predict_splits(still_model, data["evals"], settings.batch_size, run)
        pair_targets = teacher_targets(settings.targets, teacher_model, data["instances"], run, run_dir=run_dir,
                                       cache_dir=cache_dir, temporal=temporal, crop=crop, resize=resize,
                                       classes=classes, batch_size=settings.batch_size)
        pairs = make_pairs(dataset, data, pair_targets, settings.pairing, settings.seed, crop, resize)
        config = {"temporal": temporal, "backbone": still_model.name, "student": str(student_path),
                  "teacher": str(teacher_path), "student_weights": still_model.weights_id,
                  "teacher_weights": teacher_model.weights_id, "targets": settings.targets,
                  "temperature": settings.temperature, "lr": settings.lr, "epochs": settings.epochs,
                  "batch_size": settings.batch_size * run.env.world_size, "num_convs": settings.num_convs,
                  "crop": crop, "resize": resize, "seed": settings.seed, "optimizer": "rmsprop",
                  "world_size": run.env.world_size, "still_val": data["still_val"], "pairing": settings.pairing,
                  "unlabelled_stills": len(pairs) - len(data["train"])}
        if run.env.is_main:
            write_config(run_dir, settings.as_dict(), f"featcache tsn {root} --temporal {temporal}: resolved settings "
                         "of this run (batch_size per process); rerun it with --config this-file")
        return distil(run, still_model, teacher_model if settings.targets == "live" else None, pairs, data["evals"],
                      still_probs, config, classes, trainable, run_dir, settings.batch_size, resume,
                      keep_probs)


def distil(run: engine.RunContext, still_model: nn.Module, live_teacher: nn.Module | None, pairs, evals: dict,
           still_probs: dict, config: dict[str, Any], classes: list[str], trainable: list[str], run_dir: Path,
           batch_size: int, resume: bool | None, keep_probs: list | None = None) -> dict[str, Any]:
    """Train the student on the pairs, the epoch chosen on fused val (never test); write the run."""
    temporal, temperature = config["temporal"], config["temperature"]
    select = "val"  # tsn_datasets always gives val stills (carved from train when absent)
    labels = {s: evals[s].labels if evals[s] is not None else None for s in ("val", "test")}
    optimizer = torch.optim.RMSprop([p for p in still_model.parameters() if p.requires_grad], lr=config["lr"])
    select_still, select_labels = still_probs[select], labels[select]
    if run.env.is_main:  # what the loss printed per epoch is, and a teacher that gives one class only
        for line in explain_targets(pairs.targets, temperature, classes):
            console.print(line, highlight=False)
    objective = engine.Objective(
        DistillationLoss(temperature), lambda logits: accuracy(fuse(select_still, softmax(logits)), select_labels),
        targets_fn=live_teacher, phase="tsn", loss_name="loss_distillation", selects=f"fused {select}",
        val_values=lambda logits: {f"{select}_{stream}": accuracy(probs, select_labels) for stream, probs in (
            ("still", select_still), ("derived", softmax(logits)), ("fused", fuse(select_still, softmax(logits))))})
    state = engine.fit(still_model, optimizer, None, objective, pairs, evals[select], run, epochs=config["epochs"],
                       batch_size=batch_size, checkpoint_path=run_dir / CHECKPOINT_FILE,
                       run_key={**config, "classes": classes}, seed=config["seed"], resume=resume, keep_start=True)
    derived = predict_splits(still_model, evals, batch_size, run)
    if not run.env.is_main:
        return {}
    config.update(best_epoch=state["best_epoch"], selected_on=f"fused {select}", trainable=trainable)
    metrics = build_metrics("tsn", temporal, config, still=still_probs, derived=derived, labels=labels,
                            classes=classes, seconds=time.perf_counter() - run.start)
    save_checkpoint(run_dir / MODEL_FILE, still_model, classes=classes, modality="still", extra={
        "method": "tsn", "temporal": temporal, "temperature": temperature, "teacher": config["teacher"],
        "trainable": trainable, "best_epoch": state["best_epoch"], "history": engine.model_history(state["history"]),
        "derived": metrics["derived"], "fused": metrics["fused"], "crop": config["crop"], "resize": config["resize"],
        # what heads.inference needs for the still and fused_calibrated streams
        "still_model": {"path": str(Path(config["student"]).resolve()), "sha256": config["student_weights"]},
        "temperatures": metrics["temperatures"]})
    write_metrics(run_dir, metrics)
    print_metrics(metrics)
    console.print(f"run: {run_dir}")
    if keep_probs is not None:
        keep_probs.append({"still": still_probs, "derived": derived, "labels": labels, "temporal_correct": None})
    return metrics
