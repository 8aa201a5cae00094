"""Hyperparameters of the stage-2 heads: defaults per method and temporal modality, and
``--set KEY=VALUE`` parsing with type and range checks.

Layer sizes, lambda, alpha, learning rates and P x K sampling come from the paper
(Tables 5-8). The paper gives no epochs or batch sizes; ours are chosen so each head
trains in under 10 s on a 2-core CPU at SSVAC-40 size (6,821 train stills, 16,000 temporal
train rows of 2048-d) and converges on it: see ``benchmarks/heads.py``.

Schedules fit the data. Every trained part runs its ``*epochs`` (the val selection, the
history and the progress bar count those), each of ``epoch_passes`` passes over its
training rows: one at the paper's size (``PAPER_STILLS`` stills, ``PAPER_TEMPORAL_ROWS``
temporal rows, where the ``*_min_steps`` defaults are exactly the steps the epochs give),
more on a smaller set, until the part has taken its step floor, ``data_min_steps``:
``min_steps * sqrt(rows / paper rows)``. The floor shrinks with the data, more slowly
than an epoch: a set 100x smaller than the paper's gets 10x fewer steps (10x more
passes) instead of the paper's step count (main 1377fda: hundreds of epochs, 160 s for
``train-head gan`` on 6 stills) or the bare epochs (a handful of steps). The default
synthetic set keeps its accuracies (``benchmarks/small_sets.py``). ``*_min_steps=1``
runs plain epochs.

Keys:
  seed              every random stream (weights, dropout, noise, batch order)
  still_model       auto | logits | linear: the still stream. ``logits`` uses the
                    backbone's own class scores from the still cache (a backbone fine-tuned
                    on these classes, Resnet-Still); ``linear`` trains a softmax classifier
                    on the still features; ``auto`` takes logits when the cache has them
  still_lr, still_epochs, still_batch_size, still_weight_decay   linear still model (Adam)
  still_min_steps   step floor of the still model at the paper's size (scaled to the data)
  d1                compact temporal dimension (dimensionality-reduction network)
  dimred_lr, dimred_epochs, dimred_batch_size, dimred_dropout    its training (Adam)
  dimred_min_steps  the same for the dimensionality-reduction network
  d0, d2            generator/embedding hidden width; discriminator width (GAN)
  lambda            weight of the auxiliary classification loss (GAN, eq. 3)
  alpha             triplet margin (eq. 4)
  lr, epochs, batch_size   the head itself (RMSProp for the GAN, Adam for the embedding)
  min_steps         the same for the head (GAN: batches; embedding: P x K batches)
  dropout, noise    dropout rate and Gaussian-noise sd inside generator/embedding
  classes_per_batch, instances_per_class   P x K batches of the embedding (Table 8: 4 x 4)
  classifier_lr, classifier_epochs, classifier_min_steps   the embedding classifier on compact temporal features
  select            fused | derived: the val accuracy that picks the best epoch
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from featcache.errors import FeatcacheError

METHODS = ("classifier", "gan", "embed")
TEMPORAL_KINDS = ("flow", "dynamic")
CHOICES = {"still_model": ("auto", "logits", "linear"), "select": ("fused", "derived")}

# The paper's set (SSVAC-40, train splits as in benchmarks/heads.py): the size at which the epoch defaults are the schedule.
PAPER_STILLS = 6821
PAPER_TEMPORAL_ROWS = 16000


def batches_per_epoch(rows: int, batch_size: int) -> int:
    """Full batches of one epoch (one short batch when there are fewer rows than a batch)."""
    return max(1, rows // batch_size)


def min_steps_at_paper_size(epochs: int, rows: int, batch_size: int) -> int:
    """The steps ``epochs`` give at the paper's size: the default minimum of a schedule."""
    return epochs * batches_per_epoch(rows, batch_size)


def data_min_steps(min_steps: int, rows: int, paper_rows: int) -> float:
    """The step floor of a part trained on ``rows`` rows: ``min_steps`` at the paper's size (or
    above), ``min_steps * sqrt(rows / paper_rows)`` below it, so the floor shrinks with the data
    but more slowly than an epoch does (a set 100x smaller gets 10x fewer steps, 10x more epochs)."""
    return int(min_steps) * min(1.0, math.sqrt(max(0, int(rows)) / paper_rows))


def epoch_passes(epochs: int, min_steps: int, rows: int, batch_size: int, paper_rows: int) -> int:
    """Passes over the ``rows`` training rows in each of the ``epochs`` epochs: one, or more when
    ``epochs`` passes fall short of the part's step floor (:func:`data_min_steps`). The val
    selection, the history and the progress bar see ``epochs`` epochs whatever the data size."""
    floor = data_min_steps(min_steps, rows, paper_rows)
    return max(1, math.ceil(floor / (max(1, int(epochs)) * batches_per_epoch(rows, batch_size))))


