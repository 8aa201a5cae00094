"""Stage 2 from Python: train a head or a grid on a feature cache, get metrics and predictions.

The same paths as ``featcache train-head`` and ``featcache grid`` (the commands call these
functions), with the same files in the run folder when ``out`` is given: ``metrics.json``,
``model.pt``, ``history.jsonl`` and ``config.yaml``::

    from heads import fit_head
    run = fit_head("cache", "gan", temporal="flow", config={"epochs": 5}, out="runs/gan-flow")
    print(run.metrics["fused"]["test"])          # accuracy in percent
    probs = run.predictions["fused"]["test"]     # [N, C] softmax of the test stills
    print(run.classes[int(probs[0].argmax())])
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from featcache.data.val_split import describe_split
from featcache.errors import FeatcacheError
from featcache.utils import distributed
from featcache.utils.atomic import writing
from featcache.utils.device import resolve_device
from heads.evaluation.history import History
from heads.evaluation.metrics import small_split_warnings, split_sizes
from heads.training.dim_reduction import DimRedStore
from heads.training.grid import GridSpec, run_grid
from heads.training.grid_report import write_grid_csv
from heads.training.head_data import HeadData
from heads.training.methods import head_config, head_grid
from heads.training.run_dir import default_run_dir, write_head_run
from heads.training.seeds import seed_configs, train_seeds

Log = Callable[[str], None]


@dataclass
class HeadRun:
    """One trained head: its resolved config, ``metrics.json`` dict and predictions.

    ``predictions[stream][split]``: softmax ``[N, C]`` (CPU) of the ``val``/``test`` stills for
    the streams ``still``, ``derived`` and ``fused`` (``derived``/``fused`` are None for the
    classifier method); ``labels[split]``: their class indices; ``classes``: the class names.
    """

    method: str
    temporal: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    predictions: dict[str, dict[str, torch.Tensor | None] | None]
    labels: dict[str, torch.Tensor | None]
    classes: list[str]
    checkpoint: dict[str, Any]
    run_dir: Path | None = None


@dataclass
class GridResult:
    """A finished grid: what was trained (``spec``), every run best first, and ``grid.csv`` (written by rank 0 alone under torchrun)."""

    spec: Any  # heads.training.grid.GridSpec
    runs: list  # [heads.training.grid.GridRun]: config, run_dir, metrics, reused, predictions (None when reused)
    csv: Path | None  # None on torchrun ranks > 0 (rank 0 writes it)


def resolve_head_config(method: str, temporal: str, config: Mapping[str, Any] | None = None,
                        config_file: str | os.PathLike | None = None, sets: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults of ``method``/``temporal``, then ``config_file``, then ``config``, then ``KEY=VALUE`` ``sets``
    (the one resolver, :func:`heads.training.resolve.head_config`)."""
    return head_config(method, temporal, config_file=config_file, values=config, sets=sets)


def fit_head(cache: str | os.PathLike = "cache", method: str = "gan", temporal: str = "dynamic", *,
             config: Mapping[str, Any] | None = None, config_file: str | os.PathLike | None = None,
             sets: Iterable[str] = (), out: str | os.PathLike | None = None, device: str | torch.device = "auto",
             backbone: str | None = None, temporal_backbone: str | None = None, progress: bool = False,
             log: Log | None = None, experiment: str = "main", seeds: int = 1,
             root: str | os.PathLike | None = None) -> HeadRun:
    """Train one head of ``method`` (a registered head method: ``heads.list_methods()``) on the caches in ``cache``.

    With ``out`` (a run folder) it writes ``metrics.json``, ``model.pt``, ``history.jsonl`` and
    ``config.yaml`` there; without it nothing is written but the dim-reduction networks shared
    through ``<cache>/heads``. Epochs are selected on the still val split, never on test.
    ``experiment`` labels the run for the report (main, or midframe for section 5.4).
    ``seeds`` > 1 trains seeds seed..seed+N-1 as members of one stacked model: the metrics hold
    the means, stds and per-seed values (``heads.training.seeds``); predictions and curves are the first seed's.
    ``root``: the dataset, whose ``still-videos.csv`` ``pairing=instance`` reads.
    """
    log = log or (lambda message: None)
    resolved = resolve_head_config(method, temporal, config, config_file, sets)
    seed_configs(resolved, seeds)  # validates seeds before any loading
    torch_device = resolve_device(device)
    data = HeadData.load(cache, temporal, backbone, temporal_backbone, root)
    log(describe_data(data, torch_device))
    for line in small_split_warnings(split_sizes({s: data.still[s].labels for s in data.still}, data.classes),
                                     data.num_classes):
        log(line)
    run_dir = Path(out) if out is not None else None
    folders = [d for d in (run_dir, Path(cache) / "heads") if d is not None]
    store = DimRedStore(folders, folders, log=log)
    unfinished = f"{run_dir} is unfinished (no metrics.json: reports skip it)" if run_dir else "nothing"
    with writing(kept=unfinished, resume="rerun the same command (a head trains again from its seed, to the same metrics)"):
        with History(run_dir) if run_dir else contextlib.nullcontext() as history:
            result = train_seeds(method, data, resolved, seeds, torch_device, dimred_store=store, progress=progress,
                                 histories=[history] + [None] * (seeds - 1))
        result.metrics["experiment"] = experiment
        if run_dir is not None:
            write_head_run(run_dir, result.checkpoint, result.config, config_header(method, temporal, cache), result.metrics)
    labels = {s: data.still[s].labels if s in data.still else None for s in ("val", "test")}
    return HeadRun(method, temporal, result.config, result.metrics, result.predictions, labels, data.classes,
                   result.checkpoint, run_dir)


