"""Which video a still comes from: ``ROOT/still-videos.csv`` (docs/formats.md).

A still taken from a video (a mid-frame, ``featcache data midframes``) or rendered from a video's
own figure (``featcache data synth --unlabelled-stills``) is linked to that video by one row
``still,video`` of paths relative to ROOT, under a ``still,video`` header. Instance pairing
(``--pairing instance``) pairs a still with its own video's temporal data through this file; stills
without a row have no video. Unlabelled stills (``ROOT/stills/unlabelled/``) are used only through it.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from featcache.errors import DatasetError
from featcache.utils.atomic import atomic_path

STILL_VIDEOS_FILE = "still-videos.csv"
HEADER = ("still", "video")


def still_videos_path(root: str | os.PathLike) -> Path:
    return Path(root).expanduser() / STILL_VIDEOS_FILE


def read_still_videos(root: str | os.PathLike) -> dict[str, str]:
    """``{still path: video path}`` (relative to ROOT); ``{}`` when ROOT has no such file.
    A malformed file raises DatasetError naming it and the line."""
    path = still_videos_path(root)
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the still -> video links ({exc})") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(c.strip() for c in rows[0]) != HEADER:
        raise DatasetError(f"{path}: expected the header line 'still,video'")
    links: dict[str, str] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise DatasetError(f"{path}: line {number}: expected 'still,video', got {','.join(row)!r}")
        still, video = row[0].strip(), row[1].strip()
        if links.setdefault(still, video) != video:
            raise DatasetError(f"{path}: line {number}: {still} is linked to two videos")
    return links


def write_still_videos(root: str | os.PathLike, links: dict[str, str]) -> Path:
    """Write ``ROOT/still-videos.csv`` (sorted by still; under a temporary name, renamed)."""
    path = still_videos_path(root)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(sorted(links.items()))
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return path
