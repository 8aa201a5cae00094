"""The report's cells say what they hold (issue 25): Table 1's still row from the head runs,
row labels that match their columns, every gain beside its own still baseline, class-mean vs
image-mean said, class names on the confusion axes."""

from __future__ import annotations

import matplotlib.axes

from heads.experiments.report.plots import confusion_class_names, plot_improvements
from heads.experiments.report.render import build_tables, render_markdown
from heads.experiments.report.runs import Run, collect_runs
from heads.experiments.report.significance import gains_table, summary_paragraph
from heads.experiments.report.tables import DASH, table1, table4
from tests.heads.experiments.test_report import metrics, write_run

GAIN = {"test": 20.0, "test_ci": [10.0, 30.0], "p_value": 0.001}


def head_runs(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "gan-dyn", metrics("gan", "dynamic", (50.0, 66.7), (60.0, 70.0), (60.0, 75.0),
                                       temporal_classifier={"test": 30.0, "test_ci": [13.3, 46.7]},
                                       gain={"fused": {"test": 8.3, "test_ci": [0.0, 20.0], "p_value": 0.2}}))
    write_run(runs, "tsn-dyn", metrics("tsn", "dynamic", (50.0, 33.3), (0.0, 0.0), (0.0, 33.3),
                                       gain={"fused": {"test": 0.0, "test_ci": [0.0, 0.0], "p_value": 1.0}}))
    oracle = {"val": {"mean": 35.5, "std": 22.8}, "test": {"mean": 9.0, "std": 14.9}}
    write_run(runs, "oracle/dynamic", metrics("oracle", "dynamic", (50.0, 66.7), fused=(80.0, 86.7),
                                              improvement=oracle, gain={"fused": GAIN}))
    write_run(runs, "ft-still", metrics("finetune-still", None, (50.0, 33.3)))
    return collect_runs([runs])


def test_table1_still_row_comes_from_the_head_runs_without_a_baseline_run(tmp_path):
    report = head_runs(tmp_path)
    rows = {row[0]: row for row in table1(report)[1:]}
    still = rows["Still image"]
    assert still[3:] == ["50.0", "66.7"]  # the oracle's and the GAN's linear still model (Table 4's baseline)
    assert "the still model of" in still[1] and "run" in still[1]
    assert not any(m.startswith("Table 1 Still image") for m in report.missing)
    assert rows["Still image, fine-tuned (Resnet-Still)"][3:] == ["50.0", "33.3"]
    dynamic = rows["Temporal model (Dynamic images)"]  # no classifier run: a head run's temporal classifier
    assert dynamic[4] == "30.0 [13.3, 46.7]" and "the temporal classifier of gan run" in dynamic[1]


def test_table4_rows_are_named_for_every_column(tmp_path):
    rows = table4(head_runs(tmp_path))
    assert rows[0][1:] == ["Optical-flow Val", "Optical-flow Test", "Dynamic images Val", "Dynamic images Test"]
    labels = [row[0] for row in rows[1:]]
    assert labels == ["Oracle (paper fusion)"]  # no "Oracle test" row over Val columns
    assert rows[1][3:] == ["35.5 ± 22.8", "9.0 ± 14.9"]


def test_table5_states_each_baseline_and_shares_only_over_the_same_one(tmp_path):
    report = head_runs(tmp_path)
    header, *rows = gains_table(report)
    assert header[-2] == "Still baseline (test)"
    by_method = {row[0]: row for row in rows}
    assert by_method["GAN"][-2] == "66.7" and "own still baseline" not in by_method["GAN"][5]
    assert by_method["GAN"][6] == f"42% / {DASH}"  # same baseline, significant oracle: 8.3 / 20.0 of it
    tsn = by_method["TSN"]
    assert tsn[-2] == "33.3" and "(the oracle's, over a still baseline of 66.7)" in tsn[5]
    assert tsn[6] == f"{DASH} / {DASH}"  # no share of an oracle measured over another baseline
    summary = summary_paragraph(report)
    assert "over its still baseline (66.7% on test" in summary and "TSN +0.0 points" in summary
    assert "(over its own still baseline, 33.3%)" in summary


def test_figures_say_class_mean_and_confusion_axes_have_class_names(tmp_path, monkeypatch):
    titles, set_title = [], matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda ax, text, *a, **k: (titles.append(text), set_title(ax, text, *a, **k))[1])
    plot_improvements({"derived": {"kick_ball": -100.0, "baseball": 0.0}}, "TSN", tmp_path / "tsn.png", {"derived": -33.3})
    assert "class mean -50.0 pp; image mean -33.3 pp (Table 5)" in titles[0]
    report = head_runs(tmp_path)
    figure = ("GAN (Dynamic images)", tmp_path / "figures" / "main-gan-dynamic.png")
    text = render_markdown(report, build_tables(report), [figure], tmp_path)
    assert "*class mean* weighs every class" in text and "*image mean* is Table 5's gain" in text
    run = Run(tmp_path, {"classes": ["baseball", "basketball", "kick_ball", "dancing"],
                         "per_class": {"test": {"still": {"baseball": 100.0, "kick_ball": 0.0}}}})
    assert confusion_class_names(run, 4) == ["baseball", "basketball", "kick_ball", "dancing"]
    old = Run(tmp_path, {"per_class": {"test": {"still": {"a": 1.0, "b": 2.0}}}})
    assert confusion_class_names(old, 2) == ["a", "b"]


def test_table1_temporal_rows_take_each_column_from_its_own_split(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "ft-dyn", metrics("finetune-dynamic", "dynamic", (33.3, 23.3)))
    write_run(runs, "ft-flow", metrics("finetune-flow", "flow", (40.0, None)))  # a run without test videos
    rows = {row[0]: row for row in table1(collect_runs([runs]))[1:]}
    assert rows["Temporal model (Dynamic images)"][2:] == ["Dynamic images (val / test videos)", "33.3", "23.3"]
    assert rows["Temporal model (Optical-flow)"][3:] == ["40.0", DASH]  # val's value never fills the Test column
