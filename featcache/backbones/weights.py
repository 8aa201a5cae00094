"""Finding weight files, hashing them, and loading them as state dicts."""

from __future__ import annotations

import hashlib
import os
import socket
from functools import lru_cache
from pathlib import Path

import torch

from featcache.errors import FeatcacheError
from featcache.utils.safe_load import torch_load

OFFLINE_ENV = "FEATCACHE_OFFLINE"  # set to 1 to never try a download


def sha256_file(path: str | os.PathLike) -> str:
    path = Path(path)
    stat = path.stat()
    return _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_weights_file(path: str | os.PathLike) -> dict:
    """A weights file (plain state dict or featcache checkpoint) as a dict on the CPU."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FeatcacheError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return load_safetensors_file(path)
    state = torch_load(path, "PyTorch weights file")
    if not isinstance(state, dict):
        raise FeatcacheError(f"{path}: expected a state dict or a featcache checkpoint, found {type(state).__name__}")
    return state


def load_safetensors_file(path: Path) -> dict:
    """A ``.safetensors`` state dict on the CPU (the safetensors package comes with timm)."""
    try:  # optional (featcache[timm]): only .safetensors files need it
        from safetensors.torch import load_file
    except ImportError:
        raise FeatcacheError(f"{path}: reading .safetensors needs the safetensors package: pip install 'featcache[timm]'") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for a bad header
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FeatcacheError(f"{path}: not a loadable safetensors file ({reason})") from None


def hub_checkpoint_dir() -> Path:
    """Where torchvision keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_in_hub_cache(file_names: tuple[str, ...]) -> Path | None:
    for name in file_names:
        path = hub_checkpoint_dir() / name
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


def download_to_hub_cache(url: str, timeout: float = 20.0) -> Path | None:
    """Download ``url`` into the torch hub cache; None when there is no network."""
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        return None
    target = hub_checkpoint_dir() / Path(url).name
    target.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        # torchvision file names carry the first hex digits of their sha256.
        prefix = Path(url).stem.split("-")[-1]
        torch.hub.download_url_to_file(url, str(target), hash_prefix=prefix, progress=True)
    except Exception:
        return None
    finally:
        socket.setdefaulttimeout(previous)
    return target if target.is_file() else None
