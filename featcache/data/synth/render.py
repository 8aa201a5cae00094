"""Drawing: figures as thick anti-aliased limbs, backgrounds, props, motion blur, camera shake.

A figure is drawn into a premultiplied colour layer plus an alpha layer, so several
sub-steps of a motion can be averaged (motion blur) and composited over any background.
All drawing is deterministic given the inputs; randomness comes in through ``rng`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from featcache.data.synth.skeleton import JOINT_INDEX, Body

SUBPIXEL_BITS = 4  # cv2 drawing with 1/16 pixel precision: smooth motion at low resolution
SUBPIXEL = 1 << SUBPIXEL_BITS


@dataclass(frozen=True)
class Style:
    """How one figure looks: colours (RGB 0..255) and stroke widths in body units."""

    skin: tuple[float, float, float]
    shirt: tuple[float, float, float]
    pants: tuple[float, float, float]
    limb_width: float = 0.05
    torso_width: float = 0.08
    far_shade: float = 0.7  # far-side limbs are drawn darker (profile depth cue)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Style":
        skin = hsv_to_rgb(rng.uniform(0.02, 0.1), rng.uniform(0.25, 0.65), rng.uniform(0.35, 0.95))
        shirt = hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0))
        pants = hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.1, 0.8), rng.uniform(0.15, 0.7))
        width = rng.uniform(0.038, 0.065)
        return cls(skin, shirt, pants, limb_width=width, torso_width=width * rng.uniform(1.4, 2.0),
                   far_shade=rng.uniform(0.55, 0.8))


def hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    hsv = np.array([[[h * 360.0, s, v]]], dtype=np.float32)  # float HSV: H in degrees, S and V in 0..1
    return tuple(float(c) * 255.0 for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


@dataclass(frozen=True)
class Camera:
    """Maps body units to pixels: ``pixel = origin + scale * point``."""

    scale: float
    origin_x: float
    origin_y: float  # the ground line, in pixels

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        return points * self.scale + np.array([self.origin_x, self.origin_y])


def _fixed(point) -> tuple[int, int]:
    if isinstance(point, tuple) and isinstance(point[0], int):  # already fixed-point
        return point
    return int(round(float(point[0]) * SUBPIXEL)), int(round(float(point[1]) * SUBPIXEL))


def _stroke(layers, a, b, width: float, colour) -> None:
    colour_layer, alpha_layer = layers
    thickness = max(1, int(round(width)))
    cv2.line(colour_layer, _fixed(a), _fixed(b), colour, thickness, cv2.LINE_AA, SUBPIXEL_BITS)
    cv2.line(alpha_layer, _fixed(a), _fixed(b), 255, thickness, cv2.LINE_AA, SUBPIXEL_BITS)


def _disc(layers, centre, radius: float, colour) -> None:
    colour_layer, alpha_layer = layers
    r = max(1, int(round(radius * SUBPIXEL)))
    cv2.circle(colour_layer, _fixed(centre), r, colour, -1, cv2.LINE_AA, SUBPIXEL_BITS)
    cv2.circle(alpha_layer, _fixed(centre), r, 255, -1, cv2.LINE_AA, SUBPIXEL_BITS)


def _face(layers, head: np.ndarray, r: float, skin, view: str, facing: int) -> None:
    """A nose in profile (it shows which way the figure faces), else two eyes; ``r``: head radius in px."""
    if view == "profile":
        nose = head + np.array([facing * r * 1.05, r * 0.15])
        _disc(layers, nose, r * 0.3, skin)
    else:
        for dx in (-0.35, 0.35):
            _disc(layers, head + np.array([dx * r, -0.1 * r]), max(0.5, 0.12 * r), tuple(c * 0.2 for c in skin))


def draw_figure(joints_px: np.ndarray, body: Body, style: Style, scale: float, size: tuple[int, int],
                view: str = "profile", facing: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """One figure as (premultiplied colour float32 [H, W, 3], alpha float32 [H, W]).

    Each part is drawn opaque over the parts behind it (painter's order), far limbs first.
    """
    height, width = size
    colour = np.zeros((height, width, 3), np.float32)
    alpha = np.zeros((height, width), np.float32)
    fixed = [tuple(p) for p in np.rint(joints_px * SUBPIXEL).astype(np.int64).tolist()]
    j = lambda name: fixed[JOINT_INDEX[name]]  # noqa: E731  (fixed-point, for cv2)
    limb, trunk = style.limb_width * scale, style.torso_width * scale

    def part(draw):
        # Draw into fresh 8-bit layers (cv2 anti-aliases 8-bit images only; drawing on black gives
        # colour premultiplied by coverage), then lay them over the parts behind.
        nonlocal colour, alpha
        part_colour = np.zeros((height, width, 3), np.uint8)
        part_alpha = np.zeros((height, width), np.uint8)
        draw((part_colour, part_alpha))
        part_colour = part_colour.astype(np.float32)
        part_alpha = part_alpha.astype(np.float32) * np.float32(1 / 255)
        np.multiply(colour, 1.0 - part_alpha[..., None], out=colour)
        colour += part_colour
        np.multiply(alpha, 1.0 - part_alpha, out=alpha)
        alpha += part_alpha

    def arm(side, shade):
        shirt = tuple(c * shade for c in style.shirt)
        skin = tuple(c * shade for c in style.skin)
        return lambda layers: (
            _stroke(layers, j(f"{side}_shoulder"), j(f"{side}_elbow"), limb, shirt),
            _stroke(layers, j(f"{side}_elbow"), j(f"{side}_wrist"), limb * 0.9, skin),
            _disc(layers, j(f"{side}_wrist"), limb * 0.6, skin),
        )

    def leg(side, shade):
        pants = tuple(c * shade for c in style.pants)
        shoe = tuple(c * 0.35 * shade for c in style.pants)
        return lambda layers: (
            _stroke(layers, j(f"{side}_hip"), j(f"{side}_knee"), limb * 1.15, pants),
            _stroke(layers, j(f"{side}_knee"), j(f"{side}_ankle"), limb * 1.05, pants),
            _stroke(layers, j(f"{side}_ankle"), j(f"{side}_toe"), limb * 0.9, shoe),
        )

    def trunk_and_head(layers):
        _stroke(layers, j("pelvis"), j("neck"), trunk, style.shirt)
        if view == "front":  # shoulders and hips as bars
            _stroke(layers, j("l_shoulder"), j("r_shoulder"), limb, style.shirt)
            _stroke(layers, j("l_hip"), j("r_hip"), limb * 1.15, style.pants)
        _disc(layers, j("head"), body.head_radius * scale, style.skin)
        _face(layers, joints_px[JOINT_INDEX["head"]], body.head_radius * scale, style.skin, view, facing)

    if view == "profile":
        order = [leg("l", style.far_shade), arm("l", style.far_shade), trunk_and_head, leg("r", 1.0), arm("r", 1.0)]
    else:
        order = [leg("l", 1.0), leg("r", 1.0), trunk_and_head, arm("l", 1.0), arm("r", 1.0)]
    for draw in order:
        part(draw)
    return colour, alpha


def blurred_figure(joint_steps_px: np.ndarray, weights: np.ndarray, body: Body, style: Style, scale: float,
                   size: tuple[int, int], view: str = "profile", facing: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Motion blur: the weighted mean of the figure drawn at each exposure sub-step ``[K, J, 2]``.

    Drawing happens in the box around the figure only (it covers a small part of the frame).
    """
    weights = np.asarray(weights, np.float64) / np.sum(weights)
    colour = np.zeros((*size, 3), np.float32)
    alpha = np.zeros(size, np.float32)
    reach = (body.head_radius * 1.6 + style.torso_width) * scale + 2  # strokes and the head stick out of the joints
    points = joint_steps_px.reshape(-1, 2)
    x0, y0 = np.floor(points.min(axis=0) - reach).astype(int)
    x1, y1 = np.ceil(points.max(axis=0) + reach).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size[1]), min(y1, size[0])
    if x1 <= x0 or y1 <= y0:  # entirely outside the frame
        return colour, alpha
    box = (y1 - y0, x1 - x0)
    offset = np.array([x0, y0], np.float64)
    for joints, w in zip(joint_steps_px, weights):
        c, a = draw_figure(joints - offset, body, style, scale, box, view, facing)
        colour[y0:y1, x0:x1] += np.float32(w) * c
        alpha[y0:y1, x0:x1] += np.float32(w) * a
    return colour, alpha


