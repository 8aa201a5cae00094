"""Per-member random streams for stacked heads.

A stacked model holds G independent members. Each member draws its initial weights,
dropout / noise masks and batch order from its *own* ``torch.Generator``, seeded from its
config seed and a stream name, so a member's randomness never depends on how many other
members share the model: training G members together equals training each alone.

Draws happen on the CPU (one generator per member) and are moved to the model's device,
which also makes runs reproducible across devices.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import torch


def stream_seed(seed: int, stream: str) -> int:
    """A stable 63-bit seed for the named stream of a member seeded with ``seed``."""
    digest = hashlib.sha256(f"{int(seed)}:{stream}".encode()).hexdigest()
    return int(digest[:15], 16)


class MemberRandom:
    """G CPU generators, one per member; every draw returns a leading member axis."""

    def __init__(self, generators: Sequence[torch.Generator], device: torch.device | str = "cpu"):
        self.generators = list(generators)
        self.device = torch.device(device)

    @classmethod
    def from_seeds(cls, seeds: Sequence[int], stream: str, device: torch.device | str = "cpu") -> "MemberRandom":
        generators = []
        for seed in seeds:
            generator = torch.Generator()
            generator.manual_seed(stream_seed(seed, stream))
            generators.append(generator)
        return cls(generators, device)

    def __len__(self) -> int:
        return len(self.generators)

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) draws, ``[G, *shape]``."""
        return torch.stack([torch.rand(shape, generator=g) for g in self.generators]).to(self.device)

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal draws, ``[G, *shape]``."""
        return torch.stack([torch.randn(shape, generator=g) for g in self.generators]).to(self.device)

    def randperm(self, n: int) -> torch.Tensor:
        """One permutation of ``range(n)`` per member, ``[G, n]`` int64."""
        return torch.stack([torch.randperm(n, generator=g) for g in self.generators]).to(self.device)

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        """Integers in ``[0, high)``, ``[G, *shape]`` int64."""
        return torch.stack([torch.randint(high, shape, generator=g) for g in self.generators]).to(self.device)
