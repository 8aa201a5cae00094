"""Positive and negative controls: does the pipeline find a planted temporal effect, and
report none where there is none?

The demo's pipeline (synth -> prepare -> fine-tune -> extract -> still baseline ->
temporal classifier, GAN, embedding heads, teacher-student networks (TSN) -> oracle), run on

- positive control: ``--still-motion-cue 0`` (stills never show the direction of motion,
  videos always do: the oracle gain must be large and its CI exclude zero);
- negative control: the positive control's stills, still model and temporal features, with
  the temporal data shuffled across classes (each video's rows get the label of another
  video, a seeded permutation within its split that keeps the class counts), so the
  temporal data carry nothing about the label: the oracle gain and every method's fused gain
  must have CIs that include zero. Only the heads, TSN (on ``temporal.h5`` shuffled the same
  way, with the positive control's fine-tuned models) and the oracle run again (minutes).
  ``--negative shuffled-videos`` instead renders a whole new set with ``--shuffle-videos``
  (each video shows a random class's action) and runs the whole pipeline on it (an hour on
  2 CPU cores);

each from ``--data-seeds`` data seeds. Methods: GAN, embedding and TSN, each with the paper's
fusion (plain softmax average) and the calibrated one (each stream temperature-scaled on val),
against the oracle fused the same way (``heads/experiments/oracle.py``: the paper's and the calibrated oracle). "direction in pair" is, of the test stills a stream
puts in the right pair of classes, the share it also gives the right direction (the still
row for the oracle, the derived stream for a head): 50% means none of the planted direction
was recovered. Per method: fused gain over the still baseline on
the test stills with its 95% paired-bootstrap CI and p-value (heads/evaluation/statistics.py), the
p-value after Holm's correction over the table's rows (one table, one family of tests), the
oracle's gain and CI, and the share of the oracle recovered. Settings are the demo's; nothing is picked on
the test split. Every stage is cached under ``--out`` (a rerun resumes)::

    python benchmarks/controls.py --out runs/controls            # CPU; --device cuda is honoured by fine-tuning
    python benchmarks/controls.py --out runs/controls --quick    # tiny sets, minutes (smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featcache.utils.progress import console  # noqa: E402
from heads.evaluation.statistics import holm_adjust  # noqa: E402
from heads.experiments.report.runs import t2sil_methods  # noqa: E402
from heads.experiments.demo import (FULL, QUICK, TEMPORAL, baselines, extract_features, finetune_models,  # noqa: E402
                                    oracle, train_heads, train_tsn)
from heads.training.methods import list_methods  # noqa: E402

SYNTH = {"positive": dict(still_motion_cue=0.0, shuffle_videos=False),
         "shuffled-videos": dict(still_motion_cue=0.0, shuffle_videos=True)}


def run_control(out: Path, control: str, data_seed: int, classes: int, quick: bool, seeds: int) -> Path:
    """One pipeline run; returns its runs folder."""
    from featcache.backbones import default_backbone
    from featcache.representations.prepare import prepare
    from featcache.data.synth.generate import SynthConfig, generate

    budget = QUICK if quick else FULL
    base = out / f"{control}-seed{data_seed}"
    root, cache, runs = base / "data", base / "cache", base / "runs"
    backbone = default_backbone()
    config = SynthConfig(classes=classes, seed=data_seed, stills=budget.stills, videos=budget.videos,
                         **SYNTH[control])
    started = time.perf_counter()
    generate(root, config, workers=min(2, os.cpu_count() or 1), show_progress=False)
    prepare(root, cache, budget.prepare_settings())
    share_still_model(out / f"positive-seed{data_seed}" / "cache", cache, backbone)
    finetune_models(root, cache, runs, backbone, budget, ("still", *TEMPORAL))
    extract_features(root, cache, backbone, budget, ("still", *TEMPORAL))
    baselines(root, cache, runs, backbone, "main", False, seeds=seeds)
    train_heads(cache, runs, list_methods(), "main", seeds=seeds)
    train_tsn(root, cache, runs, backbone, budget, "main")
    oracle(cache, runs, budget)
    console.print(f"[dim]{control} control, data seed {data_seed}: {time.perf_counter() - started:.0f} s[/]")
    return runs


def shuffled_labels_control(out: Path, data_seed: int, seeds: int, quick: bool) -> Path:
    """The negative control made from the positive one: temporal labels shuffled across classes."""
    from featcache.backbones import default_backbone
    from featcache.cache.schema import feature_cache_path

    budget = QUICK if quick else FULL
    backbone = default_backbone()
    source, base = out / f"positive-seed{data_seed}" / "cache", out / f"shuffled-labels-seed{data_seed}"
    cache, runs = base / "cache", base / "runs"
    cache.mkdir(parents=True, exist_ok=True)
    still = feature_cache_path(cache, "still", backbone)
    if not still.exists():
        os.symlink(feature_cache_path(source, "still", backbone).resolve(), still)
    for temporal in TEMPORAL:
        shuffle_temporal_labels(feature_cache_path(source, temporal, backbone), feature_cache_path(cache, temporal, backbone), data_seed)
    # TSN pairs each still with a co-class video by temporal.h5's labels: shuffled the same way;
    # the fine-tuned teacher and student are the positive control's.
    from featcache.cache.schema import temporal_cache_path
    from heads.finetune.finetune import model_path

    shuffle_temporal_labels(temporal_cache_path(source), temporal_cache_path(cache), data_seed, groups=TEMPORAL)
    for modality in ("still", *TEMPORAL):
        link = model_path(cache, modality, backbone)
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(model_path(source, modality, backbone).resolve(), link)
    baselines(None, cache, runs, backbone, "main", False, seeds=seeds)
    train_heads(cache, runs, list_methods(), "main", seeds=seeds)
    train_tsn(out / f"positive-seed{data_seed}" / "data", cache, runs, backbone, budget, "main")
    oracle(cache, runs, budget)
    return runs


def shuffle_temporal_labels(source: Path, target: Path, seed: int, groups=("",)) -> None:
    """Copy a temporal feature cache (or, with ``groups=("flow", "dynamic")``, ``temporal.h5``)
    with each video's label replaced by another video's label (a seeded permutation of the
    videos within each split, so class counts stay the same; the same permutation in every
    group and file, as it depends on the seed and the video names only)."""
    import shutil

    import h5py

    from featcache.cache.schema import write_checksums

    if target.exists():
        return
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    with h5py.File(tmp, "r+") as f:
        for group in groups:
            g = f[group] if group else f
            g["labels"][...] = shuffled_labels(g["labels"][:], g["split"][:], g["source"][:], seed)
            write_checksums(g["labels"])  # relabelled in place: its block checksums follow
    os.replace(tmp, target)


def shuffled_labels(labels, split, sources, seed: int):
    """Labels with each video's label taken from another video of the same split (seeded)."""
    import numpy as np

    rng = np.random.default_rng([seed, 1729])
    videos = np.array([s.decode() if isinstance(s, bytes) else s for s in sources], dtype=object)
    shuffled = labels.copy()
    for code in np.unique(split):
        names = sorted(set(videos[split == code]))
        label_of = {v: int(labels[(videos == v) & (split == code)][0]) for v in names}
        permuted = rng.permutation(len(names))
        new = {v: label_of[names[j]] for v, j in zip(names, permuted)}
        rows = np.flatnonzero(split == code)
        shuffled[rows] = [new[videos[r]] for r in rows]
    return shuffled


