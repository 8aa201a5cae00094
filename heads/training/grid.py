"""Hyperparameter grids over a head: every combination of ``--set KEY=V1,V2,...``.

Configurations that share a shape (``heads.training.methods.shape_key``: layer sizes, batch sizes,
epochs) train together as the members of ONE stacked model (``train_group``); only
distinct shapes cost separate trainings, and those may run in a process pool. Each
configuration gets its own run dir ``OUT/<method>-<temporal>-<hash>/`` with ``model.pt``
and ``metrics.json`` (written last: its presence with the same config marks the
configuration finished, so an interrupted grid resumes where it stopped). Results are
ranked by :func:`heads.evaluation.metrics.selection_score` (fused val for T2SIL heads, still val
for classifier runs; never test when val exists) and written to ``OUT/grid.csv``.
Expanding the ``--set`` lists is :mod:`heads.training.grid_configs`, the CSV and table
:mod:`heads.training.grid_report`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from featcache.utils import distributed
from featcache.utils.atomic import writing
from featcache.errors import FeatcacheError
from featcache.utils.device import resolve_device
from featcache.utils.progress import console, optional_progress
from heads.evaluation.history import History
from heads.evaluation.metrics import METRICS_FILE, selection_score
from heads.training.dim_reduction import DimRedStore
from heads.training.head_data import HeadData
from heads.training.methods import shape_key
from heads.training.run_dir import RunFolderError, read_run_folder, write_head_run
from heads.training.seeds import combine_seed_results, seed_configs
from heads.training.train_head import train_group

# Members per stacked model: bounds memory; larger groups are split (results unchanged).
DEFAULT_MAX_GROUP = 64


@dataclass
class GridRun:
    """One configuration of the grid and, once trained or found, its metrics."""

    config: dict[str, Any]
    run_dir: Path
    metrics: dict[str, Any] | None = None
    reused: bool = False
    # stream -> split -> softmax [N, C] of a configuration trained in this call (None when reused)
    predictions: dict[str, Any] | None = None

    @property
    def score(self) -> tuple[float | None, str]:
        return selection_score(self.metrics) if self.metrics else (None, "none")


@dataclass
class GridSpec:
    """What to train: method, temporal kind, the caches and the expanded configurations."""

    method: str
    temporal: str
    cache_dir: Path
    out_dir: Path
    backbone: str | None = None
    temporal_backbone: str | None = None
    device: str = "cpu"
    varied: list[str] = field(default_factory=list)
    seeds: int = 1  # each configuration trained under seeds seed..seed+N-1 (members of its group)


def config_hash(method: str, temporal: str, config: dict[str, Any], data_id: str = "") -> str:
    """A short stable name for one configuration on one pair of caches."""
    text = json.dumps({"method": method, "temporal": temporal, "config": config, "data": data_id}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def plan_runs(spec: GridSpec, configs: Sequence[dict[str, Any]], data_id: str, restart: bool = False) -> list[GridRun]:
    """One GridRun per configuration; finished ones (metrics.json with the same config) are
    loaded, unless ``restart``: then every configuration trains again."""
    runs = []
    data_id += f"|seeds={spec.seeds}" if spec.seeds > 1 else ""  # one-seed names stay as they were
    for config in configs:
        run_dir = spec.out_dir / f"{spec.method}-{spec.temporal}-{config_hash(spec.method, spec.temporal, config, data_id)}"
        run = GridRun(dict(config), run_dir)
        if not restart and (run_dir / METRICS_FILE).is_file():
            try:
                metrics = read_run_folder(run_dir)
            except RunFolderError as exc:  # a damaged run is named, retrained and replaced
                console.print(f"[yellow]note:[/] {exc}; training this configuration again", highlight=False, soft_wrap=True)
                metrics = None
            same_seeds = len(metrics.get("seeds") or [None]) == spec.seeds if metrics else False
            if metrics and same_seeds and metrics.get("config") == run.config and metrics.get("method") == spec.method:
                run.metrics, run.reused = metrics, True
        runs.append(run)
    return runs


def shape_groups(method: str, runs: Sequence[GridRun], max_group: int = DEFAULT_MAX_GROUP) -> list[list[GridRun]]:
    """Pending runs grouped by shape (order of first appearance), split to at most ``max_group``."""
    by_shape: dict[tuple, list[GridRun]] = {}
    for run in runs:
        if run.metrics is None:
            by_shape.setdefault(shape_key(method, run.config), []).append(run)
    groups = []
    for members in by_shape.values():
        groups.extend(members[i : i + max_group] for i in range(0, len(members), max_group))
    return groups


# -- training ---------------------------------------------------------------------------
_WORKER_DATA: dict[tuple, Any] = {}


def load_data(spec: GridSpec):
    return HeadData.load(spec.cache_dir, spec.temporal, spec.backbone, spec.temporal_backbone)


def data_identity(data) -> str:
    """Names the caches a grid ran on, so a changed cache never reuses old results."""
    return f"{data.still_cache.path.name}|{data.still_cache.attrs.get('weights', '')}|{data.temporal_identity()}"


def dimred_store(spec: GridSpec):
    """Dim-reduction networks shared through ``<cache>/heads``; under torchrun only rank 0
    saves there (one writer per file), the others reuse what it saved or train their own."""
    parts = spec.cache_dir / "heads"
    return DimRedStore([parts], [parts] if distributed.detect_env().is_main else [])


def train_and_write(spec: GridSpec, data, configs: list[dict], run_dirs: list[Path]) -> list[tuple[dict, dict]]:
    """Train one shape group as a stacked model (each configuration's seeds as members too);
    write each configuration's model.pt, config.yaml and history.jsonl (its first seed's curves),
    then metrics.json. Returns each configuration's (metrics, predictions of its first seed)."""
    members = [member for config in configs for member in seed_configs(config, spec.seeds)]
    histories = [History(run_dir) for run_dir in run_dirs]  # one learning curve per configuration
    member_histories = [h for history in histories for h in [history] + [None] * (spec.seeds - 1)]
    try:
        trained = train_group(spec.method, data, members, spec.device, dimred_store=dimred_store(spec),
                              histories=member_histories)
    finally:
        for history in histories:
            history.close()
    results = [combine_seed_results(trained[i : i + spec.seeds]) for i in range(0, len(trained), spec.seeds)]
    outcomes = []
    for result, run_dir in zip(results, run_dirs):
        metrics = dict(result.metrics)
        metrics["grid"] = {"group_size": len(members), "run": run_dir.name}
        write_head_run(run_dir, result.checkpoint, result.config, f"featcache grid {spec.method} --temporal "
                       f"{spec.temporal}: member {run_dir.name}; train it alone with train-head --config this-file",
                       metrics)
        outcomes.append((metrics, result.predictions))
    return outcomes


