"""The report's answer to "does temporal knowledge help here?": gains over the still baseline
with their confidence intervals and significance, the oracle gain, the share of the oracle
each method recovers, calibration, and one plain-language paragraph.

Every gain is the paired comparison ``metrics.json`` stores under ``gain`` (the stream minus
the still stream on the same test stills, 95% CI, p-value and MDE; ``heads.evaluation.statistics``).
The oracle's gain is the same comparison with the oracle's fused prediction. The report's
gains are one family: its significance marks and verdicts use Holm-adjusted p-values over
every gain Table 5 shows (:func:`holm_p`; the raw p stays in each run's ``metrics.json``). The
share of the oracle a method recovers is its fused gain divided by the oracle gain; it is
reported only when the oracle gain itself is significant after adjustment (a ratio to a gain
indistinguishable from zero means nothing) and both gains are over the same still baseline (TSN's is
its own fine-tuned still network, not the head runs' linear still model the oracle uses); the
baseline of each row is shown, and the oracle's where it is another.
"""

from __future__ import annotations

import math
from typing import Any

from heads.evaluation.metrics import format_gain, small_split_warnings
from heads.evaluation.statistics import ALPHA, holm_adjust, is_significant
from heads.experiments.report.runs import TEMPORAL_LABELS, t2sil_methods
from heads.experiments.report.tables import DASH, fmt

# The largest effect the paper reports for a T2SIL method (mid-frame TSN, points): the power sentence's yardstick.
PAPER_EFFECT = 2.9
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


def report_family(report) -> list[tuple[tuple[str, str, str], dict[str, Any]]]:
    """Every gain Table 5 shows, keyed ``(method or "oracle", temporal, stream)``: one Holm family."""
    family = []
    for temporal, _ in TEMPORAL_LABELS:
        for stream in ("fused", "fused_calibrated"):
            family.append((("oracle", temporal, stream), oracle_gain(report, temporal, stream)))
        for method, _ in t2sil_methods():
            run = report.best(method, temporal)
            family += [((method, temporal, stream), gain_of(run, stream)) for stream, _ in GAIN_STREAMS]
    return [(key, gain) for key, gain in family if gain and gain.get("p_value") is not None]


def holm_p(report) -> dict[tuple[str, str, str], float]:
    """Holm-adjusted p-value of each gain of :func:`report_family` (gains without a p-value: none)."""
    family = report_family(report)
    return dict(zip([key for key, _ in family], holm_adjust([gain["p_value"] for _, gain in family])))


def same_baseline(run, oracle_run) -> bool:
    """Whether a run's gains and the oracle's are over the same still baseline (the same test accuracy:
    every head run trains the same linear still model; TSN's is its own fine-tuned still network)."""
    if run is None or oracle_run is None:
        return False
    mine, theirs = run.value("still", "test"), oracle_run.value("still", "test")
    return mine is not None and theirs is not None and abs(mine - theirs) < 1e-6


def recovered_share(gain: dict | None, oracle: dict | None, oracle_p: float | None = None,
                    comparable: bool = True) -> float | None:
    """Fused gain / oracle gain, in percent; None unless both are over the same still baseline
    (``comparable``) and the oracle gain is significant (``oracle_p``: its adjusted p-value, else its
    own) and positive."""
    if not comparable or not gain or not oracle or gain.get("test") is None or oracle.get("test") is None:
        return None
    if not is_significant(oracle.get("p_value") if oracle_p is None else oracle_p) or oracle["test"] <= 0:
        return None
    return 100.0 * gain["test"] / oracle["test"]


def fmt_share(share: float | None) -> str:
    return DASH if share is None or not math.isfinite(share) else f"{share:.0f}%"


def fmt_ece(run, stream: str) -> str:
    return fmt(((run.metrics.get(stream) or {}).get("ece")) if run else None)


def gains_table(report) -> list[list[str]]:
    """Rows method x modality: gains (test, CI, Holm-adjusted marks, MDE), oracle gain, recovered share,
    ECEs, seeds."""
    adjusted = holm_p(report)
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
            shares = [fmt_share(recovered_share(gain_of(run, s), oracles[s], adjusted.get(("oracle", temporal, s)),
                                                comparable)) for s in ("fused", "fused_calibrated")]
            eces = " / ".join(fmt_ece(run, s) for s in ("still", "derived", "fused"))
            seeds = len(run.metrics.get("seeds") or [None])
            gains = [_cell(gain_of(run, s), adjusted.get((method, temporal, s))) for s, _ in GAIN_STREAMS]
            oracle_text = " / ".join(_cell(o, adjusted.get(("oracle", temporal, s))) for s, o in oracles.items())
            if oracle_run is not None and not comparable:  # say which baseline the oracle's gain is over
                oracle_text += f" (the oracle's, over a still baseline of {fmt(oracle_run.value('still', 'test'))})"
            rows.append([name, modality, *gains, oracle_text, " / ".join(shares), eces,
                         fmt(run.value("still", "test")), str(seeds)])
    return rows


def _cell(gain: dict | None, adjusted: float | None) -> str:
    """A gain cell: CI, the mark of its Holm-adjusted p-value (none without one) and its MDE."""
    return format_gain(gain, DASH, p_value=math.nan if adjusted is None else adjusted, mde=True)


def _verdict(p_value: float | None) -> str:
    return "significant" if is_significant(p_value) else "not significant"


