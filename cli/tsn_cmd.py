"""``featcache finetune`` (Resnet-Still / -Dyn / -Opt) and ``featcache tsn`` (teacher-student networks).

Both run on one machine or under ``torchrun`` (DistributedDataParallel); both resume from
``RUN_DIR/checkpoint.pt`` after a kill. torch is imported inside the commands.
"""

from __future__ import annotations

from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from cli.choices import Modality, Pairing, Temporal, choices, device_option
from cli.registry import CommandTable
from heads.finetune.defaults import (CPU_CROP, CPU_RESIZE, FINETUNE_DEFAULTS, GPU_CROP, GPU_RESIZE, TARGET_MODES,
                                     TEMPERATURE, TSN_DEFAULTS, FinetuneSettings, TSNSettings)

Targets = choices("Targets", sorted(TARGET_MODES))  # cached, labels, live: the order --help lists


commands = CommandTable()  # registered by cli.app


def given_options(ctx: typer.Context, settings_type) -> dict:
    """The command's settings options given on the command line (not left at their default): they
    win over a ``--config`` file, which wins over the defaults (``settings_type.resolve``)."""
    names = {f.name for f in fields(settings_type)}
    given = {k: v for k, v in ctx.params.items()
             if k in names and ctx.get_parameter_source(k).name not in ("DEFAULT", "DEFAULT_MAP")}
    return {k: (v.value if isinstance(v, Enum) else str(v) if isinstance(v, Path) else v) for k, v in given.items()}


def _config():
    return typer.Option(None, "--config", help="YAML file of KEY: VALUE (a run's config.yaml reruns it); options given on the command line win over it.")


# -- the options both commands take (one definition each) ------------------------------
def _crop():
    return typer.Option(None, help=f"crop size (default: {GPU_CROP} on CUDA, {CPU_CROP} on CPU)")


def _resize():
    return typer.Option(None, help=f"short side before cropping (default: {GPU_RESIZE} on CUDA, {CPU_RESIZE} on CPU)")


def _device():
    return device_option("Under torchrun, cuda means cuda:LOCAL_RANK.")


def _workers():
    return typer.Option(None, help="data-loading workers (default: 0 on CPU, up to 8 on CUDA)")


def _restart():
    return typer.Option(False, "--restart", help="start over, ignoring RUN_DIR/checkpoint.pt (default: resume it when it holds the same run)")


def _resume():
    return typer.Option(None, "--resume/--no-resume", hidden=True, help="Deprecated: --no-resume is --restart.")


def _epochs(default: int):
    return typer.Option(default, help="training epochs")


