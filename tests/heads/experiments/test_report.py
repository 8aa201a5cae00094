"""The report renders the paper's tables from a fixture of run directories, numbers in the right cells."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from featcache.errors import FeatcacheError
from heads.experiments.report.render import write_report
from heads.experiments.report.runs import collect_runs
from heads.experiments.report.tables import DASH, table1, table2, table3, table4

CLASSES = ["clap", "run", "wave"]


def metrics(method, temporal, still, derived=None, fused=None, experiment="main", **extra):
    per_class = {
        "val": {"still": None, "derived": None, "fused": None},
        "test": {
            "still": {"clap": 50.0, "run": 60.0, "wave": 70.0},
            "derived": None if derived is None else {"clap": 55.0, "run": 50.0, "wave": 70.0},
            "fused": None if fused is None else {"clap": 60.0, "run": 65.0, "wave": 65.0},
        },
    }
    pair = lambda v: None if v is None else {"val": v[0], "test": v[1]}  # noqa: E731
    return {"method": method, "temporal": temporal, "config": {}, "experiment": experiment,
            "still": pair(still), "derived": pair(derived), "fused": pair(fused),
            "per_class": per_class, "seconds": 1.0, **extra}


def write_run(folder: Path, name: str, data: dict) -> None:
    (folder / name).mkdir(parents=True)
    (folder / name / "metrics.json").write_text(json.dumps(data))


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    runs = tmp_path / "runs"
    write_run(runs, "still", metrics("still", None, (88.2, 84.2)))
    write_run(runs, "aug", metrics("aug-frames", None, (87.5, 82.7)))
    write_run(runs, "cls-flow", metrics("classifier", "flow", (88.0, 84.0), temporal_classifier={"test": 71.3}))
    write_run(runs, "cls-dyn", metrics("classifier", "dynamic", (88.0, 84.0), temporal_classifier={"test": 60.0}))
    ft_dyn = metrics("finetune-dynamic", "dynamic", (None, 65.5))
    ft_dyn["still"]["test_ci"] = [58.0, 72.1]  # over the test video instances
    write_run(runs, "ft-dyn", ft_dyn)
    write_run(runs, "gan-flow", metrics("gan", "flow", (88.2, 84.2), (89.3, 83.7), (89.0, 84.0)))
    # Two GAN runs on dynamic images: the better one by fused val (88.6) fills the cells.
    write_run(runs, "gan-dyn-a", metrics("gan", "dynamic", (88.2, 84.2), (88.6, 83.4), (88.6, 83.7)))
    write_run(runs, "gan-dyn-b", metrics("gan", "dynamic", (88.2, 84.2), (80.0, 99.0), (80.0, 99.0)))
    write_run(runs, "grid/embed-dyn", metrics("embed", "dynamic", (88.2, 84.2), (89.0, 83.6), (89.4, 84.4)))
    write_run(runs, "tsn-dyn", metrics("tsn", "dynamic", (88.2, 84.2), (89.3, 84.3), (89.6, 84.7)))
    write_run(runs, "mid-tsn-flow", metrics("tsn", "flow", (76.0, 76.8), (78.0, 79.3), (79.0, 79.4), experiment="midframe"))
    mid_still = metrics("still", None, (75.0, 76.8), experiment="midframe")
    mid_still["still"]["test_ci"] = [70.1, 83.0]
    write_run(runs, "mid-still", mid_still)
    oracle = lambda m, s: {"val": {"mean": m, "std": s}, "test": {"mean": m + 1, "std": s / 2}}  # noqa: E731
    write_run(runs, "oracle/flow", metrics("oracle", "flow", (88.2, 84.2), fused=(91.6, 88.6), improvement=oracle(3.4, 0.7)))
    write_run(runs, "oracle/dynamic", metrics("oracle", "dynamic", (88.2, 84.2), fused=(92.9, 90.0), improvement=oracle(4.7, 0.6)))
    (runs / "broken").mkdir()
    (runs / "broken" / "metrics.json").write_text("{not json")
    return runs


def test_tables_hold_the_right_numbers(runs_dir):
    report = collect_runs([runs_dir])
    assert len(report.runs) == 14 and len(report.skipped) == 1

    t1 = {row[0]: row for row in table1(report)[1:]}
    assert t1["Still image"][3:] == ["88.2", "84.2"]
    assert t1["Aug. Still+Frame"][3:] == ["87.5", "82.7"]
    assert t1["Temporal model (Optical-flow)"][3:] == [DASH, "71.3"]
    # The fine-tuned backbone wins over the classifier, with its CI over the test instances.
    assert t1["Temporal model (Dynamic images)"][4] == "65.5 [58.0, 72.1]"

    t2 = table2(report)
    assert t2[0] == ["", "Method", "Optical-flow Val", "Optical-flow Test", "Dynamic images Val", "Dynamic images Test"]
    t2 = {(row[0], row[1]): row[2:] for row in t2[1:]}
    assert t2[("Derived temporal", "GAN")] == ["89.3", "83.7", "88.6", "83.4"]
    assert t2[("Fusion with Still", "GAN")] == ["89.0", "84.0", "88.6", "83.7"]
    assert t2[("Fusion with Still", "Triplets Embed.")] == [DASH, DASH, "89.4", "84.4"]
    assert t2[("Fusion with Still", "TSN")] == [DASH, DASH, "89.6", "84.7"]

    t3 = {row[0]: row[1:] for row in table3(report)[1:]}
    assert t3["TSN"] == ["79.3", "79.4", DASH, DASH]
    assert t3["GAN"] == [DASH] * 4

    t4 = table4(report)
    assert t4[1] == ["Oracle (paper fusion)", "3.4 ± 0.7", "4.4 ± 0.3", "4.7 ± 0.6", "5.7 ± 0.3"]


def test_report_files_render(runs_dir, tmp_path):
    out = tmp_path / "report"
    report, tables, md_path = write_report([runs_dir], out)
    text = md_path.read_text()
    assert "| Derived temporal | GAN | 89.3 | 83.7 | 88.6 | 83.4 |" in text
    assert "| Oracle (paper fusion) | 3.4 ± 0.7 | 4.4 ± 0.3 | 4.7 ± 0.6 | 5.7 ± 0.3 |" in text
    assert "Still baseline on test mid-frames: 76.8% [70.1, 83.0]." in text
    assert "(Val: 88.2%, Test: 84.2%)" in text  # the oracle's still stream (no CI in this fixture)
    assert "Table 2 Derived temporal TSN Optical-flow val" in text  # missing cells are named in the notes
    assert "Skipped:" in text and "broken" in text
    html = (out / "report.html").read_text()
    assert "<table>" in html and "<td>89.3</td>" in html
    # One class-wise figure per T2SIL run shown in Tables 2-3, all real PNGs linked from the report.
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert pngs == ["main-embed-dynamic.png", "main-gan-dynamic.png", "main-gan-flow.png",
                    "main-tsn-dynamic.png", "midframe-tsn-flow.png"]
    for name in pngs:
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{name}" in text


def test_class_improvements_are_differences_from_the_still_stream():
    from heads.experiments.report.plots import class_improvements

    improvements = class_improvements(metrics("tsn", "flow", (1, 1), (1, 1), (1, 1))["per_class"])
    assert improvements["derived"] == {"clap": 5.0, "run": -10.0, "wave": 0.0}
    assert improvements["fused"] == {"clap": 10.0, "run": 5.0, "wave": -5.0}


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FeatcacheError, match="no metrics.json found"):
        collect_runs([tmp_path])
    with pytest.raises(FeatcacheError, match="runs folder not found"):
        collect_runs([tmp_path / "nope"])


def test_best_run_is_chosen_on_val_only_and_unranked_runs_are_named(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "gan-a", metrics("gan", "flow", (80.0, 80.0), (70.0, 70.0), (81.0, 72.0), temporal_val={}))
    write_run(runs, "gan-b", metrics("gan", "flow", (None, 80.0), (None, 99.0), (None, 99.0)))  # best on test only
    write_run(runs, "ft-1", metrics("finetune-flow", "flow", (None, 60.0), config={"selected_on": "test"}))
    write_run(runs, "ft-2", metrics("finetune-flow", "flow", (None, 90.0), config={"selected_on": "test"}))
    write_run(runs, "ft-dyn", metrics("finetune-dynamic", "dynamic", (None, 50.0)))
    report = collect_runs([runs])
    assert report.best("gan", "flow").path.name == "gan-a"  # never gan-b, whatever its test accuracy
    assert report.best("finetune-flow", "flow") is None  # two runs without val: not ranked on test
    assert report.best("finetune-dynamic", "dynamic").path.name == "ft-dyn"  # the cell's only run
    assert {Path(p).name for p in report.unranked} == {"gan-b", "ft-1", "ft-2", "ft-dyn"}
    _, _, md_path = write_report([runs], tmp_path / "report")
    text = md_path.read_text()
    assert "## Protocol" in text and "One departure from the paper" in text
    assert "Not ranked:" in text and "gan-b" in text
    assert "older featcache that chose epochs or temperatures on test data" in text and "ft-1" in text


def test_demo_stage_times_reach_the_report_header(runs_dir, tmp_path):
    from heads.experiments.demo import Stages
    from heads.experiments.report.render import STAGE_TIMES_FILE, read_stage_times

    stages = Stages(runs_dir / STAGE_TIMES_FILE)
    stages.run("synthetic dataset", lambda: None)
    assert [name for name, _ in read_stage_times([runs_dir])] == ["synthetic dataset"]  # kept after every stage
    stages.run("heads", lambda: sum(range(1000)))
    times = read_stage_times([tmp_path / "elsewhere", runs_dir])
    assert [name for name, _ in times] == ["synthetic dataset", "heads"] and all(s >= 0 for _, s in times)
    _, _, md_path = write_report([runs_dir], tmp_path / "report", plots=False)
    header = md_path.read_text(encoding="utf-8").split("## ")[0]
    assert "Wall time of each stage before this report: synthetic dataset " in header and "heads " in header
    assert "total" in header
    (runs_dir / STAGE_TIMES_FILE).write_text("not json", encoding="utf-8")
    assert read_stage_times([runs_dir]) == []  # a damaged record is left out, not an error


def test_report_shows_the_transfer_table_and_names_a_damaged_one(runs_dir, tmp_path):
    import json

    records = [{"arm": "method", "method": "tsn", "temporal": "dynamic", "data_seed": 23, "gain": 7.2,
                "ci": [3.6, 10.9], "ci_family": [1.5, 12.9], "p": 1e-4, "p_holm": 0.002, "derived_gain": 5.2,
                "derived_ci": [1.0, 9.5], "still_test": 54.2, "direction_right": 63.0},
               {"arm": "cue0", "method": "gan", "temporal": "dynamic", "data_seed": 23, "gain": -0.4, "ci": [-2.0, 1.1],
                "ci_family": [-3.1, 2.2], "p": 0.6, "p_holm": 1.0, "derived_gain": -1.0, "derived_ci": [-3.0, 1.0],
                "still_test": 44.1, "direction_right": None}]
    (runs_dir / "transfer.json").write_text(json.dumps(records))
    text = write_report([runs_dir], tmp_path / "report", plots=False)[2].read_text()
    assert "## Transfer (method-positive control)" in text
    assert "| 23 | method | tsn | 54.2 | +5.2 [+1.0, +9.5] | +7.2 [+3.6, +10.9] | [+1.5, +12.9] | 0.002 | 63% |" in text
    assert "| 23 | cue0 | gan | 44.1 | -1.0 [-3.0, +1.0] | -0.4 [-2.0, +1.1] | [-3.1, +2.2] | 1.000 | - |" in text
    (runs_dir / "transfer.json").write_text("[{")  # half-written: said in its section, the report still written
    text = write_report([runs_dir], tmp_path / "report", plots=False)[2].read_text()
    assert f"Not shown: {runs_dir / 'transfer.json'}: cannot read it" in text
    (runs_dir / "transfer.json").unlink()
    assert "## Transfer" not in write_report([runs_dir], tmp_path / "report", plots=False)[2].read_text()
