"""What diagnostics read from a forward and backward pass: every layer's state after each step,
and the gradient of the loss with respect to it.

While ``recording()`` is active, each direction of each recurrent layer that runs adds a
``Direction`` to the recorder and hands it to its backend (as ``Noise.record``). The backend
keeps the states it computed, and during backward writes ``∂loss/∂state_t`` for every step:
the reference backend through a hook on each step's state, the fused backend from the
gradients its kernels carry back through time anyway. Nothing is recorded otherwise, and a
recording changes no value the layer computes.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch


@dataclass(eq=False)
class Direction:
    """One direction of one layer over one forward call.

    ``states`` and ``gradients`` hold one (T, B, size) tensor per state tensor of the cell
    (``(h,)``, or ``(h, c)`` for the LSTM), indexed by input time: ``states[k][t]`` is the
    state after step t, carried unchanged past a sequence's end; ``gradients[k][t]`` is
    ∂loss/∂``states[k][t]``, exactly 0 past a sequence's end (no loss can reach a step
    that is not computed). Gradients stay None until a backward pass reaches the layer.
    """

    layer: torch.nn.Module  # the Recurrent layer
    index: int  # layer in the stack
    reverse: bool
    cell: torch.nn.Module
    inputs: torch.Tensor  # (T, B, I), as the direction received them
    initial: tuple[torch.Tensor, ...]
    lengths: torch.Tensor | None
    states: tuple[torch.Tensor, ...] | None = None
    gradients: list[torch.Tensor | None] = field(default_factory=list)

    def keep_states(self, states) -> None:
        self.states = tuple(s.detach() for s in states)
        self.gradients = [None] * len(self.states)

    def store_gradients(self, gradients) -> None:
        """All steps' gradients at once, as the fused backward computes them."""
        self.gradients = [g.detach() for g in gradients]

    def hook_step(self, t: int, new_state) -> None:
        """Record ∂loss/∂state after step t when backward reaches ``new_state``: a tensor or
        a tuple of tensors (the reference backend, step by step)."""
        parts = (new_state,) if isinstance(new_state, torch.Tensor) else tuple(new_state)
        for k, part in enumerate(parts):
            if part.requires_grad:
                part.register_hook(self._step_hook(t, k))

    def _step_hook(self, t: int, k: int):
        def store(gradient):
            if self.gradients[k] is None:
                self.gradients[k] = torch.zeros_like(self.states[k])
            self.gradients[k][t] = gradient.detach()

        return store


class Recorder:
    """The directions recorded so far, in the order they ran, and the anchors: a zero added
    to each direction's initial state, so that a backward pass to them runs through every
    step of every recorded layer, frozen or not, and leaves the parameters' ``.grad`` alone.
    """

    def __init__(self):
        self.directions: list[Direction] = []
        self.anchors: list[torch.Tensor] = []

    def anchor(self, state):
        """``state`` (a tensor or a tuple) plus a zero that requires grad (with grad mode on)."""
        if not torch.is_grad_enabled():
            return state
        parts = (state,) if isinstance(state, torch.Tensor) else tuple(state)
        anchored = []
        for part in parts:
            zero = torch.zeros((), dtype=part.dtype, device=part.device, requires_grad=True)
            self.anchors.append(zero)
            anchored.append(part + zero)
        return anchored[0] if isinstance(state, torch.Tensor) else tuple(anchored)

    def add(self, **fields) -> Direction:
        direction = Direction(**fields)
        self.directions.append(direction)
        return direction


_active: ContextVar[Recorder | None] = ContextVar("rnnkit_recorder", default=None)


@contextmanager
def recording():
    """Record every recurrent layer run inside the block: ``with recording() as recorder``."""
    recorder = Recorder()
    token = _active.set(recorder)
    try:
        yield recorder
    finally:
        _active.reset(token)


def active() -> Recorder | None:
    """The recorder of the innermost ``recording()`` block, or None outside one."""
    return _active.get()
