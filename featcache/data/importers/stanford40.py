"""Stanford40 as distributed -> folder layout (``stills/{train,val,test}/<class>/``).

Source layout::

    SRC/JPEGImages/<action>_<nnn>.jpg
    SRC/ImageSplits/actions.txt                  "action_name  number_of_images" header, one action a line
    SRC/ImageSplits/<action>_train.txt           one image file name a line
    SRC/ImageSplits/<action>_test.txt

Stanford40 has no validation split: a seeded, per-class fraction of train becomes val, so
model selection never touches test (the paper tunes on val and reports test).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from featcache.errors import DatasetError
from featcache.data.importers.class_mapping import ClassMapping
from featcache.data.importers.layout_writer import ImportSummary, LayoutWriter
from featcache.data.importers.source_files import read_lines

SOURCE = "stanford40"


def read_actions(lists: Path) -> list[str]:
    """Action names from ``actions.txt`` (header skipped), else from the ``*_train.txt`` files."""
    actions_file = lists / "actions.txt"
    if actions_file.is_file():
        names = [fields[0] for _, fields in read_lines(actions_file)]
        names = [n for n in names if n.lower() not in ("action_name", "action")]
        if not names:
            raise DatasetError(f"{actions_file}: no actions listed")
        return names
    names = sorted(p.name[: -len("_train.txt")] for p in lists.glob("*_train.txt"))
    if not names:
        raise DatasetError(f"{lists}: neither actions.txt nor any <action>_train.txt split file")
    return names


def carve_val(files: list[str], fraction: float, *, seed: int, action: str) -> tuple[list[str], list[str]]:
    """Split ``files`` into (train, val), deterministically per (seed, action).

    Seeding per action keeps each class's val set unchanged when other classes are added.
    At least one image stays in train; a class with 2+ images gets at least one val image.
    """
    files = sorted(files)
    if fraction <= 0 or len(files) < 2:
        return files, []
    count = min(len(files) - 1, max(1, int(round(fraction * len(files)))))
    rng = np.random.default_rng([seed, zlib.crc32(action.encode("utf-8"))])
    val = set(rng.permutation(len(files))[:count].tolist())
    return [f for i, f in enumerate(files) if i not in val], [f for i, f in enumerate(files) if i in val]


def import_stanford40(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    mapping: ClassMapping | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    progress: bool = True,
) -> ImportSummary:
    """Link the Stanford40 images into ``out`` with train/val/test splits."""
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"--val-fraction must be in [0, 1), not {val_fraction}")
    src = Path(src).expanduser()
    images, lists = src / "JPEGImages", src / "ImageSplits"
    for folder in (src, images, lists):
        if not folder.is_dir():
            raise DatasetError(f"{folder}: Stanford40 folder not found")
    mapping = mapping or ClassMapping.load()
    writer = LayoutWriter(
        out, mapping, source=SOURCE, kind="stills", options={"val_fraction": val_fraction, "seed": seed}
    )
    for action in read_actions(lists):
        train_list, test_list = lists / f"{action}_train.txt", lists / f"{action}_test.txt"
        if not writer.is_mapped(action):
            counted = sum(len(read_lines(p)) for p in (train_list, test_list) if p.is_file())
            writer.skip_class(action, counted)
            continue
        train = _listed_images(train_list, images)
        test = _listed_images(test_list, images)
        overlap = sorted(set(train) & set(test))
        if overlap:
            raise DatasetError(f"{test_list}: {overlap[0]} is also in {train_list.name} (train/test overlap)")
        train, val = carve_val(train, val_fraction, seed=seed, action=action)
        for split, names in (("train", train), ("val", val), ("test", test)):
            for name in names:
                writer.add(images / name, split=split, source_class=action)
    return writer.write(progress=progress)


def _listed_images(list_path: Path, images: Path) -> list[str]:
    names = []
    for number, fields in read_lines(list_path):
        name = fields[0]
        if not (images / name).is_file():
            raise DatasetError(f"{images / name}: listed in {list_path}:{number} but not found")
        names.append(name)
    return names
