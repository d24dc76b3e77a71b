"""The vendor backend: PyTorch's own fused RNN kernels (oneDNN for LSTM on CPU, cuDNN on GPU).

The kernels are called as functions (``torch.lstm``, ``torch.gru``, ``torch.rnn_tanh``,
``torch.rnn_relu``, the ops behind ``torch.nn.LSTM`` and friends) with rnnkit's own parameters,
so there is no second copy of the weights. Used only where the configuration is exactly what
those kernels compute; what they cannot do, ``unsupported_reason`` names.
"""

import contextlib
import warnings

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..cells import ElmanCell, GRUCell, LSTMCell
from .noise import Noise
from .reference import valid_steps

NAME = "vendor"
WHY = "torch's own kernel computes this configuration exactly"


def _cell_reason(cell) -> str | None:
    kind = type(cell)
    if kind is LSTMCell:
        if cell.peephole:
            return "peephole connections are not in nn.LSTM"
        if cell.layer_norm:
            return "layer_norm is not in nn.LSTM"
    elif kind is GRUCell:
        if not cell.reset_after:
            return "reset_after=False (Cho et al.'s GRU) is not in nn.GRU"
        if cell.layer_norm:
            return "layer_norm is not in nn.GRU"
    elif kind is ElmanCell:
        if cell.activation not in ("tanh", "relu"):
            name = cell.activation if isinstance(cell.activation, str) else "a callable"
            return f"activation {name!r} is not in nn.RNN (tanh or relu only)"
    else:
        return f"{kind.__name__} is not one of torch's RNN cells"
    return None


def _kernel_settings(cell) -> tuple:
    """What one kernel call fixes for both directions of a layer."""
    return (
        type(cell),
        getattr(cell, "activation", None),
        cell.bias_ih is not None,
        getattr(cell, "proj_size", 0),
    )


def unsupported_reason(layer, training: bool) -> str | None:
    """Why the vendor kernels cannot compute ``layer`` exactly, or None if they can."""
    for cell in layer.cells:
        reason = _cell_reason(cell)
        if reason:
            return reason
    D = layer.num_directions
    for index in range(layer.num_layers):
        if len({_kernel_settings(c) for c in layer.cells[index * D : (index + 1) * D]}) > 1:
            return (
                f"the directions of layer {index} differ in cell type, activation, bias "
                "or proj_size"
            )
    family = {LSTMCell: "nn.LSTM", GRUCell: "nn.GRU", ElmanCell: "nn.RNN"}[type(layer.cells[0])]
    if any(z > 0 for z in layer.zoneout):
        return f"zoneout is not in {family}"
    if training and layer.recurrent_dropout > 0:
        return f"recurrent_dropout is not in {family} (off in eval mode, where the kernel serves)"
    return None


def _kernel(cell):
    if isinstance(cell, LSTMCell):
        return torch.lstm
    if isinstance(cell, GRUCell):
        return torch.gru
    return torch.rnn_tanh if cell.activation == "tanh" else torch.rnn_relu


def torch_weight_names(cell) -> list[str]:
    """The cell's parameters in the order torch's kernels take them; the same names as nn.LSTM's
    ``weight_ih_l0`` etc. without the suffix."""
    names = ["weight_ih", "weight_hh"]
    if cell.bias_ih is not None:
        names += ["bias_ih", "bias_hh"]
    if getattr(cell, "proj_size", 0):
        names.append("weight_hr")
    return names


def _flat_weights(cell, noise: Noise):
    return [noise.weights.get(name, getattr(cell, name)) for name in torch_weight_names(cell)]


@contextlib.contextmanager
def _quiet_projection_warning():
    """torch warns at each CPU call that oneDNN lacks projections; its own C++ loop still runs
    them, and that is the fastest exact path rnnkit has, so the warning says nothing to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
        yield


def _call(kernel, x, lengths, hx, weights, options, lstm):
    """-> (outputs (T, B, D*O), final states). Uneven lengths run packed, as nn.LSTM does."""
    if lengths is None:
        out, *final = kernel(x, hx, weights, *options, False)
        return out, final
    packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    hx = [h.index_select(1, order) for h in hx] if lstm else hx.index_select(1, order)
    data, *final = kernel(packed.data, packed.batch_sizes, hx, weights, *options)
    out, _ = pad_packed_sequence(
        PackedSequence(data, packed.batch_sizes, order, unorder), total_length=x.shape[0]
    )
    return out, [h.index_select(1, unorder) for h in final]


def run_layer(cells, x, lengths, states, noises):
    """One layer, every direction, in one kernel call. Same contract as reference.run_layer:
    -> (outputs (T, B, D, O), [final state of each direction])."""
    cell = cells[0]
    directions = len(cells)
    if noises[0].input_mask is not None:
        x = x * noises[0].input_mask  # the layer draws one input mask for both directions
    weights = [w for c, n in zip(cells, noises, strict=True) for w in _flat_weights(c, n)]
    lstm = isinstance(cell, LSTMCell)
    # State tensors stacked over directions, as the kernels take them: (D, B, size).
    hx = [torch.stack(s) for s in zip(*states, strict=True)] if lstm else torch.stack(states)
    kernel = _kernel(cell)
    options = (cell.bias_ih is not None, 1, 0.0, False, directions == 2)
    projected = getattr(cell, "proj_size", 0)
    with _quiet_projection_warning() if projected else contextlib.nullcontext():
        out, final = _call(kernel, x, lengths, hx, weights, options, lstm)
    # A view, not a split: split's backward would copy the whole output gradient.
    outputs = out.view(*out.shape[:2], directions, -1)
    if isinstance(cell, ElmanCell) and cell.has_output_projection:
        # y_t = W_ho h_t + b_ho is not fed back, so it is one GEMM over all steps.
        outputs = torch.stack([c.output(outputs[:, :, d]) for d, c in enumerate(cells)], 2)
        if lengths is not None:
            outputs = outputs * valid_steps(x.shape[0], lengths, x.device)[..., None, None]
    finals = list(zip(*final, strict=True)) if lstm else list(final[0])
    return outputs, finals
