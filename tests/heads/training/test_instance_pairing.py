"""``pairing=instance`` in the heads: a still train row meets its own video's temporal rows."""

from __future__ import annotations

import pytest
import torch

from featcache.errors import FeatcacheError
from heads.samplers.instance_sampler import InstanceSampler, video_groups
from heads.training.methods import transfer_methods
from heads.training.train_head import train_head
from tests.heads_fixtures import fast_config, head_data, synthetic_cache_dir  # noqa: F401


def link_stills(data, share: float = 0.5) -> dict[str, str]:
    """The first ``share`` of the still train rows linked to a temporal train row of their class."""
    still, temporal = data.still["train"], data.temporal["train"]
    links = {}
    for i in range(int(share * len(still))):
        same = torch.nonzero(temporal.labels == still.labels[i]).flatten()
        links[still.source[i]] = temporal.source[int(same[i % len(same)])]
    return links


def test_linked_rows_draw_their_own_video_and_the_rest_their_class(head_data):
    links = link_stills(head_data)
    still, temporal = head_data.still["train"], head_data.temporal["train"]
    sampler = InstanceSampler(*video_groups(still.source, temporal.source, links), temporal.labels)
    index = torch.arange(len(still))
    drawn = sampler(still.labels[index], index, torch.Generator().manual_seed(0))
    for i, row in zip(index.tolist(), drawn.tolist()):
        if still.source[i] in links:
            assert temporal.source[row] == links[still.source[i]]
        assert int(temporal.labels[row]) == int(still.labels[i])


@pytest.mark.parametrize("method", [m.name for m in transfer_methods()])
def test_heads_train_with_instance_pairing(head_data, method):
    head_data.still_videos = link_stills(head_data)
    try:
        result = train_head(method, head_data, fast_config(method, epochs=2, pairing="instance"))
    finally:
        head_data.still_videos = {}
    assert result.metrics["derived"]["test"] is not None
    assert result.config["pairing"] == "instance"


def test_instance_pairing_without_links_is_a_one_line_error(head_data):
    with pytest.raises(FeatcacheError, match="still-videos.csv"):
        train_head("embed", head_data, fast_config("embed", epochs=1, pairing="instance"))
