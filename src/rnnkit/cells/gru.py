"""Gated recurrent unit (Cho et al. 2014)."""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._common import Gate, check_sizes, orthogonal_blocks_, xavier_blocks_


class _Step(NamedTuple):
    """What one GRU step computes."""

    r: torch.Tensor
    z: torch.Tensor
    n: torch.Tensor
    h: torch.Tensor


class GRUCell(nn.Module):
    r"""GRU cell, with the reset gate after (default) or before the recurrent product.

    With ``reset_after=True``, the form of cuDNN and ``torch.nn.GRU``:

    .. math::

        \begin{aligned}
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
        \end{aligned}

    With ``reset_after=False``, Cho et al.'s original form, the reset gate scales ``h_{t-1}``
    before the product:

    .. math::

        n_t = \tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \odot h_{t-1}) + b_{hn})

    With ``layer_norm=True`` the input pre-activations :math:`W_{ih} x_t` are normalised as one
    3H vector and the recurrent ones as computed: the 3H vector :math:`W_{hh} h_{t-1}` (reset
    after), or the 2H vector of r and z and then the H vector :math:`W_{hn}(r_t \odot h_{t-1})`
    (reset before). The normalisers' shifts take the place of the biases. The state and the
    output are ``h_t``.

    Args:
        input_size: features of ``x_t``.
        hidden_size: size of ``h_t``.
        bias: learn the biases.
        reset_after: where the reset gate acts, as above.
        layer_norm: normalise as above.

    Weights follow ``torch.nn.GRU``, gates in the order r, z, n: ``weight_ih`` (3H, I),
    ``weight_hh`` (3H, H), ``bias_ih``, ``bias_hh`` (3H,).

    Example::

        >>> cell = GRUCell(3, 5, reset_after=False)
        >>> out, h = cell.step(torch.randn(2, 3), cell.initial_state(2))
        >>> out.shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        reset_after: bool = True,
        layer_norm: bool = False,
    ):
        super().__init__()
        check_sizes(input_size=input_size, hidden_size=hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        self.reset_after = reset_after
        self.layer_norm = layer_norm
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H))
        with_bias = bias and not layer_norm
        self.bias_ih = nn.Parameter(torch.empty(3 * H)) if with_bias else None
        self.bias_hh = nn.Parameter(torch.empty(3 * H)) if with_bias else None
        if layer_norm:
            self.ln_ih = nn.LayerNorm(3 * H, bias=bias)
            if reset_after:
                # Its n-part shift sits inside r_t ⊙ (…), so it is not the same as ln_ih's.
                self.ln_hh = nn.LayerNorm(3 * H, bias=bias)
            else:
                self.ln_hh = nn.LayerNorm(2 * H, bias=False)
                self.ln_hn = nn.LayerNorm(H, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        xavier_blocks_(self.weight_ih, 3)
        orthogonal_blocks_(self.weight_hh, 3)
        for b in (self.bias_ih, self.bias_hh):
            if b is not None:
                b.zero_()
        for name in ("ln_ih", "ln_hh", "ln_hn"):
            if hasattr(self, name):
                getattr(self, name).reset_parameters()

    def initial_state(self, batch: int, device=None, dtype=None) -> torch.Tensor:
        dtype = dtype or self.weight_hh.dtype
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def output(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def step(self, x_t, h, recurrent_mask=None):
        """One step: ``(x_t, h_{t-1}) -> (h_t, h_t)``.

        ``recurrent_mask`` (B, H), if given, multiplies ``h_{t-1}`` in every recurrent product
        but not in the interpolation ``z_t ⊙ h_{t-1}`` (Gal & Ghahramani 2016).
        """
        computed = self._compute(x_t, h, recurrent_mask)
        return computed.h, computed.h

    def gates(self, x_t, h) -> dict[str, Gate]:
        """The activations of one step: the gates r and z, and the candidate n."""
        computed = self._compute(x_t, h, None)
        return {
            "reset": Gate("sigmoid", computed.r),
            "update": Gate("sigmoid", computed.z),
            "candidate": Gate("tanh", computed.n),
        }

    def _compute(self, x_t, h, recurrent_mask) -> _Step:
        H = self.hidden_size
        h_in = h if recurrent_mask is None else h * recurrent_mask
        if self.layer_norm:
            gi = self.ln_ih(F.linear(x_t, self.weight_ih))
        else:
            gi = F.linear(x_t, self.weight_ih, self.bias_ih)
        gi_r, gi_z, gi_n = gi.chunk(3, dim=1)
        if self.reset_after:
            gh = F.linear(h_in, self.weight_hh, None if self.layer_norm else self.bias_hh)
            if self.layer_norm:
                gh = self.ln_hh(gh)
            gh_r, gh_z, gh_n = gh.chunk(3, dim=1)
            r = torch.sigmoid(gi_r + gh_r)
            z = torch.sigmoid(gi_z + gh_z)
            n = torch.tanh(gi_n + r * gh_n)
        else:
            w_rz, w_n = self.weight_hh[: 2 * H], self.weight_hh[2 * H :]
            b_rz, b_n = (None, None) if self.bias_hh is None else self.bias_hh.split([2 * H, H])
            gh_rz = F.linear(h_in, w_rz, b_rz)
            if self.layer_norm:
                gh_rz = self.ln_hh(gh_rz)
            gh_r, gh_z = gh_rz.chunk(2, dim=1)
            r = torch.sigmoid(gi_r + gh_r)
            z = torch.sigmoid(gi_z + gh_z)
            gh_n = F.linear(r * h_in, w_n, b_n)
            if self.layer_norm:
                gh_n = self.ln_hn(gh_n)
            n = torch.tanh(gi_n + gh_n)
        return _Step(r, z, n, (1 - z) * n + z * h)

    def extra_repr(self) -> str:
        options = [f"{self.input_size}, {self.hidden_size}"]
        options += [] if self.reset_after else ["reset_after=False"]
        options += ["layer_norm=True"] if self.layer_norm else []
        return ", ".join(options)
