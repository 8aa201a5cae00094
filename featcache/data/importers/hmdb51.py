"""HMDB-51 as distributed -> folder layout (``videos/{train,test}/<class>/``).

Source layout::

    SRC/hmdb51/<class>/<clip>.avi                       (or SRC/hmdb51_org/..., or SRC itself)
    SRC/testTrainMulti_7030_splits/<class>_test_splitN.txt   "<clip>.avi <id>"

with id 1 = train, 2 = test, 0 = not used in split N.
"""

from __future__ import annotations

import os
from pathlib import Path

from featcache.errors import DatasetError
from featcache.data.importers.class_mapping import ClassMapping
from featcache.data.importers.layout_writer import ImportSummary
from featcache.data.importers.source_files import read_lines
from featcache.data.importers.video_source import open_video_source

SOURCE = "hmdb51"
VIDEO_FOLDERS = ["hmdb51", "hmdb51_org", "HMDB51", "videos", "rawframes", "."]  # rawframes: mmaction2 frame folders
SPLIT_FOLDERS = [
    "testTrainMulti_7030_splits",
    "test_train_splits/testTrainMulti_7030_splits",
    "splits",
    "../testTrainMulti_7030_splits",
    ".",
]
SPLIT_IDS = {"0": None, "1": "train", "2": "test"}


def split_files(lists: Path, split: int) -> dict[str, Path]:
    """{class: its <class>_test_split<N>.txt} found in ``lists``."""
    suffix = f"_test_split{split}.txt"
    found = {p.name[: -len(suffix)]: p for p in sorted(lists.glob(f"*{suffix}"))}
    if not found:
        raise DatasetError(f"{lists}: no *{suffix} split files")
    return found


def import_hmdb51(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    mapping: ClassMapping | None = None,
    split: int = 1,
    splits_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> ImportSummary:
    """Link the HMDB-51 clips of train/test split ``split`` (1..3) into ``out``."""
    found = open_video_source(src, out, dataset="HMDB-51", source=SOURCE, folders=(VIDEO_FOLDERS, SPLIT_FOLDERS),
                              marker=f"*_test_split{split}.txt", mapping=mapping, split=split, splits_dir=splits_dir)
    videos, lists, locator, writer = found.videos, found.lists, found.locator, found.writer
    files = split_files(lists, split)

    # Every mapped class that has videos needs its split file, or its clips would vanish silently.
    for class_dir in sorted(p for p in videos.iterdir() if p.is_dir()):
        if writer.is_mapped(class_dir.name) and class_dir.name not in files:
            raise DatasetError(f"{lists / f'{class_dir.name}_test_split{split}.txt'}: split file not found")
    for class_name, list_path in files.items():
        mapped = writer.is_mapped(class_name)
        if mapped and not (videos / class_name).is_dir():
            raise DatasetError(f"{videos / class_name}: video folder not found (listed by {list_path})")
        for number, fields in read_lines(list_path):
            where = f"{list_path}:{number}"
            if len(fields) != 2 or fields[1] not in SPLIT_IDS:
                raise DatasetError(f"{where}: expected '<clip> <0|1|2>', got {' '.join(fields)!r}")
            split_name = SPLIT_IDS[fields[1]]
            if split_name is None:
                writer.skip_unused()
            elif not mapped:
                writer.skip_class(class_name, 1)
            else:
                path = locator.find(class_name, fields[0])
                if path is None:
                    raise DatasetError(f"{videos / class_name / fields[0]}: listed in {where} but not found")
                writer.add(path, split=split_name, source_class=class_name)
    return writer.write(progress=progress)
