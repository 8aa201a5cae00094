"""Instance pairing of the heads (``pairing=instance``): each still train row with a random temporal
train row of its own video (``ROOT/still-videos.csv``); rows of a still without one fall back to a
co-class draw (:class:`heads.samplers.positive_sampler.PositiveSampler`)."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from featcache.errors import FeatcacheError
from heads.samplers.positive_sampler import PositiveSampler


def video_groups(still_sources: Sequence[str], temporal_sources: Sequence[str],
                 links: Mapping[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(still_group [N_s], temporal_group [N_t])``: one group index per linked video with temporal
    rows; -1 for a still with no such video."""
    ids: dict[str, int] = {}
    temporal_group = torch.tensor([ids.setdefault(s, len(ids)) for s in temporal_sources], dtype=torch.long)
    still_group = torch.tensor([ids.get(links.get(s, ""), -1) for s in still_sources], dtype=torch.long)
    return still_group, temporal_group


class InstanceSampler:
    """``sampler(labels, index, generator)``: for each anchor (still train row ``index``), a random
    temporal row of its own video, or of its class when it has none ``[B]``."""

    def __init__(self, still_group: torch.Tensor, temporal_group: torch.Tensor, temporal_labels, where: str = ""):
        if not bool((still_group >= 0).any()):
            raise FeatcacheError(f"{where}pairing=instance: no still train row comes from a video with temporal "
                                 f"training rows (ROOT/still-videos.csv links each still to its video)")
        self.still_group = still_group.cpu()
        self.by_video = PositiveSampler(temporal_group)
        self.by_class = PositiveSampler(temporal_labels)

    def __call__(self, labels, index, generator: torch.Generator | None = None) -> torch.Tensor:
        groups = self.still_group[torch.as_tensor(index).reshape(-1).cpu()]
        co_class = self.by_class(labels, generator)
        linked = groups >= 0
        if not bool(linked.any()):
            return co_class
        own = self.by_video(groups[linked], generator).to(co_class.device)
        co_class[linked.to(co_class.device)] = own
        return co_class
