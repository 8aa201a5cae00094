"""Settings of the stage-2 heads: the schedules, the defaults every head shares (still model,
dim-reduction network) and the config files (``RUN_DIR/config.yaml``, read back by ``--config``).
Each method's own defaults are in its registry record (:mod:`heads.training.registry`, e.g.
:mod:`heads.training.gan`), each key's type and range in :mod:`heads.training.settings`, and the one
resolver (defaults < ``--config`` < ``--set``) in :mod:`heads.training.resolve`.

Layer sizes, lambda, alpha, learning rates and P x K sampling come from the paper
(Tables 5-8). The paper gives no epochs or batch sizes; ours are chosen so each head
trains in seconds on a 2-core CPU at SSVAC-40 size (6,821 train stills, 16,000 temporal
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
  d_norm            joint | separate | none: the discriminator's batch norm over the real and
                    generated rows together (default), per batch (Table 5 as first built: D
                    stays at chance, benchmarks/gan_discriminator.py), or no batch norm
  lambda            weight of the auxiliary classification loss (GAN, eq. 3)
  alpha             triplet margin (eq. 4)
  lr, epochs, batch_size   the head itself (RMSProp for the GAN, Adam for the embedding)
  min_steps         the same for the head (GAN: batches; embedding: P x K batches)
  dropout, noise    dropout rate and Gaussian-noise sd inside generator/embedding
  classes_per_batch, instances_per_class   P x K batches of the embedding (Table 8: 4 x 4; ours 8 x 8)
  classifier_lr, classifier_epochs, classifier_min_steps   the embedding classifier on compact temporal features
  select            fused | derived: the val accuracy that picks the best epoch
  pairing           co-class | instance: the temporal rows a still meets (GAN reals, embedding
                    positives): random (GAN) / co-class (embedding), as in the paper, or rows of the
                    still's own video (ROOT/still-videos.csv: --root), co-class for a still without one
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from featcache.errors import FeatcacheError
from featcache.utils.atomic import atomic_path

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


# The linear still model: 15 epochs, not 30. At the paper's size its val curve is flat from epoch 1 (82.8-83.9%)
# and val keeps epoch 10 of 30, so 15 give the same model at half the time (benchmarks/heads.py: 1.2 -> 0.6 s).
STILL_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "still_model": "auto",
    "still_lr": 1e-3,
    "still_epochs": 15,
    "still_batch_size": 256,
    "still_weight_decay": 1e-4,
    "still_min_steps": min_steps_at_paper_size(15, PAPER_STILLS, 256),
}
# The dim-reduction network (d1 = 128, the classifier's and the GAN's): 5 epochs, not 8. At the paper's size val
# keeps epoch 4 of 8 (84.2-85.5% throughout, epoch 5 below epoch 4), so 5 give the same network in 5/8 of the time.
DIMRED_DEFAULTS: dict[str, Any] = {
    "d1": 128,
    "dimred_lr": 1e-3,
    "dimred_epochs": 5,
    "dimred_batch_size": 256,
    "dimred_dropout": 0.5,
    "dimred_min_steps": min_steps_at_paper_size(5, PAPER_TEMPORAL_ROWS, 256),
}
# Keys that determine each trained part; equal values -> the same trained part.
STILL_KEYS = tuple(STILL_DEFAULTS)
DIMRED_KEYS = ("seed", *DIMRED_DEFAULTS)


# -- config files (RUN_DIR/config.yaml, accepted back by --config) -------------------------
CONFIG_FILE = "config.yaml"


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The ``KEY: VALUE`` mapping of a YAML file; FeatcacheError naming the file otherwise."""
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


def write_config(run_dir: str | os.PathLike, config: Mapping[str, Any], header: str = "") -> Path:
    """``RUN_DIR/config.yaml``: the resolved configuration, which ``--config`` accepts back."""
    path = Path(run_dir) / CONFIG_FILE
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    with atomic_path(path) as tmp:
        tmp.write_text(comment + yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path


def part_key(config: Mapping[str, Any], keys: Iterable[str]) -> tuple:
    return tuple((k, config[k]) for k in keys)
