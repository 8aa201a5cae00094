"""Can the methods transfer anything? A synthetic setting where transfer must help, with controls.

Per data seed, ``featcache data synth`` renders a set whose stills carry a subtle direction cue
(``--still-motion-cue``, default 1: every still's blur is a trail that fades into the past, six times
the default exposure, ``--still-exposure 6``), few labelled stills a class and many unlabelled stills, each of one train video's
own figure (``--unlabelled-stills``, linked in ``still-videos.csv``). The still model is fine-tuned on
the labelled stills; the dynamic-image teacher on the videos. Arms (``--arms``):

- ``method``: the method as designed. TSN: instance pairing and the unlabelled stills, the teacher's
  output on each still's own video as its target; GAN and embedding: the paper's heads (co-class
  pairing: the labelled stills come from no video, and the heads see no unlabelled stills);
- ``no-teacher`` (TSN): the same student schedule, one-hot targets on the labelled stills only;
- ``cue0``: the same, on a set rendered with cue 0 (nothing in a still to transfer to: gain ~0);
- ``shuffled-teacher``: a teacher (TSN) or temporal features (heads) from videos whose labels were
  shuffled across classes (``benchmarks/controls.py``): gain ~0;
- ``true-labels`` (TSN): the unlabelled stills with their true labels, one-hot (the ceiling).

Per arm and method: the derived and fused gain over the still baseline on the test stills (paired
bootstrap, ``heads.evaluation.statistics``), Holm's adjusted p over the whole table and the CI at the
family's Bonferroni level (1 - 0.05 / rows: holds for every row at once), and "direction right": of the
test stills the fused stream puts in the right pair of classes, the share it also gives the right
direction (50%: none recovered). Nothing is selected on test (TSN's epoch: fused val).

    python benchmarks/transfer.py --data-seeds 25 26 --json transfer.json
    python benchmarks/transfer.py --quick --out /tmp/transfer                # smoke run (a test runs it)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featcache.utils.progress import console  # noqa: E402
from heads.evaluation.statistics import correct, holm_adjust, paired_comparison  # noqa: E402
from heads.experiments.report.runs import t2sil_methods  # noqa: E402

ARMS = ("method", "no-teacher", "cue0", "shuffled-teacher", "true-labels")
METHODS = tuple(method for method, _ in t2sil_methods())  # the transfer head methods, then TSN
TSN_ARMS = {"method": ("cached", "instance"), "no-teacher": ("labels", "co-class"), "cue0": ("cached", "instance"),
            "shuffled-teacher": ("cached", "instance"), "true-labels": ("labels", "instance")}
TEMPORAL = "dynamic"


@dataclass(frozen=True)
class Size:
    classes: int
    stills: dict
    videos: dict
    unlabelled: int
    crop: int
    resize: int
    epochs: dict = field(default_factory=dict)  # still, dynamic, tsn
    batch_size: int = 8  # fine-tuning and TSN: a few dozen stills need small batches to take steps
    still_size: tuple = (128, 128)
    still_exposure: float = 1.0  # data synth --still-exposure: the cue's strength
    tsn: dict = field(default_factory=dict)  # TSN settings beside the defaults, the same in every arm
    heads: dict = field(default_factory=dict)  # GAN / embedding settings beside the defaults


# Tuned on data seed 5 (and the protocol checked on seed 23; the runs are in the closing notes of #21). 60
# labelled stills a class, enough for the still model to learn most of the pose, against 288 unlabelled ones
# (12 from each of 24 train videos a class: 24 gave no more on seed 5 at twice the time); 112-px crops; a 6x
# exposure (a trail long enough to see, one-sided only in its fade); a teacher of 24 videos a class (val about
# 90%); T = 10 (the paper's; val preferred it to 2 on seed 5); 30 val stills a class to choose TSN's epoch
# (epoch 0, the still model, among them) and 400 test stills a class, to see a gain of a few points.
FULL = Size(classes=4, stills={"train": 60, "val": 30, "test": 400}, videos={"train": 24, "test": 3}, unlabelled=12,
            crop=112, resize=128, epochs={"still": 12, "dynamic": 15, "tsn": 12}, batch_size=16,
            still_size=(128, 128), still_exposure=6.0)
QUICK = Size(classes=2, stills={"train": 2, "val": 2, "test": 3}, videos={"train": 2, "test": 1}, unlabelled=2,
             crop=64, resize=72, epochs={"still": 1, "dynamic": 1, "tsn": 1}, still_size=(72, 72),
             heads={"epochs": 1, "min_steps": 1, "dimred_epochs": 1, "dimred_min_steps": 1, "classifier_epochs": 1,
                    "classifier_min_steps": 1, "still_epochs": 1, "still_min_steps": 1})


def shuffle_temporal_labels(source: Path, target: Path, seed: int, groups=("",)) -> None:
    """``benchmarks/controls.py``'s shuffle of video labels across classes (loaded by path: the
    benchmarks folder is no package, and its heads.py would shadow the heads package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("controls", Path(__file__).resolve().parent / "controls.py")
    controls = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(controls)
    controls.shuffle_temporal_labels(source, target, seed, groups)


