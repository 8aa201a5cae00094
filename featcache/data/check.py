"""Checking a folder-layout dataset, beyond the structure FolderDataset already validates.

Always: every listed file exists (imports are symlinks, which break when the source moves)
and is not empty. With ``deep=True``: every image decodes (``featcache.media.images.read_image``)
and every video (file, GIF or frame folder) opens, reports at least two frames and decodes
its first two (``featcache.media.video``); files of an unsupported type are listed as skipped; ``exact_frames=True`` also counts frames by decoding whole videos.
Every problem is collected (path + reason) instead of stopping at the first, and
warnings point out what will hurt T2SIL (a class with stills but no videos, an empty split).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from featcache.data.dataset import KINDS, FolderDataset
from featcache.data.val_split import DEFAULT_VAL_FRACTION
from featcache.errors import FeatcacheError, MediaError
from featcache.media.files import frame_files
from featcache.media.images import read_image
from featcache.media.video import probe_video, read_frames
from featcache.utils.progress import make_progress


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the dataset: the file (or folder) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


@dataclass
class CheckReport:
    root: Path
    classes: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # kind -> split -> class -> n
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts worth knowing that are not a problem (no videos/val)
    skipped: list[Problem] = field(default_factory=list)  # files of an unsupported type, left out
    checked: int = 0  # files examined
    deep: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def split_totals(self, kind: str) -> dict[str, int]:
        return {split: sum(by_class.values()) for split, by_class in self.counts.get(kind, {}).items()}


def check_dataset(
    root: str | os.PathLike,
    *,
    deep: bool = False,
    exact_frames: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> CheckReport:
    """Validate ``root`` and return a report; never raises for problems in the data itself."""
    report = CheckReport(root=Path(root).expanduser(), deep=deep)
    try:
        dataset = FolderDataset(report.root)
    except FeatcacheError as exc:  # structure is broken: report why, nothing more to count
        report.problems.append(Problem("", str(exc)))
        return report
    report.classes = list(dataset.classes)
    report.skipped = [Problem(path, reason) for path, reason in dataset.skipped]
    files: list[tuple[str, Path]] = []
    for kind in KINDS:
        if not dataset.has(kind):
            continue
        samples = dataset.stills() if kind == "stills" else dataset.videos()
        by_split: dict[str, dict[str, int]] = {s: {} for s in dataset.splits(kind)}
        for sample in samples:
            name = dataset.classes[sample.label]
            by_split[sample.split][name] = by_split[sample.split].get(name, 0) + 1
            files.append((kind, dataset.path(sample)))
        report.counts[kind] = by_split
    report.warnings = _coverage_warnings(report)
    if dataset.has("videos") and "val" not in dataset.splits("videos"):
        report.notes.append(
            f"videos/ has no val split: prepare carves {100 * DEFAULT_VAL_FRACTION:.0f}% of each class's train videos "
            "as val videos (--val-videos), on which temporal epochs and temperatures are chosen")
    report.problems = _check_files(files, deep=deep, exact_frames=exact_frames, workers=workers, progress=progress)
    report.checked = len(files)
    return report


def check_file(kind: str, path: Path, *, deep: bool = False, exact_frames: bool = False) -> Problem | None:
    """The problem with one file, or None when it is fine."""
    if not path.exists():
        target = f" (broken link to {os.readlink(path)})" if path.is_symlink() else ""
        return Problem(str(path), f"file not found{target}")
    content = _first_frame(path) if path.is_dir() else path  # a frame-folder video: its first frame
    if content.stat().st_size == 0:
        return Problem(str(content), "empty file (0 bytes)")
    if not deep:
        return None
    try:
        if kind == "stills":
            read_image(path)
        else:
            info = probe_video(path, exact=exact_frames)
            if info.num_frames < 2:
                return Problem(str(path), f"only {info.num_frames} frame(s); a video needs at least two")
            if len(read_frames(path, size=(32, 32), start=0, stop=2)) < 2:
                return Problem(str(path), "fewer than two decodable frames")
    except MediaError as exc:
        return Problem(str(path), _reason(str(exc), path))
    return None


def _first_frame(folder: Path) -> Path:
    return (frame_files(folder) or [folder])[0]


def _check_files(files, *, deep: bool, exact_frames: bool, workers: int | None, progress: bool) -> list[Problem]:
    workers = workers or min(4, os.cpu_count() or 1)
    problems: list[Problem] = []
    what = "decoding" if deep else "checking"
    with make_progress() as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task(f"{what} files", total=len(files), visible=progress)
        # Decoders release the GIL, so threads overlap PIL/OpenCV/PyAV work.
        jobs = pool.map(lambda item: check_file(item[0], item[1], deep=deep, exact_frames=exact_frames), files)
        for problem in jobs:
            if problem is not None:
                problems.append(problem)
            bar.advance(task)
    return problems


def _coverage_warnings(report: CheckReport) -> list[str]:
    """What will hurt T2SIL training without being an error in the files."""
    warnings = []
    per_kind = {
        kind: {name for by_class in by_split.values() for name in by_class} for kind, by_split in report.counts.items()
    }
    no_files, only = [], {"stills": [], "videos": []}
    for name in report.classes:
        present = [kind for kind in per_kind if name in per_kind[kind]]
        if not present:
            no_files.append(name)
        elif len(per_kind) == 2 and len(present) == 1:
            only[present[0]].append(name)
    if no_files:
        warnings.append(f"{len(no_files)} class(es) in classes.txt have no files: {_names(no_files)}")
    for kind, names in only.items():
        if names:
            other = "stills" if kind == "videos" else "videos"
            warnings.append(f"{len(names)} class(es) have {kind} but no {other} (T2SIL pairs them): {_names(names)}")
    for kind, by_split in report.counts.items():
        for split in KINDS[kind][0]:
            if split not in by_split:
                if (kind, split) != ("videos", "val"):  # optional: a note (prepare carves val videos)
                    warnings.append(f"{kind}/ has no {split} split")
                continue
            empty = [n for n in report.classes if n in per_kind[kind] and n not in by_split[split]]
            if empty:
                warnings.append(f"{kind}/{split} has no files for {len(empty)} class(es): {_names(empty)}")
    return warnings


def _names(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _reason(message: str, path: Path) -> str:
    """MediaError messages start with the path; keep only the reason."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


# -- a cache folder: `featcache data check CACHE [--deep]` ------------------------------------------
def is_cache_folder(root: str | os.PathLike) -> bool:
    """A folder of HDF5 caches (``*.h5``, no ``classes.txt``) rather than a dataset."""
    root = Path(root).expanduser()
    return root.is_dir() and not (root / "classes.txt").exists() and any(root.glob("*.h5"))


def check_cache_folder(folder: str | os.PathLike, *, deep: bool = False, progress: bool = True) -> list:
    """Every cache file of ``folder`` opened (finished?) and, with ``deep``, read back chunk by chunk,
    every checksum verified: one :class:`featcache.cache.verify.FileCheck` per file."""
    from featcache.cache.verify import cache_files, verify_file
    from featcache.utils.progress import make_progress

    files = cache_files(Path(folder).expanduser())
    checks = []
    with make_progress() as bar:
        task = bar.add_task("verifying caches" if deep else "opening caches", total=len(files), visible=progress)
        for path in files:
            checks.append(verify_file(path, deep=deep))
            bar.advance(task)
    return checks
