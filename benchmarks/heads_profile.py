"""Helpers of benchmarks/heads.py: where a head's time goes, and the old defaults to compare with.

``Parts.watch()`` times the parts of ``train_head`` (still model, dim-reduction network, GAN,
embedding classifier, embedding and its semi-hard mining, metrics) by wrapping them in place
for the duration of one head; ``old_config`` is a head's configuration as main 1377fda ran it
(each part ``max(epochs, ceil(min_steps / batches per epoch))`` epochs with the old floors,
4 x 4 P x K batches), written with ``*_min_steps=1`` so today's rule runs those epochs as given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections import defaultdict
from unittest import mock

OLD_NAME = "main 1377fda"
# (epochs key, floor key, batch-size key or P x K, rows: "still" or "temporal", epochs, floor) of main 1377fda.
OLD_PARTS = {
    "classifier": [("still_epochs", "still_min_steps", "still_batch_size", "still", 30, 810),
                   ("dimred_epochs", "dimred_min_steps", "dimred_batch_size", "temporal", 8, 656)],
    "gan": [("epochs", "min_steps", "batch_size", "still", 10, 540)],
    "embed": [("epochs", "min_steps", "pk", "still", 3, 1311),
              ("classifier_epochs", "classifier_min_steps", "dimred_batch_size", "temporal", 10, 1311)],
}
OLD_VALUES = {"still_batch_size": 256, "dimred_batch_size": 256, "batch_size": 128, "classes_per_batch": 4,
              "instances_per_class": 4}
HEAD_PARTS = {"gan": "GAN", "embed": "embedding"}  # method -> its part (the registry record's fit)
WATCHED = {  # part -> (module, attribute)
    "still model": ("heads.training.train_head", "fit_still_models"),
    "dim-reduction": ("heads.training.train_head", "fit_dimred_networks"),
    "embedding classifier": ("heads.training.embedding", "fit_embedding_classifier"),
    "metrics": ("heads.training.train_head", "build_metrics"),
}


def old_config(method: str, data) -> dict:
    """``method``'s configuration with the schedule main 1377fda gave it on ``data``."""
    from heads.training.methods import default_config

    config = default_config(method, data.temporal_kind)
    config.update({k: v for k, v in OLD_VALUES.items() if k in config})
    rows = {"still": len(data.still["train"].labels), "temporal": len(data.temporal["train"].labels)}
    for method_parts in ("classifier", method):
        for epochs_key, floor_key, batch_key, kind, epochs, floor in OLD_PARTS[method_parts]:
            batch = config["classes_per_batch"] * config["instances_per_class"] if batch_key == "pk" else config[batch_key]
            batches = max(1, rows[kind] // batch)
            config[epochs_key], config[floor_key] = max(epochs, math.ceil(floor / batches)), 1
    return config


class Parts:
    """Seconds per part of the heads trained inside ``watch()``."""

    @contextlib.contextmanager
    def watch(self):
        import importlib

        from heads.miners.faiss_semi_hard_miner import FaissSemiHardMiner

        taken: dict[str, float] = defaultdict(float)

        def timer(name, fn):
            def wrapped(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    taken[name] += time.perf_counter() - start
            return wrapped

        with contextlib.ExitStack() as stack:
            for name, (module, attribute) in WATCHED.items():
                target = importlib.import_module(module)
                stack.enter_context(mock.patch.object(target, attribute, timer(name, getattr(target, attribute))))
            stack.enter_context(mock.patch.object(FaissSemiHardMiner, "mine", timer("mining", FaissSemiHardMiner.mine)))
            train_head = importlib.import_module("heads.training.train_head")
            get_method = train_head.get_method

            def timed_method(name):  # the head's own part: the registry record's fit, timed
                method = get_method(name)
                part = HEAD_PARTS.get(name)
                return dataclasses.replace(method, fit=timer(part, method.fit)) if part else method

            stack.enter_context(mock.patch.object(train_head, "get_method", timed_method))
            yield taken

    @staticmethod
    def line(taken: dict[str, float]) -> str:
        taken = dict(taken)
        if "embedding" in taken:  # the embedding's own time, without its classifier
            taken["embedding"] -= taken.get("embedding classifier", 0.0)
        cells = [f"{name} {seconds:.1f}" + (" (inside the embedding)" if name == "mining" else "")
                 for name, seconds in taken.items() if seconds > 0]
        return ", ".join(cells) + " s"