def fit_grid(cache: str | os.PathLike = "cache", method: str = "gan", temporal: str = "flow", *,
             grid: Mapping[str, Sequence[Any]] | None = None, sets: Iterable[str] = (),
             config_file: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
             device: str | torch.device = "auto", jobs: int = 1, max_group: int = 64, restart: bool = False,
             backbone: str | None = None, temporal_backbone: str | None = None,
             show_progress: bool = False, seeds: int = 1) -> GridResult:
    """Train every combination of ``grid`` (``{key: [values]}``, plus ``KEY=V1,V2`` ``sets`` and a
    config file whose lists vary) as stacked groups; one run folder per configuration under
    ``out`` (default ``runs/grid-<method>-<temporal>``) and ``grid.csv``. Finished configurations
    are reused unless ``restart``. The runs come back ranked best first (by validation; with
    ``seeds`` > 1, each configuration is trained under N seeds and ranked by its mean val)."""
    sets = list(sets)
    if not grid and not sets and config_file is None:
        raise FeatcacheError("grid: give at least one --set KEY=V1,V2,... (or a --config FILE.yaml with lists)")
    if max_group < 1:
        raise FeatcacheError(f"--max-group {max_group}: expected an integer >= 1")
    seed_configs({"seed": 0}, seeds)  # validates seeds before any loading
    configs, varied = head_grid(method, temporal, config_file=config_file, grid=grid, sets=sets)
    out_dir = Path(out) if out is not None else default_run_dir("grid", method, temporal)
    spec = GridSpec(method, temporal, Path(cache), out_dir, backbone, temporal_backbone,
                    str(resolve_device(device)), varied, seeds=seeds)
    runs = run_grid(spec, configs, jobs=jobs, max_group=max_group, restart=restart, show_progress=show_progress)
    if not distributed.detect_env().is_main:  # under torchrun rank 0 alone writes grid.csv
        return GridResult(spec, runs, None)
    return GridResult(spec, runs, write_grid_csv(spec.out_dir, runs))


def describe_data(data, device: torch.device) -> str:
    """One line on the caches a head trains on (and one on its temporal val rows)."""
    line = (f"still: {data.still_cache.path} ({data.still_cache.backbone}, {len(data.still['train'])} train rows); "
            f"{data.temporal_kind}: {data.temporal_cache.path} ({data.temporal_cache.backbone}, "
            f"{len(data.temporal['train'])} train rows); {data.num_classes} classes; device {device}"
            f"\ntemporal val rows (where the temporal networks' epochs are chosen): {describe_split(data.temporal_val)}")
    if data.still_cache.backbone != data.temporal_cache.backbone:
        line += (f"\nnote: still and temporal features come from different backbones "
                 f"({data.still_cache.backbone} vs {data.temporal_cache.backbone})")
    return line


def config_header(method: str, temporal: str, cache: str | os.PathLike) -> str:
    return (f"featcache train-head {method} --temporal {temporal} --cache {cache}\n"
            f"resolved configuration ({time.strftime('%Y-%m-%d %H:%M:%S')}); rerun it with --config this-file")
