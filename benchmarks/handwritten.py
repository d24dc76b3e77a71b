"""What a user writes today for a cell that torch.nn has no fused layer for: an autograd loop.

Each module takes a batch-first ``x`` (N, T, I) and returns the outputs (N, T, H). They are
written plainly, the way a tutorial would: one step per Python iteration, the input product
computed inside the loop as ``nn.LSTMCell`` does. Their parameters carry the names of rnnkit's
cells, so ``load_cell_weights`` can copy rnnkit's weights in and the benchmark can check that
both compute the same function before it times them.
"""

import torch
from torch import nn


def load_cell_weights(loop: nn.Module, cell: nn.Module) -> None:
    """Copy the weights of an rnnkit cell into a hand-written loop (or into its torch cell)."""
    target = getattr(loop, "cell", loop)
    target.load_state_dict(cell.state_dict())


def _keep_mask(like: torch.Tensor, rate: float) -> torch.Tensor:
    """1 with probability ``rate``, else 0."""
    return torch.bernoulli(torch.full_like(like, rate))


class LSTMCellLoop(nn.Module):
    """A loop over ``nn.LSTMCell``, with optional variational recurrent dropout and zoneout.

    Recurrent dropout: one mask per sequence multiplies ``h`` where it enters the cell, so it
    meets only the recurrent weights (Gal & Ghahramani 2016). Zoneout: each unit of ``h`` and
    ``c`` keeps its previous value with probability ``zoneout``; at evaluation the expectation
    (Krueger et al. 2017).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        input_dropout: float = 0.0,
    ):
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden_size)
        self.recurrent_dropout = recurrent_dropout
        self.zoneout = zoneout
        self.input_dropout = input_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = x.shape
        h = x.new_zeros(batch, self.cell.hidden_size)
        c = x.new_zeros(batch, self.cell.hidden_size)
        if self.training and self.input_dropout:
            p = self.input_dropout
            x = x * (torch.bernoulli(torch.full_like(x[:, 0], 1 - p)) / (1 - p))[:, None]
        mask = None
        if self.training and self.recurrent_dropout:
            p = self.recurrent_dropout
            mask = torch.bernoulli(torch.full_like(h, 1 - p)) / (1 - p)
        outputs = []
        for t in range(steps):
            h_in = h if mask is None else h * mask
            h_new, c_new = self.cell(x[:, t], (h_in, c))
            if self.zoneout:
                keep_h = _keep_mask(h, self.zoneout) if self.training else self.zoneout
                keep_c = _keep_mask(c, self.zoneout) if self.training else self.zoneout
                h_new = keep_h * h + (1 - keep_h) * h_new
                c_new = keep_c * c + (1 - keep_c) * c_new
            h, c = h_new, c_new
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class TorchCellLoop(nn.Module):
    """A loop over ``nn.GRUCell`` or ``nn.RNNCell``: the plain autograd loop of those cells."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)
        outputs = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            outputs.append(h)
        return torch.stack(outputs, dim=1)


def gru_cell_loop(input_size: int, hidden_size: int) -> TorchCellLoop:
    return TorchCellLoop(nn.GRUCell(input_size, hidden_size))


def rnn_cell_loop(input_size: int, hidden_size: int) -> TorchCellLoop:
    return TorchCellLoop(nn.RNNCell(input_size, hidden_size))


class LayerNormLSTMLoop(nn.Module):
    """Layer-normalised LSTM (Ba et al. 2016): nn.LayerNorm and matmuls in a for-loop.

    ``gates = LN_ih(x W_ih^T) + LN_hh(h W_hh^T)``, ``h = o * tanh(LN_c(c))``; the shift of
    ``LN_ih`` is the bias.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.randn(4 * hidden_size, input_size) / input_size**0.5)
        self.weight_hh = nn.Parameter(torch.randn(4 * hidden_size, hidden_size) / hidden_size**0.5)
        self.ln_ih = nn.LayerNorm(4 * hidden_size)
        self.ln_hh = nn.LayerNorm(4 * hidden_size, bias=False)
        self.ln_c = nn.LayerNorm(hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = x.shape
        h = x.new_zeros(batch, self.hidden_size)
        c = x.new_zeros(batch, self.hidden_size)
        outputs = []
        for t in range(steps):
            gates = self.ln_ih(x[:, t] @ self.weight_ih.T) + self.ln_hh(h @ self.weight_hh.T)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(self.ln_c(c))
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class ResetBeforeGRULoop(nn.Module):
    """Cho et al.'s GRU, the reset gate applied to ``h`` before the recurrent product.

    ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``; gates in torch's order r, z, n.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        H = hidden_size
        self.hidden_size = H
        self.weight_ih = nn.Parameter(torch.randn(3 * H, input_size) / input_size**0.5)
        self.weight_hh = nn.Parameter(torch.randn(3 * H, H) / H**0.5)
        self.bias_ih = nn.Parameter(torch.zeros(3 * H))
        self.bias_hh = nn.Parameter(torch.zeros(3 * H))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H = self.hidden_size
        batch, steps, _ = x.shape
        h = x.new_zeros(batch, H)
        w_rz, w_n = self.weight_hh.split([2 * H, H])
        b_rz, b_n = self.bias_hh.split([2 * H, H])
        outputs = []
        for t in range(steps):
            gi_r, gi_z, gi_n = (x[:, t] @ self.weight_ih.T + self.bias_ih).chunk(3, dim=1)
            gh_r, gh_z = (h @ w_rz.T + b_rz).chunk(2, dim=1)
            r = torch.sigmoid(gi_r + gh_r)
            z = torch.sigmoid(gi_z + gh_z)
            n = torch.tanh(gi_n + (r * h) @ w_n.T + b_n)
            h = (1 - z) * n + z * h
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class SigmoidElmanLoop(nn.Module):
    """Elman RNN with a sigmoid, which nn.RNN (tanh or relu only) does not offer."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.randn(hidden_size, input_size) / input_size**0.5)
        self.weight_hh = nn.Parameter(torch.randn(hidden_size, hidden_size) / hidden_size**0.5)
        self.bias_ih = nn.Parameter(torch.zeros(hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = x.shape
        h = x.new_zeros(batch, self.hidden_size)
        outputs = []
        for t in range(steps):
            pre = x[:, t] @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
            h = torch.sigmoid(pre)
            outputs.append(h)
        return torch.stack(outputs, dim=1)