def _oracle_sentence(report, temporal: str, modality: str, adjusted: dict) -> str:
    oracle = oracle_gain(report, temporal)
    if oracle is None:
        return f"{modality}: no oracle run, so the ceiling of what temporal knowledge can add is unknown."
    base = fmt(report.best("oracle", temporal).value("still", "test"))
    text = f"{modality}: the oracle gains {_points(oracle)} over its still baseline ({base}% on test; " \
           f"{_verdict(adjusted.get(('oracle', temporal, 'fused')))})"
    calibrated_oracle = oracle_gain(report, temporal, "fused_calibrated")
    if calibrated_oracle:
        text += f"; calibrated, {_points(calibrated_oracle)} " \
                f"({_verdict(adjusted.get(('oracle', temporal, 'fused_calibrated')))})"
    return text + "."


def _method_sentences(report, temporal: str, modality: str, adjusted: dict) -> list[str]:
    significant, other, ran = [], [], False
    oracles = {s: oracle_gain(report, temporal, s) for s in ("fused", "fused_calibrated")}
    for method, name in t2sil_methods():
        run = report.best(method, temporal)
        if run is None or gain_of(run, "fused") is None:
            continue
        ran = True
        paper, calibrated = gain_of(run, "fused"), gain_of(run, "fused_calibrated")
        comparable = same_baseline(run, report.best("oracle", temporal))
        share = recovered_share(paper, oracles["fused"], adjusted.get(("oracle", temporal, "fused")), comparable)
        text = f"{name} {_points(paper)}" + (f", {share:.0f}% of the oracle" if share is not None else "")
        if not comparable:
            text += f" (over its own still baseline, {fmt(run.value('still', 'test'))}%)"
        if calibrated:
            mark = ", significant" if is_significant(adjusted.get((method, temporal, "fused_calibrated"))) else ""
            share = recovered_share(calibrated, oracles["fused_calibrated"],
                                    adjusted.get(("oracle", temporal, "fused_calibrated")), comparable)
            text += f"; calibrated fusion {_points(calibrated)}{mark}" + (
                f", {share:.0f}% of the calibrated oracle" if share is not None else "")
        (significant if is_significant(adjusted.get((method, temporal, "fused"))) else other).append(text)
    if not ran:
        return [f"No T2SIL method was run with {modality.lower()}."]
    sentences = [("Significant fused gains (paper fusion, Holm-adjusted p < %.2f): %s." % (ALPHA, "; ".join(significant)))
                 if significant else "No method gives a significant fused gain (paper fusion) over the still baseline."]
    return sentences + (["Not significant: " + "; ".join(other) + "."] if other else [])


def power_sentence(report) -> str | None:
    """Which effect sizes this run could and could not have seen: the MDEs of the fused gains."""
    mdes = [g["mde"] for key, g in report_family(report) if key[0] != "oracle" and key[2] == "fused"
            and g.get("mde") is not None]
    if not mdes:
        return None
    low, high = min(mdes), max(mdes)
    span = f"{low:.1f}" if round(low, 1) == round(high, 1) else f"{low:.1f} to {high:.1f}"
    seen = ("so effects the size of the paper's (+0.5 to +2.9 points) would have gone unseen" if low > PAPER_EFFECT
            else "so the paper's largest effect (+2.9 points) was within reach of at least one comparison")
    return (f"Power: these test sets detect a fused gain with 80% power (5% two-sided) only from about {span} "
            f"points up (each gain's MDE); smaller gains could not be seen, {seen}.")


def summary_paragraph(report) -> str:
    """What the numbers say, in words, whatever they say (verdicts on Holm-adjusted p-values)."""
    adjusted = holm_p(report)
    sentences = []
    for temporal, modality in TEMPORAL_LABELS:
        sentences.append(_oracle_sentence(report, temporal, modality, adjusted))
        sentences += _method_sentences(report, temporal, modality, adjusted)
    power = power_sentence(report)
    if power:
        sentences.append(power)
    sentences.append(f"Gains are paired comparisons on the same test stills (95% CIs over the stills, and over the "
                     f"seeds where runs have several; the oracle's also over the test videos drawn); significance is "
                     f"Holm-adjusted over the report's {len(adjusted)} gains (raw p-values in each run's metrics.json).")
    return " ".join(sentences)


def narrow_reasons(report) -> list[str]:
    """The distinct reasons (``ci_too_narrow``) why some interval of the report's runs is too narrow."""
    reasons = set()
    for run in report.runs:
        entries = [run.metrics.get(k) for k in ("still", "derived", "fused", "fused_calibrated", "temporal_classifier")]
        entries += list((run.metrics.get("gain") or {}).values())
        reasons.update(e["ci_too_narrow"] for e in entries if isinstance(e, dict) and e.get("ci_too_narrow"))
    return sorted({r for part in reasons for r in part.split("; ")})


def split_warnings(report) -> list[str]:
    """One line per small val/test split (or one without some class) among the report's runs (``images``)."""
    lines: list[str] = []
    for run in report.runs:
        confusion = (run.metrics.get("still") or {}).get("confusion") or []
        for line in small_split_warnings(run.metrics.get("images") or {}, len(confusion)):
            if line not in lines:
                lines.append(line)
    return lines


def _points(gain: dict) -> str:
    ci = gain.get("test_ci")
    text = f"{gain['test']:+.1f} points"
    if ci and ci[0] is not None:
        text += f" [95% CI {ci[0]:+.1f}, {ci[1]:+.1f}]"
    return text
