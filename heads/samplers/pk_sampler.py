"""P x K batches of still rows and random co-class positives for the triplet solution.

The paper samples "4 classes x 4 instances" per batch (Table 8). :class:`PKSampler`
cycles through the classes in a shuffled order (each class is used equally often) and
through each class's rows in a shuffled order (every row is seen before any repeats);
a class with fewer than K rows is sampled with replacement. Everything is drawn from the
given ``torch.Generator``, so a seed fixes the batches.
"""

from __future__ import annotations

from typing import Iterator

import torch

from featcache.errors import CacheError


class PKSampler:
    """Yields lists of ``classes_per_batch * samples_per_class`` row indices.

    ``batches_per_epoch`` defaults to ``len(labels) // (P * K)`` (at least 1), so an
    epoch shows about as many rows as the split has. Usable as a DataLoader
    ``batch_sampler`` or directly as an iterator of index lists.
    """

    def __init__(
        self,
        labels,
        classes_per_batch: int = 4,
        samples_per_class: int = 4,
        generator: torch.Generator | None = None,
        batches_per_epoch: int | None = None,
    ):
        self.labels = torch.as_tensor(labels).long().reshape(-1).cpu()
        if self.labels.numel() == 0:
            raise CacheError("PKSampler: no rows to sample from")
        if classes_per_batch < 1 or samples_per_class < 1:
            raise ValueError("classes_per_batch and samples_per_class must be >= 1")
        self.classes = torch.unique(self.labels)
        self.classes_per_batch = min(int(classes_per_batch), int(self.classes.numel()))
        self.samples_per_class = int(samples_per_class)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.rows_of = {int(c): torch.nonzero(self.labels == c).flatten() for c in self.classes}
        batch = self.classes_per_batch * self.samples_per_class
        self.batches_per_epoch = batches_per_epoch or max(1, self.labels.numel() // batch)
        self._class_queue: list[int] = []
        self._row_queues: dict[int, list[int]] = {c: [] for c in self.rows_of}

    def __len__(self) -> int:
        return self.batches_per_epoch

    @property
    def batch_size(self) -> int:
        return self.classes_per_batch * self.samples_per_class

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.batches_per_epoch):
            yield self.next_batch()

    def next_batch(self) -> list[int]:
        batch: list[int] = []
        for c in self._next_classes():
            batch.extend(self._next_rows(c))
        return batch

    def _next_classes(self) -> list[int]:
        chosen: list[int] = []
        deferred: list[int] = []  # popped after a reshuffle but already in this batch
        while len(chosen) < self.classes_per_batch:
            if not self._class_queue:
                order = torch.randperm(self.classes.numel(), generator=self.generator)
                self._class_queue = [int(self.classes[i]) for i in order]
            c = self._class_queue.pop()
            (deferred if c in chosen else chosen).append(c)
        self._class_queue.extend(reversed(deferred))  # they come first in the next batch
        return chosen

    def _next_rows(self, c: int) -> list[int]:
        rows = self.rows_of[c]
        k = self.samples_per_class
        if rows.numel() < k:  # too few rows: with replacement
            return rows[torch.randint(rows.numel(), (k,), generator=self.generator)].tolist()
        queue = self._row_queues[c]
        if len(queue) < k:  # start a new pass; the leftovers go first and are not repeated in this batch
            leftover = set(queue)
            order = rows[torch.randperm(rows.numel(), generator=self.generator)].tolist()
            queue = queue + [r for r in order if r not in leftover] + [r for r in order if r in leftover]
        self._row_queues[c] = queue[k:]
        return queue[:k]


def pk_batch(labels, classes_per_batch: int = 4, samples_per_class: int = 4,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """One stateless P x K batch ``[P * K]``: P distinct random classes, K random rows of each
    (without replacement when the class has K rows, with replacement otherwise). Public for
    one-off probes and ``benchmarks/mining.py``; training keeps a :class:`PKSampler`, whose passes
    cover every row.

    Rows come grouped by class (``view(P, K)`` gives one class per row).
    """
    labels = torch.as_tensor(labels).long().reshape(-1).cpu()
    classes = torch.unique(labels)
    if classes.numel() == 0:
        raise CacheError("pk_batch: no rows to sample from")
    chosen = classes[torch.randperm(classes.numel(), generator=generator)[: min(classes_per_batch, classes.numel())]]
    batch = []
    for c in chosen:
        rows = torch.nonzero(labels == c).flatten()
        if rows.numel() >= samples_per_class:
            pick = torch.randperm(rows.numel(), generator=generator)[:samples_per_class]
        else:
            pick = torch.randint(rows.numel(), (samples_per_class,), generator=generator)
        batch.append(rows[pick])
    return torch.cat(batch)
