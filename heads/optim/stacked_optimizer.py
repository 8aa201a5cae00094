"""A small base for optimizers over stacked parameters (leading member axis G).

Each member has its own learning rate and weight decay; every update is element-wise, so
member g's trajectory is the one it would follow alone.

Updates run as ``torch._foreach`` ops over the members' slices, in chunks of about
``CHUNK_BYTES``: all the small parameters of all members go in one call, while each large
slice (a member's 2048 x d0 first layer) is finished while it is still in cache. One
whole-tensor op per pass over sixteen such layers (33 MB) streams from memory every time
and measured about twice as slow.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

CHUNK_BYTES = 1 << 21


def chunks(tensors: Sequence[torch.Tensor], budget: int = CHUNK_BYTES) -> list[range]:
    """Consecutive index ranges of ``tensors`` of at most ``budget`` bytes (or one tensor)."""
    ranges, start, size = [], 0, 0
    for i, t in enumerate(tensors):
        nbytes = t.numel() * t.element_size()
        if i > start and size + nbytes > budget:
            ranges.append(range(start, i))
            start, size = i, 0
        size += nbytes
    if start < len(tensors):
        ranges.append(range(start, len(tensors)))
    return ranges


class StackedOptimizer:
    state_names: tuple[str, ...] = ()  # zero-initialised per-parameter state the update uses

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: Sequence[float], weight_decay: Sequence[float] | float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        self.members = len(lr)
        for p in self.params:
            if p.shape[0] != self.members:
                raise ValueError(f"parameter of shape {tuple(p.shape)} has no leading member axis of size {self.members}")
        self.lr = [float(x) for x in lr]
        decay = [weight_decay] * self.members if isinstance(weight_decay, (int, float)) else list(weight_decay)
        self.weight_decay = [float(x) for x in decay]
        self.state: dict[str, list[torch.Tensor]] = {}  # name -> one buffer per parameter, created on first step
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        active = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not active:
            return
        self.steps += 1
        for name in self.state_names:
            if name not in self.state:
                self.state[name] = [torch.zeros_like(p) for p in self.params]

        def slices(tensors):  # member slices of the active parameters, member order within each
            return [view for i in active for view in tensors[i].unbind(0)]

        params = slices([p.detach() for p in self.params])
        grads = slices([p.grad for p in self.params])
        state = {name: slices(buffers) for name, buffers in self.state.items()}
        lr, decay = self.lr * len(active), self.weight_decay * len(active)
        for part in chunks(params):
            chunk_grads = grads[part.start : part.stop]
            chunk_decay = decay[part.start : part.stop]
            if any(chunk_decay):
                chunk_grads = torch._foreach_add(chunk_grads, torch._foreach_mul(params[part.start : part.stop], chunk_decay))
            self.update(params[part.start : part.stop], chunk_grads,
                        {name: views[part.start : part.stop] for name, views in state.items()}, lr[part.start : part.stop])

    def update(self, params: list[torch.Tensor], grads: list[torch.Tensor], state: dict[str, list[torch.Tensor]],
               lr: list[float]) -> None:
        """One step on the member slices ``params``; ``state[name][i]`` and ``lr[i]`` belong to ``params[i]``."""
        raise NotImplementedError
