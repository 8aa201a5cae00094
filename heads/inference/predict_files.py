"""``featcache predict``'s work on files: the images (for a temporal model: videos) of the INPUTS,
predicted in chunks (unreadable files named and skipped), their top-k classes per stream, and the
CSV / JSONL outputs (``docs/formats.md``)::

    run = load_run("runs/gan-dynamic")
    files = media_files(["photo.jpg", "folder/"], run.inputs)
    rows = list(predict_files(run, files, on_skip=print))      # [(path, {stream: probabilities [C]})]
    write_predictions("preds.csv", run, rows, k=5)
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from featcache.errors import FeatcacheError, MediaError
from featcache.media.files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from featcache.media.images import read_image
from featcache.utils.atomic import atomic_path
from featcache.utils.progress import optional_progress

CHUNK = 32  # images decoded and predicted together
PROGRESS_FROM = 2 * CHUNK  # inputs from which a progress bar is shown
CSV_COLUMNS = ("path", "stream", "rank", "class", "probability")
OUTPUT_SUFFIXES = (".csv", ".jsonl")

Row = tuple[str, dict[str, np.ndarray]]  # an input's path and, per stream, its probabilities [C]


def media_files(inputs: Iterable[str | os.PathLike], kind: str = "images") -> list[Path]:
    """Image (or, ``kind="videos"``, video) files named by ``inputs``: files as given, folders searched
    recursively (sorted, hidden files left out). A missing input is a one-line FeatcacheError; so is a
    folder with none."""
    extensions = VIDEO_EXTENSIONS if kind == "videos" else IMAGE_EXTENSIONS
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in extensions and p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(item).parts))
            if not found:
                raise FeatcacheError(f"{item}: no {kind[:-1]} files ({', '.join(sorted(extensions))}) in this folder")
            files.extend(found)
        elif item.exists():
            files.append(item)
        else:
            raise FeatcacheError(f"{item}: no such file or folder")
    return files


def decode(path: Path) -> np.ndarray:
    """An input image, or MediaError naming it (videos are refused: the run labels still images)."""
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        raise MediaError(f"{path}: a video; this run labels still images")
    return read_image(path)


def predict_chunk(run, paths: Sequence[Path], on_skip: Callable[[str], None]) -> Iterator[Row]:
    """The readable ones of ``paths`` with their streams: images decoded and predicted together, videos one by one."""
    kept, inputs, probs = [], [], {}
    for path in paths:
        try:
            if run.inputs == "videos":
                one = run.predict([path])
                probs = {s: [*probs.get(s, []), one[s][0]] for s in run.streams}
            else:
                inputs.append(decode(path))
            kept.append(path)
        except MediaError as exc:
            on_skip(str(exc).splitlines()[0])
    if inputs:
        probs = run.predict(inputs)
    for i, path in enumerate(kept):
        yield str(path), {stream: np.asarray(probs[stream][i]) for stream in run.streams}


def predict_files(run, files: Sequence[Path], *, on_skip: Callable[[str], None] | None = None,
                  progress: bool | None = None) -> Iterator[Row]:
    """``(path, {stream: probabilities [C]})`` per readable file, in order; each unreadable file goes to
    ``on_skip`` as one line. A progress bar (stderr) from :data:`PROGRESS_FROM` files, unless ``progress``."""
    on_skip = on_skip or (lambda message: None)
    show = len(files) >= PROGRESS_FROM if progress is None else progress
    with optional_progress(show, "files/s") as bar:
        task = bar.add_task("predict", total=len(files), rate=0.0) if bar is not None else None
        for start in range(0, len(files), CHUNK):
            chunk = files[start : start + CHUNK]
            yield from predict_chunk(run, chunk, on_skip)
            if bar is not None:
                bar.update(task, advance=len(chunk), rate=bar.tasks[0].completed / (bar.tasks[0].elapsed or 1e-9))


def top_k(probs: np.ndarray, classes: Sequence[str], k: int) -> list[tuple[int, str, float]]:
    """``(rank, class, probability)`` of the ``k`` most probable classes, rank 1 first (ties: lower index first)."""
    order = np.argsort(-np.asarray(probs, dtype=np.float64), kind="stable")[: max(1, int(k))]
    return [(rank, str(classes[c]), float(probs[c])) for rank, c in enumerate(order, start=1)]


def csv_text(run, rows: Iterable[Row], k: int) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for path, streams in rows:
        for stream in run.streams:
            for rank, name, p in top_k(streams[stream], run.classes, k):
                writer.writerow((path, stream, rank, name, f"{p:.6f}"))
    return buffer.getvalue()


def jsonl_record(run, path: str, streams: dict[str, np.ndarray], k: int) -> dict:
    return {"path": path, "run": str(run.path), "method": run.method,
            "top": {s: top_k(streams[s], run.classes, 1)[0][1] for s in run.streams},
            "streams": {s: [{"rank": r, "class": c, "probability": round(p, 6)}
                            for r, c, p in top_k(streams[s], run.classes, k)] for s in run.streams}}


def check_output(out: str | os.PathLike) -> Path:
    """``out`` when it names a .csv or .jsonl file; a one-line FeatcacheError otherwise."""
    out = Path(out)
    if out.suffix.lower() not in OUTPUT_SUFFIXES or out.is_dir():
        raise FeatcacheError(f"--out {out}: expected a .csv or .jsonl file")
    return out


def write_predictions(out: str | os.PathLike, run, rows: Iterable[Row], k: int) -> Path:
    """``out`` (.csv: ``path,stream,rank,class,probability``; .jsonl: one record per input), atomically."""
    out = check_output(out)
    if out.suffix.lower() == ".csv":
        text = csv_text(run, rows, k)
    else:
        text = "".join(json.dumps(jsonl_record(run, path, streams, k)) + "\n" for path, streams in rows)
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return out
