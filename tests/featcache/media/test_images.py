"""featcache.media.images.read_image: every mode to uint8 RGB, every broken file to a MediaError naming it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from featcache.errors import MediaError
from featcache.media.images import read_image


def _pattern(height=12, width=16) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 15, ys * 20, (xs + ys) * 7], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff", ".webp"])
def test_lossless_rgb_round_trip(tmp_path, suffix):
    pixels = _pattern()
    path = tmp_path / f"img{suffix}"
    Image.fromarray(pixels).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (12, 16, 3)
    np.testing.assert_array_equal(out, pixels)


def test_jpeg_is_close_to_source(tmp_path):
    pixels = np.full((32, 48, 3), (200, 40, 90), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=95)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == (32, 48, 3) and out.flags["C_CONTIGUOUS"]
    assert np.abs(out.astype(int) - pixels).max() <= 3


def test_greyscale_is_replicated_to_three_channels(tmp_path):
    grey = _pattern()[:, :, 0]
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (12, 16, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], grey)


def test_one_bit_image(tmp_path):
    Image.fromarray(np.eye(8, dtype=bool)).save(tmp_path / "b.png")
    out = read_image(tmp_path / "b.png")
    assert out.shape == (8, 8, 3)
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [0, 0, 0]


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:2, :, 3] = 255  # top half opaque, bottom half transparent
    rgba[2:, :, 3] = 0
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[3, 3].tolist() == [255, 255, 255]


def test_half_transparent_matches_alpha_blend(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 2] = 200
    rgba[..., 3] = 128
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    expected = np.rint(np.array([0, 0, 200]) * 128 / 255 + 255 * (1 - 128 / 255))
    assert np.abs(read_image(tmp_path / "a.png")[0, 0] - expected).max() <= 1


def test_palette_with_transparency(tmp_path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    assert read_image(tmp_path / "p.png")[0, 0].tolist() == [255, 255, 255]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)
    out = read_image(tmp_path / "c.jpg")
    assert out.shape == (8, 8, 3)
    assert out[4, 4, 0] > 240 and out[4, 4, 1] < 15 and out[4, 4, 2] < 15  # red


def test_sixteen_bit_greyscale_is_scaled(tmp_path):
    values = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4369)  # 0 .. 65535
    Image.fromarray(values).save(tmp_path / "d.png")
    out = read_image(tmp_path / "d.png")
    assert out.dtype == np.uint8 and out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[..., 0], np.rint(values / 257.0).astype(np.uint8))
    assert out.max() == 255 and out.min() == 0


def test_float_tiff_in_unit_range(tmp_path):
    values = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tiff")
    out = read_image(tmp_path / "f.tiff")
    np.testing.assert_array_equal(out[..., 1], np.rint(values * 255).astype(np.uint8))


def test_accepts_str_paths(tmp_path):
    Image.fromarray(_pattern()).save(tmp_path / "s.png")
    assert read_image(str(tmp_path / "s.png")).shape == (12, 16, 3)


# -- broken files -------------------------------------------------------------
def _assert_media_error(path, *words):
    with pytest.raises(MediaError) as info:
        read_image(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for word in words:
        assert word in message.lower()


def test_missing_file(tmp_path):
    _assert_media_error(tmp_path / "nope.jpg", "not found")


def test_empty_file(tmp_path):
    (tmp_path / "e.jpg").write_bytes(b"")
    _assert_media_error(tmp_path / "e.jpg", "empty")


def test_folder_is_not_an_image(tmp_path):
    (tmp_path / "d.jpg").mkdir()
    _assert_media_error(tmp_path / "d.jpg", "not a file")


def test_garbage_bytes(tmp_path):
    (tmp_path / "g.jpg").write_bytes(b"this is not an image at all" * 10)
    _assert_media_error(tmp_path / "g.jpg", "not a recognised image")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file(tmp_path, suffix):
    rng = np.random.default_rng(0)
    full = tmp_path / f"full{suffix}"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    _assert_media_error(cut, "decode")


def test_corrupt_body_after_valid_header(tmp_path):
    full = tmp_path / "full.png"
    Image.fromarray(_pattern(64, 64)).save(full)
    data = bytearray(full.read_bytes())
    data[60:120] = b"\x00" * 60  # inside the compressed data: fails the zlib/CRC checks
    (tmp_path / "bad.png").write_bytes(bytes(data))
    _assert_media_error(tmp_path / "bad.png")


def test_real_stills_decode(real_data):
    stills = sorted((real_data / "stills").rglob("*"))
    stills = [p for p in stills if p.is_file()][:12]
    assert stills
    for path in stills:
        out = read_image(path)
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
        assert min(out.shape[:2]) >= 16
