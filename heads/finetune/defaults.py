"""Settings of ``finetune`` and ``tsn``: their records (:class:`FinetuneSettings`, :class:`TSNSettings`,
as :class:`featcache.extraction.extract_settings.ExtractSettings` is for ``extract``), each key's type and
range declared once (:class:`heads.training.settings.Key`), and their defaults. A run writes its record to
``RUN_DIR/config.yaml``; ``--config`` reads it back (:meth:`SettingsRecord.resolve`: defaults < file <
the given values). Kept free of torch so the CLI can show the defaults in ``--help`` without importing it
(cli/tsn_cmd.py); heads.finetune.finetune and heads.finetune.tsn run them."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Mapping

from featcache.cache.schema import MODALITIES, TEMPORAL_KINDS
from featcache.errors import FeatcacheError
from heads.training.resolve import resolve
from heads.training.settings import Key

FINETUNE_DEFAULTS = {"epochs": 3, "lr": 0.01, "batch_size": 32, "momentum": 0.9, "weight_decay": 1e-4}
TSN_DEFAULTS = {"lr": 2e-4, "epochs": 3, "batch_size": 32, "num_convs": 3}  # Table 9 learning rate
TEMPERATURE = {"flow": 2.0, "dynamic": 10.0}  # Table 9
TARGET_MODES = ("live", "cached", "labels")  # labels: no teacher, one-hot targets (heads.finetune.tsn)
PAIRINGS = ("co-class", "instance")  # co-class: the paper's (Remark 2); instance: each still with its own video

# CPU-friendly image sizes: the paper's 256/224 costs ~4x more and is the default on CUDA.
CPU_CROP, CPU_RESIZE = 112, 128
GPU_CROP, GPU_RESIZE = 224, 256


def input_sizes(device_type: str, crop: int | None, resize: int | None) -> tuple[int, int]:
    """Crop and resize, defaulting to the paper's 224/256 on CUDA and 112/128 on the CPU."""
    cuda = device_type == "cuda"
    crop = crop or (GPU_CROP if cuda else CPU_CROP)
    resize = resize or max(crop, GPU_RESIZE if cuda else CPU_RESIZE)
    return crop, resize


def _shared_keys() -> tuple[Key, ...]:
    """The keys fine-tuning and TSN share: schedule, sizes, seed and how the run computes."""
    return (
        Key("backbone", str, optional=True), Key("epochs", int, minimum=1), Key("lr", float, above=0),
        Key("batch_size", int, minimum=1), Key("crop", int, minimum=1, optional=True),
        Key("resize", int, minimum=1, optional=True), Key("seed", int), Key("device", str),
        Key("workers", int, minimum=0, optional=True), Key("amp", bool, optional=True),
        Key("channels_last", bool, optional=True),
    )


@dataclass
class SettingsRecord:
    """What the settings records share: the backbone, the input sizes, the seed and how the run
    computes (``crop``/``resize`` None: 224/256 on CUDA, 112/128 on the CPU; ``workers``/``amp``/
    ``channels_last`` None: by device); every field checked against its key on creation, the record
    as a plain mapping (``config.yaml``) and the resolver that reads one back."""

    backbone: str | None = None  # None -> default_backbone()
    crop: int | None = None
    resize: int | None = None
    seed: int = 0
    device: str = "auto"
    workers: int | None = None
    amp: bool | None = None
    channels_last: bool | None = None

    KEYS: ClassVar[dict[str, Key]]
    COMMAND: ClassVar[str]

    def __post_init__(self) -> None:
        for field in fields(self):
            setattr(self, field.name, self.KEYS[field.name].coerce(getattr(self, field.name), self.COMMAND))
        if self.crop is not None and self.resize is not None and self.crop > self.resize:
            raise_crop(self.crop, self.resize)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def resolve(cls, config_file: str | os.PathLike | None = None, values: Mapping[str, Any] | None = None):
        """The defaults, then ``config_file`` (a run's ``config.yaml``), then ``values`` (the command
        line's given options), each key checked once; unknown keys list the valid ones."""
        defaults = {f.name: f.default for f in fields(cls)}
        return cls(**resolve(defaults, cls.COMMAND, config_file=config_file, values=values, keys=cls.KEYS))


def raise_crop(crop: int, resize: int) -> None:
    raise FeatcacheError(f"--crop ({crop}) must not exceed --resize ({resize})")


@dataclass
class FinetuneSettings(SettingsRecord):
    """What ``featcache finetune`` trains: Resnet-Still / -Dyn / -Opt (``modality``) from ``weights``
    (None: ImageNet; ``random``; a path), SGD with momentum and cosine decay."""

    modality: str = "still"
    weights: str | None = None
    epochs: int = FINETUNE_DEFAULTS["epochs"]
    lr: float = FINETUNE_DEFAULTS["lr"]
    batch_size: int = FINETUNE_DEFAULTS["batch_size"]  # per process
    momentum: float = FINETUNE_DEFAULTS["momentum"]
    weight_decay: float = FINETUNE_DEFAULTS["weight_decay"]

    COMMAND: ClassVar[str] = "finetune"
    KEYS: ClassVar[dict[str, Key]] = {k.name: k for k in (
        Key("modality", str, choices=MODALITIES), Key("weights", str, optional=True),
        Key("momentum", float, minimum=0, below=1), Key("weight_decay", float, minimum=0), *_shared_keys())}


@dataclass
class TSNSettings(SettingsRecord):
    """What ``featcache tsn`` trains: the still ``student`` distilled from the ``temporal`` teacher
    (paths None: ``CACHE/models/<modality>-<backbone>.pt``) at ``temperature`` (None: Table 9's for
    the modality), RMSProp; ``targets``: cached or live teacher logits, or ``labels`` (no teacher: the
    paired instance's label, one-hot); ``num_convs`` final conv layers of the student train; ``pairing``:
    ``co-class`` (the paper's) or ``instance`` (each still with its own video, plus the unlabelled stills)."""

    temporal: str = "dynamic"
    student: str | None = None
    teacher: str | None = None
    targets: str = "cached"
    temperature: float | None = None
    lr: float = TSN_DEFAULTS["lr"]
    epochs: int = TSN_DEFAULTS["epochs"]
    batch_size: int = TSN_DEFAULTS["batch_size"]  # per process
    num_convs: int = TSN_DEFAULTS["num_convs"]
    pairing: str = "co-class"

    COMMAND: ClassVar[str] = "tsn"
    KEYS: ClassVar[dict[str, Key]] = {k.name: k for k in (
        Key("temporal", str, choices=TEMPORAL_KINDS), Key("student", str, optional=True),
        Key("teacher", str, optional=True), Key("targets", str, choices=TARGET_MODES),
        Key("temperature", float, above=0, optional=True), Key("num_convs", int, minimum=1),
        Key("pairing", str, choices=PAIRINGS), *_shared_keys())}