def composite(background: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``background`` (float32 [H, W, 3]) under a premultiplied layer."""
    return background * (1.0 - alpha[..., None]) + colour


def draw_stool(background: np.ndarray, seat_px: np.ndarray, ground_y: float, scale: float, colour) -> None:
    """A stool whose seat top is at ``seat_px``, standing on the ground line (drawn in place)."""
    half = 0.11 * scale
    thick = max(1, int(round(0.035 * scale)))
    x, y = seat_px
    cv2.line(background, _fixed((x - half, y)), _fixed((x + half, y)), colour, thick, cv2.LINE_AA, SUBPIXEL_BITS)
    leg = tuple(c * 0.7 for c in colour)
    for dx in (-0.8 * half, 0.8 * half):
        cv2.line(background, _fixed((x + dx, y)), _fixed((x + dx * 1.15, ground_y)), leg,
                 max(1, thick - 1), cv2.LINE_AA, SUBPIXEL_BITS)


# -- backgrounds ----------------------------------------------------------------
def _random_colour(rng: np.random.Generator, sat=(0.0, 0.7), val=(0.2, 0.95)) -> np.ndarray:
    return np.array(hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)), np.float32)


def gradient(rng: np.random.Generator, size: tuple[int, int], sat=(0.0, 0.7), val=(0.2, 0.95)) -> np.ndarray:
    """A linear gradient between two random colours in a random direction."""
    height, width = size
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (xx / width - 0.5) * np.cos(angle) + (yy / height - 0.5) * np.sin(angle) + 0.5
    ramp = np.clip(ramp, 0, 1)[..., None]
    a, b = _random_colour(rng, sat, val), _random_colour(rng, sat, val)
    return a * (1 - ramp) + b * ramp


def texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A greyscale texture in [-1, 1]: stripes, checks, or smooth noise (clouds)."""
    height, width = size
    kind = rng.integers(3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 40)
        return np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period).astype(np.float32)
    if kind == 1:
        cell = rng.uniform(8, 40)
        return np.where((np.floor(xx / cell) + np.floor(yy / cell)) % 2 == 0, 1.0, -1.0).astype(np.float32)
    noise = rng.standard_normal((height, width)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(2, 10))
    return noise / (np.abs(noise).max() + 1e-6)


