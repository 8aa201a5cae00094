"""The report's answer to "does temporal knowledge help here?": gains over the still baseline
with their confidence intervals and significance, the oracle gain, the share of the oracle
each method recovers, calibration, and one plain-language paragraph.

Every gain is the paired comparison ``metrics.json`` stores under ``gain`` (the stream minus
the still stream on the same test stills, 95% bootstrap CI, p-value; ``heads.evaluation.statistics``).
The oracle's gain is the same comparison with the oracle's fused prediction. The share of
the oracle a method recovers is its fused gain divided by the oracle gain; it is reported
only when the oracle gain itself is significant (a ratio to a gain indistinguishable from
zero means nothing) and both gains are over the same still baseline (TSN's is its own fine-tuned
still network, not the head runs' linear still model the oracle uses); the baseline of each row
is shown, and the oracle's where it is another.
"""

from __future__ import annotations

import math
from typing import Any

from heads.evaluation.metrics import format_gain
from heads.evaluation.statistics import ALPHA, is_significant
from heads.experiments.report.runs import TEMPORAL_LABELS, t2sil_methods
from heads.experiments.report.tables import DASH, fmt

GAIN_STREAMS = (("derived", "Derived"), ("fused", "Fused (paper)"), ("fused_calibrated", "Fused (calibrated)"))


def gain_of(run, stream: str) -> dict[str, Any] | None:
    return ((run.metrics.get("gain") or {}).get(stream)) if run else None


def oracle_gain(report, temporal: str, stream: str = "fused") -> dict[str, Any] | None:
    """The oracle's fused gain on test: ``{"test", "test_ci", "p_value"}`` (older runs: mean only);
    ``stream="fused_calibrated"``: the calibrated oracle's (None for runs without one)."""
    run = report.best("oracle", temporal)
    if run is None:
        return None
    gain = gain_of(run, stream)
    if stream != "fused":
        return gain
    if gain:
        return gain
    improvement = (run.metrics.get("improvement") or {}).get("test") or {}
    return None if improvement.get("mean") is None else {"test": improvement["mean"], "test_ci": None, "p_value": None}


def same_baseline(run, oracle_run) -> bool:
    """Whether a run's gains and the oracle's are over the same still baseline (the same test accuracy:
    every head run trains the same linear still model; TSN's is its own fine-tuned still network)."""
    if run is None or oracle_run is None:
        return False
    mine, theirs = run.value("still", "test"), oracle_run.value("still", "test")
    return mine is not None and theirs is not None and abs(mine - theirs) < 1e-6


def recovered_share(gain: dict | None, oracle: dict | None, comparable: bool = True) -> float | None:
    """Fused gain / oracle gain, in percent; None unless both are over the same still baseline
    (``comparable``) and the oracle gain is significant and positive."""
    if not comparable or not gain or not oracle or gain.get("test") is None or oracle.get("test") is None:
        return None
    if not is_significant(oracle.get("p_value")) or oracle["test"] <= 0:
        return None
    return 100.0 * gain["test"] / oracle["test"]


def fmt_share(share: float | None) -> str:
    return DASH if share is None or not math.isfinite(share) else f"{share:.0f}%"


def fmt_ece(run, stream: str) -> str:
    return fmt(((run.metrics.get(stream) or {}).get("ece")) if run else None)


