"""The reference backend: autograd through a Python loop over ``cell.step``.

Always correct, always available, and the definition every other backend is tested against.
"""

import inspect

import torch
from torch import nn

from .noise import Noise, zone

NAME = "reference"
WHY = "an autograd loop over cell.step serves every configuration"


def unsupported_reason(layer, training: bool) -> None:
    return None  # serves every configuration


def first_tensor(state):
    return state if isinstance(state, torch.Tensor) else state[0]


def valid_steps(steps: int, lengths, device):
    """(T, B) booleans, True where step t of sequence b is within its length; None if all are."""
    if lengths is None:
        return None
    return torch.arange(steps, device=device)[:, None] < lengths.to(device)


def accepts_recurrent_mask(cell) -> bool:
    return "recurrent_mask" in inspect.signature(cell.step).parameters


def _as_tuple(state) -> tuple:
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


def _select(valid, new, old):
    if isinstance(new, torch.Tensor):
        return torch.where(valid, new, old)
    return tuple(torch.where(valid, n, o) for n, o in zip(new, old, strict=True))


def _zone_step(keep, t: int, old, new):
    """Zoneout of one state tensor at step t; a rate of 0 (a state tensor the layer does not
    zone) leaves the cell's own tensor, so that diagnostics see what the cell computed."""
    if isinstance(keep, float):
        return new if keep == 0 else zone(keep, old, new)
    return zone(keep[t], old, new)


def run_direction(cell, x, lengths, state, noise: Noise, reverse: bool):
    """Run ``cell`` over time-major ``x`` (T, B, I) -> (outputs (T, B, O), final state).

    Steps at or past ``lengths[b]`` leave sequence b's state untouched and output exactly 0,
    so the final state is the one after the last valid step, and the reverse direction starts
    at that step.
    """
    T = x.shape[0]
    valid = valid_steps(T, lengths, x.device)
    if valid is not None:
        # The cell still steps over the padding (its result is discarded), so what the padding
        # holds must be harmless: NaN there would reach every gradient through 0 * NaN.
        x = torch.where(valid[..., None], x, 0)
    if noise.input_mask is not None:
        x = x * noise.input_mask  # one mask for every step: variational dropout
    masked_step = noise.recurrent_mask is not None
    native_mask = masked_step and accepts_recurrent_mask(cell)
    tuple_state = not isinstance(state, torch.Tensor)
    read_output = getattr(cell, "output", None)  # looked up once, not at every step
    record = noise.record
    outputs, states = [None] * T, [None] * T
    for t in range(T - 1, -1, -1) if reverse else range(T):
        if native_mask:
            out, new = cell.step(x[t], state, recurrent_mask=noise.recurrent_mask)
        elif masked_step:  # a user's cell: mask the h it is given
            h = first_tensor(state) * noise.recurrent_mask
            out, new = cell.step(x[t], (h, *state[1:]) if tuple_state else h)
        else:
            out, new = cell.step(x[t], state)
        if noise.zoneout_keep is not None:
            if read_output is None and out is not first_tensor(new):
                raise ValueError(
                    f"zoneout needs to read the output from the zoned state, but "
                    f"{type(cell).__name__}.step returns an output that is not its first state "
                    "tensor; give the cell an output(state) method"
                )
            if tuple_state:
                new = tuple(
                    _zone_step(k, t, o, n)
                    for k, o, n in zip(noise.zoneout_keep, state, new, strict=True)
                )
            else:
                (k,) = noise.zoneout_keep
                new = _zone_step(k, t, state, new)
            out = first_tensor(new) if read_output is None else read_output(new)
        if record is not None:
            # Before the selection below: the output and the next step both read this state.
            record.hook_step(t, new)
        if valid is not None:
            valid_t = valid[t][:, None]
            new = _select(valid_t, new, state)
            out = torch.where(valid_t, out, torch.zeros((), dtype=out.dtype, device=out.device))
        outputs[t] = out
        states[t] = new
        state = new
    outputs = torch.stack(outputs)
    if record is not None:
        record.keep_states([torch.stack(s) for s in zip(*map(_as_tuple, states), strict=True)])
    declared = getattr(cell, "output_size", cell.hidden_size)
    if outputs.shape[-1] != declared:
        raise ValueError(
            f"{type(cell).__name__}.step returned outputs of size {outputs.shape[-1]}, but the "
            f"cell declares {declared} (its output_size, or hidden_size if it has none)"
        )
    return outputs, state


class _WithWeights(nn.Module):
    """Holds a cell so that torch.func.functional_call can swap in DropConnect weights."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, *args):
        return run_direction(self.cell, *args)


def run_layer(cells, x, lengths, states, noises, direction=None):
    """One layer, every direction: cells[d] runs forward in time for d = 0, backward for d = 1,
    by ``direction`` (default ``run_direction``; the scan backend passes its own).

    -> (outputs (T, B, D, O), [final state of each direction]).
    """
    direction = direction or run_direction
    outputs, finals = [], []
    for d, (cell, state, noise) in enumerate(zip(cells, states, noises, strict=True)):
        args = (x, lengths, state, noise, d == 1)
        if noise.weights:
            swapped = {f"cell.{name}": w for name, w in noise.weights.items()}
            out, final = torch.func.functional_call(_WithWeights(cell), swapped, args)
        else:
            out, final = direction(cell, *args)
        outputs.append(out)
        finals.append(final)
    return (outputs[0].unsqueeze(2) if len(outputs) == 1 else torch.stack(outputs, 2)), finals
