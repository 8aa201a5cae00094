"""benchmarks/transfer.py: the table's statistics, and a --quick run end to end (so the script cannot rot)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from heads.training.methods import transfer_methods

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("transfer", ROOT / "benchmarks" / "transfer.py")
transfer = importlib.util.module_from_spec(spec)
sys.modules["transfer"] = transfer  # its dataclasses look their module up
spec.loader.exec_module(transfer)

KEYS = {"arm", "method", "temporal", "data_seed", "gain", "ci", "p_holm", "direction_right"}


def one_hot(labels, classes=4, sharp=0.9):
    probs = np.full((len(labels), classes), (1 - sharp) / (classes - 1))
    probs[np.arange(len(labels)), labels] = sharp
    return probs


def test_records_pair_each_stream_with_the_still_baseline_and_adjust_over_the_table():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    pair_only = labels ^ 1  # the right pair, the wrong direction
    still = one_hot(np.where(rng.random(200) < 0.5, labels, pair_only), sharp=0.6)
    results = [{"arm": "method", "method": "tsn", "data_seed": 1, "labels": labels, "still": still,
                "derived": one_hot(labels), "seconds": 1.0},
               {"arm": "cue0", "method": "tsn", "data_seed": 1, "labels": labels, "still": still,
                "derived": still.copy(), "seconds": 1.0}]
    rows = transfer.records(results)
    assert all(KEYS <= set(r) for r in rows)
    helped, nothing = rows
    assert helped["gain"] > 30 and helped["ci"][0] > 0 and helped["p_holm"] < 0.05
    assert helped["ci_family"][0] <= helped["ci"][0]  # the family-level CI is the wider one
    assert helped["direction_right"] == 100.0
    assert nothing["gain"] == 0 and nothing["ci"][0] <= 0 <= nothing["ci"][1] and nothing["p_holm"] == 1.0


def test_quick_run_writes_one_record_per_arm_and_method(tmp_path):
    out = tmp_path / "records.json"
    transfer.main(["--quick", "--out", str(tmp_path / "runs"), "--data-seeds", "3", "--json", str(out), "--threads", "1"])
    rows = json.loads(out.read_text())
    assert {(r["arm"], r["method"]) for r in rows} == {
        *((arm, m) for arm in transfer.ARMS for m in ("tsn",)),
        *((arm, m) for arm in ("method", "cue0", "shuffled-teacher") for m in (m.name for m in transfer_methods()))}
    assert all(KEYS <= set(r) and r["temporal"] == "dynamic" and r["data_seed"] == 3 for r in rows)
