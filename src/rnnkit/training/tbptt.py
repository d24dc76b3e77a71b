"""Truncated backpropagation through time: chunks of a batch, and the state between them.

States are what the model returns and takes back: a tensor, or tuples and lists of tensors,
each shaped (num_layers * num_directions, batch, size), so the batch is dimension -2.
"""

from collections.abc import Iterator
from typing import NamedTuple

import torch

from .batches import Parts


class Chunk(NamedTuple):
    """Steps ``start`` to ``start + steps`` of a batch."""

    start: int
    steps: int
    inputs: tuple
    target: torch.Tensor
    lengths: torch.Tensor | None  # clamped to >= 1: what the model receives
    active: torch.Tensor | None  # (B,) bool: the row has a valid step in this chunk


def check_aligned(parts: Parts) -> int:
    """The number of steps T of a batch whose inputs and target all have a time axis T."""
    steps = parts.inputs[0].shape[1] if parts.inputs[0].dim() >= 2 else None
    shapes = [tuple(t.shape) for t in (*parts.inputs, parts.target)]
    if steps is None or any(len(s) < 2 or s[1] != steps for s in shapes):
        raise ValueError(
            "tbptt cuts every input and the target along the time axis (dimension 1, batch "
            f"first), so they must all have the same number of steps; got shapes {shapes}"
        )
    return steps


def chunks(parts: Parts, size: int) -> Iterator[Chunk]:
    """The batch cut into consecutive chunks of ``size`` steps (the last may be shorter).

    A row whose sequence has ended before a chunk has no valid step in it. The layer refuses
    lengths below 1, so it receives length 1 there; ``active`` marks the rows that really
    have steps, so the caller keeps the others' state and gives them no loss, and their
    inputs in the chunk are zeros.
    """
    total = check_aligned(parts)
    for start in range(0, total, size):
        steps = min(size, total - start)
        inputs = tuple(t[:, start : start + steps] for t in parts.inputs)
        target = parts.target[:, start : start + steps]
        if parts.lengths is None:
            yield Chunk(start, steps, inputs, target, None, None)
            continue
        remaining = (parts.lengths.to(target.device) - start).clamp(0, steps)
        active = remaining > 0
        # An ended row runs one step of padding, whose output and state are thrown away;
        # zeros there keep NaN padding out of the gradient (0 * NaN in the weight gradient).
        inputs = tuple(t.masked_fill(~active.view(-1, *[1] * (t.dim() - 1)), 0) for t in inputs)
        yield Chunk(start, steps, inputs, target, remaining.clamp(min=1), active)


def detach(state):
    """``state`` cut from the graph, so the next chunk's backward stops at its start."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detach(s) for s in state)


def keep_rows(keep: torch.Tensor, old, new):
    """``new`` with ``old``'s rows (batch dimension -2) where ``keep`` (B,) is True."""
    if isinstance(new, torch.Tensor):
        return torch.where(keep.view(-1, 1), old, new)
    return type(new)(keep_rows(keep, o, n) for o, n in zip(old, new, strict=True))


def zero_rows(rows: torch.Tensor, state):
    """``state`` with the rows where ``rows`` (B,) is True set to zero: a sequence restarts."""
    if isinstance(state, torch.Tensor):
        return state.masked_fill(rows.view(-1, 1), 0)
    return type(state)(zero_rows(rows, s) for s in state)
