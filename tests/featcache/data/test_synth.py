"""The synthetic dataset: determinism, layout, decodable media, paired classes, motion blur."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from featcache.data.dataset import FolderDataset
from featcache.errors import DatasetError
from featcache.data.synth.actions import ACTIONS, ACTIONS_BY_NAME, Timing, pair_of, select_actions
from featcache.data.synth.generate import MANIFEST, SynthConfig, generate, read_manifest
from featcache.data.synth.render import blurred_figure
from featcache.data.synth.samples import Figure, render_still, render_video
from featcache.data.synth.skeleton import Body, forward_kinematics

TINY = dict(classes=2, stills={"train": 2, "val": 1, "test": 1}, videos={"train": 1, "test": 1},
            frames=40, still_size=(96, 96), video_size=(48, 64))


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "ds"
    generate(root, SynthConfig(seed=3, **TINY), show_progress=False)
    return root


# -- the dataset ------------------------------------------------------------------
def test_same_seed_gives_identical_files(tiny, tmp_path):
    again = tmp_path / "again"
    generate(again, SynthConfig(seed=3, **TINY), workers=2, show_progress=False)  # order-free: same bytes
    assert tree_hashes(again) == tree_hashes(tiny)
    other = tmp_path / "other"
    generate(other, SynthConfig(seed=4, **{**TINY, "videos": {"train": 0, "test": 0}}), show_progress=False)
    first_still = "stills/train/sit_down/sit_down_train_0000.jpg"
    assert tree_hashes(other)[first_still] != tree_hashes(tiny)[first_still]


def test_layout_loads_with_folder_dataset(tiny):
    ds = FolderDataset(tiny)
    assert ds.classes == ["sit_down", "stand_up"]
    assert (tiny / "classes.txt").read_text().split() == ds.classes
    assert ds.summary() == {"stills": {"train": 4, "val": 2, "test": 2}, "videos": {"train": 2, "test": 2}}
    assert [s.label for s in ds.videos("train")] == [0, 1]
    readme = (tiny / "README.txt").read_text()
    assert all(a.name in readme and a.description in readme for a in select_actions(2))
    assert read_manifest(tiny)["complete"] is True
    assert not (tiny / ".synth-tmp").exists()


def test_videos_decode_with_opencv_and_pyav(tiny):
    ds = FolderDataset(tiny)
    for sample in ds.videos():
        path = str(ds.path(sample))
        capture = cv2.VideoCapture(path)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        assert len(frames) == 40 and frames[0].shape == (48, 64, 3)
        with av.open(path) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(decoded) == 40 and decoded[0].shape == (48, 64, 3)
    still = cv2.imread(str(ds.path(ds.stills("train")[0])))
    assert still.shape[0] * still.shape[1] > 48 * 64  # stills are bigger than video frames


def test_rerun_resumes_refuses_or_overwrites(tiny, tmp_path):
    root = tmp_path / "ds"
    generate(root, SynthConfig(seed=3, **TINY), show_progress=False)
    lost = root / "videos/test/stand_up/stand_up_test_0000.avi"
    lost.unlink()  # as if the run had been interrupted before this file
    result = generate(root, SynthConfig(seed=3, **TINY), show_progress=False)
    assert result["resumed"] and result["written"] == 1
    assert tree_hashes(root) == tree_hashes(tiny)
    with pytest.raises(DatasetError, match="other settings.*seed 3 -> 4.*--restart"):
        generate(root, SynthConfig(seed=4, **TINY), show_progress=False)
    result = generate(root, SynthConfig(seed=4, **TINY), overwrite=True, show_progress=False)
    assert result["written"] == 12 and read_manifest(root)["config"]["seed"] == 4
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        generate(foreign, SynthConfig(seed=3, **TINY), show_progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_bad_settings_are_user_errors():
    with pytest.raises(DatasetError, match="--classes"):
        SynthConfig(classes=len(ACTIONS) + 1)
    with pytest.raises(DatasetError, match="--frames"):
        SynthConfig(frames=20)


def test_cli_writes_and_reports(tmp_path):
    from cli.app import app

    root = tmp_path / "ds"
    args = ["data", "synth", str(root), "--classes", "2", "--seed", "1", "--stills-per-class", "1,1,1",
            "--videos-per-class", "1,1", "--frames", "40", "--still-size", "64", "--video-size", "48x64",
            "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "sit_down" in result.output and "stand_up" in result.output
    assert FolderDataset(root).summary()["videos"] == {"train": 2, "test": 2}
    result = CliRunner().invoke(app, [*args[:5], "--seed", "2", *args[7:]])  # other seed, no --overwrite
    assert isinstance(result.exception, DatasetError) and "seed 1 -> 2" in str(result.exception)


# -- paired classes: same poses, opposite motion ------------------------------------
@pytest.mark.parametrize("action", ACTIONS[::2], ids=lambda a: a.name)
def test_pair_shares_poses_reversed_in_time(action):
    partner = pair_of(action)
    u = np.linspace(0, 1, 201)
    np.testing.assert_allclose(partner.poses_at_phase(u), action.poses_at_phase(1 - u), atol=1e-9)
    # Same sample settings: the partner's whole trajectory is this one's played backwards.
    timing = action.sample_timing(np.random.default_rng(0))
    t = np.linspace(0, 1, 64)
    forward, backward = action.trajectory(t, timing), partner.trajectory(t, timing)
    np.testing.assert_allclose(backward, forward[::-1], atol=1e-9)
    # ...so the set of poses a still can show is the same for both classes.
    a, b = forward[:, 1:], backward[:, 1:]  # without the travel along x
    nearest = np.abs(a[:, None, :] - b[None, :, :]).max(axis=-1).min(axis=1)
    assert nearest.max() < 1e-9
    # ...while the motion differs: joint velocities are mirrored in time and sign.
    body = Body()
    va = np.diff(forward_kinematics(forward, body, action.view), axis=0)
    vb = np.diff(forward_kinematics(backward, body, action.view), axis=0)
    np.testing.assert_allclose(vb, -va[::-1], atol=1e-9)
    assert np.abs(va).max() > 1e-3


def camera_compensated_flow(video: np.ndarray, step: int = 2) -> np.ndarray:
    """Mean optical flow (vx, vy) on the moving figure, the camera's shake (median flow) removed."""
    grey = [cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0) for f in video]
    total, count = np.zeros(2), 0
    for k in range(0, len(grey) - step, step):
        flow = cv2.calcOpticalFlowFarneback(grey[k], grey[k + step], None, 0.5, 2, 9, 3, 5, 1.1, 0)
        flow -= np.median(flow.reshape(-1, 2), axis=0)
        moving = (np.abs(grey[k + step] - grey[k]) > 20) & (np.linalg.norm(flow, axis=-1) < 10)
        total += flow[moving].sum(axis=0)
        count += moving.sum()
    return total / max(count, 1)


