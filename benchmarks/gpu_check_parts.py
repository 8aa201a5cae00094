"""The checks of benchmarks/gpu_check.py: one function per CUDA path, each returning table rows
(``check``, ``variant``, ``rate``, ``unit``, ``ratio`` to its reference, ``peak_mib``, ``agreement``,
``ok``). Sizes come from ``Context.sizes`` (the GPU's or the tiny CPU ones)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


class Context:
    def __init__(self, device: torch.device, sizes: dict, real: Path | None):
        self.device, self.sizes, self.real = device, sizes, real
        self.cuda = device.type == "cuda"
        self._stack = contextlib.ExitStack()
        self.tmp = Path()
        self._dataset: Path | None = None

    def __enter__(self) -> "Context":
        self.tmp = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="featcache-gpu-check-")))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def run(self, fn):
        """``(seconds, peak MiB or None, result)`` of ``fn()`` (synchronised on CUDA)."""
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        out = fn()
        if self.cuda:
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(self.device) / 2**20 if self.cuda else None
        return seconds, peak, out

    def dataset(self) -> Path:
        """A folder-layout dataset of ``images`` stills: real ones (links) when given, else generated."""
        if self._dataset is None:
            from PIL import Image

            root, n = self.tmp / "dataset", self.sizes["images"]
            files = sorted((self.real / "stills").rglob("*.jpg"))[:n] if self.real else []
            for i in range(n):
                target = root / "stills" / "train" / f"class{i % 2}" / f"{i:04d}.{'jpg' if files else 'png'}"
                target.parent.mkdir(parents=True, exist_ok=True)
                if files:
                    target.symlink_to(files[i % len(files)].resolve())
                else:
                    pixels = np.random.default_rng(i).integers(0, 256, (self.sizes["side"] + 8, self.sizes["side"] + 16, 3))
                    Image.fromarray(pixels.astype(np.uint8)).save(target)
            self._dataset = root
        return self._dataset

    def clip(self, frames: int) -> np.ndarray:
        """RGB uint8 ``[T, H, W, 3]``: a real clip's middle frames, else a generated panning scene."""
        from prepare import generated_clip, load_clips

        if self.real:
            return load_clips(1, self.sizes["flow_size"], frames)[0][1]
        return generated_clip(frames, self.sizes["flow_size"], 0)


def row(check, variant, rate=None, unit="", ratio=None, peak=None, agreement="", ok=True) -> dict:
    return {"check": check, "variant": variant, "rate": rate, "unit": unit, "ratio": ratio, "peak_mib": peak,
            "agreement": agreement, "ok": bool(ok)}


def check_extract(ctx: Context) -> list[dict]:
    from featcache.backbones import create_backbone, default_backbone
    from featcache.extraction.extract import ExtractSettings, extract

    n, side = ctx.sizes["images"], ctx.sizes["side"]
    backbone = create_backbone(default_backbone(), weights="random").eval().to(ctx.device)
    x = torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(0)).to(ctx.device)
    amp_type = torch.float16 if ctx.cuda else torch.bfloat16

    def forward(inputs, amp=False, channels_last=False, one_by_one=False):
        model = backbone.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        inputs = inputs.contiguous(memory_format=torch.channels_last) if channels_last else inputs
        with torch.inference_mode(), torch.autocast(ctx.device.type, dtype=amp_type, enabled=amp):
            parts = [model.forward_features(inputs[i : i + 1]) for i in range(n)] if one_by_one else [model.forward_features(inputs)]
        return torch.cat(parts).float()

    forward(x[:2])  # warm-up (cuDNN autotuning, lazy initialisation)
    plain_s, plain_peak, reference = ctx.run(lambda: forward(x, one_by_one=True))
    rows = [row("extract", "plain loop (one image per forward)", n / plain_s, "images/s", 1.0, plain_peak)]
    for label, options in (("batched fp32", {}), ("batched AMP", {"amp": True}),
                           ("batched AMP + channels_last", {"amp": True, "channels_last": True})):
        seconds, peak, features = ctx.run(lambda: forward(x, **options))
        cosine = torch.nn.functional.cosine_similarity(features, reference).min().item()
        rows.append(row("extract", label, n / seconds, "images/s", plain_s / seconds, peak, f"min cosine to plain {cosine:.4f}",
                        ok=cosine > 0.99))
    settings = ExtractSettings(weights="random", device=str(ctx.device), workers=0, crop=side, resize=side + 8)
    seconds, peak, report = ctx.run(lambda: extract(ctx.dataset(), ctx.tmp / "cache-extract", settings, on_event=lambda m: None))
    rows.append(row("extract", "featcache extract (decode to HDF5)", report.written / seconds, "images/s",
                    plain_s / seconds * report.written / n, peak, f"{report.written}/{n} rows written", ok=report.written == n))
    return rows


