"""The option choices shared by the commands, built from the one definition of each set."""

from __future__ import annotations

from enum import Enum

from featcache.schema import MODALITIES, TEMPORAL_KINDS
from heads.config import METHODS


def choices(name: str, values) -> type[Enum]:
    """A str Enum (what typer lists as choices) whose members are ``values``."""
    return Enum(name, [(v.replace("-", "_"), v) for v in values], type=str)


Modality = choices("Modality", MODALITIES)
Temporal = choices("Temporal", TEMPORAL_KINDS)
Method = choices("Method", METHODS)
Device = choices("Device", ("auto", "cpu", "cuda"))
