"""``featcache data check`` and ``featcache data import-{ucf101,hmdb51,stanford40}``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.registry import CommandTable
from featcache.utils.progress import make_console

MAPPING_HELP = "class-mapping YAML, a shipped mapping name (ssvac40), or 'none' to keep every source class"


commands = CommandTable()  # registered by cli.app


@commands.command("check", data=True)
def check(
    root: Path = typer.Argument(..., help="dataset root in folder layout, or a cache folder (*.h5)"),
    deep: bool = typer.Option(False, "--deep", help="decode every image and open every video (>= 2 frames); "
                                                    "in a cache folder: read every cache back, verifying its checksums"),
    exact_frames: bool = typer.Option(False, "--exact-frames", help="with --deep: count video frames by decoding whole videos"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="parallel decoders (default: up to 4)"),
) -> None:
    """Validate a dataset (class x split counts, every problem with its path and reason) or a cache folder."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.data.check import check_dataset, is_cache_folder

    if is_cache_folder(root):
        return _check_caches(root, deep)
    report = check_dataset(root, deep=deep, exact_frames=exact_frames, workers=workers)
    console = make_console()
    if report.classes:
        console.print(_counts_table(report))
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    for skipped in report.skipped:
        console.print(f"[yellow]skipped:[/] {skipped}", highlight=False, soft_wrap=True)
    unsupported = f", {len(report.skipped)} file(s) of an unsupported type skipped" if report.skipped else ""
    err = make_console(stderr=True)
    for problem in report.problems:
        err.print(f"[red]problem:[/] {problem}", highlight=False, soft_wrap=True)
    depth = "decoded" if deep else "checked (existence only; --deep decodes them)"
    if report.ok:
        console.print(f"[green]ok[/]: {report.checked} files {depth}, {len(report.classes)} classes{unsupported}", highlight=False)
        return
    err.print(f"featcache: error: {len(report.problems)} problem(s) in {report.root}{unsupported}", highlight=False)
    raise typer.Exit(1)


def _check_caches(folder: Path, deep: bool) -> None:
    """``data check CACHE``: each cache file finished and, with --deep, every checksum verified."""
    from rich.console import Console

    from featcache.data.check import check_cache_folder

    console, err = Console(), Console(stderr=True)
    checks = check_cache_folder(folder, deep=deep)
    for check in checks:
        state = "[red]damaged[/]" if check.problems else "[green]ok[/]"
        unchecked = f"; no checksums in {', '.join(check.unchecked)}" if check.unchecked else ""
        console.print(f"{state} {check.path}: {check.datasets} datasets, {check.rows} rows{unchecked}",
                      highlight=False, soft_wrap=True)
        for problem in check.problems:
            err.print(f"[red]problem:[/] {problem}", highlight=False, soft_wrap=True)
    bad = [c for c in checks if c.problems]
    depth = "read back, every checksum verified" if deep else "opened (--deep reads every chunk back)"
    if not bad:
        console.print(f"[green]ok[/]: {len(checks)} cache file(s) in {folder} {depth}", highlight=False)
        return
    err.print(f"featcache: error: {len(bad)} of {len(checks)} cache file(s) in {folder} damaged", highlight=False)
    raise typer.Exit(1)


# -- the importers' shared arguments and call ---------------------------------------
def _out():
    return typer.Argument(..., help="output dataset root (folder layout); may already hold other imports")


def _mapping():
    return typer.Option(None, "--mapping", help=MAPPING_HELP + " [default: ssvac40]")


