"""The PyTorch Dual TV-L1 against OpenCV's, against known motion, and in ``featcache prepare``."""

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from featcache.errors import CacheError
from featcache.cache.temporal_cache import read_temporal
from featcache.representations.prepare import PrepareSettings, prepare
from featcache.representations import tvl1_ops
from featcache.representations.optical_flow import quantize_flow, resolve_flow_method, to_gray
from featcache.representations.tvl1_torch import TVL1Params, choose_batch, tvl1_flow
from featcache.media.video import read_middle_frames
from tests.featcache.representations.test_prepare import dataset  # noqa: F401  -- the small video dataset fixture


def texture(height, width, seed=0, sigma=2.0):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.uniform(0, 255, (height, width)).astype(np.float32), (0, 0), sigma)


def opencv_tvl1(a, b, params=TVL1Params()):
    p = params
    estimator = cv2.optflow.DualTVL1OpticalFlow_create(
        p.tau, p.lambda_, p.theta, p.nscales, p.warps, p.epsilon, p.inner_iterations, p.outer_iterations,
        p.scale_step, p.gamma, p.median_filtering, False,
    )
    return estimator.calc(a, b, None)


def torch_tvl1(a, b, params=None):
    return tvl1_flow(torch.from_numpy(np.float32(a)), torch.from_numpy(np.float32(b)), params).numpy()


def epe(a, b):
    return float(np.sqrt(((a - b) ** 2).sum(-1)).mean())


def moved_pair(transform, size=(64, 80), seed=0):
    """(I0, I1, true flow) where I1(T(x)) = I0(x) for an affine map T given as a 2x3 matrix."""
    height, width = size
    big = texture(height, width, seed)
    inverse = cv2.invertAffineTransform(transform)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    map_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    moved = cv2.remap(big, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    true = np.stack([transform[0, 0] * xs + transform[0, 1] * ys + transform[0, 2] - xs,
                     transform[1, 0] * xs + transform[1, 1] * ys + transform[1, 2] - ys], axis=-1)
    return np.uint8(np.clip(np.rint(big), 0, 255)), np.uint8(np.clip(np.rint(moved), 0, 255)), true


# -- operators ------------------------------------------------------------------
def test_operators_match_opencv():
    image = texture(37, 51)
    down = tvl1_ops.resize_linear(torch.from_numpy(image), tvl1_ops.pyramid_size(image.shape, 0.8), 0.8).numpy()
    np.testing.assert_allclose(down, cv2.resize(image, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR), atol=1e-3)
    up = tvl1_ops.resize_linear(torch.from_numpy(down), (37, 51)).numpy()
    np.testing.assert_allclose(up, cv2.resize(down, (51, 37), interpolation=cv2.INTER_LINEAR), atol=1e-3)
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:37, 0:51].astype(np.float32)
    map_x = xs + rng.normal(0, 4, xs.shape).astype(np.float32)  # many samples fall outside: zero border
    map_y = ys + rng.normal(0, 4, ys.shape).astype(np.float32)
    warped = tvl1_ops.remap_cubic(torch.from_numpy(image)[None, None], torch.from_numpy(map_x)[None], torch.from_numpy(map_y)[None])
    np.testing.assert_allclose(warped[0, 0].numpy(), cv2.remap(image, map_x, map_y, cv2.INTER_CUBIC), atol=0.02)
    ties = rng.integers(0, 4, (2, 30, 41)).astype(np.float32)  # many equal values
    for field in (ties, rng.normal(size=(2, 30, 41)).astype(np.float32)):
        median = tvl1_ops.median_blur5(torch.from_numpy(field)).numpy()
        np.testing.assert_array_equal(median, np.stack([cv2.medianBlur(f, 5) for f in field]))


