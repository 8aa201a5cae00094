"""X-means picks the number of clusters by BIC, and the BIC matches a brute-force log-likelihood."""

from __future__ import annotations

import json

import numpy as np
import pytest

from featcache.errors import CacheError
from featcache.extraction.xmeans import XMeans, kmeans_bic


def blobs(num_blobs: int, per_blob: int = 40, dim: int = 8, spread: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=10.0, size=(num_blobs, dim))
    labels = np.repeat(np.arange(num_blobs), per_blob)
    return centers[labels] + rng.normal(scale=spread, size=(len(labels), dim)), labels, centers


@pytest.mark.parametrize("num_blobs", [1, 3, 5])
def test_picks_the_number_of_blobs(num_blobs):
    points, labels, _ = blobs(num_blobs, seed=num_blobs)
    model = XMeans(max_clusters=8, seed=0).fit(points)
    assert model.n_clusters_ == num_blobs
    # Each found cluster is exactly one blob.
    for c in range(model.n_clusters_):
        assert len(np.unique(labels[model.labels_ == c])) == 1


def test_max_clusters_caps_the_split():
    points, _, _ = blobs(7, seed=1)
    model = XMeans(max_clusters=5, seed=0).fit(points)
    assert model.n_clusters_ == 5


def test_bic_matches_brute_force_likelihood():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(30, 4))
    labels = np.array([0] * 12 + [1] * 18)
    centers = np.stack([points[labels == c].mean(0) for c in range(2)])
    n, d, k = 30, 4, 2
    variance = ((points - centers[labels]) ** 2).sum() / (d * (n - k))
    log_l = 0.0
    for x, c in zip(points, labels):
        prior = (labels == c).sum() / n
        log_l += np.log(prior) - d / 2 * np.log(2 * np.pi * variance) - ((x - centers[c]) ** 2).sum() / (2 * variance)
    expected = log_l - ((k - 1) + k * d + 1) / 2 * np.log(n)
    assert kmeans_bic(points, labels, centers) == pytest.approx(expected, rel=1e-9)


def test_nearest_points_are_the_points_closest_to_each_centre():
    points, _, _ = blobs(3, per_blob=10, seed=4)
    model = XMeans(max_clusters=5).fit(points)
    nearest = model.nearest_points(points)
    for c, i in enumerate(nearest):
        brute = min(range(len(points)), key=lambda j: np.linalg.norm(points[j] - model.cluster_centers_[c]))
        assert i == brute


def test_identical_points_give_one_cluster():
    model = XMeans(max_clusters=5).fit(np.ones((10, 3)))
    assert model.n_clusters_ == 1


# -- key-frame mining -------------------------------------------------------------
from featcache.extraction.keyframes import (  # noqa: E402
    KeyframeSettings,
    keyframes_cache_path,
    mine_keyframes,
    reduce_features,
    sample_frame_indices,
    select_keyframes,
)


def test_keyframes_are_the_frames_nearest_each_centre():
    # 30 "frames" of a video in three poses; the chosen frames are exactly the brute-force
    # nearest frame to each x-means centre, one per pose.
    points, poses, _ = blobs(3, per_blob=10, dim=6, seed=7)
    chosen = select_keyframes(points, max_clusters=5, reduce_dim=0, seed=0)
    model = XMeans(max_clusters=5, seed=0).fit(reduce_features(points, 0))
    brute = sorted(
        min(range(len(points)), key=lambda j: np.linalg.norm(reduce_features(points, 0)[j] - c))
        for c in model.cluster_centers_
    )
    assert chosen.tolist() == brute
    assert sorted(poses[chosen].tolist()) == [0, 1, 2]


def test_keyframes_at_most_max_clusters():
    points, _, _ = blobs(8, per_blob=6, dim=20, seed=2)
    assert len(select_keyframes(points, max_clusters=5, reduce_dim=16)) == 5


def test_sample_frame_indices_even_and_bounded():
    assert sample_frame_indices(5, 10).tolist() == [0, 1, 2, 3, 4]
    idx = sample_frame_indices(100, 5)
    assert idx.tolist() == [0, 25, 50, 74, 99]


def test_mine_keyframes_writes_a_feature_cache(tmp_path):
    """End to end on tiny videos with two distinct halves: key frames come from both halves."""
    cv2 = pytest.importorskip("cv2")
    import h5py

    from featcache.backbones import create_backbone
    from featcache.cache.feature_cache import FeatureCache
    from featcache.cache.schema import mark_complete, write_root_attrs, write_rows

    root = tmp_path / "root"
    rng = np.random.default_rng(0)
    for index, name in enumerate(["clap", "wave"]):
        path = root / "videos" / "train" / name / "v.avi"
        path.parent.mkdir(parents=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 48))
        scenes = [rng.integers(0, 255, (48, 48, 3), dtype=np.uint8) for _ in range(2)]
        for t in range(12):
            writer.write(scenes[t // 6])
        writer.release()
    (root / "videos" / "test").mkdir(parents=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    weights = create_backbone("efficientnet-lite0").weights_id
    with h5py.File(cache / "still-efficientnet-lite0.h5", "w") as f:  # a still cache of the schema
        write_root_attrs(f, modality="still", backbone="efficientnet-lite0", weights=weights, classes=["clap", "wave"],
                         preprocessing={"crop": 40, "resize_short_side": 44})
        f.create_dataset("features", data=np.zeros((2, 1280), np.float32))
        write_rows(f, labels=[0, 1], split=[0, 2], source=["a.png", "b.png"], instance=[0, 0])
        mark_complete(f)

    settings = KeyframeSettings(max_clusters=5, max_frames=12, reduce_dim=4)
    out = mine_keyframes(root, cache, settings=settings)
    assert out == keyframes_cache_path(cache, "efficientnet-lite0")
    keyframes = FeatureCache.open(out)
    train = keyframes.split("train")
    assert keyframes.modality == "keyframes" and keyframes.feature_dim == 1280
    assert set(train.labels.tolist()) == {0, 1} and keyframes.split_names() == ["train"]
    for source in set(train.source):
        frames = sorted(int(i) for s, i in zip(train.source, train.instance) if s == source)
        assert 2 <= len(frames) <= 5
        assert min(frames) < 6 <= max(frames)  # one key frame from each scene at least
    # A rerun with the same settings does nothing (resume / up to date).
    stamp = out.stat().st_mtime_ns
    assert mine_keyframes(root, cache, settings=settings) == out and out.stat().st_mtime_ns == stamp
    # Parts of other settings are never mixed in nor silently wiped: the run stops; --restart discards them.
    other = KeyframeSettings(max_clusters=2, max_frames=12, reduce_dim=4)
    parts = out.with_name(out.name + ".parts")
    parts.mkdir()
    (parts / "settings.json").write_text(json.dumps({"max_clusters": 5}))
    with pytest.raises(CacheError, match=f"{parts.name} holds an unfinished key-frame mining with other settings.*--restart"):
        mine_keyframes(root, cache, settings=other)
    assert mine_keyframes(root, cache, settings=other, restart=True) == out and not parts.exists()