# -- the data and the models -------------------------------------------------------
def build_set(base: Path, data_seed: int, cue: float, size: Size, backbone: str) -> tuple[Path, Path]:
    """Render, prepare and fine-tune (still model, dynamic teacher) one set; resumable."""
    from featcache.data.synth.generate import SynthConfig, generate
    from featcache.representations.prepare import PrepareSettings, prepare
    from heads.finetune.finetune import model_path

    root, cache = base / "data", base / "cache"
    config = SynthConfig(classes=size.classes, seed=data_seed, stills=size.stills, videos=size.videos,
                         still_size=size.still_size, still_motion_cue=cue, unlabelled_stills=size.unlabelled,
                         still_exposure=size.still_exposure)
    generate(root, config, workers=min(2, os.cpu_count() or 1), show_progress=False)
    prepare(root, cache, PrepareSettings(size=(96, 128), kinds=(TEMPORAL,), count=4))
    for modality in ("still", TEMPORAL):
        if not model_path(cache, modality, backbone).is_file():
            fine_tune(root, cache, modality, size, backbone, base / "runs" / f"finetune-{modality}")
    return root, cache


def fine_tune(root: Path, cache: Path, modality: str, size: Size, backbone: str, run_dir: Path) -> None:
    from heads.finetune.defaults import FinetuneSettings
    from heads.finetune.finetune import finetune_model

    settings = FinetuneSettings(modality=modality, backbone=backbone, epochs=size.epochs[modality],
                                batch_size=size.batch_size, crop=size.crop, resize=size.resize, device="cpu")
    finetune_model(root, settings, cache_dir=cache, run_dir=run_dir)


def shuffled_teacher(base: Path, root: Path, cache: Path, data_seed: int, size: Size, backbone: str) -> tuple[Path, Path]:
    """A teacher fine-tuned on the videos with labels shuffled across classes, and that cache."""
    from featcache.cache.schema import temporal_cache_path
    from heads.finetune.finetune import model_path

    shuffled = base / "cache-shuffled"
    shuffled.mkdir(parents=True, exist_ok=True)
    shuffle_temporal_labels(temporal_cache_path(cache), temporal_cache_path(shuffled), data_seed, groups=(TEMPORAL,))
    teacher = model_path(shuffled, TEMPORAL, backbone)
    if not teacher.is_file():
        fine_tune(root, shuffled, TEMPORAL, size, backbone, base / "runs" / "finetune-shuffled")
    return teacher, shuffled


def predict_stills(path: Path, root: Path, size: Size) -> np.ndarray:
    """Softmax ``[N, C]`` of a still model checkpoint on the test stills (centre crops)."""
    import torch
    from torch.utils.data import DataLoader

    from featcache.backbones.preprocessing import build_transform
    from featcache.data.dataset import FolderDataset
    from heads.finetune.datasets import StillImages
    from heads.finetune.tsn import load_model

    dataset = FolderDataset(root)
    model = load_model(path, "still", dataset.classes, "still model").eval()
    stills = StillImages(dataset, "test", build_transform("still", train=False, crop=size.crop, resize=size.resize))
    with torch.no_grad():
        logits = [model(x) for x, _ in DataLoader(stills, batch_size=32)]
    return torch.cat(logits).softmax(-1).numpy()


