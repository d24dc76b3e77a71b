"""The recurrent layer: shapes, lengths, state, stacking, user cells, backend choice."""

import itertools

import pytest
import torch
from torch import nn

import rnnkit as rk
from rnnkit import backends

from conftest import (
    MinimalRNN,
    as_tuple,
    assert_close,
    assert_padded_batch_equals_each_sequence_alone,
)

D64 = torch.float64


def manual_run(cells, x, num_layers, bidirectional, state=None):
    """Independent definition for one unpadded batch-first sequence batch: plain loops."""
    D = 2 if bidirectional else 1
    finals, inp = [], x
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            cell = cells[layer * D + d]
            s = cell.initial_state(x.shape[0]) if state is None else state[layer * D + d]
            steps = range(x.shape[1] - 1, -1, -1) if d else range(x.shape[1])
            seq = [None] * x.shape[1]
            for t in steps:
                seq[t], s = cell.step(inp[:, t], s)
            outs.append(torch.stack(seq, 1))
            finals.append(s)
        inp = torch.cat(outs, -1)
    return inp, finals


@pytest.mark.parametrize(("num_layers", "bidirectional"), [(1, False), (2, True), (3, False)])
def test_user_cell_equals_plain_loops(num_layers, bidirectional):
    D = 2 if bidirectional else 1
    cells = [MinimalRNN(5, 4)] + [
        MinimalRNN(4 * D if i >= D else 5, 4) for i in range(1, num_layers * D)
    ]
    layer = rk.Recurrent(cells, num_layers, bidirectional=bidirectional).double()
    assert layer.backend_in_use == "reference"
    x = torch.randn(3, 6, 5, dtype=D64)
    out, (h, count) = layer(x)
    expected, finals = manual_run(list(layer.cells), x, num_layers, bidirectional)
    assert_close(out, expected, D64)
    assert_close(h, torch.stack([f[0] for f in finals]), D64)
    assert torch.equal(count, torch.full((num_layers * D, 3, 1), 6.0, dtype=D64))


def test_single_user_cell_is_copied_for_each_direction():
    layer = rk.Recurrent(MinimalRNN(4, 4), 2, bidirectional=True, merge="sum")
    assert len(layer.cells) == 4
    weights = [c.weight_hh for c in layer.cells]
    assert len({id(w) for w in weights}) == 4, "each copy owns its parameters"
    first, second = layer.cells[0].w_x.weight, layer.cells[1].w_x.weight
    assert not torch.equal(first, second), "submodules with reset_parameters start afresh"
    out, _ = layer(torch.randn(2, 3, 4))
    assert out.shape == (2, 3, 4)


def test_single_user_cell_with_other_input_size_asks_for_a_list():
    with pytest.raises(ValueError, match=r"layer 1 receives 8 features.*list of cells"):
        rk.Recurrent(MinimalRNN(5, 4), 2, bidirectional=True)


def test_not_a_cell():
    with pytest.raises(
        TypeError, match=r"Linear is not a recurrent cell: .*'initial_state', 'step'"
    ):
        rk.Recurrent(nn.Linear(3, 4))


CELLS = {
    "lstm": lambda **kw: rk.LSTM(5, 4, **kw),
    "lstm-proj-peephole-ln": lambda **kw: rk.LSTM(
        5, 4, proj_size=3, peephole=True, layer_norm=True, **kw
    ),
    "gru": lambda **kw: rk.GRU(5, 4, **kw),
    "gru-cho-ln": lambda **kw: rk.GRU(5, 4, reset_after=False, layer_norm=True, **kw),
    "rnn-sigmoid-out": lambda **kw: rk.RNN(5, 4, activation="sigmoid", output_size=3, **kw),
    "user": lambda num_layers=1, bidirectional=False, **kw: rk.Recurrent(
        [
            MinimalRNN(5 if i < (2 if bidirectional else 1) else 4 * (2 if bidirectional else 1), 4)
            for i in range(num_layers * (2 if bidirectional else 1))
        ],
        num_layers,
        bidirectional=bidirectional,
        **kw,
    ),
}


