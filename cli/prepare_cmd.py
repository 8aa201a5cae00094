"""``featcache prepare``: videos -> dynamic images and optical-flow stacks in ``DIR/temporal.h5``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from cli.choices import Temporal, device_option
from cli.registry import CommandTable
from featcache.cache.schema import TEMPORAL_KINDS
from featcache.errors import FeatcacheError


class FlowMethod(str, Enum):
    tvl1 = "tvl1"
    tvl1_torch = "tvl1-torch"
    tvl1_opencv = "tvl1-opencv"
    farneback = "farneback"
    dis = "dis"


def parse_size(text: str) -> tuple[int, int]:
    """'256x340' -> (256, 340): height x width."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise FeatcacheError(f"bad --size {text!r}; expected HxW, e.g. 256x340") from None
    return height, width


commands = CommandTable()  # registered by cli.app


@commands.command("prepare")
def prepare_command(
    root: Path = typer.Argument(..., help="Dataset root in folder layout (reads ROOT/videos/{train,val,test}/<class>/...; val optional)."),
    cache: Path = typer.Option(Path("cache"), "--cache", help="Cache folder; writes DIR/temporal.h5."),
    flow: FlowMethod = typer.Option(
        FlowMethod.tvl1, "--flow",
        help="Optical-flow method: tvl1 is the paper's (tvl1-torch, batched on CPU/GPU, or tvl1-opencv: tvl1 picks the faster for the device); farneback and dis are faster.",
    ),
    device: str = device_option("Where tvl1-torch runs."),
    flow_batch: int = typer.Option(0, "--flow-batch", help="Frame pairs per TV-L1 solver call (0: as many as fit in free GPU memory; 1 on the CPU, measured fastest)."),
    size: str = typer.Option("256x340", "--size", help="Frames are resized to HxW before anything is computed."),
    only: Temporal = typer.Option(None, "--only", help="Prepare only dynamic images or only flow stacks."),
    window: int = typer.Option(10, "--window", help="Frames per dynamic image."),
    stride: int = typer.Option(6, "--stride", help="Frames between dynamic-image windows."),
    count: int = typer.Option(6, "--count", help="Dynamic images per video (from the middle)."),
    flow_frames: int = typer.Option(60, "--flow-frames", help="Middle flow fields used per video (stacks of 10)."),
    workers: int = typer.Option(0, "--workers", help="Processes computing videos in parallel (0: min(2, CPU count))."),
    val_videos: float = typer.Option(0.2, "--val-videos", help="Without ROOT/videos/val: the share of each class's train videos that becomes val videos (seeded, whole videos; recorded in temporal.h5). Every epoch and temperature is chosen on them, never on test."),
    val_seed: int = typer.Option(0, "--val-seed", help="Seed of the val-video draw (without ROOT/videos/val)."),
    restart: bool = typer.Option(False, "--restart", help="Discard unfinished parts (and any existing file) and start over; needed to replace a finished temporal.h5 built with other settings."),
    keep_parts: bool = typer.Option(False, "--keep-parts", help="Keep the per-video parts folder after assembling."),
) -> None:
    """Turn every video into dynamic images and optical-flow stacks (resumable)."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.data.val_split import describe_split
    from featcache.representations.prepare import PrepareSettings, prepare

    kinds = (only.value,) if only else TEMPORAL_KINDS
    settings = PrepareSettings(
        size=parse_size(size), kinds=kinds, window=window, stride=stride, count=count,
        flow_method=flow.value, flow_frames=flow_frames, flow_device=device, flow_batch=flow_batch,
        val_videos=val_videos, val_seed=val_seed,
    )
    report = prepare(root, cache, settings, workers=workers or None, restart=restart, keep_parts=keep_parts)
    if not report.assembled:  # a torchrun rank > 0: rank 0 writes the file and the summary
        return
    rows = ", ".join(f"{n} {'dynamic images' if k == 'dynamic' else 'flow stacks'}" for k, n in report.rows.items())
    if report.up_to_date:
        typer.echo(f"{report.path} is up to date ({report.prepared}/{report.videos} videos, {rows}); nothing to do")
    else:
        typer.echo(
            f"prepared {report.prepared}/{report.videos} videos ({report.computed} computed, {report.reused} reused, "
            f"{len(report.failed)} failed) -> {report.path}: {rows} at {settings.size[0]}x{settings.size[1]} "
            f"in {report.seconds:.1f} s"
        )
    if report.video_split:
        typer.echo(f"videos: {describe_split(report.video_split)}")
    if report.notes:
        typer.echo(f"{len({s for s, _ in report.notes})} short videos gave fewer dynamic images / flow stacks (listed above)")
    for source, reason in report.failed:
        typer.echo(f"  failed: {reason}", err=True)
    if report.unsupported:
        typer.echo(f"{len(report.unsupported)} file(s) of an unsupported type skipped:", err=True)
        for source, reason in report.unsupported:
            typer.echo(f"  skipped: {source}: {reason}", err=True)
