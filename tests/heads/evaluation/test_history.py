"""Learning curves: ``RUN_DIR/history.jsonl`` (+ TensorBoard events) from heads, grids, fine-tuning; report plots."""

import json

import pytest
import torch
from torch.utils.data import TensorDataset
from typer.testing import CliRunner

from cli.app import app
from heads.finetune import engine
from heads.training.methods import default_config
from heads.evaluation.history import History, read_history, tensorboard_available
from tests.heads_fixtures import synthetic_cache_dir  # noqa: F401
from tests.cli.test_heads_cli import FAST_SETS, PLAIN_EPOCHS, sets

# every part runs exactly the epochs given (no step minimum), so the curves' lengths are known
EXACT_EPOCHS = [*PLAIN_EPOCHS, "min_steps=1"]


def lines(run_dir, phase=None):
    entries = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    return [e for e in entries if phase is None or e["phase"] == phase]


def test_history_appends_one_line_per_record_and_restarts_clean(tmp_path):
    history = History(tmp_path / "run", tensorboard=False)
    history.record("gan", 1, {"loss_d": torch.tensor(0.5), "val_fused": 80.0, "lr": 1e-3})
    history.record("gan", 2, {"loss_d": torch.tensor(0.25), "val_fused": float("nan"), "lr": 1e-3})
    assert lines(tmp_path / "run") == [
        {"phase": "gan", "epoch": 1, "loss_d": 0.5, "val_fused": 80.0, "lr": 0.001},
        {"phase": "gan", "epoch": 2, "loss_d": 0.25, "val_fused": None, "lr": 0.001},
    ]
    assert not (tmp_path / "run" / "tensorboard").exists()
    History(tmp_path / "run", tensorboard=False).start([{"phase": "x", "epoch": 1}])  # a rerun replaces the curve
    assert read_history(tmp_path / "run") == [{"phase": "x", "epoch": 1}]


@pytest.mark.skipif(not tensorboard_available(), reason="tensorboard not installed")
def test_tensorboard_events_hold_the_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with History(tmp_path) as history:
        for epoch in (1, 2, 3):
            history.record("embed", epoch, {"loss_triplet": 1.0 / epoch, "search_depth": 64})
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"embed/loss_triplet", "embed/search_depth"}
    assert [round(e.value, 4) for e in events.Scalars("embed/loss_triplet")] == [1.0, 0.5, 0.3333]


def test_train_head_gan_and_embed_write_every_epochs_losses(synthetic_cache_dir, tmp_path):
    embed_sets = [s for s in FAST_SETS if not s.startswith(("d2=", "batch_size="))] + ["classifier_epochs=2", "classifier_min_steps=1"]
    for method, keys, options in (
        ("gan", {"loss_d", "loss_g", "loss_aux"}, FAST_SETS),
        ("embed", {"loss_triplet", "semi_hard_share", "search_depth", "search_resolved_share"}, embed_sets),
    ):
        run = tmp_path / method
        result = CliRunner().invoke(app, ["train-head", method, "--cache", str(synthetic_cache_dir), "--temporal",
                                          "flow", "--out", str(run), "--device", "cpu", *sets(*EXACT_EPOCHS, *options, "epochs=3")])
        assert result.exit_code == 0, result.output
        head = lines(run, method)
        assert [e["epoch"] for e in head] == [1, 2, 3]
        assert all(keys | {"val_still", "val_derived", "val_fused", "lr"} <= set(e) for e in head)
        assert all(isinstance(e[k], float) and e[k] >= 0 for e in head for k in keys if k.startswith("loss"))
        if method == "gan":
            assert [e["epoch"] for e in lines(run, "still")] == [1, 2, 3, 4, 5]  # still_epochs=5
            assert all({"loss", "val_still", "lr"} <= set(e) for e in lines(run, "still"))
        else:  # the GAN's still model, stored in <cache>/heads, is reused: no curve of its own
            assert lines(run, "still") == [] and json.loads((run / "metrics.json").read_text())["still_source"] == "reused"
        assert (run / "tensorboard").is_dir() == tensorboard_available()
    embed = lines(tmp_path / "embed", "embed")
    assert all(0 <= e["semi_hard_share"] <= 1 and e["search_depth"] >= 0 for e in embed)
    assert [e["epoch"] for e in lines(tmp_path / "embed", "embed_classifier")] == [1, 2]


