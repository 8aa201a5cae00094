"""A fine-tuning run's log says which split selects the epoch (the val videos of a temporal model)
and names a temporal model's row by its modality, not ``still`` (issue 25)."""

from __future__ import annotations

import pytest

from featcache.errors import CacheError
from featcache.utils import progress
from heads.finetune.tsn import load_model
from tests.heads.finetune.test_finetune import run_finetune, tiny_root  # noqa: F401


def test_temporal_finetune_log_names_the_selecting_split_and_the_model(tiny_root, tmp_path, monkeypatch, capsys):  # noqa: F811
    lines = []
    monkeypatch.setattr(progress.console, "print", lambda text="", *a, **k: lines.append(str(text)))
    metrics = run_finetune(tiny_root, "dynamic", tmp_path, epochs=2)
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 2
    assert all("loss_ce" in line and ", val videos " in line and "(selects the epoch; best" in line
               for line in epochs), epochs
    assert not any("test" in line for line in epochs)
    table = capsys.readouterr().out
    assert "dynamic model" in table and "│ still " not in table
    assert f"epoch {metrics['config']['best_epoch']} kept, selected on val videos" in table


def test_missing_model_hint_writes_where_the_run_looks(tmp_path):
    path = tmp_path / "my-cache" / "models" / "dynamic-resnet50.pt"
    with pytest.raises(CacheError, match=rf"run `featcache finetune dynamic ROOT --model {path}` first"):
        load_model(path, "dynamic", ["a", "b"], "teacher (temporal)")


def test_tsn_says_what_its_loss_is_its_floor_and_a_one_class_teacher():
    import math

    import torch

    from heads.finetune.tsn import explain_targets

    uniform = explain_targets(torch.eye(4) * 1e-3, 10.0, ["a", "b", "c", "d"])  # near-uniform, 4 classes predicted
    assert len(uniform) == 1 and "T² x cross-entropy" in uniform[0]
    assert f"{100 * math.log(4):.1f} here" in uniform[0]  # 138.6: the floor the loss sat on
    one_class = torch.tensor([[0.0, 2.5, -0.5, -0.3]]).repeat(6, 1)
    lines = explain_targets(one_class, 10.0, ["a", "b", "c", "d"])
    assert len(lines) == 2 and "the teacher predicts b for all 6 temporal training instances" in lines[1]
    mixed = torch.eye(4) * 3
    assert len(explain_targets(mixed, 10.0, ["a", "b", "c", "d"])) == 1  # several classes: no warning
