"""The report on real (tiny) runs: CIs and seeds in every cell, gains with significance marks,
the oracle gain with its CI and recovered share, calibrated fusion and ECE, the confusion
figure and the plain-language summary."""

from __future__ import annotations

import pytest

from heads.experiments.baselines import train_baseline
from heads.evaluation.metrics import write_metrics
from heads.experiments.oracle import run_oracle
from heads.experiments.report.render import write_report
from heads.experiments.report.significance import gains_table, recovered_share, summary_paragraph
from heads.experiments.report.tables import table2, table4, table6
from heads.training.seeds import train_seeds
from tests.heads_fixtures import fast_config, head_data, synthetic_cache_dir  # noqa: F401

ORACLE_CONFIG = {"seed": 0, "still_model": "auto", "still_lr": 1e-3, "still_epochs": 15, "still_batch_size": 32,
                 "still_weight_decay": 1e-4, "d1": 32, "dimred_lr": 1e-3, "dimred_epochs": 5,
                 "dimred_batch_size": 32, "dimred_dropout": 0.5, "still_min_steps": 1, "dimred_min_steps": 1}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_cache_dir, head_data):
    runs = tmp_path_factory.mktemp("runs")
    result = train_seeds("gan", head_data, fast_config("gan"), seeds=2)
    write_metrics(runs / "gan-flow", result.metrics)
    oracle = run_oracle(synthetic_cache_dir, "flow", runs=10, config=ORACLE_CONFIG, out=runs / "oracle" / "flow",
                        progress=False)
    base = train_baseline("still", synthetic_cache_dir, config={k: ORACLE_CONFIG[k] for k in
                          ("seed", "still_model", "still_lr", "still_epochs", "still_batch_size", "still_weight_decay",
                           "still_min_steps")},
                          out=runs / "still", progress=False, seeds=2)
    return runs, result.metrics, oracle, base


def test_oracle_gain_has_a_ci_over_stills(runs):
    _, _, oracle, _ = runs
    gain, improvement = oracle["gain"]["fused"], oracle["improvement"]["test"]
    assert gain["test"] == pytest.approx(improvement["mean"], abs=1e-3)
    assert gain["test_ci"][0] <= gain["test"] <= gain["test_ci"][1] and improvement["ci"] == gain["test_ci"]
    assert oracle["fused"]["test_ci"][0] <= oracle["fused"]["test"] <= oracle["fused"]["test_ci"][1]


def test_baseline_seeds(runs):
    base = runs[3]
    assert base["seeds"] == [0, 1] and base["still"]["test_std"] is not None and base["derived"] is None


def test_report_tables_summary_and_confusion_figure(runs, tmp_path):
    folder, gan, oracle, _ = runs
    report, tables, path = write_report([folder], tmp_path / "report")
    text = path.read_text()
    t2 = {(row[0], row[1]): row[2:] for row in table2(report)[1:]}
    fused = gan["fused"]
    expected = (f"{fused['test']:.1f} ± {fused['test_std']:.1f} "
                f"[{fused['test_ci'][0]:.1f}, {fused['test_ci'][1]:.1f}]")
    assert t2[("Fusion with Still", "GAN")][1] == expected
    assert t2[("Fusion, calibrated", "GAN")][1].startswith(f"{gan['fused_calibrated']['test']:.1f} ± ")
    assert "[" in table4(report)[1][2]  # oracle test improvement carries its CI
    rows = gains_table(report)
    assert rows[0][:5] == ["Method", "Modality", "Derived gain", "Fused (paper) gain", "Fused (calibrated) gain"]
    gan_row = next(r for r in rows[1:] if r[0] == "GAN")
    assert gan_row[3].startswith(f"{gan['gain']['fused']['test']:+.1f} [") and gan_row[-1] == "2"
    assert gan_row[7].count("/") == 2 and gan_row[7].split(" / ")[0] == f"{gan['still']['ece']:.1f}"
    share = recovered_share(gan["gain"]["fused"], oracle["gain"]["fused"])
    if share is None:
        assert gan_row[6].startswith("—")
    else:
        assert gan_row[6].startswith(f"{share:.0f}%")
    # The oracle column: the paper's plain average, then the calibrated oracle; Table 4 has both rows.
    paper_oracle, calibrated_oracle = gan_row[5].split(" / ")
    assert paper_oracle.startswith(f"{oracle['gain']['fused']['test']:+.1f} [")
    assert calibrated_oracle.startswith(f"{oracle['gain']['fused_calibrated']['test']:+.1f} [")
    t4 = table4(report)
    assert t4[2][0] == "Oracle (calibrated fusion)" and "[" in t4[2][2]
    assert t4[2][2].startswith(f"{oracle['improvement_calibrated']['test']['mean']:.1f} ± ")
    t6 = {(row[0], row[1]): row[2:] for row in table6(report)[1:]}
    top5, top5_ci = gan["still"]["top5"], gan["still"]["top5_ci"]
    assert t6[("GAN", "Optical-flow")][0] == f"{top5:.1f} [{top5_ci[0]:.1f}, {top5_ci[1]:.1f}] / {gan['still']['map']:.1f}"
    assert "Table 6" in text
    summary = summary_paragraph(report)
    assert summary == report.summary and "Optical-flow: the oracle gains" in summary and "; calibrated, " in summary
    assert ("Significant fused gains" in summary) or ("No method gives a significant fused gain" in summary)
    assert "## Summary" in text and "Table 5" in text
    confusion = tmp_path / "report" / "figures" / "confusion-gan-flow.png"
    assert confusion.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "figures/confusion-gan-flow.png" in text


