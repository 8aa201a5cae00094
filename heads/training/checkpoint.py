"""Plain-dict checkpoints of stacked heads, split into per-member state dicts (backbone
checkpoints are :mod:`featcache.backbones.checkpoint`'s, a different format).

Every parameter and buffer of a stacked module has a leading member axis G, so member g's
state is the ``[g:g+1]`` slice of each entry: a G=1 state dict that loads into a G=1
module, and that ``stack_states`` turns back into a stacked one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from featcache.errors import FeatcacheError
from featcache.utils.atomic import save_torch
from featcache.utils.safe_load import torch_load

CHECKPOINT_FORMAT = "featcache-head"
MODEL_FILE = "model.pt"  # a run folder's checkpoint (heads, baselines, TSN)


def member_state(module_or_state: torch.nn.Module | Mapping[str, torch.Tensor], member: int) -> dict[str, torch.Tensor]:
    """The G=1 state dict of ``member`` (CPU clones)."""
    state = module_or_state.state_dict() if isinstance(module_or_state, torch.nn.Module) else module_or_state
    return {name: value[member : member + 1].detach().cpu().clone() for name, value in state.items()}


def stack_states(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """G=1 state dicts -> one stacked state dict (member order kept)."""
    return {name: torch.cat([s[name] for s in states]) for name in states[0]}


def save_head_checkpoint(path: str | os.PathLike, checkpoint: Mapping[str, Any]) -> Path:
    """``torch.save`` under a temporary name, renamed into place when complete."""
    return save_torch({"format": CHECKPOINT_FORMAT, **checkpoint}, path, "head checkpoint")


def load_head_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A head checkpoint written by :func:`save_head_checkpoint`, or FeatcacheError saying why not."""
    path = Path(path)
    if not path.is_file():
        raise FeatcacheError(f"head checkpoint not found: {path}")
    checkpoint = torch_load(path, "head checkpoint")
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise FeatcacheError(f"{path}: not a featcache head checkpoint")
    return checkpoint