@pytest.mark.parametrize("backend", ["reference", "auto"])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize(("num_layers", "bidirectional"), [(1, True), (2, True), (2, False)])
def test_padded_batch_equals_each_sequence_alone(name, num_layers, bidirectional, backend):
    layer = CELLS[name](num_layers=num_layers, bidirectional=bidirectional).double().eval()
    layer.backend = backend
    assert_padded_batch_equals_each_sequence_alone(layer, torch.randn(5, 6, 5, dtype=D64))


def test_lengths_may_live_on_any_device_and_be_a_list():
    layer = rk.GRU(3, 4, bidirectional=True).double()
    x = torch.randn(2, 5, 3, dtype=D64)
    a, _ = layer(x, lengths=torch.tensor([5, 2]))
    b, _ = layer(x, lengths=[5, 2])
    c, _ = layer(x, mask=torch.tensor([[True] * 5, [True, True, False, False, False]]))
    assert torch.equal(a, b) and torch.equal(a, c)


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn-sigmoid-out", "user"])
def test_return_sequences_false_gives_each_directions_last_output(name):
    full = CELLS[name](num_layers=2, bidirectional=True).double()
    last = CELLS[name](num_layers=2, bidirectional=True, return_sequences=False).double()
    last.load_state_dict(full.state_dict())
    x, lengths = torch.randn(3, 5, 5, dtype=D64), torch.tensor([5, 3, 1])
    out, state = full(x, lengths=lengths)
    out_last, state_last = last(x, lengths=lengths)
    half = out.shape[-1] // 2
    forward = out[torch.arange(3), lengths - 1, :half]
    backward = out[:, 0, half:]
    assert_close(out_last, torch.cat([forward, backward], -1), D64)
    assert_close(state_last, state, D64)


def test_return_state_false_returns_the_output_only():
    layer = rk.LSTM(3, 4, return_sequences=False, return_state=False)
    model = nn.Sequential(layer, nn.Linear(4, 2))  # many-to-one in one line
    assert model(torch.randn(6, 7, 3)).shape == (6, 2)


@pytest.mark.parametrize(("merge", "size"), [("concat", 8), ("sum", 4), ("mean", 4), ("mul", 4)])
def test_merge_modes(merge, size):
    layer = rk.GRU(3, 4, 2, bidirectional=True, merge=merge).double()
    reference = rk.GRU(3, 4, 1, bidirectional=True).double()
    x = torch.randn(2, 5, 3, dtype=D64)
    out, h = layer(x)
    assert out.shape == (2, 5, size) and layer.output_size == size
    assert h.shape == (4, 2, 4)
    reference.cells[0].load_state_dict(layer.cells[0].state_dict())
    reference.cells[1].load_state_dict(layer.cells[1].state_dict())
    f, b = reference(x)[0].chunk(2, -1)
    first = {"concat": torch.cat([f, b], -1), "sum": f + b, "mean": (f + b) / 2, "mul": f * b}
    second_layer_input = first[merge]
    expected, _ = manual_run(list(layer.cells[2:]), second_layer_input, 1, True)
    if merge == "concat":
        assert_close(out, expected, D64)
    else:
        f2, b2 = expected.chunk(2, -1)
        assert_close(out, {"sum": f2 + b2, "mean": (f2 + b2) / 2, "mul": f2 * b2}[merge], D64)


@pytest.mark.parametrize("batch_first", [True, False])
def test_batch_first_both_ways(batch_first):
    a = rk.LSTM(3, 4, 2, bidirectional=True).double()
    b = rk.LSTM(3, 4, 2, bidirectional=True, batch_first=batch_first).double()
    b.load_state_dict(a.state_dict())
    x, lengths = torch.randn(2, 5, 3, dtype=D64), torch.tensor([5, 3])
    out_a, state_a = a(x, lengths=lengths)
    out_b, state_b = b(x if batch_first else x.transpose(0, 1), lengths=lengths)
    assert_close(out_b if batch_first else out_b.transpose(0, 1), out_a, D64)
    assert_close(state_b, state_a, D64)


@pytest.mark.parametrize("name", ["lstm", "gru-cho-ln", "user"])
def test_carried_state_continues_the_sequence(name):
    """Stateful use / truncated BPTT: two chunks with the state carried equal one long run."""
    layer = CELLS[name](num_layers=2).double()
    x = torch.randn(3, 8, 5, dtype=D64)
    whole, final = layer(x)
    first, state = layer(x[:, :5])
    second, final_chunked = layer(x[:, 5:], state=state)
    assert_close(torch.cat([first, second], 1), whole, D64)
    assert_close(final_chunked, final, D64)


