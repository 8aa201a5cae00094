"""One sample of an action: a still photo or a video clip, rendered from a seeded RNG.

Both kinds draw the same per-sample variation first (body proportions, colours and limb
widths, speed and phase, facing), then differ as in the T2SIL setting:

- videos: low resolution, the subject small and off-centre, a plain-ish background,
  camera shake, sensor noise and a little blur;
- stills: higher resolution, the subject large and centred, a varied context-rich
  background, taken while the figure moves, with motion blur along each limb's true
  motion over the exposure. The still motion cue decides per still whether the blur
  tells the direction: with probability ``motion_cue`` the exposure ends at the shown
  moment and its weights rise steeply towards the end (a fading "rear-curtain" trail
  behind the sharp figure: the direction is readable); otherwise the exposure is centred
  on that moment with symmetric weights (a two-sided smear: the same for a motion and its
  reverse, so the direction is not in the still at all).

Paired classes show the same distribution of poses (the partner is the motion played
backwards, with a timing distribution symmetric in time), so without the cue a still
cannot tell a pair apart: by construction the best still-only accuracy on a pair is
``0.5 + 0.5 * motion_cue``, while a video always shows the direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from featcache.data.synth.actions import Action, Timing
from featcache.data.synth.render import (
    Camera, Style, blurred_figure, composite, draw_stool, shake, shift, still_background, to_uint8,
    video_background,
)
from featcache.data.synth.skeleton import JOINT_INDEX, Body, bounding_box, forward_kinematics

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


def still_exposure(t: float, exposure: float, cue: bool, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-step times and weights of a still's exposure around the shown moment ``t``.

    ``cue``: the exposure ends at ``t`` and weighs its end most (a trail that fades into the
    past, pointing back along the motion). Otherwise it is centred on ``t`` with symmetric
    (triangular) weights, a smear that looks the same for a motion played backwards.
    """
    ramp = np.linspace(0.0, 1.0, steps)
    if cue:
        return exposure_times(t, exposure, steps), 0.15 + ramp ** 2
    return t + exposure * (ramp - 0.5), 1.0 - 0.8 * np.abs(2.0 * ramp - 1.0)


def render_still(action: Action, rng: np.random.Generator, size: tuple[int, int] = STILL_SIZE,
                 blur: bool = True, motion_cue: float = 0.0, figure_rng: np.random.Generator | None = None,
                 exposure_scale: float = 1.0) -> np.ndarray:
    """A still photo ``uint8 [H, W, 3]`` RGB. ``blur=False`` renders the same photo without motion blur.

    ``motion_cue``: the probability that this still's blur shows the direction of motion.
    ``exposure_scale``: the exposure's length, x two to five video frames (longer: a longer trail or
    smear, the cue easier to see; the same for cue and no-cue stills, so only the trail's shape tells).
    ``figure_rng``: draw the figure from it instead (a video's fresh RNG: the still then shows that
    video's own figure, body, clothes, timing and facing, at another moment and in a still's setting).
    """
    figure = Figure.sample(action, rng if figure_rng is None else figure_rng)
    height, width = size
    start, end = action.moving_interval(figure.timing)  # taken while the figure moves
    t = float(rng.uniform(start, end))
    exposure = exposure_scale * float(rng.uniform(2.0, 5.0)) / (VIDEO_FRAMES - 1)  # two to five video frames long
    cue = bool(rng.random() < motion_cue)
    times, weights = still_exposure(t, exposure, cue, STILL_SUBSTEPS)
    if not blur:  # the sharp moment alone (the end of a cue exposure, the middle otherwise)
        index = -1 if cue else STILL_SUBSTEPS // 2
        times, weights = times[index:][:1], weights[index:][:1]
    joints = figure.joints(times)

    # Subject centred and large: the box of its poses fills 55-80% of the height.
    x0, y0, x1, y1 = bounding_box(joints, figure.body)
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
    scale = rng.uniform(0.6, 0.75) * height / figure.body.height
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
    # Mild shake and noise: the figure's motion must dominate what flow and rank pooling see.
    offsets = shake(rng, frames, float(rng.uniform(0.1, 0.4)))
    softness = float(rng.uniform(0.3, 0.6))
    noise = float(rng.uniform(1.0, 2.5))
    weights = np.ones(VIDEO_SUBSTEPS)
    out = np.empty((frames, height, width, 3), np.uint8)
    for k in range(frames):
        colour, alpha = figure.draw(camera.to_pixels(joints[k]), weights, camera, size)
        frame = shift(composite(background, colour, alpha), *offsets[k])
        frame = cv2.GaussianBlur(frame, (0, 0), softness)
        out[k] = to_uint8(frame, rng, noise)
    return out
