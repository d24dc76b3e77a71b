"""The scan backend: the reference's ``cell.step``, looped over time by torch's ``scan``
operator instead of Python, so the loop is one node of the graph whose length is symbolic.
That is what ``torch.export`` and the ONNX exporter (an ONNX ``Scan``) carry with a batch
size and a number of steps left free; a Python loop would be unrolled at the traced length.

Inference only (``rnnkit.export`` runs every layer on it): no dropout masks and no
recording; zoneout's expectation, which eval applies, is served. Its values are the
reference backend's (tested): the same step, and the padding handled the same way (the state
kept, the output 0), the reverse direction starting at each sequence's last valid step.
"""

import torch

from . import reference

NAME = "scan"
WHY = "torch's scan operator over cell.step: the loop is one exportable node"


def unsupported_reason(layer, training: bool) -> str | None:
    if training:
        return "the scan backend runs inference only (it serves export); train on another"
    return None


def _fresh(tensor, carried) -> torch.Tensor:
    """``tensor``, copied where it is one of the ``carried`` tensors: scan's body may not
    return its own inputs (a cell may hand back a state part it leaves unchanged)."""
    return tensor.clone() if any(tensor is c for c in carried) else tensor


def run_direction(cell, x, lengths, state, noise, reverse: bool):
    """Run ``cell`` over time-major ``x`` (T, B, I) -> (outputs (T, B, O), final state), as
    ``reference.run_direction`` does in eval."""
    from torch._higher_order_ops.scan import scan

    tuple_state = not isinstance(state, torch.Tensor)
    carry = tuple(state) if tuple_state else (state,)
    if lengths is None:
        valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    else:
        valid = torch.arange(x.shape[0], device=x.device)[:, None] < lengths.to(x.device)
        x = torch.where(valid[..., None], x, 0)
    keep = noise.zoneout_keep  # floats in eval: the expectation of the masks
    read_output = getattr(cell, "output", None)

    def step(carried, inputs):
        x_t, valid_t = inputs
        out, new = cell.step(x_t, carried if tuple_state else carried[0])
        new = tuple(new) if tuple_state else (new,)
        if keep is not None:
            new = tuple(
                k * o + (1 - k) * n if k else n for k, o, n in zip(keep, carried, new, strict=True)
            )
            out = new[0] if read_output is None else read_output(new if tuple_state else new[0])
        valid_t = valid_t[:, None]
        new = tuple(torch.where(valid_t, n, o) for n, o in zip(new, carried, strict=True))
        out = torch.where(valid_t, out, torch.zeros((), dtype=out.dtype, device=out.device))
        return new, _fresh(out, (*carried, *new))

    final, outputs = scan(step, carry, (x, valid), reverse=reverse)
    if any(f is c for f in final for c in carry):  # never stepped: a copy, not the input
        final = tuple(f.clone() for f in final)
    return outputs, (tuple(final) if tuple_state else final[0])


def run_layer(cells, x, lengths, states, noises):
    """One layer, every direction (see ``reference.run_layer``; eval has no weight masks)."""
    return reference.run_layer(cells, x, lengths, states, noises, direction=run_direction)
