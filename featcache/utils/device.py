"""The one reading of ``--device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

Every command that computes takes the same ``--device`` (default ``auto``) and resolves it
here, so an invalid or unavailable device gives the same one-line error everywhere.
"""

from __future__ import annotations

import re

import torch

from featcache.errors import FeatcacheError

DEVICE_SPECS = "auto, cpu, cuda or cuda:N"
_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else the CPU; ``cuda[:N]`` must exist on this machine.

    ``cuda`` without an index stays index-less (the current device; under ``torchrun`` the
    caller picks ``cuda:LOCAL_RANK``). Raises :class:`FeatcacheError` naming the spec and why.
    """
    text = str(spec).strip().lower()
    match = _SPEC.match(text)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise FeatcacheError(f"--device {spec}: expected {DEVICE_SPECS}")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise FeatcacheError(f"--device {spec}: CUDA is not available on this machine; use --device cpu or auto")
    if index is not None and int(index) >= torch.cuda.device_count():
        raise FeatcacheError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                             f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return torch.device(text)
