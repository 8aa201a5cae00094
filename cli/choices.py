"""The option choices shared by the commands, built from the one definition of each set."""

from __future__ import annotations

from enum import Enum

from featcache.cache.schema import MODALITIES, TEMPORAL_KINDS
from heads.finetune.defaults import PAIRINGS
from heads.training.config import METHODS


def choices(name: str, values) -> type[Enum]:
    """A str Enum (what typer lists as choices) whose members are ``values``."""
    return Enum(name, [(v.replace("-", "_"), v) for v in values], type=str)


Modality = choices("Modality", MODALITIES)
Temporal = choices("Temporal", TEMPORAL_KINDS)
Pairing = choices("Pairing", PAIRINGS)  # co-class (the paper's) | instance
Method = choices("Method", METHODS)


def check_device(spec: str) -> str:
    """The one ``--device`` check (:func:`featcache.utils.device.resolve_device`), run while the
    command line is parsed: an invalid or unavailable device stops the command before any
    work, with one line. ``auto`` becomes ``cuda`` or ``cpu``."""
    from featcache.utils.device import resolve_device

    return str(resolve_device(spec))


def device_option(note: str = ""):
    """``--device auto|cpu|cuda[:N]``, default auto, the same on every command that computes."""
    import typer

    return typer.Option("auto", "--device", metavar="auto|cpu|cuda[:N]", callback=check_device,
                        help="auto: CUDA when present, else the CPU; or cpu, cuda, cuda:N." + (f" {note}" if note else ""))
