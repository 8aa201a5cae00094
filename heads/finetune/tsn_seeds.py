"""``featcache tsn --seeds N``: the teacher-student network under N seeds, reported like the heads.

The heads train their seeds as stacked members (cheap); TSN fine-tunes a CNN, so each seed is a
full run: seeds ``seed, ..., seed+N-1`` train one after the other into
``RUN_DIR/members/seed-<s>/`` (each a complete run folder whose ``metrics.json`` carries
``member_of``, so the report reads only the combined run), and ``RUN_DIR/metrics.json`` combines
them as ``heads.training.seeds.combine_seed_metrics`` does for the heads: means and stds over
seeds, intervals over seeds and stills, ``per_seed``. One seed is a plain ``train_tsn`` run.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from featcache.backbones import default_backbone
from featcache.cache.schema import backbone_file_tag
from featcache.utils.progress import console
from heads.evaluation.metrics import print_metrics, read_metrics, write_metrics
from heads.finetune.tsn import train_tsn
from heads.training.run_dir import default_run_dir
from heads.training.seeds import combine_seed_metrics, seed_configs

MEMBERS = "members"


def member_dir(run_dir: Path, seed: int) -> Path:
    return run_dir / MEMBERS / f"seed-{seed}"


def train_tsn_seeds(root, settings, *, seeds: int = 1, cache_dir: str | os.PathLike = "cache",
                    out: str | os.PathLike | None = None, resume: bool | None = None) -> dict[str, Any]:
    """``train_tsn`` with ``settings`` (a ``TSNSettings``) under ``seeds`` seeds from ``settings.seed``
    (module docstring); returns the combined metrics."""
    seed_configs({"seed": settings.seed}, seeds)  # one check of the count for every command
    if seeds == 1:
        return train_tsn(root, settings, cache_dir=cache_dir, out=out, resume=resume)
    backbone = backbone_file_tag(settings.backbone or default_backbone())
    run_dir = Path(out) if out else default_run_dir("tsn", settings.temporal, backbone)
    metrics_list: list[dict[str, Any]] = []
    probs_list: list[dict[str, Any]] = []
    for k in range(seeds):
        seed = settings.seed + k
        member = member_dir(run_dir, seed)
        console.print(f"TSN seed {seed} ({k + 1} of {seeds}): {member}")
        metrics = train_tsn(root, replace(settings, seed=seed), cache_dir=cache_dir, out=member, resume=resume,
                            keep_probs=probs_list)
        if not metrics:  # not the main process of a distributed run
            return {}
        metrics = dict(read_metrics(member), member_of=str(run_dir))
        write_metrics(member, metrics)
        metrics_list.append(metrics)
    combined = combine_seed_metrics(metrics_list, probs_list)
    combined.pop("member_of", None)
    write_metrics(run_dir, combined)
    print_metrics(combined)
    console.print(f"run: {run_dir} ({seeds} seeds under {run_dir / MEMBERS})")
    return combined
