"""Co-class partners drawn with numpy: for each still, a random temporal row of the same class.

One draw for the oracle (``heads.experiments.oracle``, restricted to eligible rows) and the
fine-tuning pairs (``heads.finetune.datasets.CoClassPairs``). The embedding head's positives
(:class:`heads.samplers.positive_sampler.PositiveSampler`) draw the same distribution with a torch
generator, vectorised over a batch; merging them would change every seeded result, so they stay apart.
"""

from __future__ import annotations

import numpy as np


def draw_co_class(still_labels: np.ndarray, temporal_labels: np.ndarray, rng: np.random.Generator,
                  eligible: np.ndarray | None = None) -> np.ndarray:
    """For each still, the index of a random (``eligible``) temporal row of its class; -1 if none.

    Classes in ascending order, one ``rng.choice`` per class: a seed gives the same pairs on every run."""
    drawn = np.full(len(still_labels), -1, dtype=np.int64)
    for label in np.unique(still_labels):
        same = temporal_labels == label
        pool = np.flatnonzero(same if eligible is None else eligible & same)
        rows = np.flatnonzero(still_labels == label)
        if len(pool):
            drawn[rows] = rng.choice(pool, size=len(rows), replace=True)
    return drawn
