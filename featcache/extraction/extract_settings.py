"""What ``featcache extract`` computes (:class:`ExtractSettings`) and a cache's identity:
everything that makes its values what they are. Two runs share a file or parts only if equal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py

from featcache.backbones.preprocessing import preprocessing_config
from featcache.cache.lineage import StaleCacheError, check_input, same_input, stale_message
from featcache.cache.schema import read_root_attrs
from featcache.errors import CacheError, FeatcacheError
from featcache.extraction.sources import SourceRows

FEATURE_DTYPES = ("float32", "float16")
IDENTITY_KEYS = ("modality", "backbone", "weights", "preprocessing", "classes", "rows_sha256", "dtype", "logits", "input")
STORED_KEYS = ("modality", "backbone", "weights", "preprocessing", "classes", "rows_sha256", "input")  # root attributes


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
    workers: int | None = None  # None -> default_workers(reserved=2, at_least=0)
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


def input_size(settings: ExtractSettings, data_config: dict) -> dict[str, Any]:
    """Crop, resize and interpolation: the given ones, else the backbone's (``Backbone.data_config``)."""
    crop = settings.crop or data_config["crop"]
    resize = settings.resize or max(data_config["resize"], crop)
    if crop > resize:
        raise FeatcacheError(f"--crop ({crop}) must not exceed --resize ({resize})")
    return {"crop": int(crop), "resize": int(resize), "interpolation": data_config["interpolation"]}


def cache_identity(settings: ExtractSettings, backbone_name: str, weights_id: str, rows: SourceRows, logits: bool,
                   data_config: dict | None = None, source_input: dict | None = None) -> dict[str, Any]:
    """Everything that makes a cache's values what they are; two runs mix only if equal.
    ``source_input`` is the lineage (:mod:`featcache.cache.lineage`): what the rows were read from."""
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
        "input": source_input,
    }


def file_identity(path: Path) -> dict[str, Any] | None:
    """The identity of a finished cache file, or None if it is unfinished or unreadable."""
    try:
        with h5py.File(path, "r") as f:
            attrs = read_root_attrs(f)
            if not attrs.get("complete"):
                return None
            identity = {k: attrs.get(k) for k in STORED_KEYS}
            identity["dtype"] = str(f["features"].dtype) if "features" in f else None
            identity["logits"] = "logits" in f
            return identity
    except OSError:
        return None


def identity_difference(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The keys that differ; the input only where the old cache recorded one (and then by
    :func:`~featcache.cache.lineage.same_input`: settings and content, not where the dataset lies)."""
    differ = []
    for key in IDENTITY_KEYS:
        if key == "input":
            if old.get(key) is not None and new.get(key) is not None and not same_input(old[key], new[key]):
                differ.append(key)
        elif old.get(key) != new.get(key):
            differ.append("file list" if key == "rows_sha256" else key)
    return differ


def check_existing(path: Path, identity: dict[str, Any], cache_dir: Path | None = None) -> bool:
    """True when ``path`` already holds exactly this cache; raise if it holds another (a stale
    one, whose input changed, with :class:`StaleCacheError`)."""
    if not path.exists():
        return False
    existing = file_identity(path)
    differ = identity_difference(existing, identity) if existing is not None else ["?"]
    if existing is not None and not differ:
        if existing.get("input") is None:  # made before lineage: kept, and said
            check_input(path, existing, ())
        return True
    if differ == ["input"]:
        raise StaleCacheError(stale_message(path, existing["input"], identity["input"], identity["modality"],
                                            None if cache_dir is None else str(cache_dir)))
    reason = "is not a finished cache" if existing is None else "was built with other " + ", ".join(identity_difference(existing, identity))
    raise CacheError(f"{path} {reason}; refusing to mix them: use another --cache DIR or pass --restart")
