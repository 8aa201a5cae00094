"""``featcache data synth``: write the procedural synthetic action dataset."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.table import Table

from cli.registry import CommandTable
from featcache.errors import DatasetError
from featcache.utils.progress import make_console


def parse_counts(text: str, splits: tuple[str, ...], what: str) -> dict[str, int]:
    """'24,8,12' -> one count per split; a single number N gives train N and the other splits a share of it."""
    try:
        numbers = [int(x) for x in text.split(",")]
    except ValueError:
        raise DatasetError(f"{what}: expected integers like {','.join('1' * len(splits))}, got {text!r}") from None
    if len(numbers) == 1:
        n = numbers[0]
        shares = {"train": 1.0, "val": 1 / 3, "test": 1 / 2} if what == "--stills-per-class" else {"train": 1.0, "val": 0.3, "test": 0.4}
        numbers = [max(1, round(n * shares[s])) if n > 0 else 0 for s in splits]
    elif len(numbers) == 2 and len(splits) == 3 and what == "--videos-per-class":
        numbers = [numbers[0], 0, numbers[1]]  # TRAIN,TEST: no videos/val (prepare carves val from train)
    if len(numbers) != len(splits) or any(n < 0 for n in numbers):
        raise DatasetError(f"{what}: expected one count or {len(splits)} counts ({', '.join(splits)}), got {text!r}")
    return dict(zip(splits, numbers))


def parse_size(text: str, what: str) -> tuple[int, int]:
    """'96x128' (H x W) or '224' (square)."""
    try:
        parts = [int(x) for x in text.lower().split("x")]
    except ValueError:
        raise DatasetError(f"{what}: expected HxW such as 96x128, got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise DatasetError(f"{what}: expected HxW such as 96x128, got {text!r}")
    return parts[0], parts[1]


commands = CommandTable()  # registered by cli.app


@commands.command("synth", data=True)
def synth(
    root: Path = typer.Argument(..., help="Folder to write the dataset into (created if missing)."),
    classes: int = typer.Option(8, "--classes", help="Number of action classes (2-12, taken in pairs)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives byte-identical files."),
    stills_per_class: str = typer.Option(
        "24,8,12", "--stills-per-class", help="Stills per class: TRAIN,VAL,TEST, or one number for train."),
    videos_per_class: str = typer.Option(
        "10,3,4", "--videos-per-class", help="Videos per class: TRAIN,VAL,TEST (writes videos/val), TRAIN,TEST (no videos/val: prepare carves val videos from train), or one number for train."),
    frames: int = typer.Option(64, "--frames", help="Frames per video (>= 40; flow stacks use the middle 61)."),
    still_size: str = typer.Option("224x224", "--still-size", help="Still size HxW."),
    video_size: str = typer.Option("96x128", "--video-size", help="Video frame size HxW."),
    still_motion_cue: float = typer.Option(
        0.0, "--still-motion-cue", min=0.0, max=1.0,
        help="How much of the direction of motion a still reveals, 0..1: the probability that its motion blur "
             "is a trail showing the direction (0: stills never show it, only videos do; 1: every still does). "
             "Ideal still-only accuracy on a pair is 50% + 50% x this; synth.json records it."),
    still_exposure: float = typer.Option(
        1.0, "--still-exposure", min=0.25, max=8.0,
        help="Strength of the motion cue: a still's exposure, x the default two to five video frames. Longer "
             "exposures draw longer trails (cue) and smears (no cue); only the trail's one-sided fade tells the "
             "direction, so the ideal accuracies stay as --still-motion-cue gives them."),
    shuffle_videos: bool = typer.Option(
        False, "--shuffle-videos",
        help="Negative control: each video shows a random class's action, so videos carry no label information."),
    unlabelled_stills: int = typer.Option(
        0, "--unlabelled-stills", min=0,
        help="Stills per train video, each of that video's own figure (its body, clothes, timing) at another moment, "
             "under stills/unlabelled/ (labels unknown to the methods) and linked to the video in still-videos.csv: "
             "the stills TSN's student learns from with --pairing instance."),
    workers: int = typer.Option(
        min(2, os.cpu_count() or 1), "--workers", help="Processes rendering in parallel."),
    restart: bool = typer.Option(
        False, "--restart", help="Start over: replace a dataset already in ROOT (otherwise a matching one is resumed)."),
    overwrite: bool = typer.Option(False, "--overwrite", hidden=True, help="Deprecated: use --restart."),
    list_classes: bool = typer.Option(False, "--list-classes", help="Print the classes and exit."),
) -> None:
    """Write a synthetic still+video action dataset (folder layout) where paired classes differ only in motion.

    An interrupted run resumes when rerun with the same settings; a ROOT holding anything else is refused unless --restart is given.
    """
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.data.synth.generate import SynthConfig, generate

    if list_classes:
        _print_classes(classes)
        return
    config = SynthConfig(
        classes=classes, seed=seed,
        stills=parse_counts(stills_per_class, ("train", "val", "test"), "--stills-per-class"),
        videos=parse_counts(videos_per_class, ("train", "val", "test"), "--videos-per-class"),
        frames=frames, still_size=parse_size(still_size, "--still-size"),
        video_size=parse_size(video_size, "--video-size"), still_motion_cue=still_motion_cue,
        still_exposure=still_exposure, shuffle_videos=shuffle_videos, unlabelled_stills=unlabelled_stills,
    )
    result = generate(root, config, overwrite=restart or overwrite, workers=max(1, workers))
    _print_dataset(root, result, config)


def _print_classes(classes: int) -> None:
    """--list-classes: the first ``classes`` actions (2..all) with their motion twin."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.data.synth.actions import ACTIONS, pair_of

    table = Table("label", "class", "pair", "what it shows")
    for action in ACTIONS[: max(2, min(classes, len(ACTIONS)))]:
        table.add_row(str(action.id), action.name, pair_of(action).name, action.description)
    make_console().print(table)


def _print_dataset(root: Path, result: dict, config) -> None:
    """What was written, loading it back as a dataset first (so a broken write fails here)."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.data.dataset import FolderDataset
    from featcache.data.synth.actions import ACTIONS

    console = make_console()
    dataset = FolderDataset(root)  # check that what was written loads
    verb = "resumed" if result["resumed"] else "wrote"
    console.print(
        f"{verb} {root}: {result['written']} files written, {result['skipped']} already there, "
        f"in {result['seconds']:.1f} s"
    )
    table = Table("label", "class", "what it shows")
    for label, name in enumerate(dataset.classes):
        table.add_row(str(label), name, next(a.description for a in ACTIONS if a.name == name))
    console.print(table)
    summary = dataset.summary()
    console.print("  ".join(f"{kind}: " + ", ".join(f"{s} {n}" for s, n in splits.items())
                            for kind, splits in summary.items()))
    ideal = config.ideal_accuracies()
    console.print(f"still motion cue {config.still_motion_cue:g}: ideal accuracy still-only "
                  f"{100 * ideal['still_only']:.1f}%, video-only {100 * ideal['video_only']:.1f}%")