def test_learned_initial_state_is_used_and_trained():
    layer = rk.LSTM(3, 4, 2, bidirectional=True, learn_initial_state=True).double()
    assert [tuple(p.shape) for p in layer.learned_state] == [(4, 1, 4), (4, 1, 4)]
    with torch.no_grad():
        for p in layer.learned_state:
            p.normal_()
    x = torch.randn(2, 5, 3, dtype=D64)
    out, _ = layer(x)
    given = tuple(p.expand(-1, 2, -1) for p in layer.learned_state)
    out_given, _ = layer(x, state=given)
    assert_close(out, out_given, D64)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.learned_state)


@pytest.mark.parametrize(
    "make",
    [
        lambda: rk.LSTM(3, 3, 2, bidirectional=True, peephole=True, layer_norm=True, proj_size=2),
        lambda: rk.GRU(3, 3, bidirectional=True, reset_after=False, merge="mul"),
        lambda: rk.RNN(3, 3, 2, activation="leaky_relu", learn_initial_state=True),
    ],
)
def test_layer_gradcheck_through_lengths(make):
    layer = make().double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    lengths = torch.tensor([4, 2])
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(2, 4, 3, dtype=D64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]

    def f(x, *flat):
        out, state = torch.func.functional_call(
            layer, dict(zip(names, flat, strict=True)), (x,), {"lengths": lengths}
        )
        return out, *as_tuple(state)

    assert torch.autograd.gradcheck(f, (x, *params))


@pytest.mark.parametrize(
    ("make", "backend", "reason"),
    [
        (lambda: rk.LSTM(3, 4), "fused", "trains as fast as torch's"),
        (lambda: rk.LSTM(3, 4).eval(), "vendor", "exactly"),
        (lambda: rk.LSTM(3, 4, proj_size=2, input_dropout=0.2), "fused", "trains as fast"),
        (lambda: rk.LSTM(3, 4, peephole=True), "fused", "peephole connections"),
        (lambda: rk.LSTM(3, 4, layer_norm=True), "fused", "layer_norm is not in nn.LSTM"),
        (lambda: rk.LSTM(3, 4, zoneout=0.1), "fused", "zoneout"),
        (lambda: rk.LSTM(3, 4, recurrent_dropout=0.1), "fused", "recurrent_dropout"),
        (lambda: rk.LSTM(3, 4, recurrent_dropout=0.1).eval(), "vendor", "exactly"),
        (lambda: rk.GRU(3, 4), "fused", "faster"),
        (lambda: rk.GRU(3, 4, reset_after=False), "fused", "reset_after=False"),
        (lambda: rk.RNN(3, 4, activation="sigmoid"), "fused", "'sigmoid' is not in nn.RNN"),
        (lambda: rk.RNN(3, 4, activation="relu", output_size=2), "fused", "faster"),
        (lambda: rk.Recurrent(MinimalRNN(3, 4)), "reference", "MinimalRNN is not a built-in"),
    ],
)
def test_auto_backend_and_its_reason(make, backend, reason):
    layer = make()
    assert layer.backend_in_use == backend
    assert reason in layer.backend_reason


def test_asking_for_a_backend_that_cannot_serve_says_why():
    with pytest.raises(ValueError, match="backend='vendor' cannot run this layer: peephole"):
        rk.LSTM(3, 4, peephole=True, backend="vendor")
    with pytest.raises(ValueError, match="backend='fused' cannot run this layer: MinimalRNN"):
        rk.Recurrent(MinimalRNN(3, 4), backend="fused")
    with pytest.raises(ValueError, match="backend='cudnn' is not known"):
        rk.LSTM(3, 4, backend="cudnn")
    layer = rk.LSTM(3, 4, recurrent_dropout=0.1).eval()
    layer.backend = "vendor"
    layer(torch.randn(1, 2, 3))  # eval: recurrent dropout is off, the kernel serves
    layer.train()
    with pytest.raises(ValueError, match=r"recurrent_dropout is not in nn.LSTM"):
        layer(torch.randn(1, 2, 3))