def test_divergence_is_the_negative_adjoint_of_the_forward_gradient():
    gen = torch.Generator().manual_seed(0)
    u, px, py = (torch.randn(2, 9, 13, generator=gen, dtype=torch.float64) for _ in range(3))
    # The dual variable lives where the gradient does: px is 0 in the last column, py in the last row.
    px[..., -1] = 0
    py[..., -1, :] = 0
    ux, uy = tvl1_ops.forward_gradient(u)
    assert torch.allclose((ux * px + uy * py).sum(), -(u * tvl1_ops.divergence(px, py)).sum())


# -- against OpenCV on real pairs --------------------------------------------------
def test_middlebury_pair_matches_opencv(real_data):
    folder = real_data / "precomputed" / "middlebury_basketball_frame_pair"
    a, b = (cv2.resize(cv2.imread(str(folder / f"basketball{i}.png"), cv2.IMREAD_GRAYSCALE), (160, 120), interpolation=cv2.INTER_AREA) for i in (1, 2))
    ours, theirs = torch_tvl1(a, b), opencv_tvl1(a, b)
    assert np.abs(theirs).mean() > 0.2  # there is motion to agree on
    assert epe(ours, theirs) < 0.1
    assert (np.abs(quantize_flow(ours).astype(int) - quantize_flow(theirs)) <= 1).mean() >= 0.95


@pytest.mark.parametrize("clip", ["videos/fencing/ucf101_v_Fencing_g01_c06.mp4", "videos/riding_segway/kinetics400_R6llTwEh07w.mp4"])
def test_real_clip_pairs_match_opencv(real_data, clip):
    gray = to_gray(read_middle_frames(real_data / clip, 3, size=(64, 85))[0])
    ours = tvl1_flow(torch.from_numpy(gray[:-1]).float(), torch.from_numpy(gray[1:]).float()).numpy()
    for i in range(2):
        theirs = opencv_tvl1(gray[i], gray[i + 1])
        assert epe(ours[i], theirs) < 0.1
        assert (np.abs(quantize_flow(ours[i]).astype(int) - quantize_flow(theirs)) <= 1).mean() >= 0.95


def test_other_parameters_match_opencv():
    a, b, _ = moved_pair(np.float32([[1, 0, 1.5], [0, 1, -0.75]]), size=(48, 64), seed=3)
    params = TVL1Params(tau=0.2, lambda_=0.3, theta=0.25, nscales=3, warps=3, epsilon=0.02, inner_iterations=20,
                        outer_iterations=5, scale_step=0.6, median_filtering=1)
    assert epe(torch_tvl1(a, b, params), opencv_tvl1(a, b, params)) < 0.005  # the defaults would give 0.04
    with_gamma = TVL1Params(gamma=0.2)
    assert epe(torch_tvl1(a, b + 10, with_gamma), opencv_tvl1(a, b + 10, with_gamma)) < 0.05


# -- known motion ----------------------------------------------------------------
@pytest.mark.parametrize("name, transform", [
    ("translation", np.float32([[1, 0, 2.5], [0, 1, -1.5]])),
    ("rotation", cv2.getRotationMatrix2D((40, 32), 3.0, 1.0).astype(np.float32)),
    ("zoom", cv2.getRotationMatrix2D((40, 32), 0.0, 1.04).astype(np.float32)),
])
def test_known_motion(name, transform):
    a, b, true = moved_pair(transform)
    inner = (slice(8, -8), slice(8, -8))  # away from the border where content leaves the frame
    ours, theirs = torch_tvl1(a, b)[inner], opencv_tvl1(a, b)[inner]
    assert epe(ours, true[inner]) < 0.15, name
    assert epe(ours, true[inner]) <= epe(theirs, true[inner]) + 0.02, name


def test_xy_order_and_signs_equal_opencv():
    a, b, _ = moved_pair(np.float32([[1, 0, 3.0], [0, 1, -2.0]]))  # content moves right and up
    ours, theirs = torch_tvl1(a, b), opencv_tvl1(a, b)
    for flow in (ours, theirs):
        assert np.median(flow[8:-8, 8:-8, 0]) == pytest.approx(3.0, abs=0.1)
        assert np.median(flow[8:-8, 8:-8, 1]) == pytest.approx(-2.0, abs=0.1)