@commands.command("finetune")
def finetune(
    ctx: typer.Context,
    modality: Modality = typer.Argument(..., help="still (Resnet-Still), dynamic (Resnet-Dyn) or flow (Resnet-Opt)"),
    root: Path = typer.Argument(..., help="dataset root in folder layout"),
    backbone: Optional[str] = typer.Option(None, help="backbone name (default: resnet50 if its weights are here, else efficientnet-lite0)"),
    weights: Optional[str] = typer.Option(None, help="initial weights: a .pth / featcache checkpoint, or 'random' (default: ImageNet)"),
    cache: Path = typer.Option(Path("cache"), help="cache folder (temporal.h5 is read from it; models/ is written in it)"),
    out: Optional[Path] = typer.Option(None, "--out", help="run folder for metrics.json, history.jsonl, config.yaml and the resumable checkpoint (default: runs/finetune-<modality>-<backbone>)"),
    model: Optional[Path] = typer.Option(None, "--model", help="where the fine-tuned model goes (default: CACHE/models/<modality>-<backbone>.pt, where tsn and extract find it)"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", hidden=True, help="Deprecated: use --out."),
    epochs: int = _epochs(FINETUNE_DEFAULTS["epochs"]),
    lr: float = typer.Option(FINETUNE_DEFAULTS["lr"], help="SGD learning rate (cosine decay)"),
    batch_size: int = typer.Option(FINETUNE_DEFAULTS["batch_size"], help="batch size per process (the paper: 128)"),
    momentum: float = typer.Option(FINETUNE_DEFAULTS["momentum"], help="SGD momentum"),
    weight_decay: float = typer.Option(FINETUNE_DEFAULTS["weight_decay"], help="SGD weight decay"),
    crop: Optional[int] = _crop(),
    resize: Optional[int] = _resize(),
    device: str = _device(),
    workers: Optional[int] = _workers(),
    seed: int = typer.Option(0, help="random seed (data order, augmentation, head init)"),
    restart: bool = _restart(),
    resume: Optional[bool] = _resume(),
    config: Optional[Path] = _config(),
) -> None:
    """Fine-tune a backbone end to end on stills or on temporal instances (paper section 5)."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from heads.finetune import finetune as finetune_main

    settings = FinetuneSettings.resolve(config, given_options(ctx, FinetuneSettings))
    finetune_main.finetune_model(root, settings, cache_dir=cache, out=model, run_dir=out or run_dir,
                                 resume=False if restart else resume)


@commands.command("tsn")
def tsn(
    ctx: typer.Context,
    root: Path = typer.Argument(..., help="dataset root in folder layout"),
    temporal: Temporal = typer.Option(Temporal.dynamic, help="teacher modality"),
    backbone: Optional[str] = typer.Option(None, help="backbone name, used for the default model paths"),
    cache: Path = typer.Option(Path("cache"), help="cache folder (temporal.h5, models/, feature caches)"),
    out: Optional[Path] = typer.Option(None, help="run folder (default: runs/tsn-<temporal>-<backbone>)"),
    student: Optional[Path] = typer.Option(None, help="still model to start from (default: CACHE/models/still-<backbone>.pt)"),
    teacher: Optional[Path] = typer.Option(None, help="temporal teacher (default: CACHE/models/<temporal>-<backbone>.pt)"),
    targets: Targets = typer.Option(Targets.cached, help="teacher soft targets: cached (looked up once) or live (teacher runs every step); labels: no teacher, the paired instance's label one-hot (a control)"),
    pairing: Pairing = typer.Option(Pairing.co_class, help="co-class: each still with a random video of its class (the paper); instance: a still with its own video (ROOT/still-videos.csv), plus the unlabelled stills (ROOT/stills/unlabelled/)"),
    temperature: Optional[float] = typer.Option(None, help=f"softmax temperature (default, Table 9: {TEMPERATURE['flow']:g} flow, {TEMPERATURE['dynamic']:g} dynamic)"),
    lr: float = typer.Option(TSN_DEFAULTS["lr"], help="RMSProp learning rate (Table 9)"),
    epochs: int = _epochs(TSN_DEFAULTS["epochs"]),
    batch_size: int = typer.Option(TSN_DEFAULTS["batch_size"], help="batch size per process"),
    num_convs: int = typer.Option(TSN_DEFAULTS["num_convs"], help="how many final conv layers of the student train"),
    crop: Optional[int] = _crop(),
    resize: Optional[int] = _resize(),
    device: str = _device(),
    workers: Optional[int] = _workers(),
    seed: int = typer.Option(0, help="random seed (pairs, data order, augmentation)"),
    seeds: int = typer.Option(1, "--seeds", help="Train under N seeds (seed, seed+1, ...; one full run each, under OUT/members/): metrics.json then holds the mean and std over seeds and intervals over seeds and stills, as train-head --seeds."),
    restart: bool = _restart(),
    resume: Optional[bool] = _resume(),
    config: Optional[Path] = _config(),
) -> None:
    """Teacher-student networks: distil the temporal model into the still model; prints still / derived / fused accuracy."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from heads.finetune.tsn_seeds import train_tsn_seeds

    settings = TSNSettings.resolve(config, given_options(ctx, TSNSettings))
    train_tsn_seeds(root, settings, seeds=seeds, cache_dir=cache, out=out, resume=False if restart else resume)
