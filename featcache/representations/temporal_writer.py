"""Assembly of ``temporal.h5`` from the per-video parts: canonical dataset order, chunked
gzip data, ``complete=True`` last, renamed into place (read it with
:func:`featcache.cache.temporal_cache.read_temporal`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np

from featcache.cache.lineage import CONTENT_ATTR, hash_rows
from featcache.cache.parts import part_path
from featcache.cache.schema import SCHEMA_VERSION, checksum_filter, SPLIT_CODE, mark_complete, write_root_attrs, write_rows
from featcache.cache.temporal_cache import INDEX_GROUP
from featcache.data.dataset import FolderDataset
from featcache.representations.prepare_video import read_video_part
from featcache.utils.atomic import atomic_path
from featcache.utils.progress import make_progress


def assemble(out: Path, dataset: FolderDataset, samples, stamps, parts: Path, settings, errors, digest,
             video_split: dict | None = None) -> dict[str, int]:
    """Write temporal.h5 from the parts, in canonical order, complete=True last; ``video_split``
    (where the val videos came from) is recorded as a root attribute."""
    rows: dict[str, dict[str, list]] = {k: {"labels": [], "split": [], "source": [], "instance": []} for k in settings.kinds}
    frames_col = []
    checksums = {k: hashlib.sha256() for k in settings.kinds}  # each group's content: what feature caches record
    reserve = sum(p.stat().st_size for p in parts.glob("*.npz")) + 2**20  # the parts hold the same gzip-like data
    with atomic_path(out, "temporal cache", reserve=reserve) as tmp, h5py.File(tmp, "w") as f:
        groups = {}
        for kind in settings.kinds:
            channels = 3 if kind == "dynamic" else 2 * settings.stack
            shape = (*settings.size, channels)
            group = f.create_group(kind)
            group.create_dataset(
                "data", shape=(0, *shape), maxshape=(None, *shape), dtype=np.uint8,
                chunks=(1, *shape), compression="gzip", compression_opts=1, shuffle=False, fletcher32=checksum_filter(),
            )
            groups[kind] = group
        with make_progress() as progress:
            task = progress.add_task("writing temporal.h5", total=len(samples))
            for sample in samples:
                result = None if sample.path in errors else read_video_part(
                    part_path(parts, sample.path), sample.path, stamps[sample.path], settings.kinds
                )
                frames_col.append(0 if result is None else result["frames"])
                if result is None:
                    errors.setdefault(sample.path, f"{dataset.path(sample)}: no finished result")
                else:
                    for kind in settings.kinds:
                        block = result[kind]
                        data = groups[kind]["data"]
                        data.resize(data.shape[0] + len(block), axis=0)
                        data[-len(block):] = block
                        hash_rows(checksums[kind], block, sample.path, sample.label, SPLIT_CODE[sample.split])
                        r = rows[kind]
                        r["labels"] += [sample.label] * len(block)
                        r["split"] += [SPLIT_CODE[sample.split]] * len(block)
                        r["source"] += [sample.path] * len(block)
                        r["instance"] += list(range(len(block)))
                progress.advance(task)
        for kind, group in groups.items():
            write_rows(group, **rows[kind])
            group.attrs["version"] = SCHEMA_VERSION
            group.attrs["modality"] = kind
            group.attrs["classes"] = json.dumps(dataset.classes)
            group.attrs["preprocessing"] = json.dumps({"size": list(settings.size), **settings.group_preprocessing(kind)}, sort_keys=True)
            group.attrs[CONTENT_ATTR] = checksums[kind].hexdigest()
        index = f.create_group(INDEX_GROUP)
        write_index(index, samples, stamps, frames_col, errors)
        write_root_attrs(
            f, modality="temporal", classes=dataset.classes, preprocessing=settings.preprocessing(),
            videos=len(samples), failed=len([s for s in samples if s.path in errors]), video_list_digest=digest,
            video_split=video_split,
        )
        mark_complete(f)
    return {kind: len(rows[kind]["labels"]) for kind in settings.kinds}


def write_index(group: h5py.Group, samples, stamps, frames, errors) -> None:
    string = h5py.string_dtype("utf-8")
    group.create_dataset("source", data=np.array([s.path for s in samples], dtype=object), dtype=string)
    group.create_dataset("stamp", data=np.array([stamps[s.path] for s in samples], dtype=object), dtype=string)
    group.create_dataset("frames", data=np.asarray(frames, dtype=np.int64))
    group.create_dataset("error", data=np.array([errors.get(s.path, "") for s in samples], dtype=object), dtype=string)
