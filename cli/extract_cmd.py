"""``featcache extract``: pool5 features (+ logits) into ``DIR/<modality>-<backbone>.h5``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from cli.choices import Device, Modality


class Dtype(str, Enum):
    float32 = "float32"
    float16 = "float16"


def register(app, data_app) -> None:
    @app.command("extract")
    def extract_command(
        root: Path = typer.Argument(..., help="Dataset root in folder layout (stills from ROOT/stills; flow/dynamic from DIR/temporal.h5)."),
        modality: Modality = typer.Option(..., "--modality", help="still images, or the flow / dynamic rows of temporal.h5."),
        backbone: str = typer.Option(None, "--backbone", help="resnet50 or efficientnet-lite0 (default: resnet50 if its ImageNet weights are on this machine, else efficientnet-lite0)."),
        weights: str = typer.Option(None, "--weights", help="Weights file (torchvision .pth or a featcache checkpoint), or 'random'. Default: ImageNet."),
        cache: Path = typer.Option(Path("cache"), "--cache", help="Cache folder; writes DIR/<modality>-<backbone>.h5."),
        device: Device = typer.Option(Device.auto, "--device", help="auto: CUDA (fp16 autocast, channels_last) when present, else CPU."),
        views: int = typer.Option(1, "--views", help="Views per row: view 0 the centre crop, the others seeded random crops + flips."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Rows per forward pass (times --views images); default 64 on CUDA, 4 on the CPU."),
        workers: Optional[int] = typer.Option(None, "--workers", help="DataLoader processes decoding images (0: decode in the main process); default 0 on 2 cores, else up to 2."),
        resize: int = typer.Option(256, "--resize", help="Short side after resizing."),
        crop: int = typer.Option(224, "--crop", help="Square crop size."),
        dtype: Dtype = typer.Option(Dtype.float32, "--dtype", help="Storage type of the features."),
        shard_size: int = typer.Option(256, "--shard-size", help="Rows per resumable shard."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a cache (or unfinished parts) built with other settings."),
    ) -> None:
        """Backbone features of every still image, dynamic image or flow stack (resumable)."""
        from featcache.extract import ExtractSettings, extract

        settings = ExtractSettings(
            modality=modality.value, backbone=backbone, weights=weights, crop=crop, resize=resize, views=views,
            dtype=dtype.value, batch_size=batch_size, workers=workers, device=device.value, shard_size=shard_size,
        )
        report = extract(root, cache, settings, overwrite=overwrite)
        if not report.assembled:  # a torchrun rank > 0: rank 0 writes the file and the summary
            return
        shape = "x".join(str(s) for s in report.feature_shape)
        logits = ", with logits" if report.logits else ""
        if report.up_to_date:
            typer.echo(f"{report.path} is up to date ({report.written} rows, features {shape}{logits}); nothing to do")
        else:
            typer.echo(
                f"extracted {report.written}/{report.rows} rows -> {report.path} (features {shape} {dtype.value}{logits}); "
                f"{report.computed_rows} computed in {report.seconds:.1f} s ({report.images_per_second:.1f} rows/s)"
                + (f", {report.resumed_shards}/{report.shards} shards resumed" if report.resumed_shards else "")
            )
        if report.skipped:
            typer.echo(f"{len(report.skipped)} unreadable rows left out of the cache:", err=True)
            for _, reason in report.skipped:
                typer.echo(f"  {reason}", err=True)
