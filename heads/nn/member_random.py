"""Per-member random streams for stacked heads.

A stacked model holds G independent members. Each member draws its initial weights,
dropout / noise masks and batch order from its *own* stream, seeded from its config seed
and a stream name, so a member's randomness never depends on how many other members share
the model: training G members together equals training each alone.

Members with the same seed have the same stream. A grid over learning rates or loss
weights usually shares one seed, so each distinct seed draws once and its members share
the draw (a broadcast view when all do): 16 members cost one draw, not 16.

Draws happen on the CPU and are moved to the model's device, which also makes runs
reproducible across devices.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import torch


def stream_seed(seed: int, stream: str) -> int:
    """A stable 63-bit seed for the named stream of a member seeded with ``seed``."""
    digest = hashlib.sha256(f"{int(seed)}:{stream}".encode()).hexdigest()
    return int(digest[:15], 16)


def seeded_generator(seed: int, stream: str) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(stream_seed(seed, stream))
    return generator


def member_generators(seeds: Sequence[int], stream: str) -> list[torch.Generator]:
    """One independent generator per member, for code that draws member by member
    (members with equal seeds get equal but separate generators)."""
    return [seeded_generator(seed, stream) for seed in seeds]


class MemberRandom:
    """One generator per distinct seed; every draw returns a leading member axis of size G."""

    def __init__(self, generators: Sequence[torch.Generator], owner: Sequence[int] | None = None,
                 device: torch.device | str = "cpu"):
        self.generators = list(generators)
        owner = list(range(len(self.generators))) if owner is None else list(owner)
        if sorted(set(owner)) != list(range(len(self.generators))):
            raise ValueError(f"owner {owner} must use each of the {len(self.generators)} generators")
        self.owner = torch.tensor(owner, dtype=torch.long)
        self.device = torch.device(device)

    @classmethod
    def from_seeds(cls, seeds: Sequence[int], stream: str, device: torch.device | str = "cpu") -> "MemberRandom":
        distinct: dict[int, int] = {}
        owner = [distinct.setdefault(int(seed), len(distinct)) for seed in seeds]
        return cls([seeded_generator(seed, stream) for seed in distinct], owner, device)

    def __len__(self) -> int:
        return len(self.owner)

    def _per_member(self, draws: list[torch.Tensor]) -> torch.Tensor:
        """Distinct draws ``[U, ...]`` -> ``[G, ...]`` on the device (a view when U is 1)."""
        stacked = torch.stack(draws).to(self.device)
        if len(draws) == len(self.owner):
            return stacked
        if len(draws) == 1:
            return stacked.expand(len(self.owner), *stacked.shape[1:])
        return stacked[self.owner.to(self.device)]

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) draws, ``[G, *shape]``."""
        return self._per_member([torch.rand(shape, generator=g) for g in self.generators])

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal draws, ``[G, *shape]``."""
        return self._per_member([torch.randn(shape, generator=g) for g in self.generators])

    def randperm(self, n: int) -> torch.Tensor:
        """One permutation of ``range(n)`` per member, ``[G, n]`` int64."""
        return self._per_member([torch.randperm(n, generator=g) for g in self.generators])

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        """Integers in ``[0, high)``, ``[G, *shape]`` int64."""
        return self._per_member([torch.randint(high, shape, generator=g) for g in self.generators])