def _worker_train(spec: GridSpec, configs: list[dict], run_dirs: list[str], threads: int) -> list[tuple[dict, dict]]:
    """Process-pool entry point: loads the caches once per worker process."""
    torch.set_num_threads(max(1, threads))
    key = (str(spec.cache_dir), spec.temporal, spec.backbone, spec.temporal_backbone)
    if key not in _WORKER_DATA:
        _WORKER_DATA[key] = load_data(spec)
    return train_and_write(spec, _WORKER_DATA[key], configs, [Path(d) for d in run_dirs])


def run_grid(
    spec: GridSpec,
    configs: Sequence[dict[str, Any]],
    *,
    jobs: int = 1,
    max_group: int = DEFAULT_MAX_GROUP,
    data=None,
    on_group_done: Callable[[list[GridRun]], None] | None = None,
    show_progress: bool = True,
    restart: bool = False,
) -> list[GridRun]:
    """Train every configuration not finished yet (every one with ``restart``); returns all runs ranked best first.

    Under torchrun the shape groups are shared out across ranks (each on its own device) and
    every rank returns all runs, the others' metrics gathered."""
    if jobs < 1:
        raise FeatcacheError(f"--jobs {jobs}: expected an integer >= 1")
    env = distributed.setup()
    finished = f"configurations finished so far are kept in {spec.out_dir} (each with its metrics.json)"
    with writing(kept=finished, resume="rerun the same command to resume (finished ones are reused)"), \
            distributed.CacheLock(spec.out_dir, env, "grid"):
        spec = rank_spec(spec, env)
        data = data if data is not None else load_data(spec)
        runs = distributed.on_main(env, lambda: plan_runs(spec, configs, data_identity(data), restart))
        groups = shape_groups(spec.method, runs, max(1, max_group // spec.seeds))  # max_group counts members
        mine = distributed.my_share(groups, [len(g) for g in groups], env)
        _train_groups(spec, data, runs, mine, jobs, on_group_done, show_progress)
        gather_metrics(env, runs, groups)
    return rank_runs(runs)


def rank_spec(spec: GridSpec, env) -> GridSpec:
    """Under torchrun, a bare cuda (or auto on a GPU node) becomes this rank's GPU."""
    if not env.distributed:
        return spec


    return replace(spec, device=str(distributed.rank_device(resolve_device(spec.device), env)))


def gather_metrics(env, runs: list[GridRun], groups: list[list[GridRun]]) -> None:
    """Fill in the metrics of the groups other ranks trained (every rank gets them all)."""
    if not env.distributed:
        return
    trained = {str(r.run_dir): r.metrics for g in groups for r in g if r.metrics is not None}
    merged = {k: v for part in distributed.all_gather(env, trained) for k, v in part.items()}
    for run in runs:
        if run.metrics is None and str(run.run_dir) in merged:
            run.metrics = merged[str(run.run_dir)]


def _train_groups(spec, data, runs, groups, jobs, on_group_done, show_progress) -> None:
    """This process's groups, in turn or in a process pool; each writes its run dirs."""
    spec.out_dir.mkdir(parents=True, exist_ok=True)

    def finish(group: list[GridRun], outcomes: list[tuple[dict, dict]], advance) -> None:
        for run, (metrics, predictions) in zip(group, outcomes):
            run.metrics, run.predictions = metrics, predictions
        advance(len(group))
        if on_group_done:
            on_group_done(group)


    with contextlib.ExitStack() as stack:
        advance = lambda n: None  # noqa: E731
        progress = stack.enter_context(optional_progress(show_progress and bool(groups)))
        if progress is not None:
            task = progress.add_task(f"grid {spec.method} ({spec.temporal})", total=len(runs),
                                     completed=len(runs) - sum(len(g) for g in groups))
            advance = lambda n: progress.advance(task, n)  # noqa: E731
        if jobs == 1 or len(groups) <= 1:
            for group in groups:
                outcomes = train_and_write(spec, data, [r.config for r in group], [r.run_dir for r in group])
                finish(group, outcomes, advance)
        else:
            _run_pool(spec, groups, jobs, finish, advance)


def _run_pool(spec: GridSpec, groups: list[list[GridRun]], jobs: int, finish, advance) -> None:
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")  # fork after torch threads started is unsafe
    with ProcessPoolExecutor(max_workers=min(jobs, len(groups)), mp_context=context) as pool:
        futures = {
            pool.submit(_worker_train, spec, [r.config for r in g], [str(r.run_dir) for r in g], threads): g
            for g in groups
        }
        for future in as_completed(futures):
            finish(futures[future], future.result(), advance)


def rank_runs(runs: Sequence[GridRun]) -> list[GridRun]:
    """Best selection score first; runs without a score last; ties keep grid order."""
    order = sorted(range(len(runs)), key=lambda i: (runs[i].score[0] is None, -(runs[i].score[0] or 0.0), i))
    return [runs[i] for i in order]
