"""timm backbones (``--backbone timm:<model>``): randomly initialised resnet18, local weights files."""

from __future__ import annotations

import math
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

timm = pytest.importorskip("timm")
from safetensors.torch import save_file  # noqa: E402  (timm brings safetensors)

from featcache.backbones import create_backbone, sha256_file  # noqa: E402
from featcache.errors import CacheError, FeatcacheError  # noqa: E402
from featcache.extraction.extract import ExtractSettings, extract  # noqa: E402
from featcache.cache.schema import read_root_attrs  # noqa: E402
from tests.featcache.extraction.test_extract import ONE_THREAD_ENV, REPO, make_stills, make_temporal, quiet  # noqa: E402


def reference_resnet18(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model("resnet18", pretrained=False).eval()  # with its 1000-class fc


def weights_file(path, seed: int = 0):
    save_file(reference_resnet18(seed).state_dict(), str(path))
    return path


@pytest.mark.parametrize("modality, channels", [("still", 3), ("dynamic", 3), ("flow", 20)])
def test_random_timm_backbone_for_each_modality(modality, channels):
    backbone = create_backbone("timm:resnet18", modality=modality, weights="random").eval()
    assert backbone.name == "timm:resnet18" and backbone.feature_dim == 512 and backbone.in_channels == channels
    assert backbone.first_conv().in_channels == channels and backbone.weights_id == "random"
    with torch.inference_mode():
        features = backbone.forward_features(torch.randn(2, channels, 32, 32))
    assert features.shape == (2, 512) and torch.isfinite(features).all()
    config = backbone.data_config()  # resnet18's pretrained_cfg: 224 input, crop_pct 0.95, bicubic
    assert config["crop"] == 224 and config["resize"] == math.floor(224 / 0.95) and config["interpolation"] == "bicubic"
    assert config["native"]["mean"] == pytest.approx([0.485, 0.456, 0.406])


def test_safetensors_and_pth_weights_match_timm_and_flow_averages_conv1(tmp_path):
    reference = reference_resnet18(seed=3)
    path = weights_file(tmp_path / "w.safetensors", seed=3)
    backbone = create_backbone("timm:resnet18", weights=path).eval()
    assert backbone.weights_id == sha256_file(path)
    x = torch.randn(2, 3, 40, 40)
    with torch.inference_mode():
        expected = reference.forward_head(reference.forward_features(x), pre_logits=True)
        torch.testing.assert_close(backbone.forward_features(x), expected)
    pth = tmp_path / "w.pth"
    torch.save(reference.state_dict(), pth)
    torch.testing.assert_close(create_backbone("timm:resnet18", weights=pth).first_conv().weight, reference.conv1.weight)
    flow = create_backbone("timm:resnet18", modality="flow", weights=path)
    expected_conv = reference.conv1.weight.mean(dim=1, keepdim=True).expand(-1, 20, -1, -1)
    torch.testing.assert_close(flow.first_conv().weight, expected_conv)


def test_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(FeatcacheError, match="--weights PATH"):
        create_backbone("timm:resnet18")  # no download at run time
    with pytest.raises(FeatcacheError, match="timm:no_such_model_xyz"):
        create_backbone("timm:no_such_model_xyz", weights="random")
    other = tmp_path / "rn34.safetensors"
    torch.manual_seed(0)
    save_file(timm.create_model("resnet34", pretrained=False).state_dict(), str(other))
    with pytest.raises(FeatcacheError, match="do not fit backbone timm:resnet18"):
        create_backbone("timm:resnet18", weights=other)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not safetensors")
    with pytest.raises(FeatcacheError, match="broken.safetensors: not a loadable safetensors file"):
        create_backbone("timm:resnet18", weights=broken)
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    with pytest.raises(FeatcacheError, match=r"pip install 'featcache\[timm\]'"):
        create_backbone("timm:resnet18", weights="random")


@pytest.mark.parametrize("modality", ["dynamic", "flow"])
def test_extract_temporal_with_timm_weights(tmp_path, modality):
    root = make_stills(tmp_path / "ds", per_class=1)
    cache = tmp_path / "cache"
    make_temporal(cache)
    path = weights_file(tmp_path / "w.safetensors")
    settings = ExtractSettings(modality=modality, backbone="timm:resnet18", weights=str(path), crop=24, resize=28,
                               batch_size=4, workers=0, device="cpu")
    report = extract(root, cache, settings, on_event=quiet)
    assert report.path.name == f"{modality}-timm-resnet18.h5" and report.written == 9
    with h5py.File(report.path, "r") as f:
        assert f["features"].shape == (9, 512)
        attrs = read_root_attrs(f)
    assert attrs["backbone"] == "timm:resnet18" and attrs["weights"] == sha256_file(path)
    assert attrs["preprocessing"]["interpolation"] == "bicubic, antialiased"
    assert attrs["preprocessing"]["backbone_input"]["crop_pct"] == pytest.approx(0.95)


def test_extract_still_takes_the_models_input_size_by_default(tmp_path):
    root = make_stills(tmp_path / "ds", per_class=1)
    settings = ExtractSettings(backbone="timm:resnet18", weights="random", batch_size=9, workers=0, device="cpu")
    report = extract(root, tmp_path / "cache", settings, on_event=quiet)
    with h5py.File(report.path, "r") as f:
        pre = read_root_attrs(f)["preprocessing"]
    assert (pre["crop"], pre["resize_short_side"]) == (224, math.floor(224 / 0.95))
    assert pre["backbone_input"]["source"] == "timm pretrained_cfg of timm:resnet18"


def test_cli_extract_timm_and_refusal_of_second_weights(tmp_path):
    root = make_stills(tmp_path / "ds", per_class=1)
    first, second = weights_file(tmp_path / "w.safetensors", 0), weights_file(tmp_path / "w2.safetensors", 1)
    cmd = [sys.executable, "-m", "cli", "extract", str(root), "--modality", "still", "--backbone", "timm:resnet18",
           "--weights", str(first), "--cache", str(tmp_path / "cache"), "--resize", "28", "--crop", "24"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=ONE_THREAD_ENV)
    assert done.returncode == 0, done.stderr
    assert "extracted 9/9 rows" in done.stdout and (tmp_path / "cache" / "still-timm-resnet18.h5").is_file()
    again = subprocess.run([str(second) if a == str(first) else a for a in cmd], cwd=REPO, capture_output=True, text=True, env=ONE_THREAD_ENV)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    last = again.stderr.strip().splitlines()[-1]
    assert last.startswith("featcache: error: ") and "other weights" in last and "--restart" in last
    # the same through the API
    settings = ExtractSettings(backbone="timm:resnet18", weights=str(second), crop=24, resize=28, workers=0, device="cpu")
    with pytest.raises(CacheError, match="other weights"):
        extract(root, tmp_path / "cache", settings, on_event=quiet)


def test_transform_interpolation_follows_the_config():
    from featcache.backbones.preprocessing import build_transform

    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    bilinear = build_transform("still", train=False, crop=48, resize=56)(image)
    bicubic = build_transform("still", train=False, crop=48, resize=56, interpolation="bicubic")(image)
    assert bilinear.shape == bicubic.shape == (3, 48, 48) and not torch.allclose(bilinear, bicubic)
    with pytest.raises(ValueError, match="interpolation"):
        build_transform("still", train=False, interpolation="lanczos")
