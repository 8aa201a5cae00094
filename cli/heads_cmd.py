"""``featcache train-head classifier|gan|embed``: stage-2 heads on cached features."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cli.choices import Device, Method, Temporal


def default_run_dir(method: str, temporal: str) -> Path:
    import time

    return Path("runs") / f"{method}-{temporal}-{time.strftime('%Y%m%d-%H%M%S')}"


def register(app, data_app) -> None:
    @app.command("train-head")
    def train_head_command(
        method: Method = typer.Argument(..., help="classifier: still model + dim-reduction/temporal classifier; gan: adversarial (3.1); embed: triplet embedding (3.2)."),
        cache: Path = typer.Option(Path("cache"), "--cache", help="Folder with still-<backbone>.h5 and <temporal>-<backbone>.h5."),
        temporal: Temporal = typer.Option(Temporal.dynamic, "--temporal", help="Temporal modality whose knowledge is transferred."),
        backbone: Optional[str] = typer.Option(None, "--backbone", help="Backbone of the still cache (default: the only one in --cache)."),
        temporal_backbone: Optional[str] = typer.Option(None, "--temporal-backbone", help="Backbone of the temporal cache (default: --backbone if that cache exists, else the only one)."),
        sets: Optional[List[str]] = typer.Option(None, "--set", help="Hyperparameter KEY=VALUE (repeatable); defaults from the paper's tables. Unknown keys list the valid ones. "
                 "Schedules scale with the data: each part trains max(epochs, ceil(min_steps / batches per epoch)) epochs "
                 "(still_/dimred_/classifier_ prefixes alike); the min_steps defaults are the steps the paper's epochs give "
                 "on its 7k-still set, so a small set is not undertrained. min_steps=1 runs plain epochs."),
        out: Optional[Path] = typer.Option(None, "--out", help="Run folder for metrics.json and model.pt (default: runs/<method>-<temporal>-<timestamp>)."),
        device: Device = typer.Option(Device.auto, "--device", help="auto: CUDA when present, else CPU."),
        seeds: int = typer.Option(1, "--seeds", help="Train under N seeds (seed, seed+1, ...; members of one stacked model): metrics.json then holds the mean and std over seeds, per-seed values under per_seed."),
    ) -> None:
        """Train a head on cached features; print val/test accuracy (still, derived temporal, fused)."""
        from featcache.progress import console
        from heads.checkpoint import save_checkpoint
        from heads.config import parse_sets
        from heads.evaluation import print_metrics, write_metrics
        from heads.head_data import HeadData
        from heads.seeds import seed_configs, train_seeds
        from heads.train_head import DimRedStore, resolve_device

        config = parse_sets(method.value, temporal.value, sets or [])
        seed_configs(config, seeds)  # validates --seeds before any loading
        torch_device = resolve_device(device.value)
        data = HeadData.load(cache, temporal.value, backbone, temporal_backbone)
        console.print(
            f"still: {data.still_cache.path} ({data.still_cache.backbone}, {len(data.still['train'])} train rows); "
            f"{temporal.value}: {data.temporal_cache.path} ({data.temporal_cache.backbone}, "
            f"{len(data.temporal['train'])} train rows); {data.num_classes} classes; device {torch_device}"
        )
        if data.still_cache.backbone != data.temporal_cache.backbone:
            console.print(f"note: still and temporal features come from different backbones "
                          f"({data.still_cache.backbone} vs {data.temporal_cache.backbone})")
        run_dir = out or default_run_dir(method.value, temporal.value)
        store = DimRedStore([run_dir, Path(cache) / "heads"], [run_dir, Path(cache) / "heads"], log=console.print)
        result = train_seeds(method.value, data, config, seeds, torch_device, dimred_store=store, progress=True)
        save_checkpoint(run_dir / "model.pt", result.checkpoint)
        write_metrics(run_dir, result.metrics)
        print_metrics(result.metrics)
        typer.echo(f"temporal classifier ({temporal.value}, test videos): "
                   f"{result.metrics['temporal_classifier']['test']:.1f}%; still model: {result.checkpoint['still_model']}")
        typer.echo(f"wrote {run_dir / 'metrics.json'} and {run_dir / 'model.pt'}")
