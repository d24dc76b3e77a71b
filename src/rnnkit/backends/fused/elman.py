"""Elman cells on the fused kernel (csrc/elman.cpp)."""

import torch
import torch.nn.functional as F

from ...cells import ElmanCell
from . import build
from .common import (
    contiguous,
    first_order_only,
    keep_states,
    prepare_input,
    split_states,
    state_grad_buffers,
    valid_steps,
    zero_padding,
    zoneout_args,
)

ACTIVATIONS = {"tanh": 0, "relu": 1, "sigmoid": 2, "leaky_relu": 3, "identity": 4}


def unsupported_reason(cell: ElmanCell) -> str | None:
    if not isinstance(cell.activation, str):
        return "a callable activation cannot be compiled into the fused kernel"
    if cell.activation == "leaky_relu" and cell.negative_slope < 0:
        return f"leaky_relu with negative_slope={cell.negative_slope} < 0"
    return None


class ElmanFunction(torch.autograd.Function):
    """(gi, h0, w_hh, b_hh, masks, settings) -> (outputs, final state) of one direction."""

    @staticmethod
    def forward(
        ctx, gi, h0, w_hh, b_hh, recurrent_mask, keep, rate, lengths, reverse, f, slope, record
    ):
        S, y = build.extension().elman_forward(
            gi, h0, w_hh, b_hh, recurrent_mask, keep, rate, lengths, reverse, f, slope
        )
        ctx.save_for_backward(S, y, w_hh, recurrent_mask, keep, lengths)
        ctx.settings = (b_hh is not None, rate, reverse, f, slope)
        ctx.record = record
        keep_states(record, reverse, S)
        return split_states(S, reverse)

    @staticmethod
    @first_order_only
    def backward(ctx, d_out, d_final):
        S, y, w_hh, recurrent_mask, keep, lengths = ctx.saved_tensors
        has_bias, rate, reverse, f, slope = ctx.settings
        (state_grads,) = state_grad_buffers(ctx.record, 1)
        dgi, dh0, dw_hh, db_hh = build.extension().elman_backward(
            d_out.contiguous(),
            d_final.contiguous(),
            S,
            y,
            w_hh,
            has_bias,
            recurrent_mask,
            keep,
            rate,
            lengths,
            reverse,
            f,
            slope,
            state_grads,
        )
        if ctx.record is not None:
            ctx.record.store_gradients([state_grads])
        return dgi, dh0, dw_hh, db_hh, *([None] * 8)


def run_direction(cell: ElmanCell, x, lengths, state, noise, reverse: bool):
    valid = valid_steps(x.shape[0], lengths, x.device)
    gi = F.linear(prepare_input(x, valid, noise), cell.weight_ih, cell.bias_ih)
    keep, rate = zoneout_args(noise, 0)
    outputs, final = ElmanFunction.apply(
        gi.contiguous(),
        state.contiguous(),
        noise.weights.get("weight_hh", cell.weight_hh),
        cell.bias_hh,
        contiguous(noise.recurrent_mask),
        keep,
        rate,
        lengths,
        reverse,
        ACTIVATIONS[cell.activation],
        float(cell.negative_slope),
        noise.record,
    )
    outputs = zero_padding(outputs, valid)
    if cell.has_output_projection:
        # y_t = W_ho h_t + b_ho is not fed back, so it is one GEMM over all steps.
        outputs = cell.output(outputs)
        if valid is not None:
            outputs = torch.where(valid[..., None], outputs, 0)
    return outputs, final
