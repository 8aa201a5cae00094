"""One command that runs every CUDA path end to end and prints one table (``make gpu-check``).

    python benchmarks/gpu_check.py [--device cuda|cuda:N|cpu] [--real DIR]

Rows (each against its reference, with the peak GPU memory it took):
  extract     backbone images/s: a plain per-image loop (fp32), batched fp32, AMP, AMP +
              channels_last (cosine of the features to fp32's), and ``featcache extract`` itself
  tvl1        torch TV-L1 pairs/s at batch 1/32/128 against OpenCV's TV-L1 on the CPU; its
              accuracy: mean end-point error to OpenCV's flow, share of quantised values within 1
  preprocess  grey + TV-L1 + quantisation + dynamic images as torch ops on the device against
              the CPU path (numpy/OpenCV) on the same frames: largest difference in grey levels
  mining      FAISS semi-hard mining (a GPU index on CUDA) against brute force: same triplets
  gan grid    a 16-member GAN grid as one stacked model against the members one by one
  torchrun    ``featcache extract`` with 2 ranks on one device against one process: same features
              (the backbone's shipped weights: ``--weights random`` is not seeded, so ranks would differ)
On CUDA (sizes for under 8 minutes on one GPU) it uses real stills and clips from ``--real``
(default ``../shared/data/real``) when there, generated ones otherwise. Without a GPU it says so
in one line and exits 1; ``--device cpu`` runs the same table at a tiny size (what the test runs).
Exit status 1 when a check fails or disagrees with its reference.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_check_parts import CHECKS, Context  # noqa: E402

# Per device kind: images, image side, TV-L1 frame size and batches, OpenCV pairs, mining rows, GAN members/dim.
SIZES = {
    "cuda": {"images": 256, "side": 224, "flow_size": (256, 340), "batches": (1, 32, 128), "opencv_pairs": 8,
             "mining_rows": 21000, "mining_dim": 256, "members": 16, "gan_dim": 2048, "gan_rows": 7000,
             "gan_sets": {}, "prep_sets": {}},
    "cpu": {"images": 6, "side": 64, "flow_size": (48, 64), "batches": (1, 2, 4), "opencv_pairs": 2,
            "mining_rows": 2000, "mining_dim": 32, "members": 4, "gan_dim": 32, "gan_rows": 160,
            "gan_sets": {"still_epochs": 2, "dimred_epochs": 2, "epochs": 2, "d0": 16, "d2": 16,
                         "still_min_steps": 1, "dimred_min_steps": 1, "min_steps": 1},
            "prep_sets": {"flow_frames": 10, "count": 1}},
}
DEFAULT_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and digits == 1:  # rates: three significant digits
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict], device: torch.device) -> None:
    header = f"{'check':<11}{'variant':<34}{'rate':>12} {'unit':<10}{'x ref':>7}  {'peak MiB':>8}  agreement"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['check']:<11}{r['variant']:<34}{fmt(r.get('rate')):>12} {r.get('unit', ''):<10}"
              f"{fmt(r.get('ratio'), 2):>7}  {fmt(r.get('peak_mib')):>8}  {r.get('agreement', '')}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (the same table at a tiny size)")
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL, help="real stills and clips (used when present)")
    parser.add_argument("--only", nargs="+", choices=list(CHECKS), default=list(CHECKS))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible to torch here; run it on a GPU node, or --device cpu for the tiny CPU table")
        return 1
    if device.type not in ("cuda", "cpu"):
        print(f"gpu_check: --device {args.device}: expected cuda, cuda:N or cpu")
        return 1
    real = args.real if device.type == "cuda" and (args.real / "manifest.csv").exists() else None
    context = Context(device, SIZES[device.type], real)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"gpu_check on {device} ({name}), torch {torch.__version__}, data: {real or 'generated'}")
    rows, failed, start = [], [], time.perf_counter()
    with context:
        for check in args.only:
            try:
                new = CHECKS[check](context)
            except Exception as exc:  # one broken path must not hide the others
                new = [{"check": check, "variant": "FAILED", "agreement": f"{type(exc).__name__}: {exc}"[:160], "ok": False}]
            rows += new
            failed += [r for r in new if not r.get("ok", True)]
    print_table(rows, device)
    print(f"{len(rows)} rows in {time.perf_counter() - start:.0f} s; "
          + ("all agree with their references" if not failed else f"{len(failed)} FAILED: "
             + ", ".join(f"{r['check']} {r['variant']}" for r in failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