def share_still_model(source: Path, cache: Path, backbone: str) -> None:
    """The controls of one data seed have byte-identical stills: fine-tune the still model once."""
    from heads.finetune.finetune import model_path

    shared, own = model_path(source, "still", backbone), model_path(cache, "still", backbone)
    if source.resolve() != cache.resolve() and shared.is_file() and not own.exists():
        own.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(shared.resolve(), own)


def direction_in_pair(confusion) -> float | None:
    """Of the test stills put in the right pair of classes, the share also given the right
    direction (50% = none of the direction recovered). Classes 2k and 2k+1 form a pair."""
    import numpy as np

    if confusion is None:
        return None
    c = np.asarray(confusion, dtype=np.float64)
    in_pair = sum(c[i, i - i % 2 : i - i % 2 + 2].sum() for i in range(len(c)))
    return float(100 * np.trace(c) / in_pair) if in_pair else None


def read(path: Path) -> dict:
    return json.loads((path / "metrics.json").read_text())


FUSIONS = (("fused", ""), ("fused_calibrated", " (calibrated)"))


def control_rows(runs: Path) -> list[dict]:
    """Per temporal modality and fusion (the paper's plain average, then the calibrated one): the
    oracle and each method's fused gain, CI, and the share of the oracle fused the same way."""
    rows = []
    for temporal in TEMPORAL:
        orc = read(runs / "oracle" / temporal)
        temporal_acc = orc.get("temporal_classifier", {}).get("test")
        for stream, suffix in FUSIONS:
            o_gain = orc["gain"].get(stream)
            if o_gain is None:  # an oracle run from before the calibrated oracle
                continue
            rows.append({"temporal": temporal, "method": "oracle" + suffix, "gain": o_gain["test"],
                         "ci": o_gain["test_ci"], "p": o_gain["p_value"], "share": None, "temporal_test": temporal_acc,
                         "still_test": orc["still"]["test"],
                         "direction": direction_in_pair(orc["still"].get("confusion"))})
            # The classifier run has no derived stream: its temporal classifier is the oracle's.
            for method, _ in t2sil_methods():
                if not (runs / f"{method}-{temporal}" / "metrics.json").is_file():
                    continue
                m = read(runs / f"{method}-{temporal}")
                gain = m["gain"][stream]
                share = gain["test"] / o_gain["test"] if o_gain["test_ci"][0] > 0 else None
                rows.append({"temporal": temporal, "method": method + suffix, "gain": gain["test"],
                             "ci": gain["test_ci"], "p": gain["p_value"], "share": share,
                             "derived_test": m["derived"]["test"], "still_test": m["still"]["test"],
                             "direction": direction_in_pair(m["derived"].get("confusion"))})
    # One table is one family of tests: a negative control of 16 rows shows about one raw p < 0.05
    # by chance alone; Holm's adjusted p says whether any gain survives the family.
    for row, adjusted in zip(rows, holm_adjust([r["p"] for r in rows])):
        row["p_holm"] = adjusted
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in ("temporal", "method", "still test", "derived / temporal test", "fused gain (pp)", "95% CI", "p",
                   "p (Holm)", "CI excludes 0", "share of oracle", "direction in pair"):
        table.add_column(column, justify="left" if column in ("temporal", "method") else "right")
    for r in rows:
        derived = r.get("derived_test", r.get("temporal_test"))
        excludes = r["ci"][0] > 0 or r["ci"][1] < 0
        table.add_row(r["temporal"], r["method"], f"{r['still_test']:.1f}",
                      "-" if derived is None else f"{derived:.1f}", f"{r['gain']:+.1f}",
                      f"[{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}]", f"{r['p']:.3f}", f"{r['p_holm']:.3f}",
                      "yes" if excludes else "no",
                      "-" if r["share"] is None else f"{100 * r['share']:.0f}%",
                      "-" if r.get("direction") is None else f"{r['direction']:.0f}%")
    console.print(table)


