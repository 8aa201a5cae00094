"""What the UCF-101 and HMDB-51 importers share: a video dataset with official splits 1..3,
its clips and split lists located, and the writer of the folder layout they go into."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from featcache.data.importers.class_mapping import ClassMapping
from featcache.data.importers.layout_writer import LayoutWriter
from featcache.data.importers.source_files import VideoLocator, check_video_source, find_folder


@dataclass
class VideoSource:
    videos: Path  # the folder of class folders
    lists: Path  # the folder of split lists
    locator: VideoLocator
    writer: LayoutWriter


def open_video_source(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    dataset: str,
    source: str,
    folders: tuple[list[str], list[str]],
    marker: str,
    mapping: ClassMapping | None,
    split: int,
    splits_dir: str | os.PathLike | None,
) -> VideoSource:
    """Locate ``dataset``'s clips and split lists under ``src`` (``folders``: candidates for each;
    ``marker``: a file the split-list folder holds) and plan its import into ``out``."""
    src = check_video_source(src, dataset, split)
    mapping = mapping or ClassMapping.load()
    video_folders, split_folders = folders
    videos = find_folder(src, video_folders, what="video class")
    lists = find_folder(src, split_folders, what="split-list", marker=marker, explicit=splits_dir)
    writer = LayoutWriter(out, mapping, source=source, kind="videos", options={"split": split})
    return VideoSource(videos=videos, lists=lists, locator=VideoLocator(videos), writer=writer)
