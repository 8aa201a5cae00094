"""The report's transfer section: the records ``benchmarks/transfer.py --json RUNS/transfer.json``
wrote (one per arm, method, temporal modality and data seed) as one table, when a report folder holds them."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

from heads.evaluation.uncertainty import format_gain

TRANSFER_FILE = "transfer.json"
HEADING = "## Transfer (method-positive control)"
COLUMNS = ["seed", "arm", "method", "still %", "derived gain [95% CI]", "fused gain [95% CI]",
           "fused, family CI", "p (Holm)", "direction right"]


def read_transfer_records(folders: Sequence[str | os.PathLike]) -> tuple[list[dict], Path | None, str]:
    """The records of the first ``TRANSFER_FILE`` among ``folders``, its path, and why it could not
    be read ('' when it could; ([], None, '') when there is none): a damaged file is said, not skipped."""
    for folder in folders:
        path = Path(folder) / TRANSFER_FILE
        if not path.is_file():
            continue
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return [], path, f"{path}: cannot read it ({' '.join(str(exc).split())}); rerun benchmarks/transfer.py --json"
        if not isinstance(records, list) or not all(isinstance(r, dict) and "arm" in r for r in records):
            return [], path, f"{path}: not a list of transfer records (each with an 'arm'); rerun benchmarks/transfer.py --json"
        return records, path, ""
    return [], None, ""


def _interval(value, ci) -> str:
    """``+7.2 [+3.6, +10.9]`` (no mark: the table's own column gives Holm's p)."""
    return format_gain({"test": value, "test_ci": ci}, "-", p_value=math.nan)


def transfer_rows(records: Sequence[dict]) -> list[list[str]]:
    """Header, then a row per record, in the file's order."""
    rows = [COLUMNS]
    for r in records:
        family = r.get("ci_family")
        direction = r.get("direction_right")
        rows.append([str(r.get("data_seed", "-")), r["arm"], str(r.get("method", "-")),
                     f"{r['still_test']:.1f}" if r.get("still_test") is not None else "-",
                     _interval(r.get("derived_gain"), r.get("derived_ci")), _interval(r.get("gain"), r.get("ci")),
                     f"[{family[0]:+.1f}, {family[1]:+.1f}]" if family else "-",
                     f"{r['p_holm']:.3f}" if r.get("p_holm") is not None else "-",
                     "-" if direction is None else f"{direction:.0f}%"])
    return rows


def transfer_section(records: Sequence[dict], path: Path | None, problem: str, table) -> list[str]:
    """Markdown parts of the section (none without a file); ``table`` renders rows as Markdown."""
    if problem:
        return [HEADING, f"Not shown: {problem}."]
    if not records:
        return []
    temporal = sorted({str(r.get("temporal", "?")) for r in records})
    text = (f"Method-positive control from `{path}` (`benchmarks/transfer.py`, temporal: {', '.join(temporal)}): "
            "each arm's gain over the still baseline on the test stills, in points, with its 95% CI (paired "
            "bootstrap), the CI at the family's Bonferroni level and Holm's p over the whole table. Arms: `method` "
            "(as designed), `no-teacher` (the student schedule on the labelled stills alone), `cue0` (stills "
            "without the cue: nothing to transfer), `shuffled-teacher` (videos with shuffled labels), `true-labels` "
            "(the ceiling). Direction right: of the stills put in the right pair of classes, the share also given "
            "the right direction (50%: none recovered).")
    return [HEADING, text, table(transfer_rows(records))]
