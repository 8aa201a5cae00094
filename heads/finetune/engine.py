"""The one end-to-end fine-tuning engine, shared by ``featcache finetune`` and ``featcache tsn``.

Flat, in the style of torchvision's references/classification/train.py: :func:`train_one_epoch`,
:func:`evaluate` and :func:`fit` (the epoch loop with per-epoch checkpoints and resume). Checkpoints
are plain dicts written atomically every epoch; they hold the model, optimizer, scheduler, epoch,
the best weights so far and every rank's RNG states, so a resumed run continues the same run.

GPU path: bf16 autocast and channels_last on CUDA; several GPUs or nodes through ``torchrun``
(DistributedDataParallel + DistributedSampler, detected from ``WORLD_SIZE`` / ``LOCAL_RANK``).
Only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from featcache.utils.device import resolve_device
from featcache.utils.distributed import DistEnv, detect_env, rank_device
from featcache.errors import FeatcacheError
from featcache.utils.progress import console, optional_progress
from featcache.utils.atomic import save_torch, writing
from featcache.utils.safe_load import torch_load
from heads.evaluation.history import History

CHECKPOINT_FORMAT = "featcache-training-state"
NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


# -- processes and devices ----------------------------------------------------
def setup(device: str = "auto") -> tuple[DistEnv, torch.device]:
    """Join the ``torchrun`` process group if there is one; pick this process's device."""
    env = detect_env()
    resolved = rank_device(resolve_device(device), env)  # one GPU per torchrun process
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if env.distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
    return env, resolved


def teardown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


@dataclass
class RunContext:
    """What fine-tuning and TSN settle before training: the torchrun env, this process's device and
    the speed settings, resolved from ``None`` (auto): AMP and loader workers on CUDA only, channels-last always."""

    env: DistEnv
    device: torch.device
    amp: bool
    channels_last: bool
    workers: int
    start: float  # time.perf_counter() when the run began: the metrics' seconds


@contextlib.contextmanager
def run_context(device: str, *, amp: bool | None, channels_last: bool | None,
                workers: int | None) -> Iterator[RunContext]:
    """:func:`setup` ... :func:`teardown` around a run, yielding its resolved :class:`RunContext`."""
    start = time.perf_counter()
    env, resolved = setup(device)
    try:
        use_cuda = resolved.type == "cuda"
        yield RunContext(
            env, resolved, amp=use_cuda if amp is None else amp,
            channels_last=True if channels_last is None else channels_last,  # faster on CPU (oneDNN) too
            workers=(min(8, os.cpu_count() or 1) if use_cuda else 0) if workers is None else workers, start=start)
    finally:
        teardown(env)


def seed_everything(seed: int, env: DistEnv = DistEnv()) -> None:
    """Seed every RNG; ranks get different augmentation streams."""
    seed = int(seed) + env.rank
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare_model(model: nn.Module, device: torch.device, *, channels_last: bool) -> nn.Module:
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def wrap_distributed(model: nn.Module, env: DistEnv, device: torch.device) -> nn.Module:
    """DistributedDataParallel under ``torchrun``, the model itself otherwise."""
    if not env.distributed:
        return model

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def train_loader(dataset: Dataset, batch_size: int, env: DistEnv, *, seed: int, workers: int) -> DataLoader:
    """Shuffled loader whose order depends only on (seed, epoch): call ``loader.sampler.set_epoch``."""
    sampler = DistributedSampler(dataset, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=torch.cuda.is_available(), drop_last=False)


def eval_loader(dataset: Dataset, batch_size: int, env: DistEnv, *, workers: int) -> DataLoader:
    """This rank's share (every world_size-th item) of ``dataset``, in order."""
    indices = list(range(env.rank, len(dataset), env.world_size))
    return DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=torch.cuda.is_available())


def set_train_mode(model: nn.Module) -> None:
    """``model.train()``, except that norm layers whose parameters are all frozen stay in eval mode,
    so their running statistics do not drift while the rest of the network fine-tunes."""
    model.train()
    for module in model.modules():
        if isinstance(module, NORM_TYPES):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if channels_last and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


