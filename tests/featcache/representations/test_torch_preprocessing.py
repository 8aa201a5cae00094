"""The torch preprocessing (prepare's device path) against the numpy/OpenCV functions, on the CPU."""

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from featcache.representations.prepare import PrepareSettings, prepare
from featcache.representations import dynamic_image, optical_flow, torch_preprocessing
from tests.featcache.representations.test_prepare import assert_same, load, write_moving_video


def textured_clip(frames, height=24, width=30, seed=0):
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (height, width + 2 * frames, 3), dtype=np.uint8), (5, 5), 1)
    return np.stack([scene[:, 2 * t : 2 * t + width] for t in range(frames)])


def test_gray_equals_opencv_for_every_colour():
    code = np.arange(256**3, dtype=np.int64)
    colours = np.stack([code >> 16, (code >> 8) & 255, code & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    expected = cv2.cvtColor(colours, cv2.COLOR_RGB2GRAY)
    gray = torch_preprocessing.to_gray(torch.from_numpy(colours)[None])[0]
    assert gray.dtype == torch.float32
    assert np.abs(gray.numpy() - expected).max() <= 1
    if int(cv2.__version__.split(".")[0]) >= 5:  # the fixed-point weights OpenCV 5 uses: exact
        np.testing.assert_array_equal(gray.numpy(), expected)


def test_quantisation_is_bit_exact():
    rng = np.random.default_rng(2)
    flow = (rng.standard_normal((3, 9, 11, 2)) * 12).astype(np.float32)
    # Values on rounding edges and the clip: half steps, the bound, beyond it.
    step = 2 * 20.0 / 255.0
    edges = np.array([0.0, -0.0, 20.0, -20.0, 25.0, -1e9, 1e9, step / 2, -step / 2, 3.5 * step - 20.0], np.float32)
    flow.reshape(-1)[: len(edges)] = edges
    expected = optical_flow.quantize_flow(flow)
    got = torch_preprocessing.quantize_flow(torch.from_numpy(flow)).numpy()
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("num_frames", [3, 9, 10, 25, 45])
def test_dynamic_images_match_cpu(num_frames):
    clip = textured_clip(num_frames, seed=num_frames)
    expected = dynamic_image.dynamic_images(clip)
    got = torch_preprocessing.dynamic_images(torch.from_numpy(clip))
    assert got.shape == expected.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_static_window_is_flat_128():
    clip = textured_clip(45)
    clip[:20] = clip[0]  # the first windows see no motion (textured, identical frames)
    expected = dynamic_image.dynamic_images(clip)
    got = torch_preprocessing.dynamic_images(torch.from_numpy(clip))
    assert (expected[0] == 128).all() and (got[0] == 128).all()
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert len(np.unique(got[-1])) > 10  # the moving windows are not flat


def test_flow_stacks_match_cpu_tvl1_torch():
    clip = textured_clip(7, height=20, width=24)
    expected = optical_flow.flow_stacks(clip, "tvl1-torch", num_frames=6, stack=3, batch=2)
    got = torch_preprocessing.flow_stacks(torch.from_numpy(clip), num_frames=6, stack=3, batch=4)
    np.testing.assert_array_equal(got, expected)
    grey = optical_flow.to_gray(clip)  # grey frames pass through, as on the CPU
    np.testing.assert_array_equal(torch_preprocessing.flow_stacks(torch.from_numpy(grey), num_frames=6, stack=3), expected)


def test_prepare_device_path_equals_cpu_path(tmp_path):
    root = tmp_path / "ds"
    for i, (split, frames) in enumerate([("train", 24), ("test", 8)]):
        folder = root / "videos" / split / "jump"
        folder.mkdir(parents=True)
        write_moving_video(folder / f"v{i}.avi", frames, speed=1 + i, seed=i)
    settings = PrepareSettings(size=(20, 24), flow_method="tvl1-torch", flow_device="cpu", flow_frames=6, stack=3, count=2)
    normal = prepare(root, tmp_path / "cpu", settings, workers=1)
    device = prepare(root, tmp_path / "device", dataclasses.replace(settings, preprocess_on_device=True), workers=1)
    assert normal.notes == device.notes and normal.rows == device.rows
    a, b = load(normal.path), load(device.path)
    assert a["attrs"]["preprocessing"] == b["attrs"]["preprocessing"]
    np.testing.assert_array_equal(a["flow"]["data"], b["flow"]["data"])
    assert np.abs(a["dynamic"]["data"].astype(int) - b["dynamic"]["data"].astype(int)).max() <= 1
    b["dynamic"]["data"] = a["dynamic"]["data"]
    assert_same(a, b)


def test_real_clip_dynamic_images_and_grey(real_data):
    from featcache.media.video import read_middle_frames

    clip = real_data / "videos/fencing/ucf101_v_Fencing_g01_c06.mp4"
    if not clip.exists():
        pytest.skip(f"{clip} not found")
    frames, _ = read_middle_frames(clip, dynamic_image.frames_needed(), size=(64, 85))
    got = torch_preprocessing.dynamic_images(torch.from_numpy(frames))
    expected = dynamic_image.dynamic_images(frames)
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    gray = torch_preprocessing.to_gray(torch.from_numpy(frames)).numpy()
    assert np.abs(gray - optical_flow.to_gray(frames)).max() <= 1