def markdown(title: str, rows: list[dict]) -> str:
    lines = [f"### {title}", "", "| temporal | method | still test | derived/temporal test | fused gain | 95% CI | "
             "p | p (Holm) | share of oracle | direction in pair |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        derived = r.get("derived_test", r.get("temporal_test"))
        derived_text = "-" if derived is None else f"{derived:.1f}"
        share_text = "-" if r["share"] is None else f"{100 * r['share']:.0f}%"
        direction = "-" if r.get("direction") is None else f"{r['direction']:.0f}%"
        lines.append(f"| {r['temporal']} | {r['method']} | {r['still_test']:.1f} | {derived_text} | "
                     f"{r['gain']:+.1f} | [{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}] | {r['p']:.3f} | {r['p_holm']:.3f} | "
                     f"{share_text} | {direction} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/controls"))
    # Not 0: the demo's data seed, whose own run once informed the demo's settings (its temporal
    # epochs); a control on it would test settings partly chosen on its test data.
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--controls", nargs="+", choices=["positive", "negative"], default=["positive", "negative"])
    parser.add_argument("--negative", choices=["shuffled-labels", "shuffled-videos"], default="shuffled-labels")
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3, help="head seeds per run (stacked members)")
    parser.add_argument("--quick", action="store_true", help="the demo's quick budget: a smoke run")
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sections = []
    for control in args.controls:
        for data_seed in args.data_seeds:
            if control == "positive" or args.negative == "shuffled-videos":
                name = "positive" if control == "positive" else args.negative
                runs = run_control(args.out, name, data_seed, args.classes, args.quick, args.seeds)
            else:  # made from the positive control of the same data seed
                run_control(args.out, "positive", data_seed, args.classes, args.quick, args.seeds)
                runs = shuffled_labels_control(args.out, data_seed, args.seeds, args.quick)
            title = f"{control} control ({'cue 0' if control == 'positive' else args.negative}), data seed {data_seed}"
            rows = control_rows(runs)
            print_table(title, rows)
            sections.append(markdown(title, rows))
    report = args.out / "controls.md"
    report.write_text("## Positive and negative controls\n\n" + "\n".join(sections), encoding="utf-8")
    console.print(f"report section: {report}")


if __name__ == "__main__":
    main()
