"""`featcache extract`: backbone features of every row into ``DIR/<modality>-<backbone>.h5``.

Rows are cut into fixed-size shards. Each finished shard is written atomically into
``<cache>.parts/`` (with ``identity.json``, the settings it belongs to); a killed run
(kill -9 included) restarts at the first missing shard and makes the same values, because
batches never cross a shard and augmented views are seeded per (row, view). When every
shard is there they are assembled into the final file under a temporary name, ``complete``
is set last, the file is renamed into place and the parts are removed.

Rerunning with the same inputs and settings is a no-op; other settings are refused
(another ``--cache`` or ``--restart``). Unreadable rows are reported by path and left out.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import torch
from rich.markup import escape
from torch.utils.data import DataLoader

from featcache.utils import distributed
from featcache.backbones import create_backbone, default_backbone
from featcache.utils.device import resolve_device
from featcache.errors import CacheError, FeatcacheError, MediaError
from featcache.extraction.sources import SourceRows, StillImages, TemporalImages, still_rows, temporal_rows
from featcache.backbones.preprocessing import preprocessing_config
from featcache.utils.atomic import atomic_path, remove_stale_temporaries
from featcache.utils.progress import console, make_progress
from featcache.cache.schema import (
    feature_cache_path,
    mark_complete,
    read_root_attrs,
    temporal_cache_path,
    write_root_attrs,
    write_rows,
)

FEATURE_DTYPES = ("float32", "float16")
IDENTITY_KEYS = ("modality", "backbone", "weights", "preprocessing", "classes", "rows_sha256", "dtype", "logits")


@dataclass
class ExtractSettings:
    modality: str = "still"
    backbone: str | None = None  # None -> default_backbone()
    weights: str | None = None  # None -> ImageNet; "random"; or a path
    crop: int | None = None  # None -> the backbone's (224; a timm model's pretrained config)
    resize: int | None = None  # None -> the backbone's (256; from a timm model's crop_pct)
    views: int = 1
    dtype: str = "float32"
    batch_size: int | None = None  # None -> batch_size_for(device)
    workers: int | None = None  # None -> default_workers()
    device: str = "auto"
    shard_size: int = 256
    seed: int = 0

    def __post_init__(self):
        if self.dtype not in FEATURE_DTYPES:
            raise FeatcacheError(f"--dtype must be one of {', '.join(FEATURE_DTYPES)}, not {self.dtype!r}")
        for name in ("views", "batch_size", "shard_size", "crop", "resize"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise FeatcacheError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.crop is not None and self.resize is not None and self.crop > self.resize:
            raise FeatcacheError(f"--crop ({self.crop}) must not exceed --resize ({self.resize})")
        if self.workers is not None and self.workers < 0:
            raise FeatcacheError(f"--workers must be 0 or more, not {self.workers}")


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


class StopExtraction(Exception):
    """Raised by the test hook ``stop_after_shards`` to simulate a crash between shards."""


# -- identity -----------------------------------------------------------------
def input_size(settings: ExtractSettings, data_config: dict) -> dict[str, Any]:
    """Crop, resize and interpolation: the given ones, else the backbone's (``Backbone.data_config``)."""
    crop = settings.crop or data_config["crop"]
    resize = settings.resize or max(data_config["resize"], crop)
    if crop > resize:
        raise FeatcacheError(f"--crop ({crop}) must not exceed --resize ({resize})")
    return {"crop": int(crop), "resize": int(resize), "interpolation": data_config["interpolation"]}


def cache_identity(settings: ExtractSettings, backbone_name: str, weights_id: str, rows: SourceRows, logits: bool,
                   data_config: dict | None = None) -> dict[str, Any]:
    """Everything that makes a cache's values what they are; two runs mix only if equal."""
    data_config = data_config or {"crop": 224, "resize": 256, "interpolation": "bilinear"}
    native = {"backbone_input": data_config["native"]} if "native" in data_config else {}
    return {
        "modality": settings.modality,
        "backbone": backbone_name,
        "weights": weights_id,
        "preprocessing": preprocessing_config(
            settings.modality, **input_size(settings, data_config), views=settings.views, view_seed=settings.seed, **native
        ),
        "classes": list(rows.classes),
        "rows_sha256": rows.digest(),
        "dtype": settings.dtype,
        "logits": bool(logits),
    }


