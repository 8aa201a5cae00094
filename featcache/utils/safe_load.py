"""The one way featcache reads a ``torch.save`` file: tensors and plain types only.

A run folder, cache or checkpoint copied from someone else must not be able to run code,
and unpickling arbitrary objects can (``__reduce__``). ``torch.load(weights_only=True)``
only rebuilds tensors, dicts, lists, tuples, strings and numbers; anything else is refused
with one line naming the file. Writers store plain types only (e.g. RNG states as tensors).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from featcache.errors import FeatcacheError


def torch_load(path: str | os.PathLike, what: str) -> Any:
    """The contents of ``path`` (a ``what``, for messages) on the CPU, or a one-line FeatcacheError."""
    path = Path(path)
    if not path.is_file():
        raise FeatcacheError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise FeatcacheError(
                f"{path}: refused: this {what} holds objects other than tensors and plain types, and loading "
                f"them could run code; featcache never unpickles such files"
            ) from None
        raise FeatcacheError(f"{path}: not a readable {what} ({_first_line(exc)})") from None
    except Exception as exc:  # torch raises many kinds for a truncated or foreign file
        raise FeatcacheError(f"{path}: not a readable {what} ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