STILL_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "still_model": "auto",
    "still_lr": 1e-3,
    "still_epochs": 30,
    "still_batch_size": 256,
    "still_weight_decay": 1e-4,
    "still_min_steps": min_steps_at_paper_size(30, PAPER_STILLS, 256),
}
DIMRED_DEFAULTS: dict[str, Any] = {
    "d1": 128,
    "dimred_lr": 1e-3,
    "dimred_epochs": 8,
    "dimred_batch_size": 256,
    "dimred_dropout": 0.5,
    "dimred_min_steps": min_steps_at_paper_size(8, PAPER_TEMPORAL_ROWS, 256),
}
# Table 6 (identical for both modalities).
GAN_DEFAULTS: dict[str, Any] = {
    "d0": 256,
    "d1": 128,
    "d2": 256,
    "lambda": 1.0,
    "lr": 1e-3,
    "epochs": 10,
    "batch_size": 128,
    "min_steps": min_steps_at_paper_size(10, PAPER_STILLS, 128),
    "dropout": 0.5,
    "noise": 0.01,
    "select": "fused",
}
# Table 8.
EMBED_DEFAULTS: dict[str, dict[str, Any]] = {
    "flow": {"d0": 256, "d1": 256, "alpha": 1.0},
    "dynamic": {"d0": 128, "d1": 256, "alpha": 0.5},
}
EMBED_COMMON: dict[str, Any] = {
    "lr": 2e-4,
    "epochs": 3,
    "classes_per_batch": 4,
    "instances_per_class": 4,
    "min_steps": min_steps_at_paper_size(3, PAPER_STILLS, 4 * 4),  # 3 epochs of 426 P x K batches
    "dropout": 0.5,
    "noise": 0.01,
    "classifier_lr": 1e-3,
    "classifier_epochs": 10,
    "classifier_min_steps": min_steps_at_paper_size(10, PAPER_TEMPORAL_ROWS, 256),
    "select": "fused",
}

# Keys that fix tensor shapes or the number of steps: configurations trained together in
# one stacked group (``train_group``) must agree on them; every other key may differ.
SHAPE_KEYS = (
    "still_model", "still_epochs", "still_batch_size", "still_min_steps",
    "d0", "d1", "d2", "dimred_epochs", "dimred_batch_size", "dimred_min_steps",
    "epochs", "batch_size", "classes_per_batch", "instances_per_class", "classifier_epochs",
    "min_steps", "classifier_min_steps",
)
# Keys that determine each trained part; equal values -> the same trained part.
STILL_KEYS = tuple(STILL_DEFAULTS)
DIMRED_KEYS = ("seed", *DIMRED_DEFAULTS)

POSITIVE_INT = {"still_epochs", "d0", "d1", "d2", "dimred_epochs", "epochs", "classes_per_batch",
                "classifier_epochs", "still_min_steps", "dimred_min_steps", "min_steps", "classifier_min_steps"}
BATCH_INT = {"still_batch_size", "dimred_batch_size", "batch_size", "instances_per_class"}
POSITIVE_FLOAT = {"still_lr", "dimred_lr", "lr", "classifier_lr"}
NON_NEGATIVE_FLOAT = {"still_weight_decay", "lambda", "alpha", "noise"}
RATE = {"dropout", "dimred_dropout"}


def default_config(method: str, temporal: str) -> dict[str, Any]:
    """The paper's defaults for ``method`` on temporal modality ``temporal``."""
    if method not in METHODS:
        raise FeatcacheError(f"unknown head method {method!r}; expected one of {', '.join(METHODS)}")
    if temporal not in TEMPORAL_KINDS:
        raise FeatcacheError(f"unknown temporal modality {temporal!r}; expected one of {', '.join(TEMPORAL_KINDS)}")
    config = {**STILL_DEFAULTS, **DIMRED_DEFAULTS}
    if method == "gan":
        config.update(GAN_DEFAULTS)
    elif method == "embed":
        config.update(EMBED_COMMON)
        config.update(EMBED_DEFAULTS[temporal])
    return config


def parse_value(key: str, text: str, default: Any) -> Any:
    """``text`` converted to the type of ``default`` and range-checked, or FeatcacheError."""
    text = text.strip()
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            value: Any = text.lower() in ("true", "1", "yes")
        elif isinstance(default, int):
            value = int(text)
        elif isinstance(default, float):
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
        else:
            value = text
    except ValueError:
        kind = type(default).__name__
        raise FeatcacheError(f"--set {key}={text}: expected {'a finite ' if kind == 'float' else 'an '}{kind}") from None
    check_value(key, value)
    return value


