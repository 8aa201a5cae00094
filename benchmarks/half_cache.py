"""Half-size caches: float16 against float32 feature caches of the same data.

    python benchmarks/half_cache.py [--scale 1] [--methods classifier gan embed] [--threads 1]

Writes the paper-size synthetic caches (40 classes, 2048-d; ``--scale`` multiplies the rows)
twice from one seed, stored as float32 and as float16 (the values of ``extract --dtype``),
then prints per dtype: the size of the still and flow files, the seconds to load them for a
head (``HeadData.load``, float32 tensors either way), and per head the seconds to fit it with
its default schedule and its derived and fused test accuracies with 95% CIs. Both dtypes run in
one process, one after the other; on a shared machine compare the ratios.
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
from heads.training.train_head import train_head  # noqa: E402

STILL_ROWS = {"train": 6821, "val": 728, "test": 4798}
TEMPORAL_ROWS = {"train": 16000, "test": 5000}
DTYPES = ("float32", "float16")


def cell(entry: dict | None) -> str:
    if not entry or entry.get("test") is None:
        return "-"
    ci = entry.get("test_ci")
    return f"{entry['test']:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def measure(cache: Path, methods, work: Path) -> dict:
    sizes = {p.name.split("-")[0]: p.stat().st_size for p in cache.glob("*.h5")}
    start = time.perf_counter()
    data = HeadData.load(cache, "flow")
    row = {"size": sizes, "load": time.perf_counter() - start, "heads": {}}
    store = DimRedStore([work], [work])
    for method in methods:
        start = time.perf_counter()
        result = train_head(method, data, default_config(method, "flow"), "cpu", dimred_store=store)
        row["heads"][method] = (time.perf_counter() - start, result.metrics)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--methods", nargs="+", default=list_methods(), choices=list_methods())
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    still = {k: max(8, round(v * args.scale)) for k, v in STILL_ROWS.items()}
    temporal = {k: max(8, round(v * args.scale)) for k, v in TEMPORAL_ROWS.items()}
    rows = {}
    with tempfile.TemporaryDirectory(prefix="featcache-half-") as tmp:
        for dtype in DTYPES:
            cache = Path(tmp) / dtype
            write_synthetic_caches(cache, num_classes=40, dim=2048, still_rows=still, temporal_rows=temporal,
                                   temporal=("flow",), instance_sd=1.0, feature_sd=1.0, dtype=dtype)
            rows[dtype] = measure(cache, args.methods, Path(tmp) / f"heads-{dtype}")
    print(f"still {sum(still.values())} rows, flow {sum(temporal.values())} rows, 2048-d, 40 classes; "
          f"{args.threads} thread(s); test % [95% CI]")
    print(f"{'':<24}" + "".join(f"{d:>34}" for d in DTYPES) + f"{'16/32':>8}")
    for kind in ("still", "flow"):
        sizes = [rows[d]["size"][kind] / 2**20 for d in DTYPES]
        print(f"{kind + ' file (MiB)':<24}" + "".join(f"{s:>34.1f}" for s in sizes) + f"{sizes[1] / sizes[0]:>8.2f}")
    loads = [rows[d]["load"] for d in DTYPES]
    print(f"{'load (s)':<24}" + "".join(f"{s:>34.2f}" for s in loads) + f"{loads[1] / loads[0]:>8.2f}")
    for method in args.methods:
        fits = [rows[d]["heads"][method][0] for d in DTYPES]
        print(f"{method + ' fit (s)':<24}" + "".join(f"{s:>34.1f}" for s in fits) + f"{fits[1] / fits[0]:>8.2f}")
        for stream in (("still", "temporal_classifier") if method == "classifier" else ("derived", "fused")):
            cells = [cell(rows[d]["heads"][method][1].get(stream)) for d in DTYPES]
            print(f"{'  ' + stream:<24}" + "".join(f"{c:>34}" for c in cells))


if __name__ == "__main__":
    main()