def file_identity(path: Path) -> dict[str, Any] | None:
    """The identity of a finished cache file, or None if it is unfinished or unreadable."""
    try:
        with h5py.File(path, "r") as f:
            attrs = read_root_attrs(f)
            if not attrs.get("complete"):
                return None
            identity = {k: attrs.get(k) for k in ("modality", "backbone", "weights", "preprocessing", "classes", "rows_sha256")}
            identity["dtype"] = str(f["features"].dtype) if "features" in f else None
            identity["logits"] = "logits" in f
            return identity
    except OSError:
        return None


def identity_difference(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    differ = []
    for key in IDENTITY_KEYS:
        if old.get(key) != new.get(key):
            differ.append("file list" if key == "rows_sha256" else key)
    return differ


def check_existing(path: Path, identity: dict[str, Any], overwrite: bool) -> bool:
    """True when ``path`` already holds exactly this cache; raise if it holds another."""
    if not path.exists():
        return False
    existing = file_identity(path)
    if existing is not None and not identity_difference(existing, identity):
        return True
    if overwrite:
        return False
    reason = "is not a finished cache" if existing is None else "was built with other " + ", ".join(identity_difference(existing, identity))
    raise CacheError(f"{path} {reason}; refusing to mix them: use another --cache DIR or pass --restart")


def prepare_parts(parts: Path, identity: dict[str, Any], overwrite: bool) -> None:
    """Create or reuse the shard folder; shards of other settings are never mixed in."""
    marker = parts / "identity.json"
    if parts.exists():
        try:
            old = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old == json.loads(json.dumps(identity)):
            return
        if not overwrite:
            raise CacheError(
                f"{parts} holds an unfinished extraction with other settings; rerun it with the same "
                f"settings to resume, or pass --restart to discard it"
            )
        shutil.rmtree(parts)
    parts.mkdir(parents=True)
    with atomic_path(marker) as tmp:
        tmp.write_text(json.dumps(identity, indent=1, sort_keys=True), encoding="utf-8")


# -- shards -------------------------------------------------------------------
def shard_ranges(num_rows: int, shard_size: int) -> list[range]:
    return [range(start, min(start + shard_size, num_rows)) for start in range(0, num_rows, shard_size)]


def shard_path(parts: Path, k: int) -> Path:
    return parts / f"shard-{k:06d}.npz"


def write_shard(path: Path, rows: np.ndarray, features: np.ndarray, logits: np.ndarray | None, failed: list[tuple[int, str]]) -> None:
    arrays = {
        "rows": rows.astype(np.int64),
        "features": features,
        "failed_rows": np.array([i for i, _ in failed], dtype=np.int64),
        "failed_reasons": np.array([r for _, r in failed], dtype=np.str_),
    }
    if logits is not None:
        arrays["logits"] = logits
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object keeps numpy from appending ".npz"
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())


