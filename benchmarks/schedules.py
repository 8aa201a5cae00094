"""Are the heads' default schedules long enough? Each head with its default schedule against
a 10x longer one, on the default synthetic set (``featcache data synth`` defaults: 8 classes,
24/8/12 stills and 10/4 videos per class) with ImageNet features of the offline backbone.

Schedules are ``max(epochs, ceil(min_steps / batches per epoch))`` epochs per trained part
(heads/training/config.py); "10x" multiplies the ``epochs`` and ``min_steps`` keys of the head's own
parts by ten: ``classifier`` = the linear still model and the dim-reduction network (whose
temporal classifier every head uses), ``gan`` = the GAN, ``embed`` = the embedding and its
classifier (the GAN and embedding runs reuse the default dim-reduction network). Per head
and temporal modality it prints the derived test accuracy (for ``classifier``: the linear
still model and the dim-reduction network's temporal classifier) as mean +/- std over
``--seeds`` seeds with the 95% bootstrap CI over test images of the seed mean, for both
schedules. Stages are cached under ``--out``::

    python benchmarks/schedules.py --out runs/schedules [--seeds 3] [--device cuda]
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
from heads.training.config import DIMRED_DEFAULTS, STILL_DEFAULTS  # noqa: E402
from heads.training.methods import default_config, get_method, list_methods  # noqa: E402

TEMPORAL = ("flow", "dynamic")


def build_cache(out: Path, device: str) -> Path:
    from featcache.extraction.extract import ExtractSettings, extract
    from featcache.representations.prepare import PrepareSettings, prepare
    from featcache.data.synth.generate import SynthConfig, generate

    root, cache = out / "data", out / "cache"
    generate(root, SynthConfig(), workers=min(2, os.cpu_count() or 1), show_progress=False)
    prepare(root, cache, PrepareSettings(size=(96, 128), flow_method="farneback"))
    for modality in ("still", *TEMPORAL):
        extract(root, cache, ExtractSettings(modality=modality, crop=112, resize=128, device=device, workers=0))
    return cache


def longer(config: dict, method: str, factor: int) -> dict:
    """``config`` with the schedule of ``method``'s own parts ``factor`` times longer: the epochs and
    step minimums of its registry record's defaults (a method without own parts: the still model's
    and the dim-reduction network's)."""
    own = set(get_method(method).defaults) or {*STILL_DEFAULTS, *DIMRED_DEFAULTS}
    keys = {k for k in own if k.endswith(("epochs", "min_steps"))}
    return {k: v * factor if k in keys else v for k, v in config.items()}


def summary(metrics: dict, method: str) -> dict:
    """The accuracies the schedule is judged by: mean, std over seeds, CI of the seed mean."""
    def entry(stream: dict) -> dict:
        return {"mean": stream["test"], "std": stream.get("test_std"), "ci": stream.get("test_ci")}

    if metrics.get("derived") is None:  # a method without a derived stream (the classifier)
        return {"still": entry(metrics["still"]), "temporal classifier": entry(metrics["temporal_classifier"])}
    return {"derived": entry(metrics["derived"]), "fused": entry(metrics["fused"])}


def run(cache: Path, seeds: int, factor: int, device: str, temporals=TEMPORAL, methods=None,
        log: Path | None = None) -> list[dict]:
    """Default schedules of every head first, then the longer ones; each row is printed (and
    appended to ``log`` as a JSON line) as soon as it is measured."""
    from heads.training.head_data import HeadData
    from heads.training.seeds import train_seeds
    from heads.training.dim_reduction import DimRedStore

    store = DimRedStore([cache / "heads"], [cache / "heads"])
    rows = []
    runs = [(label, scale, temporal, method) for label, scale in (("default", 1), (f"{factor}x", factor))
            for temporal in temporals for method in (methods or list_methods())]
    for label, scale, temporal, method in runs:
        data = HeadData.load(cache, temporal)
        config = longer(default_config(method, temporal), method, scale)
        started = time.perf_counter()
        result = train_seeds(method, data, config, seeds, device=device,
                             dimred_store=None if method == "classifier" else store)
        seconds = time.perf_counter() - started
        for name, value in summary(result.metrics, method).items():
            row = {"temporal": temporal, "method": method, "schedule": label, "stream": name,
                   "seconds": round(seconds, 1), **value}
            rows.append(row)
            console.print(json.dumps(row))
            if log is not None:
                with log.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
    return rows


def print_rows(rows: list[dict], seeds: int) -> None:
    from rich.table import Table

    table = Table(title=f"derived test accuracy (%), mean ± std over {seeds} seeds [95% CI over images]")
    for column in ("temporal", "head", "stream", "default schedule", "10x schedule", "difference"):
        table.add_column(column)
    keyed = {(r["temporal"], r["method"], r["stream"], r["schedule"]): r for r in rows}
    for (temporal, method, stream, schedule), r in keyed.items():
        if schedule != "default":
            continue
        long = next((v for (t, m, s, sch), v in keyed.items() if (t, m, s) == (temporal, method, stream) and sch != "default"),
                    None)
        if long is None:
            continue
        table.add_row(temporal, method, stream, cell(r), cell(long), f"{long['mean'] - r['mean']:+.1f}")
    console.print(table)


def cell(r: dict) -> str:
    std = "" if r["std"] is None else f" ± {r['std']:.1f}"
    ci = "" if not r["ci"] else f" [{r['ci'][0]:.1f}, {r['ci'][1]:.1f}]"
    return f"{r['mean']:.1f}{std}{ci}"


def main(argv=None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/schedules"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--temporal", nargs="+", choices=TEMPORAL, default=list(TEMPORAL))
    parser.add_argument("--methods", nargs="+", choices=list_methods(), default=list_methods())
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cache = build_cache(args.out, args.device)
    rows = run(cache, args.seeds, args.factor, args.device, args.temporal, args.methods, args.out / "schedules.jsonl")
    (args.out / "schedules.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print_rows(rows, args.seeds)


if __name__ == "__main__":
    main()
