"""Cells: gradients checked numerically, forward checked against torch and against the equations."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import ElmanCell, GRUCell, LSTMCell

from conftest import as_tuple, gradcheck_cell

ELMAN_OPTIONS = list(
    itertools.product(
        ["tanh", "relu", "sigmoid", "leaky_relu", "identity", F.softsign], [None, 4], [True, False]
    )
)


@pytest.mark.parametrize(("activation", "output_size", "bias"), ELMAN_OPTIONS)
def test_elman_gradcheck(activation, output_size, bias):
    cell = ElmanCell(5, 6, activation=activation, output_size=output_size, bias=bias)
    gradcheck_cell(cell)


@pytest.mark.parametrize(
    ("peephole", "proj_size", "layer_norm", "bias"),
    list(itertools.product([False, True], [0, 4], [False, True], [True, False])),
)
def test_lstm_gradcheck(peephole, proj_size, layer_norm, bias):
    cell = LSTMCell(5, 6, bias=bias, peephole=peephole, proj_size=proj_size, layer_norm=layer_norm)
    with torch.no_grad():  # peepholes start at zero; give them weight so their gradient matters
        if peephole:
            cell.peephole_weight.normal_()
    gradcheck_cell(cell)


@pytest.mark.parametrize(
    ("reset_after", "layer_norm", "bias"), list(itertools.product([True, False], repeat=3))
)
def test_gru_gradcheck(reset_after, layer_norm, bias):
    gradcheck_cell(GRUCell(5, 6, bias=bias, reset_after=reset_after, layer_norm=layer_norm))


@pytest.mark.parametrize(
    "cell",
    [
        ElmanCell(4, 5),
        LSTMCell(4, 5, peephole=True, proj_size=3, layer_norm=True),
        GRUCell(4, 5, reset_after=False, layer_norm=True),
        GRUCell(4, 5),
    ],
    ids=repr,
)
def test_gradcheck_with_recurrent_mask(cell):
    gradcheck_cell(cell, with_mask=True)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: ElmanCell(4, 6), lambda: nn.RNNCell(4, 6)),
        (lambda: ElmanCell(4, 6, "relu"), lambda: nn.RNNCell(4, 6, nonlinearity="relu")),
        (lambda: LSTMCell(4, 6), lambda: nn.LSTMCell(4, 6)),
        (lambda: GRUCell(4, 6), lambda: nn.GRUCell(4, 6)),
        (lambda: GRUCell(4, 6, bias=False), lambda: nn.GRUCell(4, 6, bias=False)),
    ],
)
def test_cells_equal_torch_cells(ours, theirs):
    ours, theirs = ours().double(), theirs().double()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            getattr(ours, name).copy_(p)
    x = torch.randn(3, 4, dtype=torch.double)
    state = ours.initial_state(3)
    state = (
        tuple(torch.randn_like(s) for s in state)
        if isinstance(state, tuple)
        else torch.randn_like(state)
    )
    _, new = ours.step(x, state)
    for a, b in zip(as_tuple(new), as_tuple(theirs(x, state)), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def randomise(cell):
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0, 0.5)
    return cell


def test_lstm_matches_its_equations():
    """Peepholes, layer norm and projection, written out gate by gate from the docstring."""
    H, P = 6, 4
    cell = randomise(LSTMCell(5, H, peephole=True, proj_size=P, layer_norm=True).double())
    x = torch.randn(3, 5, dtype=torch.double)
    h, c = torch.randn(3, P, dtype=torch.double), torch.randn(3, H, dtype=torch.double)

    def ln(v, module):
        mean, var = v.mean(-1, keepdim=True), v.var(-1, unbiased=False, keepdim=True)
        shift = module.bias if module.bias is not None else 0
        return (v - mean) / torch.sqrt(var + module.eps) * module.weight + shift

    a = ln(x @ cell.weight_ih.T, cell.ln_ih) + ln(h @ cell.weight_hh.T, cell.ln_hh)
    p_i, p_f, p_o = cell.peephole_weight
    i = torch.sigmoid(a[:, :H] + p_i * c)
    f = torch.sigmoid(a[:, H : 2 * H] + p_f * c)
    g = torch.tanh(a[:, 2 * H : 3 * H])
    c_new = f * c + i * g
    o = torch.sigmoid(a[:, 3 * H :] + p_o * c_new)
    h_new = (o * torch.tanh(ln(c_new, cell.ln_c))) @ cell.weight_hr.T

    out, (h_out, c_out) = cell.step(x, (h, c))
    torch.testing.assert_close(c_out, c_new, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_out, h_new, rtol=0, atol=1e-12)
    assert out is h_out


def test_gru_reset_before_matches_cho_et_al():
    H = 6
    cell = randomise(GRUCell(5, H, reset_after=False).double())
    x, h = torch.randn(3, 5, dtype=torch.double), torch.randn(3, H, dtype=torch.double)
    W, U, b, bh = cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh
    gate = [slice(k * H, (k + 1) * H) for k in range(3)]
    r = torch.sigmoid(x @ W[gate[0]].T + b[gate[0]] + h @ U[gate[0]].T + bh[gate[0]])
    z = torch.sigmoid(x @ W[gate[1]].T + b[gate[1]] + h @ U[gate[1]].T + bh[gate[1]])
    n = torch.tanh(x @ W[gate[2]].T + b[gate[2]] + (r * h) @ U[gate[2]].T + bh[gate[2]])
    expected = (1 - z) * n + z * h
    torch.testing.assert_close(cell.step(x, h)[1], expected, rtol=0, atol=1e-12)
    after = GRUCell(5, H).double()
    after.load_state_dict(cell.state_dict())
    assert not torch.allclose(after.step(x, h)[1], expected), "the two variants must differ"


def test_elman_output_projection_is_not_fed_back():
    cell = randomise(ElmanCell(4, 6, activation="sigmoid", output_size=2).double())
    x, h = torch.randn(3, 4, dtype=torch.double), torch.randn(3, 6, dtype=torch.double)
    y, h_new = cell.step(x, h)
    expected_h = torch.sigmoid(
        x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    )
    torch.testing.assert_close(h_new, expected_h, rtol=0, atol=1e-12)
    torch.testing.assert_close(y, h_new @ cell.weight_ho.T + cell.bias_ho, rtol=0, atol=1e-12)


def test_leaky_relu_slope_is_settable():
    cell = ElmanCell(1, 1, activation="leaky_relu", negative_slope=0.3, bias=False).double()
    with torch.no_grad():
        cell.weight_ih.fill_(1.0)
        cell.weight_hh.zero_()
    _, h = cell.step(torch.tensor([[-2.0]], dtype=torch.double), cell.initial_state(1))
    assert h.item() == pytest.approx(-0.6)


def test_initialisation():
    H = 8
    lstm = LSTMCell(5, H, forget_bias=1.0)
    assert torch.equal(lstm.bias_ih[H : 2 * H], torch.ones(H))
    assert torch.equal(lstm.bias_ih[:H], torch.zeros(H))
    assert torch.equal(lstm.bias_hh, torch.zeros(4 * H))
    for block in lstm.weight_hh.detach().chunk(4):
        torch.testing.assert_close(block @ block.T, torch.eye(H), atol=1e-5, rtol=0)
    ln = LSTMCell(5, H, layer_norm=True, forget_bias=2.0)
    assert torch.equal(ln.ln_ih.bias[H : 2 * H], torch.full((H,), 2.0))
    gru = GRUCell(5, H)
    for block in gru.weight_hh.detach().chunk(3):
        torch.testing.assert_close(block @ block.T, torch.eye(H), atol=1e-5, rtol=0)


def test_bad_cell_arguments():
    with pytest.raises(ValueError, match="activation='swish'"):
        ElmanCell(3, 4, activation="swish")
    with pytest.raises(ValueError, match="proj_size=4"):
        LSTMCell(3, 4, proj_size=4)
