"""Procedural synthetic action dataset (``featcache data synth``).

Articulated figures perform pairs of actions that share their poses and differ in the
direction of motion (sit down / stand up, walk forward / backward, ...): videos show the
motion; a still shows it only when its blur carries the cue (``still_motion_cue``, the
probability of a direction-revealing trail). skeleton -> actions -> render/samples -> generate.
"""

from featcache.data.synth.actions import ACTIONS, DEFAULT_CLASSES, MAX_CLASSES, pair_of, select_actions
from featcache.data.synth.generate import SynthConfig, generate

__all__ = ["ACTIONS", "DEFAULT_CLASSES", "MAX_CLASSES", "SynthConfig", "generate", "pair_of", "select_actions"]
