"""Head schedules on small sets: today's rule against main 1377fda's step floors.

    python benchmarks/small_sets.py [--tiny 6 30] [--cache CACHE_DIR] [--seeds 3] [--threads 1]

1. Tiny synthetic caches (4 classes, 1280-d, ``--tiny`` train stills, 4 val and 8 test stills,
   66 temporal train rows): seconds of each head (``train_head`` as ``featcache train-head``
   runs it) with the old schedule (each part ``max(epochs, ceil(min_steps / batches))`` epochs,
   the old floors: 810 still, 656 dim-reduction, 540 GAN, 1311 embedding and classifier steps)
   and with today's (``heads.training.config.epoch_passes``: the floor scales with the data).
2. With ``--cache`` (e.g. the default synthetic set: ``featcache data synth``, ``prepare``,
   ``extract`` still and flow): each head over ``--seeds`` seeds with both schedules, test
   accuracy of the seed mean with its 95% CI (seeds x images), and the seconds.
Old and new run in the same process, one after the other: on a shared machine compare the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featcache.cache.synthetic import write_synthetic_caches  # noqa: E402
from heads.training.methods import default_config, list_methods  # noqa: E402
from heads.training.dim_reduction import DimRedStore  # noqa: E402
from heads.training.head_data import HeadData  # noqa: E402
from heads.training.seeds import train_seeds  # noqa: E402
from heads_profile import OLD_NAME, old_config  # noqa: E402



def cell(entry: dict | None) -> str:
    if not entry or entry.get("test") is None:
        return "-"
    ci = entry.get("test_ci")
    return f"{entry['test']:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def compare(data: HeadData, seeds: int, work: Path, temporal: str) -> None:
    """Each head, old schedule then new, on ``data``: seconds and test accuracies."""
    for method in list_methods():
        seconds = {}
        for label in ("old", "new"):
            store = DimRedStore([work / label], [work / label])
            config = old_config(method, data) if label == "old" else default_config(method, temporal)
            start = time.perf_counter()
            result = train_seeds(method, data, config, seeds, device="cpu", dimred_store=store)
            seconds[label] = time.perf_counter() - start
            m = result.metrics
            print(f"  {method:<10} {label}  {seconds[label]:6.1f} s  still {cell(m.get('still'))}  "
                  f"derived {cell(m.get('derived'))}  fused {cell(m.get('fused'))}  "
                  f"temporal-clf {cell(m.get('temporal_classifier'))}", flush=True)
        print(f"  {method:<10} new/old time {seconds['new'] / seconds['old']:.2f}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", type=int, nargs="*", default=[6, 30], help="train stills of each tiny set")
    parser.add_argument("--cache", type=Path, default=None, help="a cache with still and flow features")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"old = {OLD_NAME}; new = today's defaults; {args.threads} thread(s)")
    with tempfile.TemporaryDirectory(prefix="featcache-small-sets-") as tmp:
        tmp = Path(tmp)
        for rows in args.tiny:
            cache = tmp / f"tiny-{rows}"
            write_synthetic_caches(cache, num_classes=4, dim=1280, temporal=("flow",),
                                   still_rows={"train": rows, "val": 4, "test": 8}, temporal_rows={"train": 66, "test": 24})
            print(f"\ntiny set: {rows} train stills, 4 classes, 66 temporal train rows (1 seed)")
            compare(HeadData.load(cache, "flow"), 1, tmp / f"heads-{rows}", "flow")
        if args.cache is not None:
            data = HeadData.load(args.cache, "flow")
            print(f"\n{args.cache}: {len(data.still['train'].labels)} train stills, {data.num_classes} classes, "
                  f"{len(data.temporal['train'].labels)} temporal train rows; {args.seeds} seeds, "
                  f"test % of the seed mean [95% CI over seeds x images]")
            compare(data, args.seeds, tmp / "heads-cache", "flow")


if __name__ == "__main__":
    main()