def test_recovered_share_needs_a_significant_oracle():
    oracle = {"test": 10.0, "test_ci": [5.0, 15.0], "p_value": 0.001}
    assert recovered_share({"test": 4.0}, oracle) == pytest.approx(40.0)
    assert recovered_share({"test": 4.0}, dict(oracle, p_value=0.3)) is None
    assert recovered_share({"test": 4.0}, dict(oracle, test=-1.0)) is None


def _fake_run(tmp_path, name, method, gains, seeds=None):
    from heads.experiments.report.runs import Run

    metrics = {"method": method, "temporal": "flow", "experiment": "main", "config": {"seed": 0},
               "still": {"val": 50.0, "test": 50.0, "test_ci": [40.0, 60.0], "ci_too_narrow": "one seed: seed variance not covered"},
               "fused": {"val": 55.0, "test": 55.0}, "gain": gains}
    if seeds:
        metrics["seeds"] = seeds
    return Run(tmp_path / name, metrics)


def test_marks_and_verdicts_are_holm_adjusted_with_mde_and_power(tmp_path):
    from heads.experiments.report.runs import Report
    from heads.experiments.report.render import render_markdown
    from heads.experiments.report.significance import holm_p, report_family

    def gain(test, p, mde):
        return {"test": test, "test_ci": [test - 5, test + 5], "p_value": p, "mde": mde}

    report = Report([
        _fake_run(tmp_path, "gan", "gan", {"derived": gain(4.0, 0.5, 9.0), "fused": gain(6.0, 0.03, 8.5)}),
        _fake_run(tmp_path, "embed", "embed", {"derived": gain(1.0, 0.6, 9.5), "fused": gain(5.5, 0.04, 9.0)}),
    ])
    assert len(report_family(report)) == 4
    adjusted = holm_p(report)
    # Holm by hand: 0.03 x 4 = 0.12, then max(0.12, 0.04 x 3) = 0.12, 0.5 x 2 = 1.0 (capped), 0.6 -> 1.0.
    assert adjusted[("gan", "flow", "fused")] == pytest.approx(0.12)
    assert adjusted[("embed", "flow", "fused")] == pytest.approx(0.12)
    gan_row = next(r for r in gains_table(report)[1:] if r[0] == "GAN")
    assert gan_row[3] == "+6.0 [+1.0, +11.0] (MDE 8.5)"  # raw p 0.03 but no mark after adjustment
    summary = summary_paragraph(report)
    assert "No method gives a significant fused gain" in summary and "Holm-adjusted over the report's 4 gains" in summary
    assert "from about 8.5 to 9.0 points up" in summary and "would have gone unseen" in summary
    # The same gains alone in a family of one keep their mark.
    alone = Report([_fake_run(tmp_path, "gan", "gan", {"fused": gain(6.0, 0.03, 8.5)})])
    assert next(r for r in gains_table(alone)[1:] if r[0] == "GAN")[3].endswith("* (MDE 8.5)")
    report.runs[0].metrics["images"] = {"test": {"images": 3, "empty_classes": ["b"]}}
    report.runs[0].metrics["still"]["confusion"] = [[1, 0], [0, 2]]
    text = render_markdown(report, {}, [], tmp_path)
    assert "† marks an interval known to be too narrow: one seed: seed variance not covered." in text
    assert "- Warning: the test split has only 3 images (fewer than 30) and no image of 1 of 2 classes (b)" in text