def gains_table(report) -> list[list[str]]:
    """Rows method x modality: gains (test, CI, marks), oracle gain, recovered share, ECEs, seeds."""
    header = ["Method", "Modality", *(f"{name} gain" for _, name in GAIN_STREAMS),
              "Oracle gain (paper / calibrated)", "Oracle recovered (paper / calibrated)",
              "ECE still / derived / fused", "Still baseline (test)", "Seeds"]
    rows = [header]
    for temporal, modality in TEMPORAL_LABELS:
        # Each fusion is measured against the oracle fused the same way.
        oracles = {s: oracle_gain(report, temporal, s) for s in ("fused", "fused_calibrated")}
        oracle_run = report.best("oracle", temporal)
        for method, name in t2sil_methods():
            run = report.best(method, temporal)
            if run is None:
                continue
            comparable = same_baseline(run, oracle_run)
            shares = [fmt_share(recovered_share(gain_of(run, s), oracles[s], comparable)) for s in ("fused", "fused_calibrated")]
            eces = " / ".join(fmt_ece(run, s) for s in ("still", "derived", "fused"))
            seeds = len(run.metrics.get("seeds") or [None])
            oracle_text = " / ".join(format_gain(o, DASH) for o in oracles.values())
            if oracle_run is not None and not comparable:  # say which baseline the oracle's gain is over
                oracle_text += f" (the oracle's, over a still baseline of {fmt(oracle_run.value('still', 'test'))})"
            rows.append([name, modality, *(format_gain(gain_of(run, s), DASH) for s, _ in GAIN_STREAMS),
                         oracle_text, " / ".join(shares), eces, fmt(run.value("still", "test")), str(seeds)])
    return rows


def summary_paragraph(report) -> str:
    """What the numbers say, in words, whatever they say."""
    sentences = []
    for temporal, modality in TEMPORAL_LABELS:
        oracle = oracle_gain(report, temporal)
        if oracle is None:
            sentences.append(f"{modality}: no oracle run, so the ceiling of what temporal knowledge can add is unknown.")
        else:
            verdict = "significant" if is_significant(oracle.get("p_value")) else "not significant"
            base = fmt(report.best("oracle", temporal).value("still", "test"))
            text = f"{modality}: the oracle gains {_points(oracle)} over its still baseline ({base}% on test; {verdict})"
            calibrated_oracle = oracle_gain(report, temporal, "fused_calibrated")
            if calibrated_oracle:
                verdict = "significant" if is_significant(calibrated_oracle.get("p_value")) else "not significant"
                text += f"; calibrated, {_points(calibrated_oracle)} ({verdict})"
            sentences.append(text + ".")
        significant, other, ran = [], [], False
        for method, name in t2sil_methods():
            run = report.best(method, temporal)
            if run is None or gain_of(run, "fused") is None:
                continue
            ran = True
            paper, calibrated = gain_of(run, "fused"), gain_of(run, "fused_calibrated")
            comparable = same_baseline(run, report.best("oracle", temporal))
            share = recovered_share(paper, oracle, comparable)
            text = f"{name} {_points(paper)}" + (f", {share:.0f}% of the oracle" if share is not None else "")
            if not comparable:
                text += f" (over its own still baseline, {fmt(run.value('still', 'test'))}%)"
            if calibrated:
                mark = ", significant" if is_significant(calibrated.get("p_value")) else ""
                share = recovered_share(calibrated, oracle_gain(report, temporal, "fused_calibrated"), comparable)
                text += f"; calibrated fusion {_points(calibrated)}{mark}" + (
                    f", {share:.0f}% of the calibrated oracle" if share is not None else "")
            (significant if is_significant(paper.get("p_value")) else other).append(text)
        if not ran:
            sentences.append(f"No T2SIL method was run with {modality.lower()}.")
        elif significant:
            sentences.append("Significant fused gains (paper fusion, p < %.2f): %s." % (ALPHA, "; ".join(significant)))
        else:
            sentences.append("No method gives a significant fused gain (paper fusion) over the still baseline.")
        if other:
            sentences.append("Not significant: " + "; ".join(other) + ".")
    sentences.append("Gains are paired comparisons on the same test stills (95% bootstrap CIs); with several "
                     "seeds, each still counts with its share of seeds classifying it right.")
    return " ".join(sentences)


def _points(gain: dict) -> str:
    ci = gain.get("test_ci")
    text = f"{gain['test']:+.1f} points"
    if ci and ci[0] is not None:
        text += f" [95% CI {ci[0]:+.1f}, {ci[1]:+.1f}]"
    return text
