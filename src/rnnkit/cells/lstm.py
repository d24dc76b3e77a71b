"""Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000)."""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._common import Gate, check_sizes, orthogonal_blocks_, xavier_blocks_


class _Step(NamedTuple):
    """What one LSTM step computes."""

    i: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    o: torch.Tensor
    tanh_c: torch.Tensor
    c: torch.Tensor
    h: torch.Tensor


class LSTMCell(nn.Module):
    r"""LSTM cell with optional peepholes, projection and layer normalisation.

    .. math::

        \begin{aligned}
        a_t &= W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}
               \quad\text{split into } (a^i_t, a^f_t, a^g_t, a^o_t) \\
        i_t &= \sigma(a^i_t + p_i \odot c_{t-1}) \qquad
        f_t  = \sigma(a^f_t + p_f \odot c_{t-1}) \qquad
        g_t  = \tanh(a^g_t) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        o_t &= \sigma(a^o_t + p_o \odot c_t) \\
        h_t &= W_{hr}\,\bigl(o_t \odot \tanh(c_t)\bigr)
        \end{aligned}

    Peepholes ``p`` (Gers & Schmidhuber 2000) only with ``peephole=True``; the projection
    ``W_hr`` (as ``torch.nn.LSTM``'s ``proj_size``) only with ``proj_size > 0``, otherwise
    ``h_t = o_t ⊙ tanh(c_t)``. With ``layer_norm=True`` (Ba et al. 2016) the pre-activations
    are normalised as whole 4H vectors and the cell is normalised before its tanh:

    .. math::

        a_t = \mathrm{LN}_{ih}(W_{ih} x_t) + \mathrm{LN}_{hh}(W_{hh} h_{t-1}), \qquad
        h_t = W_{hr}\,\bigl(o_t \odot \tanh(\mathrm{LN}_c(c_t))\bigr)

    and the shift of ``LN_ih`` takes the place of the biases. The state is ``(h_t, c_t)``, the
    output is ``h_t``.

    Args:
        input_size: features of ``x_t``.
        hidden_size: size of ``c_t`` (and of ``h_t`` without projection).
        bias: learn the biases.
        forget_bias: initial bias of the forget gate; 1 keeps memory at the start of training.
            Without biases (``bias=False``) there is nothing to set and it is not used.
        peephole: add the peephole connections ``p_i, p_f, p_o``.
        proj_size: size of ``h_t`` after projection; 0 for none.
        layer_norm: normalise as above.

    Weights follow ``torch.nn.LSTM``, gates in the order i, f, g, o: ``weight_ih`` (4H, I),
    ``weight_hh`` (4H, R) with R = proj_size or H, ``bias_ih``, ``bias_hh`` (4H,), ``weight_hr``
    (P, H); ``peephole`` (3, H) holds the rows ``p_i, p_f, p_o``; ``ln_ih``, ``ln_hh``, ``ln_c``
    are ``torch.nn.LayerNorm`` modules.

    Example::

        >>> cell = LSTMCell(3, 5, proj_size=2, peephole=True)
        >>> h, c = cell.initial_state(4)
        >>> out, (h, c) = cell.step(torch.randn(4, 3), (h, c))
        >>> out.shape, c.shape
        (torch.Size([4, 2]), torch.Size([4, 5]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        forget_bias: float = 1.0,
        peephole: bool = False,
        proj_size: int = 0,
        layer_norm: bool = False,
    ):
        super().__init__()
        check_sizes(input_size=input_size, hidden_size=hidden_size)
        if not 0 <= proj_size < hidden_size:
            raise ValueError(
                f"proj_size={proj_size} must be 0 (no projection) or in 1..{hidden_size - 1}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.proj_size = proj_size
        self.output_size = proj_size or hidden_size
        self.forget_bias = forget_bias
        self.peephole = peephole
        self.layer_norm = layer_norm
        H, R = hidden_size, self.output_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, R))
        with_bias = bias and not layer_norm
        self.bias_ih = nn.Parameter(torch.empty(4 * H)) if with_bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * H)) if with_bias else None
        if proj_size:
            self.weight_hr = nn.Parameter(torch.empty(proj_size, H))
        if peephole:
            self.peephole_weight = nn.Parameter(torch.empty(3, H))
        if layer_norm:
            self.ln_ih = nn.LayerNorm(4 * H, bias=bias)
            self.ln_hh = nn.LayerNorm(4 * H, bias=False)  # its shift would repeat ln_ih's
            self.ln_c = nn.LayerNorm(H, bias=bias)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        H = self.hidden_size
        xavier_blocks_(self.weight_ih, 4)
        orthogonal_blocks_(self.weight_hh, 4)
        if self.proj_size:
            nn.init.xavier_uniform_(self.weight_hr)
        if self.peephole:
            self.peephole_weight.zero_()  # starts as the plain LSTM
        if self.layer_norm:
            for ln in (self.ln_ih, self.ln_hh, self.ln_c):
                ln.reset_parameters()
            forget_shift = self.ln_ih.bias
        else:
            for b in (self.bias_ih, self.bias_hh):
                if b is not None:
                    b.zero_()
            forget_shift = self.bias_ih
        if forget_shift is not None:
            forget_shift[H : 2 * H] = self.forget_bias

    def initial_state(self, batch: int, device=None, dtype=None):
        dtype = dtype or self.weight_hh.dtype
        h = torch.zeros(batch, self.output_size, device=device, dtype=dtype)
        c = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        return h, c

    def output(self, state):
        return state[0]

    def step(self, x_t, state, recurrent_mask=None):
        """One step: ``(x_t, (h, c)) -> (h_t, (h_t, c_t))``.

        ``recurrent_mask`` (B, R), if given, multiplies ``h_{t-1}`` where it meets ``W_hh``.
        """
        computed = self._compute(x_t, state, recurrent_mask)
        return computed.h, (computed.h, computed.c)

    def gates(self, x_t, state) -> dict[str, Gate]:
        """The activations of one step: the gates i, f, o, the candidate g, and the tanh of
        the cell that ``h_t`` reads (``o ⊙ tanh(c_t)``)."""
        computed = self._compute(x_t, state, None)
        return {
            "input": Gate("sigmoid", computed.i),
            "forget": Gate("sigmoid", computed.f),
            "candidate": Gate("tanh", computed.g),
            "output": Gate("sigmoid", computed.o),
            "tanh(c)": Gate("tanh", computed.tanh_c),
        }

    def _compute(self, x_t, state, recurrent_mask) -> _Step:
        h, c = state
        h_in = h if recurrent_mask is None else h * recurrent_mask
        if self.layer_norm:
            a = self.ln_ih(F.linear(x_t, self.weight_ih)) + self.ln_hh(
                F.linear(h_in, self.weight_hh)
            )
        else:
            a = F.linear(x_t, self.weight_ih, self.bias_ih) + F.linear(
                h_in, self.weight_hh, self.bias_hh
            )
        a_i, a_f, a_g, a_o = a.chunk(4, dim=1)
        if self.peephole:
            # Rows of the product, not of the parameter: views of one parameter would be
            # aliased inputs to torch's scan, which refuses them (export traces with it).
            peeped = self.peephole_weight[:, None] * c
            a_i, a_f = a_i + peeped[0], a_f + peeped[1]
            p_o = self.peephole_weight[2]
        i, f, g = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g)
        c = f * c + i * g
        if self.peephole:
            a_o = a_o + p_o * c
        o = torch.sigmoid(a_o)
        tanh_c = torch.tanh(self.ln_c(c) if self.layer_norm else c)
        h = o * tanh_c
        if self.proj_size:
            h = F.linear(h, self.weight_hr)
        return _Step(i, f, g, o, tanh_c, c, h)

    def extra_repr(self) -> str:
        options = [f"{self.input_size}, {self.hidden_size}"]
        options += [f"proj_size={self.proj_size}"] if self.proj_size else []
        options += ["peephole=True"] if self.peephole else []
        options += ["layer_norm=True"] if self.layer_norm else []
        return ", ".join(options)