def flow_agreement(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """Mean end-point error between two flows and the share of quantised values within one level."""
    from featcache.representations.optical_flow import quantize_flow

    epe = float(np.sqrt(((ours - theirs) ** 2).sum(-1)).mean())
    within = float((np.abs(quantize_flow(ours).astype(np.int16) - quantize_flow(theirs)) <= 1).mean() * 100)
    return epe, within


def check_tvl1(ctx: Context) -> list[dict]:
    from featcache.representations.optical_flow import create_flow_method, to_gray
    from featcache.representations.tvl1_torch import tvl1_flow

    batches = ctx.sizes["batches"]
    clip = ctx.clip(max(batches) + 1)
    grey = to_gray(clip)
    first, second = grey[:-1], grey[1:]
    opencv = create_flow_method("tvl1-opencv")
    k = ctx.sizes["opencv_pairs"]
    cv_s, _, theirs = ctx.run(lambda: np.stack([opencv.calc(a, b, None) for a, b in zip(first[:k], second[:k])]))
    rows = [row("tvl1", f"OpenCV TV-L1, CPU ({k} pairs)", k / cv_s, "pairs/s", 1.0)]
    a = torch.from_numpy(first).to(ctx.device, torch.float32)
    b = torch.from_numpy(second).to(ctx.device, torch.float32)
    tvl1_flow(a[:1], b[:1])  # warm-up
    for batch in batches:
        seconds, peak, ours = ctx.run(lambda: tvl1_flow(a[:batch], b[:batch]))
        shared = min(k, batch)  # the pairs both computed
        epe, within = flow_agreement(ours[:shared].cpu().numpy(), theirs[:shared])
        rows.append(row("tvl1", f"torch TV-L1, batch {batch}", batch / seconds, "pairs/s", batch / seconds * cv_s / k, peak,
                        f"EPE to OpenCV {epe:.3f} px, {within:.1f}% within 1 level", ok=epe <= 0.1 and within >= 95))
    return rows


def check_preprocess(ctx: Context) -> list[dict]:
    from featcache.representations import dynamic_image, optical_flow, torch_preprocessing
    from featcache.representations.prepare_settings import PrepareSettings

    settings = PrepareSettings(size=ctx.sizes["flow_size"], flow_method="tvl1-torch", **ctx.sizes["prep_sets"])
    frames = ctx.clip(settings.frames_to_read())
    flows = min(settings.flow_frames, len(frames) - 1)

    def cpu_path():
        return (dynamic_image.dynamic_images(frames, settings.window, settings.stride, settings.count),
                optical_flow.flow_stacks(frames, "tvl1-torch", flows, settings.stack, settings.bound, device="cpu"))

    def device_path():
        uploaded = torch.from_numpy(frames).to(ctx.device)
        return (torch_preprocessing.dynamic_images(uploaded, settings.window, settings.stride, settings.count),
                torch_preprocessing.flow_stacks(uploaded, flows, settings.stack, settings.bound))

    cpu_s, _, (cpu_dyn, cpu_flow) = ctx.run(cpu_path)
    dev_s, peak, (dev_dyn, dev_flow) = ctx.run(device_path)
    dyn_gap = int(np.abs(cpu_dyn.astype(np.int16) - dev_dyn).max())
    flow_gap = int(np.abs(cpu_flow.astype(np.int16) - dev_flow).max())
    return [row("preprocess", "CPU path (numpy + OpenCV grey)", 1 / cpu_s, "videos/s", 1.0),
            row("preprocess", f"on {ctx.device.type} (torch ops)", 1 / dev_s, "videos/s", cpu_s / dev_s, peak,
                f"max diff: dynamic {dyn_gap}, flow {flow_gap} levels", ok=dyn_gap <= 1 and flow_gap <= 1)]


def check_mining(ctx: Context) -> list[dict]:
    from heads.miners.brute_force_semi_hard_miner import BruteForceSemiHardMiner
    from heads.miners.faiss_semi_hard_miner import FaissSemiHardMiner
    from heads.samplers.positive_sampler import PositiveSampler
    from mining import make_temporal_space

    features, labels, anchors_for, g = make_temporal_space(ctx.sizes["mining_rows"], ctx.sizes["mining_dim"], 40)
    batch_labels = labels[torch.randint(len(labels), (1024,), generator=g)]
    anchors = anchors_for(batch_labels)
    positives = PositiveSampler(labels)(batch_labels, g)
    brute = BruteForceSemiHardMiner(features, labels)
    brute_s, _, expected = ctx.run(lambda: brute.mine(anchors, batch_labels, positives).negatives)
    faiss_miner = FaissSemiHardMiner(features.to(ctx.device), labels.to(ctx.device), use_gpu="auto")
    faiss_miner.mine(anchors[:16].to(ctx.device), batch_labels[:16], positives[:16])  # warm-up
    seconds, peak, found = ctx.run(lambda: faiss_miner.mine(anchors.to(ctx.device), batch_labels, positives).negatives)
    same = bool(torch.equal(found.cpu(), expected.cpu()))
    where = "GPU index" if faiss_miner.on_gpu else "CPU index"
    return [row("mining", "brute force (CPU, float64)", 1024 / brute_s, "anchors/s", 1.0),
            row("mining", f"FAISS semi-hard ({where})", 1024 / seconds, "anchors/s", brute_s / seconds, peak,
                "same triplets" if same else "triplets differ", ok=same)]


def check_gan_grid(ctx: Context) -> list[dict]:
    from featcache.cache.synthetic import write_synthetic_caches
    from heads.training.methods import default_config
    from heads.training.head_data import HeadData
    from heads.training.train_head import train_group, train_head

    members, rows = ctx.sizes["members"], ctx.sizes["gan_rows"]
    cache = ctx.tmp / "cache-gan"
    write_synthetic_caches(cache, num_classes=8, dim=ctx.sizes["gan_dim"], temporal=("flow",),
                           still_rows={"train": rows, "val": rows // 8, "test": rows // 4},
                           temporal_rows={"train": rows * 2, "test": rows // 2})
    data = HeadData.load(cache, "flow")
    lrs = [1e-3, 5e-4, 2e-4, 1e-4, 2e-3, 3e-4, 7e-4, 1.5e-3]
    configs = [dict(default_config("gan", "flow"), **ctx.sizes["gan_sets"], lr=lrs[i % 8], **{"lambda": (1.0, 0.5)[i // 8 % 2]})
               for i in range(members)]
    grid_s, grid_peak, grouped = ctx.run(lambda: train_group("gan", data, configs, ctx.device))
    single_s, single_peak, singles = ctx.run(lambda: [train_head("gan", data, c, ctx.device) for c in configs])
    gap = max(abs(a.metrics["fused"]["val"] - b.metrics["fused"]["val"]) for a, b in zip(grouped, singles))
    return [row("gan grid", f"{members} members one by one", members / single_s, "members/s", 1.0, single_peak),
            row("gan grid", f"{members} members as one stacked model", members / grid_s, "members/s", single_s / grid_s,
                grid_peak, f"largest fused-val gap {gap:.2f} points", ok=gap <= 0.5)]


def check_torchrun(ctx: Context) -> list[dict]:
    from featcache.cache.feature_cache import FeatureCache

    root, side = ctx.dataset(), ctx.sizes["side"]
    base = ["-m", "featcache", "extract", str(root), "--modality", "still", "--device", str(ctx.device),
            "--crop", str(side), "--resize", str(side + 8), "--workers", "0", "--shard-size", "2"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    commands = {"one process": [sys.executable, *base, "--cache", str(ctx.tmp / "cache-1")],
                "torchrun, 2 ranks on one device": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                    "--nproc-per-node", "2", *base, "--cache", str(ctx.tmp / "cache-2")]}
    rows, features, first_s = [], {}, None
    for label, command in commands.items():
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        seconds = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(f"{label} exited {done.returncode}: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        cache = FeatureCache.open(next((ctx.tmp / f"cache-{1 if first_s is None else 2}").glob("still-*.h5")))
        train = cache.split("train")
        order = sorted(range(len(train.source)), key=train.source.__getitem__)  # rows by file: ranks may interleave
        features[label] = train.features[order]
        first_s = first_s or seconds
        rows.append(row("torchrun", label, ctx.sizes["images"] / seconds, "images/s", first_s / seconds))
    a, b = features.values()
    gap = float((a - b).abs().max())
    rows[-1].update(agreement=f"largest feature difference {gap:.2e} (wall time incl. start-up)", ok=gap <= 1e-3)
    return rows


CHECKS = {"extract": check_extract, "tvl1": check_tvl1, "preprocess": check_preprocess, "mining": check_mining,
          "gan": check_gan_grid, "torchrun": check_torchrun}