def shapes(canvas: np.ndarray, rng: np.random.Generator, count: int) -> None:
    """Random filled circles, rectangles and triangles, semi-transparent, drawn in place."""
    height, width = canvas.shape[:2]
    for _ in range(count):
        layer = canvas.copy()
        colour = tuple(float(c) for c in _random_colour(rng))
        kind = rng.integers(3)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.04, 0.25) * min(height, width)
        if kind == 0:
            cv2.circle(layer, _fixed((cx, cy)), int(r * SUBPIXEL), colour, -1, cv2.LINE_AA, SUBPIXEL_BITS)
        elif kind == 1:
            w, h = r * rng.uniform(0.5, 2.0), r * rng.uniform(0.5, 2.0)
            cv2.rectangle(layer, (int(cx - w), int(cy - h)), (int(cx + w), int(cy + h)), colour, -1)
        else:
            points = np.array([[cx, cy]]) + rng.uniform(-r, r, (3, 2))
            cv2.fillPoly(layer, [np.round(points * SUBPIXEL).astype(np.int32)], colour, cv2.LINE_AA, SUBPIXEL_BITS)
        opacity = np.float32(rng.uniform(0.35, 1.0))
        canvas[:] = canvas * (1 - opacity) + layer * opacity


def still_background(rng: np.random.Generator, size: tuple[int, int], ground_y: float) -> np.ndarray:
    """Varied, context-rich background for stills: gradient + texture + shapes, maybe a floor, maybe defocused."""
    canvas = gradient(rng, size)
    if rng.random() < 0.7:
        strength = rng.uniform(10, 45)
        tint = _random_colour(rng) / 255.0
        canvas += texture(rng, size)[..., None] * strength * tint
    shapes(canvas, rng, int(rng.integers(0, 9)))
    if rng.random() < 0.6:
        floor = gradient(rng, size, val=(0.15, 0.8))
        top = int(np.clip(ground_y - rng.uniform(0.0, 0.08) * size[0], 0, size[0]))
        canvas[top:] = floor[top:]
    if rng.random() < 0.5:  # shallow depth of field: the subject is sharper than the scene
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.8, 2.5))
    return np.clip(canvas, 0, 255).astype(np.float32)


def video_background(rng: np.random.Generator, size: tuple[int, int], ground_y: float) -> np.ndarray:
    """Plain-ish background for videos: a low-contrast wall and floor, and a few dull blocks."""
    height, width = size
    low_sat = (0.0, 0.35)
    canvas = gradient(rng, size, sat=low_sat, val=(0.35, 0.85))
    floor = gradient(rng, size, sat=low_sat, val=(0.2, 0.7))
    top = int(np.clip(ground_y - rng.uniform(0.0, 0.06) * height, 0, height))
    canvas[top:] = floor[top:]
    for _ in range(int(rng.integers(0, 4))):  # furniture-like blocks on the wall
        colour = tuple(float(c) for c in _random_colour(rng, low_sat, (0.25, 0.8)))
        x0, w = rng.uniform(0, width), rng.uniform(0.05, 0.3) * width
        y1 = rng.uniform(0.3, 1.0) * top
        cv2.rectangle(canvas, (int(x0), int(y1 - rng.uniform(0.1, 0.4) * height)), (int(x0 + w), int(y1)), colour, -1)
    return canvas


def shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Translate by a sub-pixel offset (camera shake), reflecting at the borders."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def shake(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    """Camera shake: smooth random per-frame offsets ``[T, 2]`` (AR(1) process), about ``amplitude`` px."""
    offsets = np.zeros((frames, 2))
    state = rng.normal(0, amplitude, 2)
    for k in range(frames):
        state = 0.75 * state + rng.normal(0, amplitude * 0.66, 2)
        offsets[k] = state
    return offsets


def to_uint8(image: np.ndarray, rng: np.random.Generator | None = None, noise: float = 0.0) -> np.ndarray:
    """Add Gaussian sensor noise (sigma ``noise``) and quantise."""
    if rng is not None and noise > 0:
        image = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(noise)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)