def test_every_grid_member_has_its_own_history(synthetic_cache_dir, tmp_path):
    result = CliRunner().invoke(app, ["grid", "gan", "--cache", str(synthetic_cache_dir), "--temporal", "flow",
                                      "--out", str(tmp_path / "g"), "--device", "cpu",
                                      *sets(*EXACT_EPOCHS, *FAST_SETS, "lr=1e-3,5e-4")])
    assert result.exit_code == 0, result.output
    runs = sorted(p.parent for p in (tmp_path / "g").rglob("metrics.json"))
    assert len(runs) == 2
    lrs = sorted(lines(run, "gan")[0]["lr"] for run in runs)
    assert lrs == [5e-4, 1e-3] and all(len(lines(run, "gan")) == 2 for run in runs)


def test_finetune_engine_records_loss_lr_and_val_and_resumes_the_curve(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    data = TensorDataset(x, y)

    def run(epochs):
        model = torch.nn.Linear(8, 3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
        objective = engine.Objective(torch.nn.CrossEntropyLoss(),
                                     lambda logits: float((logits.argmax(1) == y).float().mean() * 100))
        cpu = engine.RunContext(engine.DistEnv(), torch.device("cpu"), amp=False, channels_last=False, workers=0, start=0)
        return engine.fit(model, optimizer, scheduler, objective, data, data, cpu, epochs=epochs, batch_size=16,
                          checkpoint_path=tmp_path / "checkpoint.pt", run_key={"k": 1}, log=lambda m: None)

    run(2)
    run(4)  # resumes after epoch 2
    entries = lines(tmp_path, "finetune")
    assert [e["epoch"] for e in entries] == [1, 2, 3, 4]
    assert entries[0]["lr"] == pytest.approx(0.1) and entries[-1]["lr"] < entries[1]["lr"]  # cosine decay
    assert all({"loss", "val", "seconds"} <= set(e) for e in entries)


def test_report_plots_the_learning_curves(synthetic_cache_dir, tmp_path):
    from heads.experiments.report.render import write_report

    run = tmp_path / "runs" / "gan"
    result = CliRunner().invoke(app, ["train-head", "gan", "--cache", str(synthetic_cache_dir), "--temporal", "flow",
                                      "--out", str(run), "--device", "cpu", *sets(*EXACT_EPOCHS, *FAST_SETS)])
    assert result.exit_code == 0, result.output
    _, _, path = write_report([tmp_path / "runs"], tmp_path / "report")
    pngs = list((tmp_path / "report" / "figures").glob("curves-*gan*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## Learning curves" in path.read_text() and pngs[0].name in path.read_text()


def test_finetune_and_tsn_runs_write_history_in_their_run_folder(tmp_path):
    from tests.heads.finetune.test_finetune import TINY, make_dataset, run_finetune
    from tests.heads.finetune.test_tsn import run_tsn

    root = make_dataset(tmp_path / "data")
    for modality in ("still", "dynamic"):
        run_finetune(root, modality, tmp_path, epochs=2, out=root / "cache" / "models" / f"{modality}-{TINY}.pt")
    assert [(e["phase"], e["epoch"]) for e in lines(tmp_path / "run-still")] == [("finetune", 1), ("finetune", 2)]
    assert all({"loss_ce", "val", "lr"} <= set(e) for e in lines(tmp_path / "run-still"))
    run_tsn(root, tmp_path / "tsn", epochs=2)
    entries = lines(tmp_path / "tsn", "tsn")
    assert [e["epoch"] for e in entries] == [1, 2]
    assert all({"loss_distillation", "val_still", "val_derived", "val_fused", "lr"} <= set(e) for e in entries)


def test_baseline_and_oracle_runs_leave_curves_and_config(synthetic_cache_dir, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["baseline", "still", "--cache", str(synthetic_cache_dir), "--out", str(tmp_path / "b"),
                                 "--device", "cpu", "--set", "still_epochs=4", "--set", "still_min_steps=1"])
    assert result.exit_code == 0, result.output
    assert [e["epoch"] for e in lines(tmp_path / "b", "still")] == [1, 2, 3, 4]
    assert (tmp_path / "b" / "config.yaml").is_file()
    again = runner.invoke(app, ["baseline", "still", "--cache", str(synthetic_cache_dir), "--out", str(tmp_path / "c"),
                                "--device", "cpu", "--config", str(tmp_path / "b" / "config.yaml")])
    assert again.exit_code == 0, again.output
    first, second = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "bc")
    assert first["still"] == second["still"] and first["config"] == second["config"]
    result = runner.invoke(app, ["oracle", "--cache", str(synthetic_cache_dir), "--temporal", "flow", "--runs", "3",
                                 "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    phases = [e["phase"] for e in lines(tmp_path / "o" / "flow")]
    still = default_config("classifier", "flow")  # the oracle's still model: its default epochs (a small set: more passes each)
    assert phases.count("still") == still["still_epochs"] and set(phases) <= {"still", "dimred"}  # dimred may be reused from the cache
    assert (tmp_path / "o" / "flow" / "config.yaml").is_file()