# -- the arms ------------------------------------------------------------------------
def tsn_arm(arm: str, root: Path, cache: Path, runs: Path, size: Size, backbone: str, teacher: Path | None) -> dict:
    """One TSN run; the derived and fused test softmax."""
    from heads.finetune.defaults import TSNSettings
    from heads.finetune.tsn import train_tsn

    targets, pairing = TSN_ARMS[arm]
    run_dir = runs / f"tsn-{arm}"
    settings = TSNSettings(temporal=TEMPORAL, backbone=backbone, teacher=None if teacher is None else str(teacher),
                           targets=targets, pairing=pairing, epochs=size.epochs["tsn"], batch_size=size.batch_size,
                           crop=size.crop, resize=size.resize, device="cpu", **size.tsn)
    train_tsn(root, settings, cache_dir=cache, out=run_dir)
    return {"derived": predict_stills(run_dir / "model.pt", root, size)}


def extract(root: Path, cache: Path, size: Size, backbone: str) -> None:
    """The set's still and dynamic-image features (once), for the GAN and embedding heads."""
    from heads.experiments.demo import DemoBudget, extract_features

    budget = DemoBudget(stills=size.stills, videos=size.videos, crop=size.crop, resize=size.resize,
                        finetune_epochs=size.epochs, tsn_epochs=size.epochs["tsn"], oracle_runs=0, flow="farneback")
    extract_features(root, cache, backbone, budget, ("still", TEMPORAL), device="cpu")


def heads_arm(method: str, cache: Path, size: Size, backbone: str) -> dict:
    """One GAN / embedding head (the paper's, co-class) on a cache's features; the test softmax."""
    from heads.api import fit_head
    from heads.training.methods import default_config

    config = {k: v for k, v in size.heads.items() if k in default_config(method, TEMPORAL)}
    run = fit_head(cache, method, TEMPORAL, config=config, device="cpu", backbone=backbone)
    return {"derived": run.predictions["derived"]["test"].numpy(), "still": run.predictions["still"]["test"].numpy()}


def direction_right(probs: np.ndarray, labels: np.ndarray) -> float | None:
    """Of the stills put in the right pair of classes (2k, 2k+1), the share also given the right class."""
    predicted = probs.argmax(1)
    in_pair = predicted // 2 == labels // 2
    return float(100 * (predicted == labels)[in_pair].mean()) if in_pair.any() else None


def heads_shuffled_cache(base: Path, cache: Path, data_seed: int, backbone: str) -> Path:
    """The set's still features beside its temporal features with video labels shuffled across classes."""
    from featcache.cache.schema import feature_cache_path

    shuffled = base / "cache-shuffled-features"
    shuffled.mkdir(parents=True, exist_ok=True)
    still = feature_cache_path(shuffled, "still", backbone)
    if not still.exists():
        os.symlink(feature_cache_path(cache, "still", backbone).resolve(), still)
    shuffle_temporal_labels(feature_cache_path(cache, TEMPORAL, backbone), feature_cache_path(shuffled, TEMPORAL, backbone),
                            data_seed)
    return shuffled


def run_seed(out: Path, data_seed: int, cue: float, size: Size, arms, methods, backbone: str) -> list[dict]:
    """Every (arm, method) of one data seed: ``{arm, method, still, derived, labels, seconds}``."""
    from featcache.data.dataset import FolderDataset
    from heads.finetune.finetune import model_path

    base = out / f"seed{data_seed}"
    runs, results = base / "runs", []
    sets = {"cue": build_set(base / "cue", data_seed, cue, size, backbone)}
    if "cue0" in arms:
        sets["cue0"] = build_set(base / "cue0", data_seed, 0.0, size, backbone)
    baselines: dict[str, tuple] = {}
    for method in methods:  # TSN first: the heads need features extracted
        for arm in arms:
            if method != "tsn" and arm not in ("method", "cue0", "shuffled-teacher"):
                continue  # the heads see no unlabelled stills and always have a temporal stream
            name = "cue0" if arm == "cue0" else "cue"
            root, cache = sets[name]
            if name not in baselines:
                baselines[name] = (np.array([s.label for s in FolderDataset(root).stills("test")]),
                                   predict_stills(model_path(cache, "still", backbone), root, size))
            labels, still = baselines[name]
            saved = base / "results" / f"{arm}-{method}.npz"
            if saved.is_file():  # finished before: a rerun (or a table over several seeds) reads it
                with np.load(saved) as f:
                    results.append({"arm": arm, "method": method, "data_seed": data_seed, **{k: f[k] for k in f.files}})
                continue
            started = time.perf_counter()
            if method == "tsn":
                teacher = shuffled_teacher(base, root, cache, data_seed, size, backbone)[0] if arm == "shuffled-teacher" else None
                streams = {"still": still, **tsn_arm(arm, root, cache, runs / arm, size, backbone, teacher)}
            else:
                extract(root, cache, size, backbone)
                features = heads_shuffled_cache(base, cache, data_seed, backbone) if arm == "shuffled-teacher" else cache
                streams = heads_arm(method, features, size, backbone)
            results.append({"arm": arm, "method": method, "data_seed": data_seed, "labels": labels, **streams,
                            "seconds": time.perf_counter() - started})
            saved.parent.mkdir(parents=True, exist_ok=True)
            np.savez(saved, **{k: results[-1][k] for k in ("labels", "still", "derived", "seconds")})
            console.print(f"[dim]seed {data_seed} {arm} {method}: {results[-1]['seconds']:.0f} s[/]")
    return results


