"""``heads.load_run``: a run's model applied to its own test stills gives its recorded test predictions
(GAN, classifier, TSN, fine-tuning), and runs whose weights are gone or changed are refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from featcache.backbones import create_backbone, save_checkpoint
from featcache.backbones.preprocessing import build_transform
from featcache.cache.feature_cache import FeatureCache
from featcache.data.dataset import FolderDataset
from featcache.errors import FeatcacheError, MediaError
from featcache.media.images import read_image
from heads import load_run
from heads.evaluation.metrics import accuracy, fused_streams, softmax
from heads.finetune import engine, tsn
from heads.finetune.datasets import StillImages, TemporalInstances
from heads.training.checkpoint import MODEL_FILE, load_head_checkpoint, save_head_checkpoint
from tests.heads.finetune.test_finetune import CLASSES, CROP, RESIZE, TINY

TOLERANCE = 1e-5  # probabilities, on the CPU


def labels_of(runs) -> np.ndarray:
    return np.array([s.label for s in FolderDataset(runs.root).stills("test")])


def assert_accuracies_as_recorded(predicted: dict, labels: np.ndarray, metrics: dict) -> None:
    for stream, probs in predicted.items():
        assert round(accuracy(probs, labels), 4) == metrics[stream]["test"], stream
        confusion = np.zeros((len(CLASSES), len(CLASSES)), int)
        np.add.at(confusion, (labels, probs.argmax(1)), 1)
        assert confusion.tolist() == metrics[stream]["confusion"], stream


def test_gan_run_predicts_its_recorded_test_predictions(trained_runs):
    recorded = trained_runs.gan
    run = load_run(recorded.run_dir, device="cpu")
    assert run.classes == CLASSES and run.streams == ("still", "derived", "fused", "fused_calibrated")
    predicted = run.predict(trained_runs.test_stills())
    for stream in ("still", "derived", "fused"):
        np.testing.assert_allclose(predicted[stream], recorded.predictions[stream]["test"].numpy(), atol=TOLERANCE)
    temperatures = json.loads((recorded.run_dir / "metrics.json").read_text())["temperatures"]
    calibrated = fused_streams(recorded.predictions["still"]["test"], recorded.predictions["derived"]["test"],
                               temperatures)["fused_calibrated"]
    np.testing.assert_allclose(predicted["fused_calibrated"], calibrated, atol=TOLERANCE)
    assert_accuracies_as_recorded(predicted, labels_of(trained_runs), recorded.metrics)
    for stream in run.streams:
        np.testing.assert_allclose(predicted[stream].sum(1), 1.0, atol=1e-5)


def test_predict_features_and_arrays_equal_the_image_path(trained_runs):
    """The head alone on the cache's test features gives the recorded predictions; decoded arrays
    give what their paths give."""
    recorded = trained_runs.gan
    run = load_run(recorded.run_dir / MODEL_FILE, device="cpu")
    test = FeatureCache.open(load_head_checkpoint(recorded.run_dir / MODEL_FILE)["still_cache"]).split("test")
    from_features = run.predict_features(test.features)
    for stream in ("still", "derived", "fused"):
        np.testing.assert_allclose(from_features[stream], recorded.predictions[stream]["test"].numpy(), atol=1e-6)
    paths = trained_runs.test_stills()[:4]
    from_arrays = run.predict([read_image(p) for p in paths])
    from_paths = run.predict(paths)
    for stream in run.streams:
        np.testing.assert_array_equal(from_arrays[stream], from_paths[stream])
    with pytest.raises(FeatcacheError, match=r"expected still features \[N, 16\]"):
        run.predict_features(np.zeros((2, 5)))
    with pytest.raises(MediaError, match="image 0: expected a uint8"):
        run.predict([np.zeros((8, 8), np.float32)])


def test_classifier_run_with_the_backbones_logits_as_still_model(trained_runs):
    recorded = trained_runs.classifier
    run = load_run(recorded.run_dir, device="cpu")
    assert recorded.checkpoint["still_model"] == "logits" and run.streams == ("still",)
    predicted = run.predict(trained_runs.test_stills())
    np.testing.assert_allclose(predicted["still"], recorded.predictions["still"]["test"].numpy(), atol=TOLERANCE)
    assert_accuracies_as_recorded(predicted, labels_of(trained_runs), recorded.metrics)
    with pytest.raises(FeatcacheError, match="pass them with the features"):
        run.predict_features(np.zeros((2, 16), np.float32))


def evaluated(model_file: Path, runs) -> torch.Tensor:
    """The fine-tuning engine's softmax of ``model_file`` on the test stills (what training evaluates)."""
    model = tsn.load_model(model_file, "still", CLASSES, "model")
    model = engine.prepare_model(model, torch.device("cpu"), channels_last=True)
    stills = StillImages(FolderDataset(runs.root), "test", build_transform("still", train=False, crop=CROP, resize=RESIZE))
    loader = engine.eval_loader(stills, 8, engine.DistEnv(), workers=0)
    return softmax(engine.evaluate(model, loader, torch.device("cpu"), channels_last=True))


