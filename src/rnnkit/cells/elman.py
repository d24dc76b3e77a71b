"""Elman's simple recurrent cell (Elman 1990), the "vanilla RNN" of the tutorials."""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._common import Gate, check_sizes, orthogonal_blocks_, xavier_blocks_

ACTIVATIONS = ("tanh", "relu", "sigmoid", "leaky_relu", "identity")


class ElmanCell(nn.Module):
    r"""Elman's recurrent cell.

    .. math::

        h_t &= f(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}) \\
        y_t &= W_{ho} h_t + b_{ho} \qquad \text{(only with ``output_size``)}

    ``f`` is tanh, relu, sigmoid, leaky_relu (slope ``negative_slope`` below zero), identity, or
    any callable from tensor to tensor. The state is ``h_t``; the output is ``h_t``, or ``y_t``
    when ``output_size`` is given (the output projection is not fed back).

    Args:
        input_size: features of ``x_t``.
        hidden_size: size of ``h_t``.
        activation: the name of ``f`` or a callable.
        negative_slope: slope of leaky_relu for negative inputs.
        bias: learn ``b_ih`` and ``b_hh`` (and ``b_ho``).
        output_size: size of the output projection ``y_t``; ``None`` outputs ``h_t``.

    Weights follow ``torch.nn.RNN``: ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih``,
    ``bias_hh`` (H,); and ``weight_ho`` (O, H), ``bias_ho`` (O,) with ``output_size``.

    Example::

        >>> cell = ElmanCell(3, 5, activation="relu")
        >>> h = cell.initial_state(2)
        >>> y, h = cell.step(torch.randn(2, 3), h)
        >>> y.shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        activation: str | Callable[[torch.Tensor], torch.Tensor] = "tanh",
        negative_slope: float = 0.01,
        bias: bool = True,
        output_size: int | None = None,
    ):
        super().__init__()
        check_sizes(input_size=input_size, hidden_size=hidden_size)
        if output_size is not None:
            check_sizes(output_size=output_size)
        if isinstance(activation, str) and activation not in ACTIVATIONS:
            raise ValueError(
                f"activation={activation!r} is not known; expected one of {ACTIVATIONS} "
                "or a callable"
            )
        if not isinstance(activation, str) and not callable(activation):
            raise TypeError(f"activation must be a name or a callable, got {activation!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.activation = activation
        self.negative_slope = negative_slope
        self.output_size = output_size or hidden_size
        self.has_output_projection = output_size is not None
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(hidden_size)) if bias else None
        if self.has_output_projection:
            self.weight_ho = nn.Parameter(torch.empty(output_size, hidden_size))
            self.bias_ho = nn.Parameter(torch.empty(output_size)) if bias else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        xavier_blocks_(self.weight_ih, 1)
        orthogonal_blocks_(self.weight_hh, 1)
        if self.has_output_projection:
            nn.init.xavier_uniform_(self.weight_ho)
        for b in (self.bias_ih, self.bias_hh, getattr(self, "bias_ho", None)):
            if b is not None:
                b.zero_()

    def nonlinearity(self, pre: torch.Tensor) -> torch.Tensor:
        """f applied to the pre-activation."""
        f = self.activation
        if f == "tanh":
            return torch.tanh(pre)
        if f == "relu":
            return torch.relu(pre)
        if f == "sigmoid":
            return torch.sigmoid(pre)
        if f == "leaky_relu":
            return F.leaky_relu(pre, self.negative_slope)
        if f == "identity":
            return pre
        return f(pre)

    def initial_state(self, batch: int, device=None, dtype=None) -> torch.Tensor:
        dtype = dtype or self.weight_hh.dtype
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def output(self, h: torch.Tensor) -> torch.Tensor:
        """The output read from a state: ``h`` itself, or ``y = W_ho h + b_ho``."""
        if self.has_output_projection:
            return F.linear(h, self.weight_ho, self.bias_ho)
        return h

    def step(self, x_t, h, recurrent_mask=None):
        """One step: ``(x_t, h_{t-1}) -> (output, h_t)``.

        ``recurrent_mask`` (B, H), if given, multiplies ``h_{t-1}`` where it meets ``W_hh``
        (variational recurrent dropout).
        """
        h_in = h if recurrent_mask is None else h * recurrent_mask
        pre = F.linear(x_t, self.weight_ih, self.bias_ih) + F.linear(
            h_in, self.weight_hh, self.bias_hh
        )
        h = self.nonlinearity(pre)
        return self.output(h), h

    def gates(self, x_t, h) -> dict[str, Gate]:
        """The activation of one step, ``f(pre_t) = h_t``, as a Gate of kind ``activation``
        (a callable's name)."""
        _, h = self.step(x_t, h)
        kind = self.activation if isinstance(self.activation, str) else "custom"
        return {"activation": Gate(kind, h)}

    def extra_repr(self) -> str:
        name = self.activation if isinstance(self.activation, str) else repr(self.activation)
        extra = f", output_size={self.output_size}" if self.has_output_projection else ""
        return f"{self.input_size}, {self.hidden_size}, activation={name}{extra}"