@pytest.mark.parametrize("name,axis,sign", [("sit_down", 1, 1.0), ("walk_forward", 0, None)])
def test_pair_videos_move_in_opposite_directions(name, axis, sign):
    action = ACTIONS_BY_NAME[name]
    facing = Figure.sample(action, np.random.default_rng(0)).facing
    sign = sign if sign is not None else float(facing)  # walking forward moves the way the figure faces
    flow_a = camera_compensated_flow(render_video(action, np.random.default_rng(0)))
    flow_b = camera_compensated_flow(render_video(pair_of(action), np.random.default_rng(0)))
    assert sign * flow_a[axis] > 0.2
    assert sign * flow_b[axis] < -0.2


# -- stills: motion blur -------------------------------------------------------------
def test_still_motion_blur_trails_behind_the_motion():
    action = ACTIONS_BY_NAME["walk_forward"]
    figure = Figure(action, Body(), Figure.sample(action, np.random.default_rng(1)).style,
                    Timing(phase0=0.1, cycles=1.2), facing=1)
    times = np.linspace(0.4, 0.46, 9)  # an exposure of about 4 video frames
    joints = figure.joints(times) * 150 + np.array([60.0, 200.0])
    size = (224, 224)
    blur_colour, blur_alpha = blurred_figure(joints, np.linspace(1, 2, 9), figure.body, figure.style, 150, size)
    sharp_colour, sharp_alpha = blurred_figure(joints[-1:], [1.0], figure.body, figure.style, 150, size)
    assert np.abs(blur_colour - sharp_colour).max() > 50

    def centroid(alpha):
        yy, xx = np.mgrid[0:size[0], 0:size[1]]
        return np.array([(xx * alpha).sum(), (yy * alpha).sum()]) / alpha.sum()

    velocity = joints[-1].mean(axis=0) - joints[0].mean(axis=0)  # the figure walks towards +x
    assert velocity[0] > 3 and abs(velocity[1]) < velocity[0]
    lag = centroid(blur_alpha) - centroid(sharp_alpha)
    assert lag @ velocity < 0  # the blur trails behind the sharp (end of exposure) figure
    # The smear lies along the motion (x): it weakens the edges across x more than those across y.
    def edge_energy(alpha, axis):
        return np.abs(np.diff(alpha, axis=axis)).sum()

    assert edge_energy(blur_alpha, 1) / edge_energy(sharp_alpha, 1) < edge_energy(blur_alpha, 0) / edge_energy(sharp_alpha, 0)


def test_stills_are_blurred_only_on_the_figure():
    action = ACTIONS_BY_NAME["swipe_right"]
    for index in range(3):
        blurred = render_still(action, np.random.default_rng([5, index])).astype(int)
        sharp = render_still(action, np.random.default_rng([5, index]), blur=False).astype(int)
        diff = np.abs(blurred - sharp).max(axis=-1)
        assert diff.max() > 40  # the moving arm is smeared
        assert (diff > 10).mean() < 0.25  # the background is the same photo


