"""The option choices shared by the commands, built from the one definition of each set."""

from __future__ import annotations

from enum import Enum

import typer

from featcache.cache.schema import MODALITIES, TEMPORAL_KINDS
from heads.finetune.defaults import PAIRINGS


def choices(name: str, values) -> type[Enum]:
    """A str Enum (what typer lists as choices) whose members are ``values``."""
    return Enum(name, [(v.replace("-", "_"), v) for v in values], type=str)


Modality = choices("Modality", MODALITIES)
Temporal = choices("Temporal", TEMPORAL_KINDS)
Pairing = choices("Pairing", PAIRINGS)  # co-class (the paper's) | instance


def check_device(spec: str) -> str:
    """The one ``--device`` check (:func:`featcache.utils.device.resolve_device`), run while the
    command line is parsed: an invalid or unavailable device stops the command before any
    work, with one line. ``auto`` becomes ``cuda`` or ``cpu``."""
    # the library (torch, h5py, cv2 behind it) loads when the command runs: featcache --help stays fast
    from featcache.utils.device import resolve_device

    return str(resolve_device(spec))


def device_option(note: str = ""):
    """``--device auto|cpu|cuda[:N]``, default auto, the same on every command that computes."""
    return typer.Option("auto", "--device", metavar="auto|cpu|cuda[:N]", callback=check_device,
                        help="auto: CUDA when present, else the CPU; or cpu, cuda, cuda:N." + (f" {note}" if note else ""))


def check_method(name: str) -> str:
    """A registered head method (:mod:`heads.training.registry`), checked while the command line is
    parsed: a usage error listing the registered ones otherwise."""
    from heads.training.methods import list_methods  # the methods import torch: only when a command runs

    if name not in list_methods():
        raise typer.BadParameter(f"{name!r} is not a head method; choose one of {', '.join(list_methods())}")
    return name


def method_argument(help: str):
    """The ``METHOD`` argument of train-head and grid: any registered head method."""
    return typer.Argument(..., metavar="METHOD", callback=check_method,
                          help=f"{help} A registered head method; they are listed, with their defaults, below.")


def set_keys_help() -> str:
    """The methods and every ``--set`` key with its default per method (the registry's), for --help."""
    from heads.training.methods import defaults_table, methods_help  # imports torch: only when help is shown

    return (f"Head methods: {methods_help()}\n\n--set keys and their defaults (one column per method, and per "
            f"temporal modality where they differ):\n\n{defaults_table()}")
