"""The fused backend: explicit forward and backward through time in compiled kernels.

For every built-in cell (Elman with any named activation, LSTM with peepholes, projection and
layer norm, GRU in both forms and with layer norm) and every regulariser (input, recurrent and
weight dropout, zoneout), with lengths, initial states, both directions and stacked layers:

- the input projections are GEMMs over many steps: for Elman and GRU one before the loop
  (through autograd), for the LSTM inside its kernels a chunk of about 512 rows at a time, so
  that neither the projections nor their gradients are held for all steps;
- each step is one product of the recurrence (packed weights, csrc/gemm.h) plus the cell's
  pointwise math, in one pass over the batch written in C++ (csrc/), with no Python per step;
- backward walks the steps in reverse with hand-derived gradients, and the recurrent weights'
  gradients are GEMMs over many steps;
- forward saves only what backward needs (gates and states), never an autograd graph.

The extension also draws the regularisers' masks (csrc/random.cpp, see ``noise.keep_mask``).

The kernels compile at first use and are cached (see ``build``). They run on the CPU; on a GPU
the layer uses the vendor (cuDNN) or reference backend.
"""

import torch

from ...cells import ElmanCell, GRUCell, LSTMCell
from . import build, elman, gru, lstm

NAME = "fused"
WHY = "the fused kernels run it with explicit BPTT"

MODULES = {ElmanCell: elman, LSTMCell: lstm, GRUCell: gru}


def _first_parameter(layer):
    return next(layer.parameters(), None)


def capability_reason(layer) -> str | None:
    """Why the fused kernels cannot compute ``layer`` at all, or None if they can."""
    for cell in layer.cells:
        module = MODULES.get(type(cell))
        if module is None:
            return f"{type(cell).__name__} is not a built-in cell, which the fused kernels need"
        reason = module.unsupported_reason(cell)
        if reason:
            return reason
    param = _first_parameter(layer)
    if param is not None and param.device.type != "cpu":
        return (
            f"the fused kernels run on the CPU only in this version (the layer is on "
            f"{param.device})"
        )
    if param is not None and param.dtype not in (torch.float32, torch.float64):
        return f"the fused kernels compute in float32 and float64 only (the layer is {param.dtype})"
    return None


def build_reason() -> str | None:
    """Why the kernels are not available on this machine, or None (building them if this is
    the first time they are wanted)."""
    if build.extension() is None:
        return f"the fused kernels could not be built here ({build.failure()})"
    return None


def unsupported_reason(layer, training: bool) -> str | None:
    """Why the fused backend cannot run ``layer`` here, or None if it can."""
    return capability_reason(layer) or build_reason()


def run_layer(cells, x, lengths, states, noises):
    """One layer, every direction. Same contract as reference.run_layer:
    -> (outputs (T, B, D, O), [final state of each direction])."""
    outputs, finals = [], []
    for d, (cell, state, noise) in enumerate(zip(cells, states, noises, strict=True)):
        out, final = MODULES[type(cell)].run_direction(cell, x, lengths, state, noise, d == 1)
        outputs.append(out)
        finals.append(final)
    return (outputs[0].unsqueeze(2) if len(outputs) == 1 else torch.stack(outputs, 2)), finals
