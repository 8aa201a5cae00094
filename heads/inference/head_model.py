"""A trained head rebuilt from its ``model.pt`` (:func:`heads.training.checkpoint.save_head_checkpoint`):
the still model and, per method, the derived (temporal) stream, as functions of still features.

One rebuild per method, in :data:`DERIVED`: ``classifier`` and the still baselines have no derived
stream; ``gan`` is the frozen dim-reduction classifier on the generator's output; ``embed`` the
embedding classifier on the embedding network's. A new method adds its entry here.
Multi-seed runs hold the first seed's networks (``seed_states`` keeps the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from featcache.errors import FeatcacheError
from heads.models.dim_reduction_network import DimReductionNetwork
from heads.models.embedding_network import EmbeddingNetwork
from heads.models.generator import Generator
from heads.models.linear_classifier import LinearClassifier
from heads.nn.member_random import MemberRandom
from heads.training.loop import predict

Logits = Callable[[torch.Tensor], torch.Tensor]  # still features [N, D] -> class scores [N, C]


@dataclass
class HeadModel:
    method: str
    still_mode: str  # "linear": a linear softmax on still features; "logits": the backbone's own scores
    still: Logits | None  # None with still_mode "logits"
    derived: Logits | None  # None for methods without a derived stream


def _random(config: dict[str, Any], stream: str) -> MemberRandom:
    return MemberRandom.from_seeds([int(config.get("seed", 0))], stream)


def _loaded(module: nn.Module, state: dict, path: str, part: str) -> nn.Module:
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise FeatcacheError(f"{path}: the {part} state does not fit its network ({str(exc).splitlines()[0]})") from None
    return module.eval().requires_grad_(False)


def _as_logits(module: Callable[[torch.Tensor], torch.Tensor]) -> Logits:
    """A one-member stacked network ``[1, B, D] -> [1, B, C]`` as ``[N, D] -> [N, C]``, in chunks."""
    return lambda x: predict(module, x, 1)[0]


def _dimred(checkpoint: dict, path: str) -> DimReductionNetwork:
    config, dims = checkpoint["config"], checkpoint["dims"]
    network = DimReductionNetwork(1, dims["temporal"], config["d1"], dims["classes"], [config["dimred_dropout"]],
                                  _random(config, "dimred-init"), _random(config, "dimred-train"))
    return _loaded(network, checkpoint["state"]["dimred"], path, "dim-reduction")


def _mapping(cls, checkpoint: dict, path: str, part: str) -> nn.Module:
    config, dims = checkpoint["config"], checkpoint["dims"]
    network = cls(1, dims["still"], config["d0"], config["d1"], [config["dropout"]], [config["noise"]],
                  _random(config, f"{part}-init"), _random(config, f"{part}-train"))
    return _loaded(network, checkpoint["state"][part], path, part)


def gan_derived(checkpoint: dict, path: str) -> Logits:
    """The GAN's derived stream: the dim-reduction (auxiliary) classifier on generated compact features."""
    generator, aux = _mapping(Generator, checkpoint, path, "generator"), _dimred(checkpoint, path).classifier
    return _as_logits(lambda rows: aux(generator(rows)))


def embed_derived(checkpoint: dict, path: str) -> Logits:
    """The embedding head's derived stream: its classifier on the embedded still features."""
    embedder = _mapping(EmbeddingNetwork, checkpoint, path, "embedding")
    config, dims = checkpoint["config"], checkpoint["dims"]
    classifier = _loaded(LinearClassifier(1, config["d1"], dims["classes"], _random(config, "embed-classifier-init")),
                         checkpoint["state"]["classifier"], path, "embedding classifier")
    return _as_logits(lambda rows: classifier(embedder(rows)))


# method -> its derived stream's rebuild (None: the method has the still stream only)
DERIVED: dict[str, Callable[[dict, str], Logits] | None] = {
    "classifier": None, "still": None, "aug-frames": None, "gan": gan_derived, "embed": embed_derived}


def rebuild_head(checkpoint: dict, path: str) -> HeadModel:
    """The still model and derived stream of a head checkpoint (``path`` names it in errors)."""
    method = checkpoint.get("method")
    if method not in DERIVED:
        raise FeatcacheError(f"{path}: a head of method {method!r}, which this featcache cannot rebuild "
                             f"(known: {', '.join(DERIVED)})")
    mode, still = checkpoint.get("still_model", "linear"), None
    if mode == "linear":
        config, dims = checkpoint["config"], checkpoint["dims"]
        model = LinearClassifier(1, dims["still"], dims["classes"], _random(config, "still-init"))
        still = _as_logits(_loaded(model, checkpoint["state"]["still"], path, "still model"))
    rebuild = DERIVED[method]
    return HeadModel(method, mode, still, None if rebuild is None else rebuild(checkpoint, path))
