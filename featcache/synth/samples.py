"""One sample of an action: a still photo or a video clip, rendered from a seeded RNG.

Both kinds draw the same per-sample variation first (body proportions, colours and limb
widths, speed and phase, facing), then differ as in the T2SIL setting:

- videos: low resolution, the subject small and off-centre, a plain-ish background,
  camera shake, sensor noise and a little blur;
- stills: higher resolution, the subject large and centred, a varied context-rich
  background, and motion blur along each limb's true motion over the exposure. The
  exposure weights rise towards its end (a "rear-curtain" trail), which leaves the
  direction of motion only weakly visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from featcache.synth.actions import Action, Timing
from featcache.synth.render import (
    Camera, Style, blurred_figure, composite, draw_stool, shake, shift, still_background, to_uint8,
    video_background,
)
from featcache.synth.skeleton import JOINT_INDEX, Body, bounding_box, forward_kinematics

STILL_SIZE = (224, 224)
VIDEO_SIZE = (96, 128)
VIDEO_FRAMES = 64
STILL_SUBSTEPS = 9
VIDEO_SUBSTEPS = 3
MARGIN = 2.0  # pixels kept free around the figure


@dataclass(frozen=True)
class Figure:
    """The per-sample variation shared by stills and videos."""

    action: Action
    body: Body
    style: Style
    timing: Timing
    facing: int

    @classmethod
    def sample(cls, action: Action, rng: np.random.Generator) -> "Figure":
        body = Body.sample(rng)
        style = Style.sample(rng)
        timing = action.sample_timing(rng)
        facing = int(rng.choice([-1, 1])) if action.mirrorable else 1
        return cls(action, body, style, timing, facing)

    def joints(self, times: np.ndarray) -> np.ndarray:
        """Joint positions ``[T, J, 2]`` in body units at video times ``times``."""
        poses = self.action.trajectory(np.asarray(times, np.float64).reshape(-1), self.timing)
        return forward_kinematics(poses, self.body, self.action.view, self.facing)

    def draw(self, joints_px: np.ndarray, weights: np.ndarray, camera: Camera, size) -> tuple[np.ndarray, np.ndarray]:
        return blurred_figure(joints_px, weights, self.body, self.style, camera.scale, size,
                              self.action.view, self.facing)

    def add_prop(self, background: np.ndarray, camera: Camera, rng: np.random.Generator) -> None:
        if self.action.prop != "stool":
            return
        pose = self.action.prop_pose()[None].copy()
        seat = forward_kinematics(pose, self.body, self.action.view, self.facing)[0, JOINT_INDEX["pelvis"]]
        seat = seat + np.array([0.0, self.style.limb_width * 0.6])  # just under the thigh
        colour = tuple(float(c) for c in rng.uniform(40, 200, 3))
        draw_stool(background, camera.to_pixels(seat), camera.origin_y, camera.scale, colour)


def exposure_times(t: float, exposure: float, steps: int) -> np.ndarray:
    """``steps`` sub-step times over the exposure that ends at ``t``."""
    return t - exposure * (1.0 - np.linspace(0.0, 1.0, steps))


def render_still(action: Action, rng: np.random.Generator, size: tuple[int, int] = STILL_SIZE,
                 blur: bool = True) -> np.ndarray:
    """A still photo ``uint8 [H, W, 3]`` RGB. ``blur=False`` renders the same photo without motion blur."""
    figure = Figure.sample(action, rng)
    height, width = size
    t = float(rng.uniform(0.0, 1.0))
    exposure = float(rng.uniform(1.0, 4.0)) / (VIDEO_FRAMES - 1)  # one to four video frames long
    tail = float(rng.uniform(0.3, 1.5))  # how much heavier the end of the exposure weighs
    steps = STILL_SUBSTEPS if blur else 1
    times = exposure_times(t, exposure, STILL_SUBSTEPS)[-steps:]
    weights = 1.0 + tail * np.linspace(0.0, 1.0, STILL_SUBSTEPS)[-steps:]
    joints = figure.joints(times)

    # Subject centred and large: the sharp pose's box fills 55-80% of the height.
    x0, y0, x1, y1 = bounding_box(joints[-1:], figure.body)
    scale = min(rng.uniform(0.55, 0.8) * height / figure.body.height, 0.9 * height / (y1 - y0), 0.9 * width / (x1 - x0))
    cx = width / 2 + rng.uniform(-0.04, 0.04) * width - scale * (x0 + x1) / 2
    cy = height / 2 + rng.uniform(-0.04, 0.04) * height - scale * (y0 + y1) / 2
    camera = Camera(scale, cx, cy)

    background = still_background(rng, size, camera.origin_y)
    figure.add_prop(background, camera, rng)
    colour, alpha = figure.draw(camera.to_pixels(joints), weights, camera, size)
    noise = float(rng.uniform(0.0, 3.0))
    return to_uint8(composite(background, colour, alpha), rng, noise)


def place_in_video(figure: Figure, joints: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> Camera:
    """Small and off-centre, the whole motion inside the frame."""
    height, width = size
    x0, y0, x1, y1 = bounding_box(joints, figure.body)
    ground = rng.uniform(0.82, 0.93) * height
    scale = rng.uniform(0.45, 0.62) * height / figure.body.height
    scale = min(scale, (width - 2 * MARGIN) / (x1 - x0), (ground - MARGIN) / max(-y0, 1e-6))
    side = rng.choice([-1.0, 1.0])
    centre = width * (0.5 + side * rng.uniform(0.12, 0.24))
    half = scale * (x1 - x0) / 2
    centre = float(np.clip(centre, MARGIN + half, width - MARGIN - half))
    return Camera(scale, centre - scale * (x0 + x1) / 2, ground)


def render_video(action: Action, rng: np.random.Generator, frames: int = VIDEO_FRAMES,
                 size: tuple[int, int] = VIDEO_SIZE) -> np.ndarray:
    """A video clip ``uint8 [T, H, W, 3]`` RGB."""
    figure = Figure.sample(action, rng)
    height, width = size
    # Frame k shows video time k / (T - 1); each frame integrates a short exposure (a little blur).
    exposure = float(rng.uniform(0.2, 0.6)) / (frames - 1)
    times = np.concatenate([exposure_times(k / (frames - 1), exposure, VIDEO_SUBSTEPS) for k in range(frames)])
    joints = figure.joints(times).reshape(frames, VIDEO_SUBSTEPS, -1, 2)
    camera = place_in_video(figure, joints, size, rng)

    background = video_background(rng, size, camera.origin_y)
    figure.add_prop(background, camera, rng)
    offsets = shake(rng, frames, float(rng.uniform(0.3, 1.2)))
    softness = float(rng.uniform(0.3, 0.8))
    noise = float(rng.uniform(2.0, 5.0))
    weights = np.ones(VIDEO_SUBSTEPS)
    out = np.empty((frames, height, width, 3), np.uint8)
    for k in range(frames):
        colour, alpha = figure.draw(camera.to_pixels(joints[k]), weights, camera, size)
        frame = shift(composite(background, colour, alpha), *offsets[k])
        frame = cv2.GaussianBlur(frame, (0, 0), softness)
        out[k] = to_uint8(frame, rng, noise)
    return out
