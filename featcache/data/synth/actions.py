"""The synthetic action classes: keyframed pose cycles over a phase ``u`` in [0, 1].

Classes come in pairs that share their poses and differ in motion: the second of a pair is
the first played backwards (:class:`ReversedAction`), so a still shows the same pose set for
both and only the direction of motion (visible in videos, weakly in motion-blurred stills)
tells them apart. This is the T2SIL setting: temporal knowledge is what separates them.

Time ``t`` in [0, 1] spans one video. A :class:`Timing` (sampled per sample) maps time to
phase: one-shot actions (sit down) run once between ``start`` and ``start + duration`` and
hold their first/last pose outside it; periodic actions (walk) run ``cycles`` cycles from
``phase0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from featcache.data.synth.skeleton import POSE_INDEX, POSE_NAMES

PROFILE_REST = {"torso": 0.03, "l_shoulder": 0.06, "r_shoulder": -0.06, "l_elbow": 0.15, "r_elbow": 0.2}
FRONT_REST = {"l_shoulder": -0.18, "r_shoulder": 0.18, "l_elbow": 0.1, "r_elbow": -0.1, "l_hip": -0.06, "r_hip": 0.06}


def pose_vector(view: str, **angles: float) -> np.ndarray:
    """A pose: the view's resting pose with ``angles`` overriding some entries."""
    pose = np.zeros(len(POSE_NAMES))
    for name, value in {**(PROFILE_REST if view == "profile" else FRONT_REST), **angles}.items():
        pose[POSE_INDEX[name]] = value
    return pose


def hermite(keys: np.ndarray, values: np.ndarray, u: np.ndarray, periodic: bool) -> np.ndarray:
    """Cubic Hermite interpolation through keyframes (finite-difference tangents).

    One-shot curves start and stop at rest (zero tangents at the ends); periodic curves wrap.
    """
    if periodic:  # pad one key on each side, shifted by a period
        keys = np.concatenate([[keys[-1] - 1.0], keys, [1.0, 1.0 + keys[1]]])
        values = np.concatenate([values[-1:], values, values[:1], values[1:2]])
    tangents = np.zeros_like(values)
    tangents[1:-1] = (values[2:] - values[:-2]) / (keys[2:] - keys[:-2])[:, None]
    seg = np.clip(np.searchsorted(keys, u, side="right") - 1, 0, len(keys) - 2)
    h = keys[seg + 1] - keys[seg]
    s = np.clip((u - keys[seg]) / h, 0.0, 1.0)[:, None]
    h = h[:, None]
    s2, s3 = s * s, s * s * s
    return (
        (2 * s3 - 3 * s2 + 1) * values[seg]
        + (s3 - 2 * s2 + s) * h * tangents[seg]
        + (-2 * s3 + 3 * s2) * values[seg + 1]
        + (s3 - s2) * h * tangents[seg + 1]
    )


@dataclass(frozen=True)
class Timing:
    """How one sample runs through its action: where it starts and how fast."""

    start: float = 0.1  # one-shot: time the motion starts
    duration: float = 0.8  # one-shot: time the motion takes
    phase0: float = 0.0  # periodic: phase at t = 0
    cycles: float = 1.0  # periodic: cycles per video

    def progress(self, t: np.ndarray, periodic: bool) -> np.ndarray:
        """Continuous progress: phase for one-shot actions, cycles done (+ phase0) for periodic ones."""
        t = np.asarray(t, dtype=np.float64)
        if periodic:
            return self.phase0 + self.cycles * t
        return np.clip((t - self.start) / self.duration, 0.0, 1.0)