def test_tsn_run_predicts_as_its_training_evaluated(trained_runs):
    run = load_run(trained_runs.tsn, device="cpu")
    assert run.kind == "tsn" and run.streams == ("still", "derived", "fused", "fused_calibrated")
    predicted = run.predict(trained_runs.test_stills())
    metrics = json.loads((trained_runs.tsn / "metrics.json").read_text())
    assert_accuracies_as_recorded(predicted, labels_of(trained_runs), metrics)
    student = evaluated(trained_runs.tsn / MODEL_FILE, trained_runs)
    still = evaluated(trained_runs.root / "cache" / "models" / f"still-{TINY}.pt", trained_runs)
    np.testing.assert_allclose(predicted["derived"], student.numpy(), atol=TOLERANCE)
    np.testing.assert_allclose(predicted["still"], still.numpy(), atol=TOLERANCE)
    expected = fused_streams(still, student, metrics["temperatures"])
    for stream in ("fused", "fused_calibrated"):
        np.testing.assert_allclose(predicted[stream], np.asarray(expected[stream]), atol=TOLERANCE)


def test_finetune_run_folder_and_its_model_file(trained_runs):
    metrics = json.loads((trained_runs.finetune / "metrics.json").read_text())
    by_folder = load_run(trained_runs.finetune, device="cpu")
    by_file = load_run(metrics["model"]["path"], device="cpu")
    assert by_folder.kind == by_file.kind == "finetune" and by_folder.streams == ("still",)
    a, b = by_folder.predict(trained_runs.test_stills()), by_file.predict(trained_runs.test_stills())
    np.testing.assert_array_equal(a["still"], b["still"])
    assert_accuracies_as_recorded(a, labels_of(trained_runs), metrics)
    hand_made = load_run(trained_runs.finetune.parent / "ft-dynamic", device="cpu")  # temporal.h5 not by prepare
    assert hand_made.inputs == "videos"
    with pytest.raises(FeatcacheError, match="records no usable temporal preprocessing"):
        hand_made.predict([trained_runs.root / "nothing.avi"])


def test_temporal_model_labels_videos_as_training_evaluated_their_dynamic_images(video_run):
    """A video's ``temporal`` stream is the mean softmax over the dynamic images ``prepare`` made of it."""
    root, run_dir = video_run
    run = load_run(run_dir, device="cpu")
    assert run.inputs == "videos" and run.streams == ("temporal",) and run.temporal == "dynamic"
    instances = TemporalInstances(root / "cache" / "temporal.h5", "dynamic", "test",
                                  build_transform("dynamic", train=False, crop=CROP, resize=RESIZE))
    model = engine.prepare_model(tsn.load_model(Path(json.loads((run_dir / "metrics.json").read_text())["model"]["path"]),
                                                "dynamic", CLASSES, "model"), torch.device("cpu"), channels_last=True)
    loader = engine.eval_loader(instances, 8, engine.DistEnv(), workers=0)
    per_instance = softmax(engine.evaluate(model, loader, torch.device("cpu"), channels_last=True)).numpy()
    sources = sorted(set(instances.sources))
    expected = np.stack([per_instance[[i for i, s in enumerate(instances.sources) if s == source]].mean(0)
                         for source in sources])
    predicted = run.predict([root / source for source in sources])
    np.testing.assert_allclose(predicted["temporal"], expected, atol=TOLERANCE)


