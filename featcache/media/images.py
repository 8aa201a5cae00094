"""Reading still images: one function, ``read_image``, used by every module that needs pixels.

Any image PIL can decode comes back as ``uint8 [H, W, 3]`` RGB: greyscale, palette, RGBA/LA
(composited on white, as a viewer shows them), CMYK/YCbCr, and 16-bit or float images
(scaled to 0..255) are all converted. A missing, empty, truncated or undecodable file
raises :class:`MediaError` naming the path and the reason, never a PIL traceback.
EXIF orientation is not applied, like torchvision's default loader, so pixels match what
ImageNet-pretrained pipelines were trained on.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from featcache.errors import MediaError

# Keep PIL strict: a truncated JPEG must fail loudly rather than come back half grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Guard against decompression bombs with a clear error (PIL's default limit, as an error).
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 178_956_970


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` to a ``uint8 [H, W, 3]`` RGB array, or raise ``MediaError("<path>: <reason>")``."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: image not found")
    if not path.is_file():
        raise MediaError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise MediaError(f"{path}: image too large ({image.width}x{image.height} pixels)")
                image.load()  # decodes every byte: truncation surfaces here
                return _to_rgb_array(image)
    except MediaError:
        raise
    except FileNotFoundError:
        raise MediaError(f"{path}: image not found") from None
    except Image.UnidentifiedImageError:
        raise MediaError(f"{path}: not a recognised image format (corrupt or not an image)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        reason = str(exc).strip() or type(exc).__name__
        if "truncated" in reason.lower() or "broken data stream" in reason.lower():
            reason = f"truncated image data ({reason})"
        raise MediaError(f"{path}: cannot decode image: {reason}") from None


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any PIL mode -> contiguous uint8 RGB array."""
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _high_depth_to_rgb(np.asarray(image), mode)
    if mode == "P":
        # Palette images may carry transparency; go through RGBA so it is composited.
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _high_depth_to_rgb(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit / 32-bit integer or float greyscale -> uint8 RGB.

    16-bit files use the full 0..65535 range, so they are scaled by 257 (exact for
    values written as v*257); float images are assumed to be in 0..1 when they fit,
    otherwise min-max scaled.
    """
    values = values.astype(np.float64)
    if mode == "F":
        lo, hi = float(values.min()), float(values.max())
        if lo >= 0.0 and hi <= 1.0:
            scaled = values * 255.0
        else:
            scaled = (values - lo) * (255.0 / max(hi - lo, 1e-12))
    elif mode == "I" and values.max(initial=0) > 65535:
        lo, hi = float(values.min()), float(values.max())
        scaled = (values - lo) * (255.0 / max(hi - lo, 1e-12))
    else:
        scaled = values / 257.0
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
