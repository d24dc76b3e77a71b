"""GRU cells on the fused kernel (csrc/gru.cpp), in both forms and with layer norm."""

import torch
import torch.nn.functional as F

from ...cells import GRUCell
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


def unsupported_reason(cell: GRUCell) -> str | None:
    return None  # every GRUCell option: reset before or after, layer norm, bias or not


def _norm_params(cell: GRUCell):
    """(w1, b1, w2, b2, eps) of the norms inside the recurrence (None where absent)."""
    if not cell.layer_norm:
        return None, None, None, None, 1e-5
    ln1 = cell.ln_hh
    ln2 = None if cell.reset_after else cell.ln_hn
    return (
        ln1.weight,
        ln1.bias,
        None if ln2 is None else ln2.weight,
        None if ln2 is None else ln2.bias,
        float(ln1.eps),
    )


class GRUFunction(torch.autograd.Function):
    """(gi, h0, w_hh, b_hh, norm parameters, masks, settings) -> (outputs, final state)."""

    @staticmethod
    def forward(
        ctx,
        gi,
        h0,
        w_hh,
        b_hh,
        lw1,
        lb1,
        lw2,
        lb2,
        eps,
        recurrent_mask,
        keep,
        rate,
        lengths,
        reverse,
        reset_after,
        layer_norm,
        record,
    ):
        S, gates, ghn, xhat, rstd = build.extension().gru_forward(
            gi,
            h0,
            w_hh,
            b_hh,
            layer_norm,
            contiguous(lw1),
            contiguous(lb1),
            contiguous(lw2),
            contiguous(lb2),
            eps,
            recurrent_mask,
            keep,
            rate,
            lengths,
            reverse,
            reset_after,
        )
        ctx.save_for_backward(
            S, gates, ghn, xhat, rstd, w_hh, lw1, lb1, lw2, lb2, recurrent_mask, keep, lengths
        )
        ctx.settings = (b_hh is not None, layer_norm, rate, reverse, reset_after)
        ctx.record = record
        keep_states(record, reverse, S)
        return split_states(S, reverse)

    @staticmethod
    @first_order_only
    def backward(ctx, d_out, d_final):
        S, gates, ghn, xhat, rstd, w_hh, lw1, lb1, lw2, lb2, mask, keep, lengths = ctx.saved_tensors
        has_bias, layer_norm, rate, reverse, reset_after = ctx.settings
        (state_grads,) = state_grad_buffers(ctx.record, 1)
        dgi, dh0, dw_hh, db_hh, dlw1, dlb1, dlw2, dlb2 = build.extension().gru_backward(
            d_out.contiguous(),
            d_final.contiguous(),
            S,
            gates,
            ghn,
            xhat,
            rstd,
            w_hh,
            has_bias,
            layer_norm,
            contiguous(lw1),
            contiguous(lb1),
            contiguous(lw2),
            contiguous(lb2),
            mask,
            keep,
            rate,
            lengths,
            reverse,
            reset_after,
            state_grads,
        )
        if ctx.record is not None:
            ctx.record.store_gradients([state_grads])
        return dgi, dh0, dw_hh, db_hh, dlw1, dlb1, dlw2, dlb2, *([None] * 9)


def run_direction(cell: GRUCell, x, lengths, state, noise, reverse: bool):
    valid = valid_steps(x.shape[0], lengths, x.device)
    x = prepare_input(x, valid, noise)
    if cell.layer_norm:
        gi = cell.ln_ih(F.linear(x, cell.weight_ih))
    else:
        gi = F.linear(x, cell.weight_ih, cell.bias_ih)
    keep, rate = zoneout_args(noise, 0)
    lw1, lb1, lw2, lb2, eps = _norm_params(cell)
    outputs, final = GRUFunction.apply(
        gi.contiguous(),
        state.contiguous(),
        noise.weights.get("weight_hh", cell.weight_hh),
        cell.bias_hh,
        lw1,
        lb1,
        lw2,
        lb2,
        eps,
        contiguous(noise.recurrent_mask),
        keep,
        rate,
        lengths,
        reverse,
        cell.reset_after,
        cell.layer_norm,
        noise.record,
    )
    return zero_padding(outputs, valid), final
