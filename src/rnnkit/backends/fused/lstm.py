"""LSTM cells on the fused kernel (csrc/lstm.cpp): peepholes, projection and layer norm."""

import torch

from ...cells import LSTMCell
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

# Rows (steps x batch) of input projections, and of their gradients, held at once: GEMMs of 512
# rows run about as fast as one over all steps.
CHUNK_ROWS = 512


def unsupported_reason(cell: LSTMCell) -> str | None:
    return None  # every option of LSTMCell is compiled in


class LSTMFunction(torch.autograd.Function):
    """(x, input weights, h0, c0, recurrent weights, masks, settings) -> (outputs, final h,
    final c), one direction.

    The kernels do the input projection gi = x W_ih^T + b_ih (or LN_ih(x W_ih^T)) and its
    backward themselves, a chunk of steps at a time: neither the projections nor their
    gradients are ever held for all steps (csrc/lstm.cpp).
    """

    @staticmethod
    def forward(
        ctx, x, w_ih, b_ih, ln_ih_w, ln_ih_b, h0, c0, w_hh, b_hh, peephole, w_hr, ln_hh_w,
        ln_c_w, ln_c_b, recurrent_mask, keep_h, rate_h, keep_c, rate_c, lengths, reverse,
        layer_norm, eps, record,
    ):  # fmt: skip
        eps_ih, eps_hh, eps_c = eps
        Sh, Sc, gates, c_new, xhat, stats, stats_ih = build.extension().lstm_forward(
            x, h0, c0, w_hh, b_hh, peephole, w_hr, layer_norm, ln_hh_w, ln_c_w, ln_c_b,
            eps_hh, eps_c, recurrent_mask, keep_h, rate_h, keep_c, rate_c, lengths, reverse,
            w_ih, b_ih, CHUNK_ROWS, ln_ih_w, ln_ih_b, eps_ih,
        )  # fmt: skip
        ctx.save_for_backward(
            Sh, Sc, gates, c_new, xhat, stats, w_hh, peephole, w_hr, ln_hh_w, ln_c_w, ln_c_b,
            recurrent_mask, keep_h, keep_c, lengths, x, w_ih, ln_ih_w, stats_ih,
        )  # fmt: skip
        ctx.settings = (
            b_hh is not None, b_ih is not None, ln_ih_b is not None, layer_norm, rate_h, rate_c,
            reverse,
        )  # fmt: skip
        ctx.record = record
        keep_states(record, reverse, Sh, Sc)
        outputs, final_h = split_states(Sh, reverse)
        return outputs, final_h, (Sc[0] if reverse else Sc[-1]).clone()

    @staticmethod
    @first_order_only
    def backward(ctx, d_out, d_final_h, d_final_c):
        (
            Sh, Sc, gates, c_new, xhat, stats, w_hh, peephole, w_hr, ln_hh_w, ln_c_w, ln_c_b,
            recurrent_mask, keep_h, keep_c, lengths, x, w_ih, ln_ih_w, stats_ih,
        ) = ctx.saved_tensors  # fmt: skip
        has_bias, has_bias_ih, has_ln_ih_b, layer_norm, rate_h, rate_c, reverse = ctx.settings
        state_grads = state_grad_buffers(ctx.record, 2)
        grads = build.extension().lstm_backward(
            d_out.contiguous(), d_final_h.contiguous(), d_final_c.contiguous(), Sh, Sc, gates,
            c_new, xhat, stats, w_hh, has_bias, peephole, w_hr, layer_norm, ln_hh_w, ln_c_w,
            ln_c_b, recurrent_mask, keep_h, rate_h, keep_c, rate_c, lengths, reverse,
            *state_grads, x, w_ih, has_bias_ih, CHUNK_ROWS, ln_ih_w, has_ln_ih_b, stats_ih,
        )  # fmt: skip
        if ctx.record is not None:
            ctx.record.store_gradients(state_grads)
        *d_recurrent, d_x, d_w_ih, d_b_ih, d_ln_ih_w, d_ln_ih_b = grads
        return d_x, d_w_ih, d_b_ih, d_ln_ih_w, d_ln_ih_b, *d_recurrent, *([None] * 10)


def run_direction(cell: LSTMCell, x, lengths, state, noise, reverse: bool):
    valid = valid_steps(x.shape[0], lengths, x.device)
    x = prepare_input(x, valid, noise)
    if cell.layer_norm:
        ln_ih, ln_hh, ln_c = cell.ln_ih, cell.ln_hh, cell.ln_c
        projection = (cell.weight_ih, None, ln_ih.weight, ln_ih.bias)
        norms = (ln_hh.weight, ln_c.weight, ln_c.bias)
        eps = (float(ln_ih.eps), float(ln_hh.eps), float(ln_c.eps))
    else:
        projection = (cell.weight_ih, cell.bias_ih, None, None)
        norms, eps = (None, None, None), (0.0, 0.0, 0.0)
    keep_h, rate_h = zoneout_args(noise, 0)
    keep_c, rate_c = zoneout_args(noise, 1)
    h0, c0 = state
    outputs, final_h, final_c = LSTMFunction.apply(
        x.contiguous(),
        *(contiguous(w) for w in projection),
        h0.contiguous(),
        c0.contiguous(),
        noise.weights.get("weight_hh", cell.weight_hh),
        cell.bias_hh,
        cell.peephole_weight if cell.peephole else None,
        cell.weight_hr if cell.proj_size else None,
        *(contiguous(w) for w in norms),
        contiguous(noise.recurrent_mask),
        keep_h,
        rate_h,
        keep_c,
        rate_c,
        lengths,
        reverse,
        cell.layer_norm,
        eps,
        noise.record,
    )
    return zero_padding(outputs, valid), (final_h, final_c)