@pytest.mark.parametrize(
    ("num_layers", "bidirectional"), list(itertools.product([1, 3], [False, True]))
)
def test_state_layout_matches_torch(num_layers, bidirectional):
    ours = rk.LSTM(3, 5, num_layers, bidirectional=bidirectional, proj_size=2)
    theirs = nn.LSTM(3, 5, num_layers, bidirectional=bidirectional, proj_size=2, batch_first=True)
    x = torch.randn(4, 6, 3)
    _, (h, c) = ours(x)
    _, (h_t, c_t) = theirs(x)
    assert h.shape == h_t.shape and c.shape == c_t.shape


@pytest.mark.parametrize("make", [rk.GRU, rk.LSTM, lambda i, h: rk.LSTM(i, h, peephole=True)])
def test_nan_in_the_padding_does_not_reach_any_gradient(make):
    """Time series are often padded with NaN; padded steps must not take part in anything."""
    layer = make(3, 4).double()
    x = torch.randn(2, 5, 3, dtype=D64)
    x[1, 3:] = float("nan")
    grads = {}
    for backend in (layer.backend_in_use, "reference"):
        layer.backend = backend
        xb = x.clone().requires_grad_()
        out, state = layer(xb, lengths=[5, 3])
        (out.sum() + sum(s.sum() for s in as_tuple(state))).backward()
        grads[backend] = [xb.grad[0], xb.grad[1, :3], *(p.grad for p in layer.parameters())]
        layer.zero_grad()
        assert all(torch.isfinite(g).all() for g in grads[backend]), backend
    assert_close(grads["reference"], grads[next(iter(grads))], D64)


def test_vendor_refuses_directions_with_different_kernels():
    """One torch kernel call runs both directions of a layer; the fused backend runs each
    direction with its own cell, so auto moves such layers to it."""
    vendor_refusal = backends.vendor.unsupported_reason
    tanh_relu = rk.Recurrent(
        [rk.ElmanCell(3, 5, "tanh"), rk.ElmanCell(3, 5, "relu")], bidirectional=True
    )
    assert "directions of layer 0" in vendor_refusal(tanh_relu, True)
    assert tanh_relu.backend_in_use == "fused"
    mixed_bias = [rk.LSTMCell(3, 5), rk.LSTMCell(3, 5, bias=False)]
    assert "directions of layer 0" in vendor_refusal(
        rk.Recurrent(mixed_bias, bidirectional=True), True
    )
    stacked = [rk.ElmanCell(3, 5, "tanh"), rk.ElmanCell(5, 5, "relu")]  # one kernel per layer
    assert vendor_refusal(rk.Recurrent(stacked, 2), True) is None


def test_the_core_contract_of_the_design_runs_as_written():
    layer = rk.LSTM(
        input_size=8, hidden_size=64, num_layers=2, bidirectional=True,
        batch_first=True, dropout=0.2,
        input_dropout=0.1, recurrent_dropout=0.1,
        zoneout=0.1, weight_dropout=0.2,
        layer_norm=True, peephole=False, proj_size=0, forget_bias=1.0,
        merge="concat", learn_initial_state=False, backend="auto",
    )  # fmt: skip
    x, lengths = torch.randn(3, 7, 8), torch.tensor([7, 4, 2])
    out, state = layer(x, lengths=lengths)
    assert out.shape == (3, 7, 128) and torch.all(out[2, 2:] == 0)
    out2, _ = layer(x, state=state)
    assert out2.shape == out.shape
    assert (layer.backend_in_use, layer.backend_reason) == (
        "fused",
        "layer_norm is not in nn.LSTM; the fused kernels run it with explicit BPTT",
    )
    gru = rk.GRU(8, 16, reset_after=True)
    assert rk.LSTM.from_torch(torch.nn.LSTM(8, 16)).to_torch().hidden_size == 16
    assert gru.to_torch().hidden_size == 16
    assert rk.RNN(8, 16, activation="sigmoid")(x)[0].shape == (3, 7, 16)
    assert rk.Recurrent(MinimalRNN(8, 16))(x)[0].shape == (3, 7, 16)
