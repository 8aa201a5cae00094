"""A 2D articulated figure and its forward kinematics.

Units are "body units" (a standing figure is about one unit tall), image convention:
x to the right, y down, the ground at y = 0. A pose is a vector over :data:`POSE_NAMES`:

- ``x``: horizontal position of the feet (mean ankle x); ``lift``: height of the lowest
  foot point above the ground (jumps).
- ``torso``: lean of the torso from vertical (positive tilts its top towards +x);
  ``head``: nod relative to the torso.
- ``*_shoulder`` / ``*_elbow``: upper arm relative to the torso's downward axis, forearm
  relative to the upper arm. ``*_hip`` / ``*_knee``: thigh relative to straight down
  (the pelvis does not rotate), shin relative to the thigh.

An angle ``a`` points along ``(sin a, cos a)``: 0 is straight down, positive swings towards
+x. In a profile view the figure faces +x (``facing=-1`` mirrors it), ``l_`` limbs are the
far side and ``r_`` the near side; in a front view ``l_`` limbs are on the image left.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

POSE_NAMES = (
    "x", "lift", "torso", "head",
    "l_shoulder", "l_elbow", "r_shoulder", "r_elbow",
    "l_hip", "l_knee", "r_hip", "r_knee",
)
POSE_INDEX = {name: i for i, name in enumerate(POSE_NAMES)}

JOINTS = (
    "pelvis", "neck", "head",
    "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    "l_hip", "l_knee", "l_ankle", "l_toe", "r_hip", "r_knee", "r_ankle", "r_toe",
)
JOINT_INDEX = {name: i for i, name in enumerate(JOINTS)}

# Limbs as (from, to) joint pairs, per side; the torso runs pelvis -> neck.
ARM_BONES = (("shoulder", "elbow"), ("elbow", "wrist"))
LEG_BONES = (("hip", "knee"), ("knee", "ankle"), ("ankle", "toe"))
VIEWS = ("profile", "front")


@dataclass(frozen=True)
class Body:
    """Bone lengths in body units. ``sample`` varies them per figure."""

    head_radius: float = 0.065
    neck: float = 0.04
    torso: float = 0.30
    upper_arm: float = 0.15
    forearm: float = 0.14
    thigh: float = 0.23
    shin: float = 0.22
    foot: float = 0.06
    shoulder_half: float = 0.08  # half the shoulder width (front view)
    hip_half: float = 0.045  # half the hip width (front view)

    @classmethod
    def sample(cls, rng: np.random.Generator, spread: float = 0.12) -> "Body":
        """Proportions jittered by up to +-``spread`` (relative), independently per bone."""
        base = cls()
        return cls(**{f.name: getattr(base, f.name) * rng.uniform(1 - spread, 1 + spread) for f in fields(cls)})

    @property
    def height(self) -> float:
        return self.shin + self.thigh + self.torso + self.neck + 2 * self.head_radius


def direction(angle: np.ndarray) -> np.ndarray:
    """Unit vectors ``(sin a, cos a)`` for angles ``[...]`` -> ``[..., 2]`` (0 points down)."""
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1)


def forward_kinematics(poses: np.ndarray, body: Body, view: str = "profile", facing: int = 1) -> np.ndarray:
    """Joint positions ``[T, J, 2]`` (body units, ground at y=0) for poses ``[T, P]``."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
    poses = np.atleast_2d(np.asarray(poses, dtype=np.float64))
    p = {name: poses[:, i] for name, i in POSE_INDEX.items()}
    joints = np.zeros((poses.shape[0], len(JOINTS), 2))
    put = lambda name, value: joints.__setitem__((slice(None), JOINT_INDEX[name]), value)  # noqa: E731

    torso_down = -p["torso"]  # the torso's downward axis, as a limb angle
    up = -direction(torso_down)
    across = np.stack([np.cos(p["torso"]), np.sin(p["torso"])], axis=-1)  # perpendicular to the torso
    neck = up * body.torso
    put("neck", neck)
    put("head", neck + direction(torso_down + p["head"]) * -(body.neck + body.head_radius))
    front = view == "front"
    for side, sign in (("l", -1.0), ("r", 1.0)):
        shoulder = neck + across * (sign * body.shoulder_half if front else 0.0)
        arm = torso_down + p[f"{side}_shoulder"]
        elbow = shoulder + direction(arm) * body.upper_arm
        put(f"{side}_shoulder", shoulder)
        put(f"{side}_elbow", elbow)
        put(f"{side}_wrist", elbow + direction(arm + p[f"{side}_elbow"]) * body.forearm)

        hip = np.zeros_like(neck)
        hip[:, 0] = sign * body.hip_half if front else 0.0
        thigh = p[f"{side}_hip"]
        knee = hip + direction(thigh) * body.thigh
        ankle = knee + direction(thigh + p[f"{side}_knee"]) * body.shin
        # Feet point forward in profile (perpendicular to the shin), outward in a front view.
        foot_angle = thigh + p[f"{side}_knee"] + (np.pi / 2 if not front else sign * np.pi / 2)
        toe = ankle + direction(foot_angle) * (body.foot if not front else body.foot * 0.5)
        put(f"{side}_hip", hip)
        put(f"{side}_knee", knee)
        put(f"{side}_ankle", ankle)
        put(f"{side}_toe", toe)

    # Place the figure: feet anchored at x, lowest foot point `lift` above the ground.
    feet = joints[:, [JOINT_INDEX[j] for j in ("l_ankle", "r_ankle", "l_toe", "r_toe")], :]
    shift_x = p["x"] - joints[:, [JOINT_INDEX["l_ankle"], JOINT_INDEX["r_ankle"]], 0].mean(axis=1)
    shift_y = -p["lift"] - feet[:, :, 1].max(axis=1)
    joints[:, :, 0] += shift_x[:, None]
    joints[:, :, 1] += shift_y[:, None]
    if facing < 0:
        joints[:, :, 0] = -joints[:, :, 0]  # a mirrored figure also travels the other way
    return joints


def bounding_box(joints: np.ndarray, body: Body) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) around every joint of ``[..., J, 2]``, the head circle included."""
    points = joints.reshape(-1, 2)
    head = joints[..., JOINT_INDEX["head"], :].reshape(-1, 2)
    r = body.head_radius
    x0 = min(points[:, 0].min(), (head[:, 0] - r).min())
    x1 = max(points[:, 0].max(), (head[:, 0] + r).max())
    y0 = min(points[:, 1].min(), (head[:, 1] - r).min())
    y1 = points[:, 1].max()
    return float(x0), float(y0), float(x1), float(y1)
