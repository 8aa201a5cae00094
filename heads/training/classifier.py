"""The classifier method: the still model and the dim-reduction network (the temporal classifier)
alone, trained before every head; it derives no stream from the temporal knowledge."""

from __future__ import annotations

from heads.training.dim_reduction import DimRedParts
from heads.training.head_data import HeadData
from heads.training.loop import Phases
from heads.training.registry import HeadMethod, register_head_method
from heads.training.still_model import StillStream


def fit_classifier_head(data: HeadData, configs, device, phases: Phases, still: StillStream, dimred: DimRedParts):
    """Nothing beyond the parts every head trains: no derived stream, no parts, no epochs."""
    return None, {}, [-1] * len(configs)


CLASSIFIER = register_head_method(HeadMethod(
    name="classifier", fit=fit_classifier_head,
    help="still model + dim-reduction/temporal classifier",
))
