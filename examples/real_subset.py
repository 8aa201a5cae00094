"""Build a tiny folder-layout dataset from the real clips and photos in ``../shared/data/real``.

    .venv/bin/python examples/real_subset.py OUT [--real ../shared/data/real]

Four classes that have both still photos and videos there (baseball, basketball,
kick_ball, dancing), linked by symlink (nothing is copied). The numbers it gives are
small; it exists to show the whole pipeline holds on real, varied files (several
codecs and containers, photos of every size). Read ``SOURCES.md`` there for licences.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REAL = REPO_ROOT.parent / "shared" / "data" / "real"

# class -> {split: [files relative to the real-data folder]}
LAYOUT = {
    "baseball": {
        "stills/train": ["stills/baseball/coco_000000196141.jpg", "stills/baseball/coco_COCO_val2014_000000000192.jpg",
                         "stills/baseball/coco_COCO_val2014_000000000357.jpg"],
        "stills/val": ["stills/baseball/coco_COCO_val2014_000000000474.jpg"],
        "stills/test": ["stills/baseball/coco_COCO_val2014_000000000488.jpg", "stills/baseball/coco_COCO_val2014_000000000544.jpg"],
        "videos/train": ["videos/baseball_pitch/ucf101_v_BaseballPitch_g01_c01.avi"],
        "videos/test": ["videos/swing_baseball/hmdb51_BaseballSwingAnalysis_swing_baseball_u_nm_np1_ba_med_0.mp4"],
    },
    "basketball": {
        "stills/train": ["stills/basketball/lvmhp_10084.jpg"],
        "videos/train": ["videos/basketball/ucf101_v_Basketball_g01_c01.avi", "videos/basketball/ucf101_v_Basketball_g01_c02.mp4",
                         "videos/basketball/pexels_5192157_basketball.mp4"],
        "videos/test": ["videos/basketball/ucf101_v_Basketball_g07_c04.mp4",
                        "videos/basketball/mmaction2_test_video_structuralize.mp4"],
    },
    "kick_ball": {
        "stills/train": ["stills/kick_ball/aichallenger_ff945ae2e729f24eea992814639d59b3bdec8bd8.jpg"],
        "stills/val": ["stills/kick_ball/ochuman_003799.jpg"],
        "stills/test": ["stills/kick_ball/ochuman_003896.jpg"],
        "videos/train": ["videos/soccer_juggling/ucf101_v_SoccerJuggling_g23_c01.avi"],
        "videos/test": ["videos/soccer_juggling/ucf101_v_SoccerJuggling_g24_c01.avi"],
    },
    "dancing": {
        "stills/train": ["stills/dancing/posetrack18_009473_000000.jpg"],
        "videos/train": ["videos/salsa_spin/ucf101_v_SalsaSpin_g03_c01.mp4"],
        "videos/test": ["videos/ice_dancing/ucf101_v_IceDancing_g02_c05.mp4"],
    },
}


def build_real_subset(out: str | os.PathLike, real: str | os.PathLike = DEFAULT_REAL) -> Path:
    """Symlink the subset into ``out`` in folder layout; returns ``out``. Idempotent."""
    real, out = Path(real).resolve(), Path(out)
    for class_name, splits in LAYOUT.items():
        for split, files in splits.items():
            for rel in files:
                source = real / rel
                if not source.is_file():
                    raise FileNotFoundError(f"{source}: missing from the real data folder")
                link = out / split / class_name / source.name
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.is_symlink():
                    link.symlink_to(source)
    (out / "classes.txt").write_text("\n".join(LAYOUT) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--real", default=str(DEFAULT_REAL))
    args = parser.parse_args()
    print(build_real_subset(args.out, args.real))


if __name__ == "__main__":
    main()
