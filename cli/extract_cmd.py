"""``featcache extract``: pool5 features (+ logits) into ``DIR/<modality>-<backbone>.h5``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli.choices import Modality, choices, device_option
from cli.registry import CommandTable

Dtype = choices("Dtype", ("float32", "float16"))
commands = CommandTable()  # registered by cli.app


@commands.command("extract")
def extract_command(
    root: Path = typer.Argument(..., help="Dataset root in folder layout (stills from ROOT/stills; flow/dynamic from DIR/temporal.h5)."),
    modality: Modality = typer.Option(..., "--modality", help="still images, or the flow / dynamic rows of temporal.h5."),
    backbone: str = typer.Option(None, "--backbone", help="resnet50, efficientnet-lite0 or timm:<model_name> (needs timm and --weights) (default: resnet50 if its ImageNet weights are on this machine, else efficientnet-lite0)."),
    weights: str = typer.Option(None, "--weights", help="Weights file (.pth, .safetensors or a featcache checkpoint), or 'random'. Default: ImageNet (built-ins)."),
    cache: Path = typer.Option(Path("cache"), "--cache", help="Cache folder; writes DIR/<modality>-<backbone>.h5."),
    device: str = device_option("CUDA runs with fp16 autocast and channels_last."),
    views: int = typer.Option(1, "--views", help="Views per row: view 0 the centre crop, the others seeded random crops + flips."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Rows per forward pass (times --views images); default 64 on CUDA, 4 on the CPU."),
    workers: Optional[int] = typer.Option(None, "--workers", help="DataLoader processes decoding images (0: decode in the main process); default 0 on 2 cores, else up to 2."),
    resize: Optional[int] = typer.Option(None, "--resize", help="Short side after resizing (default: the backbone's: 256, or crop / crop_pct of a timm model's config)."),
    crop: Optional[int] = typer.Option(None, "--crop", help="Square crop size (default: the backbone's: 224, or a timm model's input size)."),
    dtype: Dtype = typer.Option(Dtype.float32, "--dtype", help="Storage type of the features."),
    shard_size: int = typer.Option(256, "--shard-size", help="Rows per resumable shard."),
    restart: bool = typer.Option(False, "--restart", help="Start over: discard this cache and its unfinished parts (default: resume them, refusing other settings or a stale cache whose input changed)."),
    overwrite: bool = typer.Option(False, "--overwrite", hidden=True, help="Deprecated: use --restart."),
) -> None:
    """Backbone features of every still image, dynamic image or flow stack (resumable)."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.extraction.extract import ExtractSettings, extract

    settings = ExtractSettings(
        modality=modality.value, backbone=backbone, weights=weights, crop=crop, resize=resize, views=views,
        dtype=dtype.value, batch_size=batch_size, workers=workers, device=device, shard_size=shard_size,
    )
    report = extract(root, cache, settings, restart=restart or overwrite)  # --overwrite: an alias of --restart
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
