"""`featcache extract`: backbone features of every row into ``DIR/<modality>-<backbone>.h5``.

Rows are cut into fixed-size shards (:mod:`.shards`). Each finished shard is written
atomically into ``<cache>.parts/`` (:mod:`featcache.cache.parts`, with ``identity.json``,
the settings it belongs to); a killed run (kill -9 included) restarts at the first missing
shard and makes the same values, because batches never cross a shard and augmented views are
seeded per (row, view). When every shard is there they are assembled into the final file
under a temporary name, ``complete`` is set last, the file is renamed into place and the
parts are removed.

Rerunning with the same inputs and settings is a no-op; other settings are refused
(another ``--cache`` or ``--restart``; :mod:`.extract_settings` says what counts).
Unreadable rows are reported by path and left out (the rows come from :mod:`.sources`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import torch
from rich.markup import escape
from torch.utils.data import DataLoader

from featcache.backbones import create_backbone, default_backbone
from featcache.cache.lineage import files_input, temporal_input
from featcache.cache.parts import discard_parts, keeping_parts, open_parts, parts_folder
from featcache.cache.schema import feature_cache_path, temporal_cache_path
from featcache.extraction.extract_settings import ExtractSettings, cache_identity, check_existing, input_size
from featcache.extraction.image_features import backbone_outputs, default_batch_size, prepare_backbone
from featcache.extraction.shards import ShardBatches, assemble, flush_shard, shard_path, shard_ranges
from featcache.extraction.sources import SourceRows, StillImageViews, TemporalImageViews, still_rows, temporal_rows
from featcache.utils import distributed
from featcache.utils.atomic import remove_stale_temporaries
from featcache.utils.device import resolve_device
from featcache.utils.progress import console, make_progress
from featcache.utils.workers import default_workers

__all__ = ["ExtractReport", "ExtractSettings", "extract"]

IDENTITY_FILE = "identity.json"  # the parts folder's marker: the identity its shards belong to


@dataclass
class ExtractReport:
    path: Path
    backbone: str = ""
    backbone_description: str = ""
    device: str = "cpu"
    rows: int = 0  # rows in the source
    written: int = 0  # rows in the cache
    skipped: list[tuple[str, str]] = field(default_factory=list)
    shards: int = 0
    resumed_shards: int = 0
    computed_rows: int = 0
    seconds: float = 0.0
    up_to_date: bool = False
    stopped: bool = False
    logits: bool = False
    feature_shape: tuple[int, ...] = ()
    assembled: bool = True  # False on the ranks > 0 of a torchrun job
    rank_rows: list[int] = field(default_factory=list)  # rows computed by each rank (torchrun)

    @property
    def images_per_second(self) -> float:
        return self.computed_rows / self.seconds if self.seconds > 0 else 0.0


def extract(
    root: str | os.PathLike,
    cache_dir: str | os.PathLike = "cache",
    settings: ExtractSettings | None = None,
    *,
    restart: bool = False,
    on_event: Callable[[str], None] | None = None,
) -> ExtractReport:
    """Extract features for ``settings.modality`` of dataset ``root`` into ``cache_dir``.

    Resumes finished shards of the same settings; a cache or parts of other settings stop the
    run; ``restart`` discards this cache and its parts and starts over. ``on_event`` receives
    the messages otherwise printed (rich markup).
    Under torchrun the shards are shared out across ranks, each on its own device, and rank 0
    assembles the file (the other ranks return a report of their own share, ``assembled=False``)."""
    env = distributed.setup()
    settings = settings or ExtractSettings()
    final = feature_cache_path(cache_dir, settings.modality, settings.backbone or default_backbone())
    with keeping_parts(final, "shards"), distributed.CacheLock(cache_dir, env, "extract"):
        return _extract(Path(root), Path(cache_dir), settings, env, restart, on_event)


def _extract(root: Path, cache_dir: Path, settings: ExtractSettings, env, restart, on_event) -> ExtractReport:
    say = on_event or (lambda message: console.print(message, highlight=False, soft_wrap=True))
    start = time.perf_counter()
    rows = _source_rows(root, cache_dir, settings, say)
    name = settings.backbone or default_backbone()
    device = distributed.rank_device(resolve_device(settings.device), env)
    backbone = create_backbone(name, modality=settings.modality, weights=settings.weights)
    logits = backbone.num_classes > 0 and backbone.classes == rows.classes
    if backbone.num_classes > 0 and not logits:
        say(f"[yellow]note:[/] the backbone's head is for other classes than {root}'s; no logits stored")
    path = feature_cache_path(cache_dir, settings.modality, name)
    report = ExtractReport(path=path, backbone=name, backbone_description=backbone.describe(), device=str(device), rows=len(rows), logits=logits)
    say(f"backbone: {report.backbone_description} on {device}")

    identity = cache_identity(settings, name, backbone.weights_id, rows, logits, backbone.data_config(),
                              source_input(root, cache_dir, settings.modality, rows))
    parts = parts_folder(path)
    if restart:  # rank 0 discards the cache and its parts before any rank looks at them
        distributed.on_main(env, lambda: (discard_parts(parts), path.unlink(missing_ok=True)))
    if check_existing(path, identity, cache_dir):
        _report_up_to_date(report, start)
        return report

    shards = shard_ranges(len(rows), settings.shard_size)

    def start_parts():  # one rank creates or checks the parts folder and lists what is left
        remove_stale_temporaries(path)
        open_parts(parts, {**identity, "shard_size": settings.shard_size},  # shard k's rows depend on it
                   what="extraction", marker=IDENTITY_FILE)
        return [k for k in range(len(shards)) if not shard_path(parts, k).exists()]

    pending = distributed.on_main(env, start_parts)
    report.shards, report.resumed_shards = len(shards), len(shards) - len(pending)
    if report.resumed_shards and env.is_main:
        say(f"resuming: {report.resumed_shards}/{len(shards)} shards already done in {parts}")
    pending = distributed.my_share(pending, [len(shards[k]) for k in pending], env)

    compute_start = time.perf_counter()
    if pending:
        size = input_size(settings, backbone.data_config())
        report.computed_rows = _run_shards(rows, root, cache_dir, settings, size, backbone, device, logits, shards, pending, parts, say)
    if env.distributed:  # wait for every rank's shards; rank 0 alone assembles
        report.rank_rows = distributed.all_gather(env, report.computed_rows)
        report.assembled = env.is_main
    report.seconds = time.perf_counter() - compute_start
    if report.assembled:
        report.computed_rows = sum(report.rank_rows or [report.computed_rows])
        report.written, report.skipped, report.feature_shape = assemble(path, parts, shards, rows, identity,
                                                                        weights_path=backbone.weights_path)
        discard_parts(parts)
    return report


def _source_rows(root: Path, cache_dir: Path, settings: ExtractSettings, say) -> SourceRows:
    if settings.modality != "still":
        return temporal_rows(root, cache_dir, settings.modality)
    rows = still_rows(root)
    for source, reason in rows.unsupported:
        say(f"[yellow]skipped[/] {escape(source)}: {escape(reason)}")
    return rows


def source_input(root: Path, cache_dir: Path, modality: str, rows: SourceRows) -> dict:
    """The lineage recorded in the cache: the temporal.h5 group, or the image files, it reads."""
    if modality == "still":
        return files_input(root, rows.source)
    return temporal_input(temporal_cache_path(cache_dir), modality, root)


def _report_up_to_date(report: ExtractReport, start: float) -> None:
    with h5py.File(report.path, "r") as f:
        report.written = int(f["labels"].shape[0])
        report.feature_shape = tuple(f["features"].shape)
        report.skipped = [tuple(x) for x in json.loads(f.attrs.get("skipped", "[]"))]
    report.up_to_date = True
    report.seconds = time.perf_counter() - start


def batch_size_for(settings: ExtractSettings, device) -> int:
    """The given batch size, else :func:`default_batch_size` of the device."""
    if settings.batch_size:
        return int(settings.batch_size)
    return default_batch_size(device)


def _make_dataset(rows, root, cache_dir, settings, size):
    common = dict(views=settings.views, seed=settings.seed, **size)
    if settings.modality == "still":
        return StillImageViews(root, rows, **common)
    return TemporalImageViews(temporal_cache_path(cache_dir), settings.modality, rows, **common)


def _loader(dataset, shards: list[range], settings: ExtractSettings, device) -> DataLoader:
    """Batches that never cross a shard, decoded by ``settings.workers`` processes."""
    workers = default_workers(reserved=2, at_least=0) if settings.workers is None else settings.workers
    return DataLoader(
        dataset,
        batch_sampler=ShardBatches(shards, batch_size_for(settings, device)),
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=4 if workers else None,
    )


def _collate(items):
    rows = torch.tensor([i for i, _, _ in items], dtype=torch.long)
    return rows, torch.stack([x for _, x, _ in items]), [e for _, _, e in items]


def _worker_init(_):
    torch.set_num_threads(1)  # workers decode; the main process runs the network


def _run_shards(rows, root, cache_dir, settings, size, backbone, device, logits, shards, pending, parts, say) -> int:
    dataset = _make_dataset(rows, root, cache_dir, settings, size)
    loader = _loader(dataset, [shards[k] for k in pending], settings, device)
    backbone = prepare_backbone(backbone, device)
    buffers: dict[int, dict[str, list]] = {}
    computed = 0
    total = sum(len(s) for s in shards)
    start = time.perf_counter()
    progress = make_progress("img/s")
    try:
        with progress, torch.inference_mode():
            task = progress.add_task(f"extract {settings.modality}", total=total, rate=0.0)
            progress.update(task, completed=total - sum(len(shards[k]) for k in pending))
            for batch_rows, batch, errors in loader:
                b, v = batch.shape[:2]
                features, scores = backbone_outputs(backbone, batch.flatten(0, 1), device, logits)
                features = features.view(b, v, -1).numpy()
                scores = scores.view(b, v, -1).numpy() if logits else None

                k = int(batch_rows[0]) // settings.shard_size
                buf = buffers.setdefault(k, {"rows": [], "features": [], "logits": [], "failed": []})
                for j, row in enumerate(batch_rows.tolist()):
                    if errors[j]:
                        buf["failed"].append((row, errors[j]))
                        say(f"[red]skipped[/] {escape(errors[j])}")
                        continue
                    buf["rows"].append(row)
                    buf["features"].append(features[j] if v > 1 else features[j, 0])
                    if logits:
                        buf["logits"].append(scores[j] if v > 1 else scores[j, 0])
                computed += b
                progress.update(task, advance=b, rate=computed / max(time.perf_counter() - start, 1e-9))
                if int(batch_rows[-1]) == shards[k].stop - 1:  # the shard's last batch
                    flush_shard(parts, k, buffers.pop(k), settings.dtype, logits, backbone.feature_dim, v)
    finally:
        if isinstance(dataset, TemporalImageViews):
            dataset.close()
    return computed