def records(results: list[dict], alpha: float = 0.05) -> list[dict]:
    """The table: fused and derived gains, Holm over the table's fused p-values, family-level CIs."""
    family = len(results)
    rows = []
    for r in results:
        fused = (r["still"] + r["derived"]) / 2  # heads.evaluation.metrics.fuse: the mean of the softmaxes
        base = correct(r["still"], r["labels"])
        gains = {name: paired_comparison(correct(p, r["labels"]), base) for name, p in (("fused", fused), ("derived", r["derived"]))}
        wide = paired_comparison(correct(fused, r["labels"]), base, confidence=1 - alpha / family)
        rows.append({"arm": r["arm"], "method": r["method"], "temporal": TEMPORAL, "data_seed": r["data_seed"],
                     "gain": round(gains["fused"].difference, 2), "ci": [round(v, 2) for v in gains["fused"].ci],
                     "ci_family": [round(v, 2) for v in wide.ci], "p": gains["fused"].p_value,
                     "derived_gain": round(gains["derived"].difference, 2),
                     "derived_ci": [round(v, 2) for v in gains["derived"].ci],
                     "still_test": round(100 * float(base.mean()), 1),
                     "direction_right": direction_right(fused, r["labels"]),
                     "test_stills": int(len(r["labels"])), "seconds": round(float(r["seconds"]), 1)})
    for row, adjusted in zip(rows, holm_adjust([row["p"] for row in rows])):
        row["p_holm"] = round(adjusted, 4)
    return rows


def print_table(rows: list[dict]) -> None:
    from rich.table import Table

    table = Table(title=f"transfer ({TEMPORAL}): gain over the still baseline, test stills (points)")
    for column in ("seed", "arm", "method", "still", "derived gain [95% CI]", "fused gain [95% CI]",
                   "family CI", "p (Holm)", "direction right", "s"):
        table.add_column(column, justify="left" if column in ("arm", "method") else "right")
    for r in rows:
        direction = "-" if r["direction_right"] is None else f"{r['direction_right']:.0f}%"
        table.add_row(str(r["data_seed"]), r["arm"], r["method"], f"{r['still_test']:.1f}",
                      f"{r['derived_gain']:+.1f} [{r['derived_ci'][0]:+.1f}, {r['derived_ci'][1]:+.1f}]",
                      f"{r['gain']:+.1f} [{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}]",
                      f"[{r['ci_family'][0]:+.1f}, {r['ci_family'][1]:+.1f}]", f"{r['p_holm']:.3f}", direction,
                      f"{r['seconds']:.0f}")
    console.print(table)


def main(argv=None) -> list[dict]:
    import torch

    from featcache.backbones import default_backbone

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/transfer"))
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[25, 26])
    parser.add_argument("--cue", type=float, default=1.0, help="--still-motion-cue of the transfer set")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["tsn", *(m for m in METHODS if m != "tsn")])
    parser.add_argument("--json", type=Path, help="write the records here")
    parser.add_argument("--quick", action="store_true", help="a tiny set, one epoch a stage: a smoke run")
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    size, backbone, started = QUICK if args.quick else FULL, default_backbone(), time.perf_counter()
    results = [r for seed in args.data_seeds
               for r in run_seed(args.out, seed, args.cue, size, args.arms, args.methods, backbone)]
    rows = records(results)
    print_table(rows)
    console.print(f"total {time.perf_counter() - started:.0f} s (backbone {backbone}, {args.threads} threads)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
