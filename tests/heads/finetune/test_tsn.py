"""``featcache tsn``: freezing, co-class pairing, cached vs live teacher targets, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from featcache.backbones import create_backbone, load_checkpoint
from featcache.data.dataset import FolderDataset
from featcache.errors import CacheError, DatasetError
from featcache.backbones.preprocessing import build_transform, preprocessing_config
from featcache.cache.schema import SPLIT_CODE, mark_complete, write_root_attrs, write_rows
from heads.finetune import engine, tsn
from heads.losses.distillation_loss import DistillationLoss
from heads.finetune.datasets import CoClassPairs, StillImages, TemporalInstances, sample_co_class_partners
from heads.finetune.defaults import TSNSettings
from tests.heads.finetune.test_finetune import CLASSES, CPU_RUN, CROP, RESIZE, TINY, make_dataset, run_finetune

# TinyNet has conv1..conv4: the last three (conv2-4), their BNs and the head train.
INTENDED = ("conv2.", "bn2.", "conv3.", "bn3.", "conv4.", "bn4.", "head.")


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory) -> Path:
    """Tiny dataset with a fine-tuned still model and dynamic teacher at their default paths."""
    root = make_dataset(tmp_path_factory.mktemp("tsn"))
    models = root / "cache" / "models"
    for modality in ("still", "dynamic"):
        run_finetune(root, modality, root, epochs=2, out=models / f"{modality}-{TINY}.pt",
                     run_dir=root / f"ft-{modality}")
    return root


def run_tsn(root: Path, out: Path, **kwargs):
    paths = dict(cache_dir=root / "cache", out=out, resume=None)
    options = dict(temporal="dynamic", backbone=TINY, epochs=2, lr=1e-3, batch_size=8, crop=CROP, resize=RESIZE,
                   device="cpu", seed=0)
    for name, value in kwargs.items():
        (paths if name in paths else options)[name] = value
    return tsn.train_tsn(root, TSNSettings(**options), **paths)


def test_resnet50_trains_only_the_last_bottleneck_convs_and_head():
    model = create_backbone("resnet50", weights="random", num_classes=4)
    names = tsn.freeze_for_tsn(model)
    expected = [f"model.layer4.2.{layer}.{p}" for i in (1, 2, 3) for layer, ps in
                ((f"conv{i}", ("weight",)), (f"bn{i}", ("weight", "bias"))) for p in ps] + ["head.weight", "head.bias"]
    assert names == expected
    assert sum(p.requires_grad for p in model.parameters()) == len(expected)


def test_efficientnet_lite0_trains_its_last_three_convs_in_forward_order():
    model = create_backbone("efficientnet-lite0", weights="random", num_classes=4)
    names = tsn.freeze_for_tsn(model)
    convs = [n for n in names if "conv" in n]
    assert convs == ["model._blocks.15._depthwise_conv.weight", "model._blocks.15._project_conv.weight",
                     "model._conv_head.weight"]
    assert names[-2:] == ["head.weight", "head.bias"]


def test_co_class_pairs_are_same_class_seeded_and_redrawn_each_epoch():
    still = np.array([0, 0, 1, 1, 2, 2, 2])
    temporal = np.array([2, 0, 1, 0, 2, 1, 2, 0])
    a = sample_co_class_partners(still, temporal, seed=3, epoch=0)
    assert (temporal[a] == still).all()
    assert (a == sample_co_class_partners(still, temporal, seed=3, epoch=0)).all()
    draws = {tuple(sample_co_class_partners(still, temporal, seed=3, epoch=e)) for e in range(6)}
    assert len(draws) > 1
    with pytest.raises(DatasetError, match="class index 2"):
        sample_co_class_partners(still, np.array([0, 1]), seed=0, epoch=0)


def teacher_and_instances(root: Path):
    teacher = tsn.load_model(root / "cache" / "models" / f"dynamic-{TINY}.pt", "dynamic", CLASSES, "teacher")
    teacher.eval().requires_grad_(False)
    instances = TemporalInstances(root / "cache" / "temporal.h5", "dynamic", "train",
                                  build_transform("dynamic", train=False, crop=CROP, resize=RESIZE))
    return teacher, instances


def write_feature_cache(path: Path, instances, logits: torch.Tensor, *, weights: str, crop: int, views: int = 2):
    """A temporal feature cache in the CONTRACT schema, rows shuffled, ``views`` views (view 0 = centre)."""
    order = np.random.default_rng(1).permutation(len(instances))
    n, c = len(order), logits.shape[1]
    noise = torch.randn(n, views - 1, c) * 5  # other views must not be read
    view_logits = torch.cat([logits[order][:, None], noise], dim=1)
    with h5py.File(path, "w") as f:
        write_root_attrs(f, modality="dynamic", backbone=TINY, weights=weights, classes=CLASSES,
                         preprocessing=preprocessing_config("dynamic", crop=crop, resize=RESIZE))
        f.create_dataset("features", data=np.zeros((n, views, 4), np.float32))
        f.create_dataset("logits", data=view_logits.numpy())
        write_rows(f, labels=instances.labels[order], split=np.full(n, SPLIT_CODE["train"]),
                   source=[instances.sources[i] for i in order], instance=instances.instances[order])
        mark_complete(f)


def test_cached_targets_equal_the_live_teacher(trained_root, tmp_path):
    teacher, instances = teacher_and_instances(trained_root)
    with torch.no_grad():  # brute force: the teacher on each centre crop, one at a time
        live = torch.cat([teacher(instances[i][0][None]) for i in range(len(instances))])
    computed = tsn.compute_teacher_logits(teacher, instances, torch.device("cpu"), engine.DistEnv(),
                                          batch_size=5, workers=0, amp=False, channels_last=False)
    assert torch.allclose(computed, live, atol=1e-5)

    cache_file = tmp_path / f"dynamic-{TINY}.h5"
    write_feature_cache(cache_file, instances, live, weights=teacher.weights_id, crop=CROP)
    looked_up, why = tsn.targets_from_feature_cache(cache_file, instances.keys(), teacher_id=teacher.weights_id,
                                                    classes=CLASSES, crop=CROP, resize=RESIZE)
    assert looked_up is not None, why
    assert torch.allclose(looked_up, live, atol=1e-6)
    # A cache extracted with other weights or at another crop is not used.
    assert tsn.targets_from_feature_cache(cache_file, instances.keys(), teacher_id="0" * 64, classes=CLASSES,
                                          crop=CROP, resize=RESIZE)[0] is None
    write_feature_cache(cache_file, instances, live, weights=teacher.weights_id, crop=CROP - 4)
    assert tsn.targets_from_feature_cache(cache_file, instances.keys(), teacher_id=teacher.weights_id,
                                          classes=CLASSES, crop=CROP, resize=RESIZE)[0] is None

    # Through the pairs: a live batch run through the teacher equals the cached rows of the same pairs.
    dataset = FolderDataset(trained_root)
    stills = StillImages(dataset, "train", build_transform("still", train=False, crop=CROP, resize=RESIZE))
    live_pairs = CoClassPairs(stills, instances.labels, instances, seed=4)
    cached_pairs = CoClassPairs(stills, instances.labels, computed, seed=4)
    live_pairs.set_epoch(2), cached_pairs.set_epoch(2)
    for i in range(0, len(stills), 5):
        image_a, temporal_input = live_pairs[i]
        image_b, target = cached_pairs[i]
        assert torch.equal(image_a, image_b)
        with torch.no_grad():
            assert torch.allclose(teacher(temporal_input[None])[0], target, atol=1e-5)


def fit_student(root: Path, targets, *, targets_fn=None, checkpoint: Path):
    student = tsn.load_model(root / "cache" / "models" / f"still-{TINY}.pt", "still", CLASSES, "student")
    tsn.freeze_for_tsn(student)
    _, instances = teacher_and_instances(root)
    dataset = FolderDataset(root)
    stills = StillImages(dataset, "train", build_transform("still", train=True, crop=CROP, resize=RESIZE))
    val = StillImages(dataset, "val", build_transform("still", train=False, crop=CROP, resize=RESIZE))
    pairs = CoClassPairs(stills, instances.labels, targets if targets is not None else instances, seed=0)
    # Plain SGD: RMSProp's 1/sqrt(v) would blow float round-off (batching) up into visible differences.
    optimizer = torch.optim.SGD([p for p in student.parameters() if p.requires_grad], lr=0.05)
    engine.seed_everything(0)
    objective = engine.Objective(DistillationLoss(10.0), lambda logits: 0.0, targets_fn=targets_fn)
    state = engine.fit(student, optimizer, None, objective, pairs, val, CPU_RUN, epochs=2, batch_size=8,
                       checkpoint_path=checkpoint, run_key={})
    return student, state


def test_live_and_cached_targets_train_the_same_student(trained_root, tmp_path):
    teacher, instances = teacher_and_instances(trained_root)
    cached = tsn.compute_teacher_logits(teacher, instances, torch.device("cpu"), engine.DistEnv(),
                                        batch_size=8, workers=0, amp=False, channels_last=False)
    a, state_a = fit_student(trained_root, None, targets_fn=teacher, checkpoint=tmp_path / "a.pt")
    b, state_b = fit_student(trained_root, cached, checkpoint=tmp_path / "b.pt")
    for name, value in a.state_dict().items():
        assert torch.allclose(value.float(), b.state_dict()[name].float(), atol=1e-5), name
    for x, y in zip(state_a["history"], state_b["history"]):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5)


def test_tsn_command_with_live_and_cached_targets(trained_root, tmp_path):
    live = run_tsn(trained_root, tmp_path / "live", targets="live", epochs=1)
    cached = run_tsn(trained_root, tmp_path / "cached", targets="cached", epochs=1)
    assert (tmp_path / "cached" / tsn.TARGETS_FILE).exists()  # no feature cache here: computed once, stored
    loss = lambda run: load_checkpoint(tmp_path / run / tsn.MODEL_FILE)["extra"]["history"][0]["loss_distillation"]
    assert loss("live") == pytest.approx(loss("cached"), rel=1e-3)
    assert live["still"] == cached["still"]


def test_tsn_changes_only_the_intended_parameters(trained_root, tmp_path):
    metrics = run_tsn(trained_root, tmp_path / "run", epochs=3)
    before = load_checkpoint(trained_root / "cache" / "models" / f"still-{TINY}.pt")["state_dict"]
    state = engine.load_training_state(tmp_path / "run" / tsn.CHECKPOINT_FILE)
    after = state["model"]  # the last epoch's weights: what training changed (the kept epoch may be 0)
    kept = load_checkpoint(tmp_path / "run" / tsn.MODEL_FILE)
    assert kept["extra"]["best_epoch"] == state["best_epoch"] == metrics["config"]["best_epoch"]
    assert state["best_score"] >= state["start_score"]  # the student as it started was the one to beat
    if state["best_epoch"] == 0:
        assert all(torch.equal(before[name], kept["state_dict"][name]) for name in before)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed, "nothing trained"
    assert all(name.startswith(INTENDED) for name in changed), sorted(changed)
    assert {"conv4.weight", "head.weight", "conv2.weight"} <= changed
    assert not any(name.startswith(("conv1.", "bn1.")) for name in changed)  # running stats included

    # metrics: still = the still model, derived = the student, fused = their mean softmax
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["method"] == "tsn" and saved["temporal"] == "dynamic"
    assert all(saved[s]["val"] is not None and saved[s]["test"] is not None for s in ("still", "derived", "fused"))
    still_run = json.loads((trained_root / "ft-still" / "metrics.json").read_text())
    assert saved["still"] == still_run["still"]
    assert metrics["config"]["temperature"] == tsn.TEMPERATURE["dynamic"] == 10.0
    history = load_checkpoint(tmp_path / "run" / tsn.MODEL_FILE)["extra"]["history"]
    assert history[-1]["loss_distillation"] < history[0]["loss_distillation"]


def test_teacher_never_changes_while_the_student_learns(trained_root):
    teacher, instances = teacher_and_instances(trained_root)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = tsn.load_model(trained_root / "cache" / "models" / f"still-{TINY}.pt", "still", CLASSES, "student")
    tsn.freeze_for_tsn(student)
    dataset = FolderDataset(trained_root)
    stills = StillImages(dataset, "train", build_transform("still", train=True, crop=CROP, resize=RESIZE))
    val = StillImages(dataset, "val", build_transform("still", train=False, crop=CROP, resize=RESIZE))
    pairs = CoClassPairs(stills, instances.labels, instances, seed=0)
    optimizer = torch.optim.RMSprop([p for p in student.parameters() if p.requires_grad], lr=1e-3)
    objective = engine.Objective(DistillationLoss(10.0), lambda logits: 0.0, targets_fn=teacher)
    state = engine.fit(student, optimizer, None, objective, pairs, val, CPU_RUN, epochs=4, batch_size=8,
                       checkpoint_path=Path(str(trained_root)) / "fit-teacher" / "ckpt.pt", run_key={"t": 1})
    losses = [h["loss"] for h in state["history"]]
    assert losses[-1] < losses[0]
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, teacher_before[name]), name


def test_missing_still_model_says_what_to_run(trained_root, tmp_path):
    with pytest.raises(CacheError, match="finetune still"):
        run_tsn(trained_root, tmp_path / "x", student=tmp_path / "none.pt")
    with pytest.raises(CacheError, match="trained on still, expected dynamic"):
        run_tsn(trained_root, tmp_path / "x", teacher=trained_root / "cache" / "models" / f"still-{TINY}.pt")


def cli_tsn(root: Path, run: Path, *extra: str) -> dict:
    from typer.testing import CliRunner

    from cli.app import app

    result = CliRunner().invoke(app, ["tsn", str(root), "--cache", str(root / "cache"), "--out", str(run), *extra])
    assert result.exit_code == 0, result.output
    return json.loads((run / "metrics.json").read_text())


def test_config_yaml_reruns_tsn_with_identical_metrics(trained_root, tmp_path):
    first = cli_tsn(trained_root, tmp_path / "a", "--temporal", "dynamic", "--backbone", TINY, "--epochs", "1",
                    "--lr", "0.001", "--batch-size", "8", "--crop", str(CROP), "--resize", str(RESIZE),
                    "--device", "cpu", "--seed", "2", "--targets", "live")
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert saved["temperature"] == tsn.TEMPERATURE["dynamic"] and saved["targets"] == "live" and saved["seed"] == 2
    assert TSNSettings(**saved).as_dict() == saved
    again = cli_tsn(trained_root, tmp_path / "b", "--config", str(tmp_path / "a" / "config.yaml"))
    for stream in ("still", "derived", "fused"):
        assert again[stream] == first[stream], stream
    assert again["per_class"] == first["per_class"] and again["config"] == first["config"]
    wins = cli_tsn(trained_root, tmp_path / "c", "--config", str(tmp_path / "a" / "config.yaml"), "--targets", "cached")
    assert wins["config"]["targets"] == "cached" and wins["config"]["seed"] == 2  # the command line wins


@pytest.mark.parametrize("scores, kept", [((0.5, 0.4, 0.3), 0), ((0.5, 0.4, 0.6), 2), ((0.5, 0.5, 0.5), 0)])
def test_keep_start_keeps_the_starting_model_unless_an_epoch_beats_it(trained_root, tmp_path, scores, kept):
    """``engine.fit(keep_start=True)`` (TSN's selection): the model as it starts is epoch 0; a trained
    epoch is kept only when its val score is higher, else the model comes back unchanged."""
    student = tsn.load_model(trained_root / "cache" / "models" / f"still-{TINY}.pt", "still", CLASSES, "student")
    tsn.freeze_for_tsn(student)
    start = {k: v.clone() for k, v in student.state_dict().items()}
    dataset = FolderDataset(trained_root)
    stills = StillImages(dataset, "train", build_transform("still", train=True, crop=CROP, resize=RESIZE))
    val = StillImages(dataset, "val", build_transform("still", train=False, crop=CROP, resize=RESIZE))
    _, instances = teacher_and_instances(trained_root)
    pairs = CoClassPairs(stills, instances.labels, instances, seed=0)
    given = iter(scores)  # epoch 0, 1, 2's val scores, whatever the logits
    objective = engine.Objective(DistillationLoss(10.0), lambda logits: next(given), targets_fn=teacher_and_instances(trained_root)[0])
    optimizer = torch.optim.SGD([p for p in student.parameters() if p.requires_grad], lr=0.05)
    state = engine.fit(student, optimizer, None, objective, pairs, val, CPU_RUN, epochs=2, batch_size=8,
                       checkpoint_path=tmp_path / "state.pt", run_key={}, keep_start=True)
    assert state["best_epoch"] == kept and state["start_score"] == scores[0]
    unchanged = all(torch.equal(start[k], v) for k, v in student.state_dict().items())
    assert unchanged == (kept == 0)
