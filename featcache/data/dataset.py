"""The one loader of datasets in folder layout (CONTRACT.md)::

    ROOT/stills/{train,val,test}/<class>/<image>
    ROOT/stills/unlabelled/<image>  # optional: stills whose labels are unknown (transfer methods only)
    ROOT/videos/{train,val,test}/<class>/<video>   # videos/val is optional
    ROOT/classes.txt            # optional, fixes the class order
    ROOT/still-videos.csv       # optional: the video each still comes from (featcache.data.still_videos)

Without ``videos/val``, :meth:`FolderDataset.videos_with_val` carves the val videos from the
train videos (seeded, class-stratified, :mod:`featcache.data.val_split`); ``prepare`` makes that
split once and records it in ``temporal.h5``.

A video is a video file (``.avi``, ``.mp4``, ``.gif``, ...) or a folder of frames, the
rawframes layout of mmaction2 / denseflow (``<video>/img_00001.jpg ...``; other images in it,
such as denseflow's ``flow_x_*.jpg``, are ignored when ``img_*`` frames are present).
A file of an unsupported type is skipped and listed in :attr:`FolderDataset.skipped`.

Every command reads datasets through :class:`FolderDataset`, so the class list, the
splits and the file lists have one definition.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from featcache.errors import DatasetError
from featcache.cache.schema import SPLITS, VIDEO_SPLITS
from featcache.data.val_split import DEFAULT_VAL_FRACTION, DEFAULT_VAL_SEED, carve_val, carved_record
from featcache.media.files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, is_frame_folder

CLASSES_FILE = "classes.txt"
KINDS = {"stills": (SPLITS, IMAGE_EXTENSIONS), "videos": (VIDEO_SPLITS, VIDEO_EXTENSIONS)}
UNLABELLED = "unlabelled"  # ROOT/stills/unlabelled/<image>: no class folders, not a split


@dataclass(frozen=True)
class Sample:
    """One file of the dataset: ``path`` relative to the root, its class index and split."""

    path: str
    label: int
    split: str


def read_classes_file(path: Path) -> list[str]:
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DatasetError(f"{path}: duplicate class names: {', '.join(duplicates)}")
    if not names:
        raise DatasetError(f"{path}: no class names")
    return names


class FolderDataset:
    """A dataset in folder layout, validated on construction.

    Raises :class:`DatasetError` naming the exact path for: a missing root, neither
    ``stills/`` nor ``videos/``, an unknown split folder, a class folder not in
    ``classes.txt`` or an empty class folder. Files of an unsupported type are skipped:
    ``skipped`` lists them as ``(path relative to the root, reason)``.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(f"dataset root not found or not a folder: {self.root}")
        present = [kind for kind in KINDS if (self.root / kind).is_dir()]
        if not present:
            raise DatasetError(f"{self.root}: no stills/ or videos/ folder; see the folder layout in the README")
        self.skipped: list[tuple[str, str]] = []
        self._files: dict[str, dict[str, dict[str, list[str]]]] = {
            kind: self._scan(kind) for kind in present
        }
        self.classes = self._class_list()
        self._index = {name: i for i, name in enumerate(self.classes)}

    # -- scanning -------------------------------------------------------------
    def _scan(self, kind: str) -> dict[str, dict[str, list[str]]]:
        """{split: {class: [relative paths]}} for one kind, validating as it goes."""
        splits, extensions = KINDS[kind]
        base = self.root / kind
        out: dict[str, dict[str, list[str]]] = {}
        for split_dir in sorted(base.iterdir()):
            if split_dir.name.startswith(".") or (kind == "stills" and split_dir.name == UNLABELLED):
                continue
            if not split_dir.is_dir() or split_dir.name not in splits:
                raise DatasetError(
                    f"{split_dir}: unknown split {split_dir.name!r} under {kind}/; expected {', '.join(splits)}"
                )
            classes: dict[str, list[str]] = {}
            for class_dir in sorted(split_dir.iterdir()):
                if class_dir.name.startswith("."):
                    continue
                if not class_dir.is_dir():
                    raise DatasetError(f"{class_dir}: expected a class folder, found a file")
                files = self._class_files(class_dir, kind)
                if not files:
                    raise DatasetError(f"{class_dir}: empty class folder (no {kind[:-1]} files)")
                classes[class_dir.name] = files
            out[split_dir.name] = classes
        return out

    def _class_files(self, folder: Path, kind: str) -> list[str]:
        """Files of one class folder (and its sub-folders); a frame folder under videos/ is one video."""
        extensions = KINDS[kind][1]
        files = []
        for path in sorted(folder.iterdir()):
            if path.name.startswith("."):
                continue
            if path.is_dir():
                if kind == "videos" and is_frame_folder(path):
                    files.append(path.relative_to(self.root).as_posix())
                else:
                    files.extend(self._class_files(path, kind))
            elif path.suffix.lower() in extensions:
                files.append(path.relative_to(self.root).as_posix())
            else:
                reason = f"unsupported file type {path.suffix or '(none)'} in {kind}/ (expected {', '.join(sorted(extensions))})"
                self.skipped.append((path.relative_to(self.root).as_posix(), reason))
        return files

    def _class_list(self) -> list[str]:
        seen = sorted({c for splits in self._files.values() for classes in splits.values() for c in classes})
        classes_file = self.root / CLASSES_FILE
        if not classes_file.exists():
            if not seen:
                raise DatasetError(f"{self.root}: no class folders found")
            return seen
        names = read_classes_file(classes_file)
        unknown = [c for c in seen if c not in set(names)]
        if unknown:
            raise DatasetError(f"{self.root}: class folders not listed in {CLASSES_FILE}: {', '.join(unknown)}")
        return names

    # -- queries --------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise DatasetError(f"unknown class {name!r}; classes are {', '.join(self.classes)}") from None

    def has(self, kind: str) -> bool:
        return kind in self._files

    def splits(self, kind: str) -> list[str]:
        """The splits present for ``kind`` ('stills' or 'videos'), in canonical order."""
        return [s for s in KINDS[kind][0] if s in self._files.get(kind, {})]

    def _samples(self, kind: str, split: str | None) -> list[Sample]:
        if kind not in KINDS:
            raise DatasetError(f"unknown kind {kind!r}; expected stills or videos")
        valid = KINDS[kind][0]
        if split is not None and split not in valid:
            raise DatasetError(f"unknown split {split!r} for {kind}; expected {', '.join(valid)}")
        if kind not in self._files:
            raise DatasetError(f"{self.root}: no {kind}/ folder")
        wanted = [split] if split else self.splits(kind)
        samples = []
        for s in wanted:
            for class_name, files in self._files[kind].get(s, {}).items():
                label = self._index[class_name]
                samples.extend(Sample(path, label, s) for path in files)
        # Canonical order: split, then class index, then path.
        order = {name: i for i, name in enumerate(valid)}
        return sorted(samples, key=lambda x: (order[x.split], x.label, x.path))

    def stills(self, split: str | None = None) -> list[Sample]:
        """Still images of one split (or all splits), in canonical order."""
        return self._samples("stills", split)

    def unlabelled_stills(self) -> list[str]:
        """Paths (relative to the root, sorted) of the stills under ``stills/unlabelled/``; [] without it."""
        folder = self.root / "stills" / UNLABELLED
        if not folder.is_dir():
            return []
        extensions = KINDS["stills"][1]
        return sorted(p.relative_to(self.root).as_posix() for p in folder.rglob("*")
                      if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith("."))

    def videos(self, split: str | None = None) -> list[Sample]:
        """Videos of one split (or all splits), in canonical order."""
        return self._samples("videos", split)

    def videos_with_val(self, fraction: float = DEFAULT_VAL_FRACTION,
                        seed: int = DEFAULT_VAL_SEED) -> tuple[list[Sample], dict]:
        """Every video with its split, val included, and the record of where val came from.

        ``videos/val`` present: the folders decide (``fraction`` and ``seed`` unused). Absent: a
        seeded, class-stratified ``fraction`` of the train videos becomes val, video by video.
        """
        samples = self.videos()
        if "val" in self.splits("videos"):
            count = sum(s.split == "val" for s in samples)
            return samples, {"val": "folder", "count": count}
        train = [s for s in samples if s.split == "train"]
        mask = carve_val([s.label for s in train], [s.path for s in train], fraction, seed)
        carved = {s.path for s, m in zip(train, mask) if m}
        samples = [dataclasses.replace(s, split="val") if s.path in carved else s for s in samples]
        order = {name: i for i, name in enumerate(VIDEO_SPLITS)}
        samples.sort(key=lambda x: (order[x.split], x.label, x.path))
        return samples, carved_record(fraction, seed, len(carved), "train videos")

    def path(self, sample: Sample) -> Path:
        return self.root / sample.path

    def summary(self) -> dict[str, dict[str, int]]:
        """{kind: {split: number of files}}."""
        return {
            kind: {s: sum(len(f) for f in self._files[kind][s].values()) for s in self.splits(kind)}
            for kind in self._files
        }

    def __repr__(self) -> str:
        return f"FolderDataset({str(self.root)!r}, classes={self.num_classes}, {self.summary()})"
