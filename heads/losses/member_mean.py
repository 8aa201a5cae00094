"""Per-member reduction of stacked losses: members train independently when their means are summed."""

from __future__ import annotations

import torch


def member_losses(per_row: torch.Tensor, members: int) -> torch.Tensor:
    """Per-row losses ``[G * B]`` -> per-member means ``[G]``."""
    return per_row.view(members, -1).mean(1)
