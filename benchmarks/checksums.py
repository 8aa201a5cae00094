"""What the Fletcher-32 checksums cost: extract and head loading with and without, side by side.

    python benchmarks/checksums.py [--stills 240] [--rows 20000] [--dim 1280] [--repeats 5]

One run, the two settings interleaved (off, on, on, off, ...) so machine load hits both alike:
``featcache extract`` of ``--stills`` small random stills (efficientnet-lite0, random weights,
64-pixel crops, CPU: the backbone dominates, as in any real extract), and ``HeadData.load`` of a
still and a flow cache of ``--rows`` x ``--dim`` float32 features (the whole read of a head's
data, every checksum verified). Prints median wall and process CPU seconds of each and the
cost of the checksums in percent (the issue's bound: under 5%). Checksums off is
``featcache.cache.schema.CHECKSUMS = False``, which only this benchmark sets.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featcache.cache import schema  # noqa: E402
from featcache.cache.synthetic import write_synthetic_caches  # noqa: E402
from featcache.extraction.extract import ExtractSettings, extract  # noqa: E402
from heads.training.head_data import HeadData  # noqa: E402

CLASSES = ("jump", "run", "wave")


def make_stills(root: Path, count: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        split = ("train", "val", "test")[i % 3]
        folder = root / "stills" / split / CLASSES[i % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (72, 96, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_extract(root: Path, cache: Path) -> None:
    shutil.rmtree(cache, ignore_errors=True)
    extract(root, cache, ExtractSettings(modality="still", backbone="efficientnet-lite0", weights="random", crop=64,
                                         resize=64, device="cpu", workers=0), on_event=lambda message: None)


def side_by_side(name: str, make, measure, repeats: int) -> dict[str, float]:
    """``make(checksums)`` once per setting, then ``measure(checksums)`` ``repeats`` times, interleaved."""
    for on in (False, True):
        schema.CHECKSUMS = on
        make(on)
    times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for r in range(repeats):
        for on in ((False, True) if r % 2 == 0 else (True, False)):
            schema.CHECKSUMS = on
            times[on].append(timed(lambda: measure(on)))
    schema.CHECKSUMS = True
    out = {}
    for on in (False, True):
        out[f"wall_{on}"] = statistics.median(t[0] for t in times[on])
        out[f"cpu_{on}"] = statistics.median(t[1] for t in times[on])
    print(f"{name:14s} {out['wall_False']:9.3f} {out['wall_True']:9.3f} {cost(out, 'wall'):+7.1f}%   "
          f"{out['cpu_False']:9.3f} {out['cpu_True']:9.3f} {cost(out, 'cpu'):+7.1f}%", flush=True)
    return out


def cost(out: dict[str, float], kind: str) -> float:
    return 100 * (out[f"{kind}_True"] - out[f"{kind}_False"]) / out[f"{kind}_False"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stills", type=int, default=240)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_stills(tmp / "ds", args.stills)
        print(f"checksums off vs on, median of {args.repeats} (interleaved); seconds")
        print(f"{'':14s} {'wall off':>9s} {'wall on':>9s} {'cost':>8s}   {'cpu off':>9s} {'cpu on':>9s} {'cost':>8s}")
        side_by_side(f"extract ({args.stills})", lambda on: None,
                     lambda on: run_extract(root, tmp / f"cache-{on}"), args.repeats)
        n = args.rows
        rows = {"train": n * 3 // 4, "val": n // 8, "test": n // 8}
        side_by_side(f"head loading", lambda on: write_synthetic_caches(
            tmp / f"heads-{on}", num_classes=10, dim=args.dim, still_rows=rows,
            temporal_rows={"train": n * 3 // 4, "test": n // 4}, temporal=("flow",)),
            lambda on: HeadData.load(tmp / f"heads-{on}", "flow"), args.repeats)
        size = sum(p.stat().st_size for p in (tmp / "heads-True").glob("*.h5")) / 2**20
        print(f"head loading reads two caches of {n} x {args.dim} float32 ({size:.0f} MiB in all); "
              f"extract: {args.stills} stills, efficientnet-lite0 (random weights), 64-pixel crops, CPU, 1 thread")


if __name__ == "__main__":
    main()