# -- the still motion cue: the planted temporal effect ----------------------------------
@pytest.mark.parametrize("name", ["sit_down", "walk_forward", "swipe_right"])
def test_without_the_cue_a_still_cannot_tell_a_motion_from_its_reverse(name):
    from featcache.data.synth.samples import still_exposure

    action, partner = ACTIONS_BY_NAME[name], pair_of(ACTIONS_BY_NAME[name])
    sample = Figure.sample(action, np.random.default_rng(2))
    figure, twin = sample, Figure(partner, sample.body, sample.style, sample.timing, sample.facing)
    start, end = action.moving_interval(sample.timing)
    assert partner.moving_interval(sample.timing) == pytest.approx((1 - end, 1 - start))
    t, exposure, size = start + 0.37 * (end - start), 4 / 63, (160, 160)

    def blurred(fig, moment, cue):
        times, weights = still_exposure(moment, exposure, cue, 9)
        joints = fig.joints(times) * 60 + np.array([80.0, 140.0])
        return blurred_figure(joints, weights, fig.body, fig.style, 60, size, action.view, fig.facing)[1]

    # The partner at the mirrored moment shows the same poses: a symmetric smear is identical...
    np.testing.assert_allclose(blurred(figure, t, False), blurred(twin, 1 - t, False), atol=2e-3)
    # ...while the cue's one-sided trail differs between the two directions.
    assert np.abs(blurred(figure, t, True) - blurred(twin, 1 - t, True)).max() > 0.3


def test_still_motion_cue_is_recorded_with_the_ideal_accuracies(tmp_path):
    with pytest.raises(DatasetError, match="still-motion-cue"):
        SynthConfig(still_motion_cue=1.5)
    assert SynthConfig(classes=6).ideal_accuracies() == {"still_only": 0.5, "video_only": 1.0, "still_and_video": 1.0}
    assert SynthConfig(classes=5, still_motion_cue=0.5).ideal_accuracies()["still_only"] == pytest.approx(0.8)
    shuffled = SynthConfig(classes=4, shuffle_videos=True).ideal_accuracies()
    assert shuffled["video_only"] == 0.25 and shuffled["still_and_video"] == 0.5
    root = tmp_path / "cue"
    generate(root, SynthConfig(seed=1, still_motion_cue=0.75, **TINY), show_progress=False)
    manifest = read_manifest(root)
    assert manifest["still_motion_cue"] == 0.75 and manifest["config"]["still_motion_cue"] == 0.75
    assert manifest["ideal_accuracy"]["still_only"] == pytest.approx(0.875)
    readme = (root / "README.txt").read_text()
    assert "Still motion cue: 0.75" in readme and "still only 87.5%" in readme


def test_cue_changes_only_the_blur_on_the_figure():
    action = ACTIONS_BY_NAME["swipe_right"]
    plain = render_still(action, np.random.default_rng([7, 1]), (96, 96), motion_cue=0.0).astype(int)
    cued = render_still(action, np.random.default_rng([7, 1]), (96, 96), motion_cue=1.0).astype(int)
    assert 0 < (np.abs(plain - cued).max(axis=-1) > 10).mean() < 0.25  # the figure, not the scene


def test_still_exposure_lengthens_the_trail_and_keeps_old_datasets_resumable(tmp_path):
    action = ACTIONS_BY_NAME["swipe_right"]

    def still(scale):
        return render_still(action, np.random.default_rng([7, 1]), (96, 96), motion_cue=1.0, exposure_scale=scale)

    np.testing.assert_array_equal(still(1.0), render_still(action, np.random.default_rng([7, 1]), (96, 96),
                                                           motion_cue=1.0))  # 1: today's bytes
    sharp = render_still(action, np.random.default_rng([7, 1]), (96, 96), motion_cue=1.0, blur=False).astype(int)
    smeared = [(np.abs(still(s).astype(int) - sharp).max(axis=-1) > 10).mean() for s in (1.0, 4.0)]
    assert smeared[1] > 1.5 * smeared[0] > 0  # a longer exposure: a longer trail
    with pytest.raises(DatasetError, match="still-exposure"):
        SynthConfig(still_exposure=20)
    assert SynthConfig(still_exposure=4).ideal_accuracies() == SynthConfig().ideal_accuracies()
    root = tmp_path / "old"
    generate(root, SynthConfig(seed=1, **TINY), show_progress=False)
    manifest = (root / MANIFEST).read_text()
    (root / MANIFEST).write_text(manifest.replace('"still_exposure": 1.0,', ""))  # written before the knob
    assert "still_exposure" not in (root / MANIFEST).read_text()
    generate(root, SynthConfig(seed=1, **TINY), show_progress=False)  # resumes: the default is what it used
    readme = (root / "README.txt").read_text()
    assert "Still exposure: 1 (--still-exposure)" in readme
