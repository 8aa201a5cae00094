"""benchmarks/controls.py: the shuffled-labels negative control and the control table rows."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from heads.experiments.report.runs import t2sil_methods

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("controls", ROOT / "benchmarks" / "controls.py")
controls = importlib.util.module_from_spec(spec)
spec.loader.exec_module(controls)


def write_rows(group, videos, labels, split):
    rows = [(v, l, s) for v, l, s in zip(videos, labels, split) for _ in range(3)]  # 3 instances a video
    group["source"] = np.array([r[0] for r in rows], dtype=h5py.string_dtype())
    group["labels"] = np.array([r[1] for r in rows], dtype=np.int64)
    group["split"] = np.array([r[2] for r in rows], dtype=np.int8)


def test_shuffled_labels_permute_videos_within_splits_alike_in_every_file(tmp_path):
    videos = [f"videos/{s}/v{i}.avi" for s in ("train", "test") for i in range(12)]
    labels = [i % 4 for i in range(12)] * 2
    split = [0] * 12 + [2] * 12
    with h5py.File(tmp_path / "features.h5", "w") as f:
        write_rows(f, videos, labels, split)
    with h5py.File(tmp_path / "temporal.h5", "w") as f:
        for group in ("flow", "dynamic"):
            write_rows(f.create_group(group), videos, labels, split)
    controls.shuffle_temporal_labels(tmp_path / "features.h5", tmp_path / "shuffled.h5", seed=3)
    controls.shuffle_temporal_labels(tmp_path / "temporal.h5", tmp_path / "temporal-shuffled.h5", seed=3,
                                     groups=("flow", "dynamic"))
    with h5py.File(tmp_path / "features.h5") as a, h5py.File(tmp_path / "shuffled.h5") as b:
        before, after, codes = a["labels"][:], b["labels"][:], a["split"][:]
    assert not np.array_equal(before, after)
    for code in (0, 2):  # class counts kept within each split
        assert sorted(before[codes == code]) == sorted(after[codes == code])
    assert (after.reshape(-1, 3) == after.reshape(-1, 3)[:, :1]).all()  # one label per video
    with h5py.File(tmp_path / "temporal-shuffled.h5") as t:  # TSN's pairing gets the heads' labels
        assert all(np.array_equal(t[g]["labels"][:], after) for g in ("flow", "dynamic"))


def gain(test, low, high, p):
    return {"test": test, "test_ci": [low, high], "p_value": p}


def test_control_rows_pair_each_fusion_with_its_own_oracle(tmp_path):
    runs = tmp_path / "runs"
    confusion = np.eye(4).tolist()
    for temporal in controls.TEMPORAL:
        oracle = {"still": {"test": 50.0, "confusion": confusion}, "temporal_classifier": {"test": 90.0},
                  "gain": {"fused": gain(-8.0, -14.0, -2.0, 0.01), "fused_calibrated": gain(20.0, 12.0, 28.0, 0.001)}}
        (runs / "oracle" / temporal).mkdir(parents=True)
        (runs / "oracle" / temporal / "metrics.json").write_text(json.dumps(oracle))
        for method, _ in t2sil_methods():
            run = {"still": {"test": 50.0}, "derived": {"test": 60.0, "confusion": confusion},
                   "gain": {"fused": gain(4.0, -1.0, 9.0, 0.1), "fused_calibrated": gain(5.0, 1.0, 9.0, 0.02)}}
            (runs / f"{method}-{temporal}").mkdir()
            (runs / f"{method}-{temporal}" / "metrics.json").write_text(json.dumps(run))
    rows = {(r["temporal"], r["method"]): r for r in controls.control_rows(runs)}
    assert len(rows) == 2 * 2 * 4  # modality x fusion x (oracle, GAN, embedding, TSN)
    assert rows[("flow", "tsn")]["share"] is None  # the paper's oracle is not significantly positive
    assert rows[("flow", "tsn (calibrated)")]["share"] == pytest.approx(0.25)  # 5 of the calibrated oracle's 20
    assert rows[("dynamic", "oracle (calibrated)")]["gain"] == 20.0
    assert rows[("dynamic", "oracle")]["direction"] == 100.0
    assert "| flow | tsn (calibrated) |" in controls.markdown("t", list(rows.values()))
    # Holm over the table's 16 tests: the smallest p (0.001, two calibrated oracles) times 16.
    assert rows[("dynamic", "oracle (calibrated)")]["p_holm"] == pytest.approx(0.016)
    assert all(r["p_holm"] >= r["p"] for r in rows.values())
