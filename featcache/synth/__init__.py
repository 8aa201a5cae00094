"""Procedural synthetic action dataset (``featcache data synth``).

Articulated figures perform pairs of actions that share their poses and differ in the
direction of motion (sit down / stand up, walk forward / backward, ...): videos show the
motion, motion-blurred stills only hint at it. skeleton -> actions -> render/samples -> generate.
"""

from featcache.synth.actions import ACTIONS, DEFAULT_CLASSES, MAX_CLASSES, pair_of, select_actions
from featcache.synth.generate import SynthConfig, generate

__all__ = ["ACTIONS", "DEFAULT_CLASSES", "MAX_CLASSES", "SynthConfig", "generate", "pair_of", "select_actions"]