@dataclass(frozen=True)
class Action:
    """A keyframed pose cycle. ``keyframes``: ``[(u, {angle: value})]`` over u in [0, 1)."""

    name: str
    description: str
    view: str
    keyframes: tuple
    periodic: bool = False
    travel: float = 0.0  # body units the feet move per cycle (periodic) or in all (one-shot)
    travel_profile: tuple = ((0.0, 0.0), (1.0, 1.0))  # fraction of a cycle's travel done at phase u
    mirrorable: bool = True  # a mirrored sample is still this class (not for left/right classes)
    speed: tuple = (0.6, 0.9)  # duration (one-shot) or cycles per video (periodic), sampled uniformly
    prop: str | None = None  # scenery the action needs ("stool")
    prop_phase: float = 1.0  # the phase whose pose places the prop
    id: int = field(default=-1, compare=False)

    def poses_at_phase(self, u: np.ndarray) -> np.ndarray:
        """Poses ``[T, P]`` at phases ``u`` (without travel)."""
        keys = np.array([k for k, _ in self.keyframes], dtype=np.float64)
        values = np.stack([pose_vector(self.view, **angles) for _, angles in self.keyframes])
        u = np.asarray(u, dtype=np.float64).reshape(-1)
        return hermite(keys, values, np.mod(u, 1.0) if self.periodic else u, self.periodic)

    def trajectory(self, t: np.ndarray, timing: Timing) -> np.ndarray:
        """Poses ``[T, P]`` at video times ``t``, feet travelling along x."""
        progress = np.asarray(timing.progress(np.asarray(t).reshape(-1), self.periodic))
        poses = self.poses_at_phase(progress)
        whole, frac = (np.floor(progress), progress - np.floor(progress)) if self.periodic else (0.0, progress)
        ku, kv = zip(*self.travel_profile)
        poses[:, POSE_INDEX["x"]] += self.travel * (whole + np.interp(frac, ku, kv))
        return poses

    def sample_timing(self, rng: np.random.Generator) -> Timing:
        speed = float(rng.uniform(*self.speed))
        if self.periodic:
            return Timing(phase0=float(rng.uniform(0.0, 1.0)), cycles=speed)
        # Centre the motion near the middle so the held first and last poses get equal time.
        centre = float(rng.uniform(0.42, 0.58))
        return Timing(start=centre - speed / 2, duration=speed)

    def prop_pose(self) -> np.ndarray:
        return self.poses_at_phase(np.array([self.prop_phase]))[0]

    def moving_interval(self, timing: Timing) -> tuple[float, float]:
        """Video times during which the figure moves (all of it for periodic actions)."""
        if self.periodic:
            return 0.0, 1.0
        return timing.start, timing.start + timing.duration


@dataclass(frozen=True)
class ReversedAction(Action):
    """``base`` played backwards: the same poses, time reversed (and travel reversed)."""

    base: Action | None = None

    def trajectory(self, t: np.ndarray, timing: Timing) -> np.ndarray:
        return self.base.trajectory(1.0 - np.asarray(t, dtype=np.float64), timing)

    def poses_at_phase(self, u: np.ndarray) -> np.ndarray:
        return self.base.poses_at_phase(1.0 - np.asarray(u, dtype=np.float64))

    def sample_timing(self, rng: np.random.Generator) -> Timing:
        return self.base.sample_timing(rng)

    def prop_pose(self) -> np.ndarray:
        return self.base.prop_pose()

    def moving_interval(self, timing: Timing) -> tuple[float, float]:
        start, end = self.base.moving_interval(timing)
        return 1.0 - end, 1.0 - start


def reversed_action(base: Action, name: str, description: str) -> ReversedAction:
    return ReversedAction(
        name=name, description=description, view=base.view, keyframes=base.keyframes, periodic=base.periodic,
        travel=-base.travel, travel_profile=base.travel_profile, mirrorable=base.mirrorable, speed=base.speed,
        prop=base.prop, prop_phase=1.0 - base.prop_phase, base=base,
    )