# -- batching -------------------------------------------------------------------
def test_batched_equals_one_at_a_time_and_ignores_neighbours():
    pairs = [moved_pair(np.float32([[1, 0, dx], [0, 1, dy]]), size=(40, 52), seed=s)[:2] for s, (dx, dy) in enumerate([(1, 0), (0, 2), (-1.5, 1)])]
    first = torch.from_numpy(np.stack([p[0] for p in pairs])).float()
    second = torch.from_numpy(np.stack([p[1] for p in pairs])).float()
    batched = tvl1_flow(first, second)
    alone = torch.stack([tvl1_flow(first[i], second[i]) for i in range(3)])
    assert torch.equal(batched, alone)
    # A pair of unrelated noise converges at another iteration: it must change nothing of pair 0.
    noise = torch.rand(2, 1, 40, 52, generator=torch.Generator().manual_seed(0)) * 255
    mixed = tvl1_flow(torch.cat([noise[0], first[:1]]), torch.cat([noise[1], second[:1]]), sync_every=4)
    assert torch.equal(mixed[1], alone[0])


def test_batch_choice():
    assert choose_batch(256, 340, torch.device("cpu"), override=7) == 7
    assert choose_batch(256, 340, torch.device("cpu")) == 1  # CPU_BATCH: batching only costs cache on the CPU
    assert choose_batch(4000, 4000, torch.device("cpu")) == 1


def test_tvl1_resolves_per_device():
    assert resolve_flow_method("tvl1", "cuda:1") == "tvl1-torch"
    assert resolve_flow_method("tvl1", "cpu") in ("tvl1-torch", "tvl1-opencv")
    assert resolve_flow_method("dis", "cuda") == "dis"


# -- prepare ----------------------------------------------------------------------
def test_prepare_with_torch_tvl1_and_no_silent_switch(dataset, tmp_path):  # noqa: F811
    cache = tmp_path / "cache"
    settings = PrepareSettings(size=(24, 32), kinds=("flow",), flow_method="tvl1-torch", flow_device="cpu", flow_batch=16)
    report = prepare(dataset, cache, settings, workers=1)
    assert report.prepared == 5 and not report.failed
    with read_temporal(cache / "temporal.h5", "flow") as flow:
        assert flow.data.shape == (26, 24, 32, 20) and flow.data.dtype == np.uint8
        assert flow.attrs["preprocessing"]["method"] == "tvl1-torch"
        assert flow.attrs["preprocessing"]["tvl1"] == TVL1Params().as_dict()
        inner = flow.data[:, 6:-6, 6:-6].astype(float)
        assert inner[..., 0::2].mean() > 132 and abs(inner[..., 1::2].mean() - 128) < 3  # texture moving right
    opencv = PrepareSettings(size=(24, 32), kinds=("flow",), flow_method="tvl1-opencv")
    with pytest.raises(CacheError, match="computed with tvl1-torch.*--restart"):
        prepare(dataset, cache, opencv, workers=1)
    assert prepare(dataset, cache, settings, workers=1).up_to_date
    from cli.app import app

    args = ["prepare", str(dataset), "--cache", str(cache), "--only", "flow", "--size", "24x32", "--device", "cpu", "--workers", "1"]
    refused = CliRunner().invoke(app, [*args, "--flow", "tvl1-opencv"])
    assert isinstance(refused.exception, CacheError)  # cli.app.main prints it as one line
    assert "computed with tvl1-torch" in str(refused.exception) and "\n" not in str(refused.exception)
    same = CliRunner().invoke(app, [*args, "--flow", "tvl1-torch", "--flow-batch", "3"])
    assert same.exit_code == 0 and "up to date" in same.output, same.output