def _run_importer(name: str, src: Path, out: Path, mapping: Optional[str], **options) -> None:
    """``featcache.data.importers.<name>`` with the class mapping loaded, then its summary."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.data import importers

    _print_summary(getattr(importers, name)(src, out, mapping=importers.ClassMapping.load(mapping), **options))


def _video_import_command(name: str, src_help: str, splits_help: str, doc: str):
    """UCF-101 and HMDB-51 take the same arguments (official split number, split-list folder)."""

    def command(
        src: Path = typer.Argument(..., help=src_help),
        out: Path = _out(),
        mapping: Optional[str] = _mapping(),
        split: int = typer.Option(1, "--split", min=1, max=3, help="official train/test split number"),
        splits_dir: Optional[Path] = typer.Option(None, "--splits-dir", help=splits_help),
    ) -> None:
        _run_importer(name, src, out, mapping, split=split, splits_dir=splits_dir)

    command.__doc__ = doc
    return command


import_ucf101 = commands.command("import-ucf101", data=True)(_video_import_command(
    "import_ucf101", "UCF-101 folder (holding UCF-101/ and ucfTrainTestlist/)",
    "folder with classInd.txt and the split lists",
    "Import UCF-101 videos (classInd.txt, trainlist0N.txt, testlist0N.txt) by symlink."))
import_hmdb51 = commands.command("import-hmdb51", data=True)(_video_import_command(
    "import_hmdb51", "HMDB-51 folder (holding hmdb51/ and testTrainMulti_7030_splits/)",
    "folder with the <class>_test_splitN.txt files",
    "Import HMDB-51 videos (<class>_test_splitN.txt: 1 train, 2 test, 0 unused) by symlink."))


@commands.command("import-stanford40", data=True)
def import_stanford40(
    src: Path = typer.Argument(..., help="Stanford40 folder (holding JPEGImages/ and ImageSplits/)"),
    out: Path = _out(),
    mapping: Optional[str] = _mapping(),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="fraction of each class's train images moved to val"),
    seed: int = typer.Option(0, "--seed", help="seed of the train/val carve"),
) -> None:
    """Import Stanford40 still images (ImageSplits/<action>_train|test.txt) by symlink, carving a val split."""
    _run_importer("import_stanford40", src, out, mapping, val_fraction=val_fraction, seed=seed)


# -- rendering ----------------------------------------------------------------
def _counts_table(report):
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.data.dataset import KINDS

    columns = [(kind, split) for kind in KINDS if kind in report.counts for split in report.counts[kind]]
    table = Table(title=f"{report.root}: {len(report.classes)} classes", title_justify="left")
    table.add_column("class", no_wrap=True)
    for kind, split in columns:
        table.add_column(f"{kind}\n{split}", justify="right")
    for name in report.classes:
        table.add_row(name, *(_cell(report.counts[kind][split].get(name, 0)) for kind, split in columns))
    totals = [str(report.split_totals(kind)[split]) for kind, split in columns]
    table.add_section()
    table.add_row("[bold]total", *totals)
    return table


def _cell(count: int) -> str:
    return str(count) if count else "[dim]0"


def _print_summary(summary) -> None:
    splits = sorted({s for by_split in summary.counts.values() for s in by_split}, key=("train", "val", "test").index)
    table = Table(title=f"{summary.source} -> {summary.root}/{summary.kind}", title_justify="left")
    table.add_column("class")
    for split in splits:
        table.add_column(split, justify="right")
    for name, by_split in summary.counts.items():
        table.add_row(name, *(_cell(by_split.get(s, 0)) for s in splits))
    table.add_section()
    table.add_row("[bold]total", *(str(sum(b.get(s, 0) for b in summary.counts.values())) for s in splits))
    console = make_console()
    console.print(table)
    skipped = sum(summary.skipped_classes.values())
    if summary.skipped_classes:
        names = ", ".join(sorted(summary.skipped_classes)[:10]) + (" ..." if len(summary.skipped_classes) > 10 else "")
        console.print(f"skipped {skipped} file(s) of {len(summary.skipped_classes)} unmapped class(es) ({names})", highlight=False)
    if summary.unused:
        console.print(f"skipped {summary.unused} file(s) marked unused (id 0) in this split", highlight=False)
    console.print(
        f"[green]imported[/] {summary.total} {summary.kind}: {summary.linked} linked, {summary.present} already present",
        highlight=False,
    )