def tampered_copy(source: Path, folder: Path) -> Path:
    """Another network's weights in a file of the same kind (so its sha256 differs)."""
    other = create_backbone(TINY, weights="random", num_classes=len(CLASSES))
    return save_checkpoint(folder / source.name, other, classes=CLASSES, modality="still")


def moved_head_run(runs, tmp_path: Path, weights_path: str | None, weights: str | None = None) -> Path:
    """The GAN run with its still record pointing at ``weights_path`` (and a cache folder without models)."""
    checkpoint = load_head_checkpoint(runs.gan.run_dir / MODEL_FILE)
    record = dict(checkpoint["still_record"], path=str(tmp_path / "cache" / "still.h5"), weights_path=weights_path)
    if weights is not None:
        record["weights"] = weights
    checkpoint["still_record"] = record
    run_dir = tmp_path / "run"
    save_head_checkpoint(run_dir / MODEL_FILE, {k: v for k, v in checkpoint.items() if k != "format"})
    return run_dir


def test_weights_missing_or_other_than_recorded_are_refused(trained_runs, tmp_path):
    original = Path(load_head_checkpoint(trained_runs.gan.run_dir / MODEL_FILE)["still_record"]["weights_path"])
    image = trained_runs.test_stills()[:1]
    assert load_run(moved_head_run(trained_runs, tmp_path / "a", str(original)), "cpu").predict(image)
    changed = tampered_copy(original, tmp_path)
    with pytest.raises(FeatcacheError, match=r"sha256 \w+ differs from \w+ recorded by .*not the weights") as error:
        load_run(moved_head_run(trained_runs, tmp_path / "b", str(changed)), "cpu").predict(image)
    assert len(str(error.value).splitlines()) == 1 and str(changed) in str(error.value)
    with pytest.raises(FeatcacheError, match="not found .*put the file back"):
        load_run(moved_head_run(trained_runs, tmp_path / "c", str(tmp_path / "gone.pt")), "cpu").predict(image)
    with pytest.raises(FeatcacheError, match="randomly initialised"):
        load_run(moved_head_run(trained_runs, tmp_path / "d", None, weights="random"), "cpu").predict(image)


def test_tsn_still_model_other_than_recorded_is_refused(trained_runs, tmp_path):
    run_dir = tmp_path / "tsn"
    shutil.copytree(trained_runs.tsn, run_dir)
    still = trained_runs.root / "cache" / "models" / f"still-{TINY}.pt"
    changed = tampered_copy(still, tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    checkpoint = torch.load(run_dir / MODEL_FILE, weights_only=True)
    checkpoint["extra"]["still_model"]["path"] = str(changed)
    torch.save(checkpoint, run_dir / MODEL_FILE)
    with pytest.raises(FeatcacheError, match=r"differs from .* recorded by"):
        load_run(run_dir, "cpu")
    assert metrics["config"]["student_weights"] == checkpoint["extra"]["still_model"]["sha256"]


def test_folders_without_a_model_are_one_line_errors(tmp_path):
    with pytest.raises(FeatcacheError, match="run folder not found"):
        load_run(tmp_path / "nowhere", "cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeatcacheError, match="holds no model"):
        load_run(tmp_path / "empty", "cpu")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / MODEL_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(FeatcacheError, match="model file") as error:  # safe_load's one line, naming the file
        load_run(tmp_path / "broken", "cpu")
    assert str(error.value).startswith(str(tmp_path / "broken" / MODEL_FILE)) and len(str(error.value).splitlines()) == 1


def test_a_run_of_several_seeds_predicts_with_its_first_seed(trained_runs, tmp_path):
    """``tsn --seeds N`` keeps each seed's run under ``members/seed-<s>/``: the first seed predicts."""
    run_dir = tmp_path / "tsn-seeds"
    for seed in (3, 4, 10):
        shutil.copytree(trained_runs.tsn, run_dir / "members" / f"seed-{seed}")
    shutil.copy(trained_runs.tsn / "metrics.json", run_dir / "metrics.json")
    (run_dir / "members" / "seed-4" / MODEL_FILE).write_bytes(b"damaged: must not be read")
    run = load_run(run_dir, device="cpu")
    assert run.path == run_dir / "members" / "seed-3" and run.kind == "tsn"
    images = trained_runs.test_stills()[:3]
    np.testing.assert_array_equal(run.predict(images)["fused"], load_run(trained_runs.tsn, "cpu").predict(images)["fused"])
