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


class Steps(nn.Module):
    """Two steps of a cell, so the carried state takes part (peepholes read c_{t-1})."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x1, x2, state, mask):
        masked = {} if mask is None else {"recurrent_mask": mask}  # a user's cell may lack it
        out1, state = self.cell.step(x1, state, **masked)
        out2, state = self.cell.step(x2, state, **masked)
        return out1, out2, *((state,) if isinstance(state, torch.Tensor) else state)


def gradcheck_cell(cell, batch=3, with_mask=False):
    """Two steps of ``cell`` in float64: gradients of outputs and state with respect to the
    inputs, the initial state and every parameter, checked numerically."""
    cell = cell.double()
    names = [name for name, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    init = cell.initial_state(batch)
    n_state = 1 if isinstance(init, torch.Tensor) else len(init)
    states = [torch.randn_like(s).requires_grad_() for s in (init if n_state > 1 else (init,))]
    x1 = torch.randn(batch, cell.input_size, dtype=torch.double, requires_grad=True)
    x2 = torch.randn(batch, cell.input_size, dtype=torch.double, requires_grad=True)
    mask = None
    if with_mask:
        mask = torch.randint(0, 2, states[0].shape, dtype=torch.double) * 2.0
    wrapper = Steps(cell)

    def f(x1, x2, *flat):
        state = flat[:n_state] if n_state > 1 else flat[0]
        swapped = {f"cell.{n}": p for n, p in zip(names, flat[n_state:], strict=True)}
        return torch.func.functional_call(wrapper, swapped, (x1, x2, state, mask))

    assert torch.autograd.gradcheck(f, (x1, x2, *states, *params))


def run_and_grad(layer, x, state, lengths):
    """-> (output, final state, gradients of a loss of both with respect to ``x``, ``state``
    and every parameter)."""
    out, final = layer(x, state=state, lengths=lengths)
    # Weighted sums so that every element's gradient differs.
    loss = (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum()
    loss = loss + sum((s * s).sum() for s in as_tuple(final))
    inputs = [x, *(as_tuple(state) if state is not None else ()), *layer.parameters()]
    return out, final, torch.autograd.grad(loss, inputs)


def compare_backends(layer, x, state, lengths, dtype, backend="vendor"):
    """``backend`` runs ``layer`` and equals the reference: outputs, final states and the
    gradients with respect to ``x``, ``state`` and every parameter (``assert_close``)."""
    results = {}
    for name in (backend, "reference"):
        layer.backend = name
        assert layer.backend_in_use == name, layer.backend_reason
        torch.manual_seed(1)  # the same masks for both, where regularisers draw any
        results[name] = run_and_grad(layer, x, state, lengths)
    (out_b, state_b, grads_b), (out_r, state_r, grads_r) = results.values()
    assert_close(out_b, out_r, dtype, "outputs")
    assert_close(state_b, state_r, dtype, "final states")
    given = len(as_tuple(state)) if state is not None else 0
    names = ["x", *[f"state[{k}]" for k in range(given)]]
    names += [n for n, _ in layer.named_parameters()]
    for name, g_b, g_r in zip(names, grads_b, grads_r, strict=True):
        assert_close(g_b, g_r, dtype, f"gradient of {name}")


def assert_padded_batch_equals_each_sequence_alone(layer, x, lengths=(6, 2, 4, 1, 6)):
    """``layer`` (batch first, float64) over ``x`` (B, T, I) with ``lengths``: each sequence's
    outputs and final state equal those of running it alone, and padded outputs are exactly 0."""
    lengths = torch.tensor(lengths)
    out, state = layer(x, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone_out, alone_state = layer(x[b : b + 1, :n])
        assert_close(out[b, :n], alone_out[0], x.dtype, f"outputs of sequence {b}")
        assert torch.all(out[b, n:] == 0), "padded outputs must be exactly 0"
        for ours, alone in zip(as_tuple(state), as_tuple(alone_state), strict=True):
            assert_close(ours[:, b], alone[:, 0], x.dtype, f"final state of sequence {b}")


def assert_exchanges_weights_with_torch(ours_class, theirs, x):
    """``ours_class.from_torch(theirs)`` computes what ``theirs`` computes on ``x``, and its
    ``to_torch()`` is a module of the same class with the same weights. -> the rnnkit layer."""
    ours = ours_class.from_torch(theirs)
    assert type(ours) is ours_class
    expected_out, expected_state = theirs(x)
    out, state = ours(x)
    assert_close(out, expected_out, x.dtype, "from_torch outputs")
    assert_close(state, expected_state, x.dtype, "from_torch states")
    back = ours.to_torch()
    assert type(back) is type(theirs)
    for (n1, p1), (n2, p2) in zip(theirs.named_parameters(), back.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
    assert_close(back(x)[0], out, x.dtype, "to_torch outputs")
    return ours


def make_inputs(layer, batch_first, with_lengths, dtype):
    """-> (x, initial state, lengths or None) for ``layer``: 4 sequences of 6 steps."""
    B, T, F = 4, 6, layer.input_size
    x = torch.randn((B, T, F) if batch_first else (T, B, F), dtype=dtype, requires_grad=True)
    count = layer.num_layers * layer.num_directions
    state = tuple(
        torch.randn(count, B, size, dtype=dtype, requires_grad=True) for size in layer.state_sizes
    )
    state = state if len(state) > 1 else state[0]
    lengths = torch.tensor([6, 1, 4, 3]) if with_lengths else None
    return x, state, lengths
