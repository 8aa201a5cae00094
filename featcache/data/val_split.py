"""The one rule that carves a validation share out of training data: seeded, class-stratified,
and by group (a video's rows, never its single instances, go to one side).

Used where a split has no val of its own: ``prepare`` carves val videos from the train videos
when ``ROOT/videos/val`` is absent (recorded in ``temporal.h5``), the heads carve val videos from
the train rows of a temporal cache built before the split existed, and TSN carves val stills
from the train stills when ``stills/val`` is absent. Every choice (epoch, temperature, run) is
made on val rows; test labels are read only by the final evaluation (docs/metrics.md).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from featcache.errors import FeatcacheError

DEFAULT_VAL_FRACTION = 0.2
DEFAULT_VAL_SEED = 0


def check_fraction(fraction: float) -> float:
    fraction = float(fraction)
    if not 0.0 <= fraction < 1.0:
        raise FeatcacheError(f"bad val fraction {fraction}; expected a share in [0, 1), e.g. 0.2")
    return fraction


def carve_val(labels: Sequence[int], groups: Sequence[str], fraction: float = DEFAULT_VAL_FRACTION,
              seed: int = DEFAULT_VAL_SEED) -> np.ndarray:
    """A boolean mask over rows: True for rows whose group (video) goes to val.

    Per class (in label order), the class's distinct groups (sorted) are shuffled by one
    generator seeded with ``seed`` and the first ``round(fraction * n)`` go to val: at least one
    when the class has two groups or more and ``fraction > 0``, never all of them. A group takes
    the label of its first row. Depends only on (labels, groups, fraction, seed), not on row order.
    """
    fraction = check_fraction(fraction)
    labels = np.asarray(labels, dtype=np.int64)
    groups = np.asarray([str(g) for g in groups], dtype=object)
    if len(labels) != len(groups):
        raise ValueError(f"{len(labels)} labels for {len(groups)} groups")
    first_label: dict[str, int] = {}
    for group, label in zip(groups.tolist(), labels.tolist()):
        first_label.setdefault(group, label)
    rng = np.random.default_rng(int(seed))
    chosen: set[str] = set()
    for label in sorted(set(first_label.values())):
        members = sorted(g for g, l in first_label.items() if l == label)
        take = val_count(len(members), fraction)
        order = rng.permutation(len(members))
        chosen.update(members[i] for i in order[:take])
    return np.array([g in chosen for g in groups.tolist()], dtype=bool)


def val_count(groups: int, fraction: float) -> int:
    """How many of a class's ``groups`` go to val."""
    if fraction <= 0 or groups < 2:
        return 0
    return min(groups - 1, max(1, int(round(fraction * groups))))


def carved_record(fraction: float, seed: int, count: int, of: str) -> dict[str, Any]:
    """What is recorded about a carved val split (``temporal.h5``'s ``video_split``, run configs)."""
    return {"val": "carved", "fraction": float(fraction), "seed": int(seed), "count": int(count), "from": of}


def describe_split(record: dict[str, Any] | None) -> str:
    """One phrase: where the val rows came from."""
    if not record:
        return "no val videos (built before the val split)"
    if record.get("val") == "folder":
        return f"val from the dataset's own val folder ({record.get('count', '?')})"
    if record.get("val") == "carved":
        return (f"val carved from {record.get('from', 'train')}: {record.get('count', '?')} "
                f"({100 * record.get('fraction', 0):.0f}%, seed {record.get('seed')})")
    return "no val"