SIT_DOWN = Action(
    "sit_down", "sits down on a stool (side view); stand_up is the same motion backwards", "profile",
    (
        (0.0, {}),
        (0.3, dict(torso=0.45, l_hip=0.55, r_hip=0.6, l_knee=-0.6, r_knee=-0.65, l_shoulder=0.5, r_shoulder=0.6)),
        (0.65, dict(torso=0.5, l_hip=1.35, r_hip=1.4, l_knee=-1.45, r_knee=-1.45,
                    l_shoulder=0.7, r_shoulder=0.75, l_elbow=0.4, r_elbow=0.4)),
        (1.0, dict(torso=0.08, l_hip=1.5, r_hip=1.55, l_knee=-1.5, r_knee=-1.55,
                   l_shoulder=0.25, r_shoulder=0.3, l_elbow=0.9, r_elbow=0.95)),
    ),
    speed=(0.6, 0.85), prop="stool", prop_phase=1.0,
)
WALK_FORWARD = Action(
    "walk_forward", "walks forward in the direction it faces (side view, either facing)", "profile",
    (
        (0.0, dict(torso=0.07, l_hip=0.38, l_knee=-0.05, r_hip=-0.32, r_knee=-0.25,
                   l_shoulder=-0.35, r_shoulder=0.35, l_elbow=0.3, r_elbow=0.5)),
        (0.25, dict(torso=0.07, l_hip=0.05, l_knee=-0.15, r_hip=0.25, r_knee=-1.1, l_elbow=0.4, r_elbow=0.4)),
        (0.5, dict(torso=0.07, l_hip=-0.32, l_knee=-0.25, r_hip=0.38, r_knee=-0.05,
                   l_shoulder=0.35, r_shoulder=-0.35, l_elbow=0.5, r_elbow=0.3)),
        (0.75, dict(torso=0.07, l_hip=0.25, l_knee=-1.1, r_hip=0.05, r_knee=-0.15, l_elbow=0.4, r_elbow=0.4)),
    ),
    periodic=True, travel=0.55, speed=(0.9, 1.4),
)
SWIPE_RIGHT = Action(
    "swipe_right", "swipes the right-hand arm fast from left to right across the body, returns slowly (front view)",
    "front",
    (
        (0.0, dict(torso=-0.06, r_shoulder=-1.3, r_elbow=-0.6)),
        (0.2, dict(torso=0.06, r_shoulder=1.9, r_elbow=0.25)),
        (0.42, dict(torso=0.04, r_shoulder=2.2, r_elbow=0.6)),
        (0.72, dict(torso=0.0, r_shoulder=0.25, r_elbow=-1.4)),
    ),
    periodic=True, mirrorable=False, speed=(1.0, 1.8),
)
RAISE_ARMS = Action(
    "raise_arms", "raises both arms sideways from the hips to above the head (front view)", "front",
    (
        (0.0, {}),
        (1.0, dict(l_shoulder=-2.95, r_shoulder=2.95, l_elbow=-0.05, r_elbow=0.05)),
    ),
    speed=(0.45, 0.8),
)
JUMP_UP = Action(
    "jump_up", "crouches, swings the arms and takes off upwards (side view); land is the reverse", "profile",
    (
        (0.0, {}),
        (0.35, dict(torso=0.6, l_hip=1.0, r_hip=1.05, l_knee=-1.5, r_knee=-1.5,
                    l_shoulder=-0.7, r_shoulder=-0.6, l_elbow=0.2, r_elbow=0.2)),
        (0.6, dict(torso=0.1, lift=0.06, l_hip=0.05, r_hip=0.05, l_shoulder=2.4, r_shoulder=2.5,
                   l_elbow=0.2, r_elbow=0.2)),
        (1.0, dict(torso=0.05, lift=0.32, l_hip=0.5, r_hip=0.55, l_knee=-1.0, r_knee=-1.05,
                   l_shoulder=2.7, r_shoulder=2.75, l_elbow=0.3, r_elbow=0.3)),
    ),
    speed=(0.55, 0.85),
)
STEP_RIGHT = Action(
    "step_right", "side-steps to the image right: the right foot leads fast, the left drags after (front view)",
    "front",
    (
        (0.0, {}),
        (0.3, dict(l_hip=-0.1, r_hip=0.42, l_shoulder=-0.3, r_shoulder=0.45)),
        (0.5, dict(l_hip=-0.3, r_hip=0.3, l_shoulder=-0.35, r_shoulder=0.35)),
        (0.85, dict(l_hip=-0.1, r_hip=0.12, l_shoulder=-0.25, r_shoulder=0.25)),
    ),
    periodic=True, travel=0.3, travel_profile=((0.0, 0.0), (0.3, 0.5), (0.5, 0.5), (0.85, 1.0), (1.0, 1.0)),
    mirrorable=False, speed=(1.0, 1.8),
)

# The catalogue, in class order: pairs of (action, its reverse). `--classes N` takes the first N.
# Vertical, mirror-symmetric pairs come first: a horizontal flip (the fine-tuning augmentation)
# keeps their labels, and their direction shows in any view. Walking needs the facing and the
# travel read together; the left/right pairs change label under a flip (measured on the 6-class
# demo set in the first order: the swipe pair at chance, walking near it, for both temporal models).
_PAIRS = (
    (SIT_DOWN, "stand_up", "stands up from a stool (side view); sit_down backwards"),
    (RAISE_ARMS, "lower_arms", "lowers both arms sideways from above the head to the hips (front view); raise_arms backwards"),
    (JUMP_UP, "land", "drops from the air, absorbs the landing in a crouch and stands (side view); jump_up backwards"),
    (WALK_FORWARD, "walk_backward", "walks backwards, away from the direction it faces (side view); walk_forward backwards"),
    (SWIPE_RIGHT, "swipe_left", "swipes the right-hand arm fast from right to left, returns slowly (front view); swipe_right backwards"),
    (STEP_RIGHT, "step_left", "side-steps to the image left, left foot leading (front view); step_right backwards"),
)


def _catalogue() -> tuple[Action, ...]:
    out = []
    for base, name, description in _PAIRS:
        out.append(base)
        out.append(reversed_action(base, name, description))
    return tuple(type(a)(**{**a.__dict__, "id": i}) for i, a in enumerate(out))


ACTIONS: tuple[Action, ...] = _catalogue()
ACTIONS_BY_NAME = {a.name: a for a in ACTIONS}
MAX_CLASSES = len(ACTIONS)
DEFAULT_CLASSES = 8


def pair_of(action: Action) -> Action:
    """The other class of ``action``'s pair (same poses, reversed motion)."""
    return ACTIONS[action.id ^ 1]


def select_actions(num_classes: int) -> tuple[Action, ...]:
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"--classes must be between 2 and {MAX_CLASSES}, got {num_classes}")
    return ACTIONS[:num_classes]
