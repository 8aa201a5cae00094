"""UCF-101 as distributed -> folder layout (``videos/{train,test}/<class>/``).

Source layout::

    SRC/UCF-101/<ClassName>/v_<ClassName>_gXX_cYY.avi     (or SRC/UCF101/..., or SRC itself;
                                                           rawframes/<ClassName>/<clip>/img_00001.jpg too)
    SRC/ucfTrainTestlist/classInd.txt                      "1 ApplyEyeMakeup"
    SRC/ucfTrainTestlist/trainlist0N.txt                   "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    SRC/ucfTrainTestlist/testlist0N.txt                    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
"""

from __future__ import annotations

import os
from pathlib import Path

from featcache.errors import DatasetError
from featcache.data.importers.class_mapping import ClassMapping
from featcache.data.importers.layout_writer import ImportSummary
from featcache.data.importers.source_files import read_lines
from featcache.data.importers.video_source import open_video_source

SOURCE = "ucf101"
VIDEO_FOLDERS = ["UCF-101", "UCF101", "rawframes", "."]  # rawframes: mmaction2 frame folders
SPLIT_FOLDERS = ["ucfTrainTestlist", "UCF101TrainTestSplits-RecognitionTask/ucfTrainTestlist", "../ucfTrainTestlist", "."]


def read_class_index(path: Path) -> dict[int, str]:
    """classInd.txt -> {1: 'ApplyEyeMakeup', ...}."""
    index: dict[int, str] = {}
    for number, fields in read_lines(path):
        if len(fields) != 2 or not fields[0].isdigit():
            raise DatasetError(f"{path}:{number}: expected '<index> <ClassName>', got {' '.join(fields)!r}")
        index[int(fields[0])] = fields[1]
    if not index:
        raise DatasetError(f"{path}: no classes listed")
    return index


def import_ucf101(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    mapping: ClassMapping | None = None,
    split: int = 1,
    splits_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> ImportSummary:
    """Link the UCF-101 clips of train/test split ``split`` (1..3) into ``out``."""
    found = open_video_source(src, out, dataset="UCF-101", source=SOURCE, folders=(VIDEO_FOLDERS, SPLIT_FOLDERS),
                              marker="classInd.txt", mapping=mapping, split=split, splits_dir=splits_dir)
    videos, lists, locator, writer = found.videos, found.lists, found.locator, found.writer
    class_index = read_class_index(lists / "classInd.txt")
    by_lower = {name.lower(): name for name in class_index.values()}

    for split_name, list_name in (("train", f"trainlist0{split}.txt"), ("test", f"testlist0{split}.txt")):
        list_path = lists / list_name
        for number, fields in read_lines(list_path):
            where = f"{list_path}:{number}"
            rel = fields[0].replace("\\", "/")
            if "/" not in rel:
                raise DatasetError(f"{where}: expected '<ClassName>/<clip>', got {rel!r}")
            folder, name = rel.split("/", 1)
            class_name = by_lower.get(folder.lower())
            if class_name is None:
                raise DatasetError(f"{where}: class {folder!r} is not in {lists / 'classInd.txt'}")
            if len(fields) > 1 and fields[1].isdigit() and class_index.get(int(fields[1])) != class_name:
                raise DatasetError(f"{where}: label {fields[1]} is {class_index.get(int(fields[1]))!r}, but the clip is in {folder!r}")
            if not writer.is_mapped(class_name):
                writer.skip_class(class_name, 1)
                continue
            path = locator.find(folder, name)
            if path is None:
                raise DatasetError(f"{videos / rel}: listed in {where} but not found")
            writer.add(path, split=split_name, source_class=class_name)
    return writer.write(progress=progress)