def check_value(key: str, value: Any) -> None:
    """Range check of one key; FeatcacheError naming the key and the allowed range."""
    problem = None
    if key in CHOICES and value not in CHOICES[key]:
        problem = f"expected one of {', '.join(CHOICES[key])}"
    elif key in POSITIVE_INT and value < 1:
        problem = "expected an integer >= 1"
    elif key in BATCH_INT and value < 2:
        problem = "expected an integer >= 2 (batch norm needs two rows)"
    elif key in POSITIVE_FLOAT and value <= 0:
        problem = "expected a number > 0"
    elif key in NON_NEGATIVE_FLOAT and value < 0:
        problem = "expected a number >= 0"
    elif key in RATE and not 0 <= value < 1:
        problem = "expected a rate in [0, 1)"
    if problem:
        raise FeatcacheError(f"--set {key}={value}: {problem}")


def parse_sets(method: str, temporal: str, assignments: Iterable[str],
               config_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """The defaults, then the keys of ``config_file`` (a ``config.yaml``), then the ``KEY=VALUE``
    strings (the command line wins); unknown keys list the valid ones."""
    config = default_config(method, temporal)
    if config_file is not None:
        config = apply_config_file(config, config_file, f"train-head {method}")
    return apply_sets(config, assignments, f"train-head {method}")


def apply_sets(config: Mapping[str, Any], assignments: Iterable[str], command: str) -> dict[str, Any]:
    """``config`` with ``KEY=VALUE`` strings applied, each parsed and range-checked like its default."""
    config = dict(config)
    for item in assignments or ():
        key, text = split_assignment(item, config, command)
        config[key] = parse_value(key, text, config[key])
    return config


def split_assignment(item: str, valid: Mapping[str, Any], command: str, *, values_list: bool = False) -> tuple[str, str]:
    """The one ``--set KEY=TEXT`` parser: ``(key, text)`` for a key of ``valid``, else FeatcacheError
    listing the valid keys. ``values_list`` (grids: ``KEY=V1,V2,...``) also refuses an empty TEXT."""
    form = "KEY=V1,V2,..." if values_list else "KEY=VALUE"
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or (values_list and not text.strip()):
        raise FeatcacheError(f"--set {item!r}: expected {form}")
    if key not in valid:
        raise FeatcacheError(f"--set {key}: unknown key for {command}; valid keys: {', '.join(sorted(valid))}")
    return key, text


# -- config files (RUN_DIR/config.yaml, accepted back by --config) -------------------------
CONFIG_FILE = "config.yaml"


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The ``KEY: VALUE`` mapping of a YAML file; FeatcacheError naming the file otherwise."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FeatcacheError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise FeatcacheError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise FeatcacheError(f"{path}: expected a mapping of KEY: VALUE, as in a run's config.yaml")
    return data


def config_value(key: str, value: Any, default: Any, where: str) -> Any:
    """A value read from a config file, converted and range-checked like ``--set KEY=VALUE``."""
    if isinstance(value, (dict, list)) or value is None:
        raise FeatcacheError(f"{where}: {key}: expected a single value, got {value!r}")
    try:
        return parse_value(key, str(value), default)
    except FeatcacheError as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise FeatcacheError(f"{where}: {key}: {value}: {reason}") from None


def apply_config_file(config: Mapping[str, Any], path: str | os.PathLike, command: str) -> dict[str, Any]:
    """``config`` with every key of the file applied; unknown keys list the valid ones."""
    config = dict(config)
    for key, value in read_config_items(path, config, command):
        config[key] = config_value(key, value, config[key], str(path))
    return config


def read_config_items(path: str | os.PathLike, valid: Mapping[str, Any], command: str) -> Iterator[tuple[str, Any]]:
    """The ``(key, value)`` items of a config file in order, each key one of ``valid`` (else the valid ones are listed)."""
    for key, value in read_config_file(path).items():
        if key not in valid:
            raise FeatcacheError(f"{path}: unknown key {key} for {command}; valid keys: {', '.join(sorted(valid))}")
        yield key, value


def write_config(run_dir: str | os.PathLike, config: Mapping[str, Any], header: str = "") -> Path:
    """``RUN_DIR/config.yaml``: the resolved configuration, which ``--config`` accepts back."""
    import yaml

    from featcache.utils.atomic import atomic_path

    path = Path(run_dir) / CONFIG_FILE
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    with atomic_path(path) as tmp:
        tmp.write_text(comment + yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path


def defaults_table() -> str:
    """Every ``--set`` key with its default per method and temporal modality (for --help)."""
    columns = [("classifier", "flow"), ("gan", "flow"), ("embed", "flow"), ("embed", "dynamic")]
    configs = [default_config(method, temporal) for method, temporal in columns]
    keys = list(dict.fromkeys(k for c in configs for k in c))
    header = ["key", "classifier", "gan", "embed flow", "embed dynamic"]
    rows = [[k, *("-" if k not in c else str(c[k]) for c in configs)] for k in keys]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])


def shape_key(method: str, config: Mapping[str, Any]) -> tuple:
    """What configurations trained together in one stacked group must share."""
    return (method, *((k, config[k]) for k in SHAPE_KEYS if k in config))


def part_key(config: Mapping[str, Any], keys: Iterable[str]) -> tuple:
    return tuple((k, config[k]) for k in keys)
