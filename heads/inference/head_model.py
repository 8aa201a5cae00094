"""A trained head rebuilt from its ``model.pt`` (:func:`heads.training.checkpoint.save_head_checkpoint`):
the still model and the derived (temporal) stream, as functions of still features.

The derived stream is each method's own rebuild, its registry record's ``load_predictor`` hook
(:mod:`heads.training.registry`); methods without one, and the still baselines (whose ``model.pt``
holds a still model only), have the still stream alone. Multi-seed runs hold the first seed's networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from featcache.errors import FeatcacheError
from heads.models.linear_classifier import LinearClassifier
from heads.training.loop import predict
from heads.training.methods import get_method
from heads.training.predictor import loaded, member_random

Logits = Callable[[torch.Tensor], torch.Tensor]  # still features [N, D] -> class scores [N, C]


@dataclass
class HeadModel:
    method: str
    still_mode: str  # "linear": a linear softmax on still features; "logits": the backbone's own scores
    still: Logits | None  # None with still_mode "logits"
    derived: Logits | None  # None for runs without a derived stream


def still_model(checkpoint: dict) -> Logits:
    """The linear still model: ``[N, D] -> [N, C]``, in chunks."""
    dims = checkpoint["dims"]
    model = LinearClassifier(1, dims["still"], dims["classes"], member_random(checkpoint))
    model = loaded(model, checkpoint["state"]["still"]).eval().requires_grad_(False)
    return lambda x: predict(model, x, 1)[0]


def derived_stream(checkpoint: dict) -> Logits | None:
    """The method's derived stream (its ``load_predictor``), None without one."""
    if "dimred" not in checkpoint["state"]:  # a still baseline: the still model only
        return None
    hook = get_method(checkpoint["method"]).load_predictor
    return None if hook is None else hook(checkpoint)


def rebuild_head(checkpoint: dict, path: str) -> HeadModel:
    """The still model and derived stream of a head checkpoint (``path`` names it in errors)."""
    mode = checkpoint.get("still_model", "linear")
    try:
        still = still_model(checkpoint) if mode == "linear" else None
        derived = derived_stream(checkpoint)
    except FeatcacheError as exc:
        raise FeatcacheError(f"{path}: {exc}") from None
    except (RuntimeError, KeyError) as exc:
        raise FeatcacheError(f"{path}: its state does not fit the {checkpoint.get('method')} networks "
                             f"({str(exc).splitlines()[0]})") from None
    return HeadModel(str(checkpoint.get("method")), mode, still, derived)