# -- one epoch ------------------------------------------------------------------
def train_one_epoch(model: nn.Module, criterion: Callable, optimizer: torch.optim.Optimizer, loader: DataLoader,
                    device: torch.device, epoch: int, *, targets_fn: Callable | None = None, amp: bool = False,
                    channels_last: bool = False, progress=None) -> float:
    """One pass over ``loader``; returns the mean loss.

    ``targets_fn`` maps a batch's targets before the loss (TSN with a live teacher runs the teacher
    on the temporal inputs there).
    """
    set_train_mode(model)
    task = None
    if progress is not None:
        task = progress.add_task(f"epoch {epoch + 1} train", total=len(loader), rate=0.0)
    total, count, start = 0.0, 0, time.perf_counter()
    for inputs, targets in loader:
        inputs = _to_device(inputs, device, channels_last)
        targets = _to_device(targets, device, channels_last)
        if targets_fn is not None:
            with torch.no_grad(), _autocast(device, amp):
                targets = targets_fn(targets)
        with _autocast(device, amp):
            loss = criterion(model(inputs), targets)
        if not torch.isfinite(loss):
            raise FeatcacheError(f"training diverged at epoch {epoch + 1} (loss {loss.item()}); lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * inputs.shape[0]
        count += inputs.shape[0]
        if task is not None:
            progress.update(task, advance=1, rate=count / max(time.perf_counter() - start, 1e-9))
    return total / max(count, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, env: DistEnv = DistEnv(), *,
             amp: bool = False, channels_last: bool = False, progress=None, description: str = "evaluate"
             ) -> torch.Tensor:
    """Logits ``[N, C]`` (float32, CPU) of the whole dataset behind ``loader``, in dataset order,
    gathered from every rank when distributed."""
    model.eval()
    task = None
    if progress is not None:
        task = progress.add_task(description, total=len(loader), rate=0.0)
    chunks, start, seen = [], time.perf_counter(), 0
    for inputs, _ in loader:
        with _autocast(device, amp):
            outputs = model(_to_device(inputs, device, channels_last))
        chunks.append(outputs.float().cpu())
        seen += inputs.shape[0]
        if task is not None:
            progress.update(task, advance=1, rate=seen / max(time.perf_counter() - start, 1e-9))
    logits = torch.cat(chunks) if chunks else torch.empty(0)
    if not env.distributed:
        return logits
    indices = torch.as_tensor(loader.dataset.indices)
    gathered: list = [None] * env.world_size
    dist.all_gather_object(gathered, (indices, logits))
    size = sum(len(i) for i, _ in gathered)
    out = torch.empty(size, gathered[0][1].shape[1])
    for idx, part in gathered:
        out[idx] = part
    return out


# -- checkpoints ----------------------------------------------------------------
def model_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-epoch history a model file keeps: without wall times (``history.jsonl`` has them), so
    the same training writes the same bytes, and a resumed run the model an uninterrupted one writes
    (its sha256 is the weights identity caches and predict record). Rebuilt through JSON, whose
    decoder shares equal keys, so a resumed run's history (read back from its checkpoint) pickles
    to the bytes of one kept in memory."""
    return json.loads(json.dumps([{k: v for k, v in entry.items() if k != "seconds"} for entry in history]))


def capture_rng() -> dict[str, Any]:
    """Every RNG's state as tensors and plain types (loadable with ``weights_only=True``)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = {"name": str(name), "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "gauss": float(gauss)}
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a training checkpoint atomically: a kill or a full disk leaves the previous one intact."""
    with writing(kept=f"the previous epoch's training state is kept in {path}" if Path(path).exists() else
                 "no epoch was finished", resume="rerun the same command to resume from it"):
        save_torch(state, path, "training checkpoint")


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    state = torch_load(path, "training checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise FeatcacheError(f"{path}: not a featcache training checkpoint")
    return state


def find_resumable(path: Path, run_key: dict[str, Any], resume: bool | None) -> dict[str, Any] | None:
    """The checkpoint to resume from, following ``--resume`` (None = resume when the same run exists)."""
    if resume is False or not path.exists():
        if resume is True:
            raise FeatcacheError(f"--resume: no checkpoint to resume at {path}")
        return None
    state = load_training_state(path)
    if state.get("run_key") != run_key:
        if resume is True:
            raise FeatcacheError(f"--resume: {path} belongs to a run with other settings; use --no-resume")
        console.print(f"[yellow]{path} was written with other settings; starting a fresh run[/yellow]")
        return None
    return state


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


# -- the epoch loop ---------------------------------------------------------------
@dataclass
class Objective:
    """What a run optimises and how an epoch is judged: ``criterion(model(x), targets)`` (after
    ``targets_fn`` maps the targets: TSN's live teacher), ``score_fn(val logits)`` (higher is better;
    the best epoch's weights are kept), ``val_values(val logits)`` (more history values) and the
    names its history uses (``phase``, ``loss_name``); ``selects`` names, in the log, what scores the epoch."""

    criterion: Callable
    score_fn: Callable[[torch.Tensor], float]
    targets_fn: Callable | None = None
    val_values: Callable[[torch.Tensor], dict[str, float]] | None = None
    phase: str = "finetune"
    loss_name: str = "loss"
    selects: str = "val"  # what ``score_fn`` scores, for the log: "val stills", "val videos", "fused val"


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, objective: Objective, train_data: Dataset,
        val_data: Dataset, run: RunContext, *, epochs: int, batch_size: int, checkpoint_path: str | os.PathLike,
        run_key: dict[str, Any], seed: int = 0, resume: bool | None = None,
        log: Callable[[str], None] | None = None, keep_start: bool = False) -> dict[str, Any]:
    """Train for ``epochs`` epochs on ``run``'s device, scoring the validation logits with the
    objective after each one and keeping the best weights. Checkpoints every epoch; resumes from
    ``checkpoint_path`` when it holds the same run (``run_key``). Returns the final training-state
    dict; the best weights are loaded into ``model``. Each epoch's loss, learning rate, ``val`` score
    and ``val_values`` go to the run folder's ``history.jsonl``. ``keep_start``: the model as it starts
    is scored too (epoch 0, no loss), so an epoch is kept only when it beats it on val; when none does,
    ``best_epoch`` is 0 and ``model`` comes back as it started."""
    env, device, amp, channels_last = run.env, run.device, run.amp, run.channels_last
    checkpoint_path = Path(checkpoint_path)
    log = log or (lambda msg: console.print(msg) if env.is_main else None)
    trained = wrap_distributed(model, env, device)
    loader = train_loader(train_data, batch_size, env, seed=seed, workers=run.workers)
    val_loader = eval_loader(val_data, batch_size, env, workers=run.workers)
    state = start_state(checkpoint_path, run_key, resume, model, optimizer, scheduler, env, epochs, log)
    history = History(checkpoint_path.parent).start(state["history"]) if env.is_main else None
    with optional_progress(env.is_main, "img/s") as progress:
        if keep_start and state["epoch"] == 0:
            score_start(model, objective, val_loader, run, state, progress, log)
        for epoch in range(state["epoch"], epochs):
            loader.sampler.set_epoch(epoch)
            if hasattr(train_data, "set_epoch"):
                train_data.set_epoch(epoch)
            start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            loss = train_one_epoch(trained, objective.criterion, optimizer, loader, device, epoch,
                                   targets_fn=objective.targets_fn, amp=amp, channels_last=channels_last,
                                   progress=progress)
            if scheduler is not None:
                scheduler.step()
            logits = evaluate(model, val_loader, device, env, amp=amp, channels_last=channels_last,
                              progress=progress, description=f"epoch {epoch + 1} val")
            score = float(objective.score_fn(logits))
            entry = {"phase": objective.phase, "epoch": epoch + 1, objective.loss_name: loss, "val": score,
                     **(objective.val_values(logits) if objective.val_values else {}), "lr": lr,
                     "seconds": time.perf_counter() - start}
            state["history"].append(entry)
            if history is not None:
                history.record(objective.phase, epoch + 1, {k: v for k, v in entry.items() if k not in ("phase", "epoch")})
            if score > state["best_score"] or state["best_model"] is None:
                state.update(best_score=score, best_epoch=epoch + 1, best_model=_state_copy(model))
            log(f"epoch {epoch + 1}/{epochs}: {objective.loss_name} {loss:.4f}, {objective.selects} {score:.2f} (selects the epoch; "
                f"best {state['best_score']:.2f} at epoch {state['best_epoch']})")
            state.update(epoch=epoch + 1, model=_state_copy(model), optimizer=copy.deepcopy(optimizer.state_dict()),
                         scheduler=None if scheduler is None else scheduler.state_dict())
            state["rng"] = _gather_rng(env)
            if env.is_main:
                save_training_state(checkpoint_path, state)
    if history is not None:
        history.close()
    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    return state


def score_start(model: nn.Module, objective: Objective, val_loader, run: RunContext, state: dict[str, Any],
                progress, log: Callable[[str], None]) -> None:
    """Epoch 0 of ``keep_start``: the starting model's val score (``state["start_score"]``), the one to beat."""
    logits = evaluate(model, val_loader, run.device, run.env, amp=run.amp, channels_last=run.channels_last,
                      progress=progress, description="epoch 0 val")
    score = float(objective.score_fn(logits))
    state.update(best_score=score, best_epoch=0, best_model=_state_copy(model), start_score=score)
    log(f"epoch 0 (as it starts): {objective.selects} {score:.2f} (a trained epoch is kept only when it beats this)")


def start_state(checkpoint_path: Path, run_key: dict[str, Any], resume: bool | None, model: nn.Module, optimizer,
                scheduler, env: DistEnv, epochs: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The training state to continue: the resumable checkpoint's (model, optimizer, scheduler and
    this rank's RNG restored from it), or a fresh one at epoch 0."""
    state = find_resumable(checkpoint_path, run_key, resume)
    if state is None:
        return {"format": CHECKPOINT_FORMAT, "run_key": run_key, "epoch": 0, "best_score": -float("inf"),
                "best_epoch": 0, "best_model": None, "history": []}
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    restore_rng(rng[env.rank] if len(rng) == env.world_size else rng[0])
    log(f"resuming {checkpoint_path} after epoch {state['epoch']} of {epochs}")
    return state


def _gather_rng(env: DistEnv) -> list[dict[str, Any]]:
    mine = capture_rng()
    if not env.distributed:
        return [mine]
    gathered: list = [None] * env.world_size
    dist.all_gather_object(gathered, mine)
    return gathered