def read_shard(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as shard:
            return {k: shard[k] for k in shard.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CacheError(f"{path}: damaged shard ({exc}); delete it and rerun to compute it again") from None


class ShardBatches:
    """Batch sampler over the pending shards: batches never cross a shard boundary, so a
    shard's values do not depend on which shards were done before (resume = same values)."""

    def __init__(self, shards: list[range], batch_size: int):
        self.batches = [list(shard[i : i + batch_size]) for shard in shards for i in range(0, len(shard), batch_size)]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _collate(items):
    rows = torch.tensor([i for i, _, _ in items], dtype=torch.long)
    return rows, torch.stack([x for _, x, _ in items]), [e for _, _, e in items]


def _worker_init(_):
    torch.set_num_threads(1)  # workers decode; the main process runs the network


# -- the run ------------------------------------------------------------------
def extract(
    root: str | os.PathLike,
    cache_dir: str | os.PathLike = "cache",
    settings: ExtractSettings | None = None,
    *,
    overwrite: bool = False,
    restart: bool = False,
    stop_after_shards: int | None = None,
    on_event: Callable[[str], None] | None = None,
) -> ExtractReport:
    """Extract features for ``settings.modality`` of dataset ``root`` into ``cache_dir``.

    Resumes finished shards of the same settings; ``overwrite`` replaces a cache or parts of
    other settings; ``restart`` discards this cache and its parts and starts over.
    Under torchrun the shards are shared out across ranks, each on its own device, and rank 0
    assembles the file (the other ranks return a report of their own share, ``assembled=False``)."""
    env = distributed.setup()
    with distributed.CacheLock(cache_dir, env, "extract"):
        return _extract(root, cache_dir, settings or ExtractSettings(), env, overwrite, restart, stop_after_shards, on_event)


def _extract(root, cache_dir, settings: ExtractSettings, env, overwrite, restart, stop_after_shards, on_event) -> ExtractReport:
    say = on_event or (lambda message: console.print(message, highlight=False, soft_wrap=True))
    start = time.perf_counter()
    cache_dir = Path(cache_dir)
    root = Path(root)

    if settings.modality == "still":
        rows = still_rows(root)
        for source, reason in rows.unsupported:
            say(f"[yellow]skipped[/] {escape(source)}: {escape(reason)}")
    else:
        rows = temporal_rows(root, cache_dir, settings.modality)

    name = settings.backbone or default_backbone()
    device = distributed.rank_device(resolve_device(settings.device), env)
    backbone = create_backbone(name, modality=settings.modality, weights=settings.weights)
    logits = backbone.num_classes > 0 and backbone.classes == rows.classes
    if backbone.num_classes > 0 and not logits:
        say(f"[yellow]note:[/] the backbone's head is for other classes than {root}'s; no logits stored")
    path = feature_cache_path(cache_dir, settings.modality, name)
    report = ExtractReport(path=path, backbone=name, backbone_description=backbone.describe(), device=str(device), rows=len(rows), logits=logits)
    say(f"backbone: {report.backbone_description} on {device}")

    identity = cache_identity(settings, name, backbone.weights_id, rows, logits, backbone.data_config())
    parts = path.with_name(path.name + ".parts")

    def discard() -> None:
        shutil.rmtree(parts, ignore_errors=True)
        path.unlink(missing_ok=True)

    if restart:  # rank 0 discards the cache and its parts before any rank looks at them
        distributed.on_main(env, discard)
    if check_existing(path, identity, overwrite):
        with h5py.File(path, "r") as f:
            report.written = int(f["labels"].shape[0])
            report.feature_shape = tuple(f["features"].shape)
            report.skipped = [tuple(x) for x in json.loads(f.attrs.get("skipped", "[]"))]
        report.up_to_date = True
        report.seconds = time.perf_counter() - start
        return report

    shards = shard_ranges(len(rows), settings.shard_size)

    def start_parts():  # one rank creates or checks the parts folder and lists what is left
        remove_stale_temporaries(path)
        prepare_parts(parts, {**identity, "shard_size": settings.shard_size}, overwrite)  # shard k's rows depend on it
        return [k for k in range(len(shards)) if not shard_path(parts, k).exists()]

    pending = distributed.on_main(env, start_parts)
    report.shards, report.resumed_shards = len(shards), len(shards) - len(pending)
    if report.resumed_shards and env.is_main:
        say(f"resuming: {report.resumed_shards}/{len(shards)} shards already done in {parts}")
    pending = distributed.my_share(pending, [len(shards[k]) for k in pending], env)

    compute_start = time.perf_counter()
    if pending:
        size = input_size(settings, backbone.data_config())
        report.computed_rows = _run_shards(rows, root, cache_dir, settings, size, backbone, device, logits, shards, pending, parts, stop_after_shards, say)
    if env.distributed:  # wait for every rank's shards; rank 0 alone assembles
        report.rank_rows = distributed.all_gather(env, report.computed_rows)
        report.assembled = env.is_main
    report.seconds = time.perf_counter() - compute_start
    if not report.assembled:
        return report
    report.computed_rows = sum(report.rank_rows or [report.computed_rows])

    report.written, report.skipped, report.feature_shape = assemble(path, parts, shards, rows, identity)
    shutil.rmtree(parts, ignore_errors=True)
    return report


def default_workers() -> int:
    """Decoding processes: none on a 2-core machine, where a worker only competes with the
    network's two threads (measured slower), up to 2 where cores are free."""
    return min(2, max(0, (os.cpu_count() or 1) - 2))


def batch_size_for(settings: ExtractSettings, device) -> int:
    """The given batch size, else 64 on CUDA and 4 on the CPU: on a 2-core CPU, batches of 4
    in channels_last ran ~2x faster per image than batches of 32 (memory-bound activations)."""
    if settings.batch_size:
        return int(settings.batch_size)
    return 64 if device.type == "cuda" else 4


def _make_dataset(rows, root, cache_dir, settings, size):
    common = dict(views=settings.views, seed=settings.seed, **size)
    if settings.modality == "still":
        return StillImages(root, rows, **common)
    return TemporalImages(temporal_cache_path(cache_dir), settings.modality, rows, **common)


def _run_shards(rows, root, cache_dir, settings, size, backbone, device, logits, shards, pending, parts, stop_after_shards, say) -> int:
    dataset = _make_dataset(rows, root, cache_dir, settings, size)
    workers = default_workers() if settings.workers is None else settings.workers
    loader = DataLoader(
        dataset,
        batch_sampler=ShardBatches([shards[k] for k in pending], batch_size_for(settings, device)),
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=4 if workers else None,
    )
    cuda = device.type == "cuda"
    # channels_last on the CPU too: ~1.5x faster per image here than contiguous.
    backbone = backbone.eval().to(device).to(memory_format=torch.channels_last)
    buffers: dict[int, dict[str, list]] = {}
    done_this_run = computed = 0
    total = sum(len(s) for s in shards)
    start = time.perf_counter()
    progress = make_progress("img/s")
    try:
        with progress, torch.inference_mode():
            task = progress.add_task(f"extract {settings.modality}", total=total, rate=0.0)
            progress.update(task, completed=total - sum(len(shards[k]) for k in pending))
            for batch_rows, batch, errors in loader:
                b, v = batch.shape[:2]
                x = batch.flatten(0, 1).to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
                    features = backbone.forward_features(x)
                    scores = backbone.forward_head(features) if logits else None
                features = features.float().view(b, v, -1).cpu().numpy()
                scores = scores.float().view(b, v, -1).cpu().numpy() if logits else None

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
                    _flush_shard(parts, k, buffers.pop(k), settings.dtype, logits, backbone.feature_dim, v)
                    done_this_run += 1
                    if stop_after_shards is not None and done_this_run >= stop_after_shards:
                        raise StopExtraction(f"stopped after {done_this_run} shards (test hook)")
    finally:
        if isinstance(dataset, TemporalImages):
            dataset.close()
    return computed


def _flush_shard(parts: Path, k: int, buf: dict, dtype: str, logits: bool, dim: int, views: int) -> None:
    shape = (0, views, dim) if views > 1 else (0, dim)
    features = np.stack(buf["features"]).astype(dtype) if buf["features"] else np.zeros(shape, dtype)
    scores = None
    if logits:
        scores = np.stack(buf["logits"]).astype(np.float32) if buf["logits"] else np.zeros((0,), np.float32)
    write_shard(shard_path(parts, k), np.array(buf["rows"], dtype=np.int64), features, scores, buf["failed"])


# -- assembly -----------------------------------------------------------------
def assemble(path: Path, parts: Path, shards: list[range], rows: SourceRows, identity: dict) -> tuple[int, list, tuple]:
    """Shards -> the final cache file (temporary name, ``complete`` last, rename)."""
    kept, skipped, first = [], [], None
    for k in range(len(shards)):
        shard = read_shard(shard_path(parts, k))
        kept.append(shard["rows"])
        skipped.extend((rows.source[int(i)], str(r)) for i, r in zip(shard["failed_rows"], shard["failed_reasons"]))
        if first is None and len(shard["rows"]):
            first = shard
    kept_rows = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    if not len(kept_rows):
        raise MediaError(f"no row could be read ({len(skipped)} failed, first: {skipped[0][1] if skipped else '?'}); no cache written")
    n = len(kept_rows)
    feature_shape = (n,) + first["features"].shape[1:]
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            attrs = {k: identity[k] for k in ("modality", "backbone", "weights", "preprocessing", "classes", "rows_sha256")}
            write_root_attrs(f, **attrs, skipped=json.dumps(skipped))
            chunk = (min(n, 256),) + feature_shape[1:]
            features = f.create_dataset("features", shape=feature_shape, dtype=identity["dtype"], chunks=chunk)
            scores = None
            if identity["logits"]:
                logit_shape = (n,) + first["logits"].shape[1:]
                scores = f.create_dataset("logits", shape=logit_shape, dtype=np.float32, chunks=(min(n, 256),) + logit_shape[1:])
            at = 0
            for k in range(len(shards)):  # stream shard by shard: memory stays one shard
                shard = read_shard(shard_path(parts, k))
                m = len(shard["rows"])
                if m:
                    features[at : at + m] = shard["features"]
                    if scores is not None:
                        scores[at : at + m] = shard["logits"]
                at += m
            write_rows(
                f,
                labels=rows.labels[kept_rows],
                split=rows.split[kept_rows],
                source=[rows.source[i] for i in kept_rows],
                instance=rows.instance[kept_rows],
            )
            mark_complete(f)
    return n, skipped, feature_shape
