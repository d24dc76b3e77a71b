import os

import pytest
import torch
from torch import nn

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each xdist worker gets one core's worth of threads: two workers each spinning two
    # threads on a 2-core machine make tiny models tens of times slower, not faster.
    torch.set_num_threads(
        max(1, (os.cpu_count() or 2) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    )


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def as_tuple(state):
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


def max_error(a, b) -> float:
    """Largest absolute difference over two (nested tuples of) tensors."""
    a, b = as_tuple(a), as_tuple(b)
    assert len(a) == len(b)
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


def assert_close(actual, expected, dtype, what=""):
    """The parity rule of DESIGN.md: float64 to 1e-10, float32 to 1e-5 relative."""
    for a, e in zip(as_tuple(actual), as_tuple(expected), strict=True):
        assert a.shape == e.shape, what
        if dtype == torch.float64:
            torch.testing.assert_close(a, e, rtol=0, atol=1e-10, msg=what)
        else:
            torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5 * e.abs().max().item(), msg=what)


class MinimalRNN(nn.Module):
    """A user's cell (Chen 2017's MinimalRNN) with a tuple state, to exercise the protocol.

    z_t = tanh(W_x x_t);  u_t = sigmoid(U_h h_{t-1} + U_z z_t + b);  h_t = u_t h_{t-1} + (1-u_t) z_t
    The state also counts steps, so a second state tensor takes part.
    """

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.w_x = nn.Linear(input_size, hidden_size, bias=False)
        self.weight_hh = nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.3)
        self.u_z = nn.Linear(hidden_size, hidden_size)

    def initial_state(self, batch, device=None, dtype=None):
        dtype = dtype or self.weight_hh.dtype
        zeros = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        return zeros, torch.zeros(batch, 1, device=device, dtype=dtype)

    def step(self, x_t, state):
        h, count = state
        z = torch.tanh(self.w_x(x_t))
        u = torch.sigmoid(h @ self.weight_hh.T + self.u_z(z))
        h = u * h + (1 - u) * z
        return h, (h, count + 1)
