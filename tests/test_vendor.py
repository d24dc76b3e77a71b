"""The vendor backend equals the reference, and weights exchange with torch.nn both ways."""

import itertools

import pytest
import torch
from torch import nn

import rnnkit as rk
from rnnkit import backends

from conftest import (
    assert_close,
    assert_exchanges_weights_with_torch,
    compare_backends,
    make_inputs,
)

REPRESENTABLE = {
    "lstm": lambda **kw: rk.LSTM(4, 5, **kw),
    "lstm-proj": lambda **kw: rk.LSTM(4, 5, proj_size=3, **kw),
    "lstm-nobias": lambda **kw: rk.LSTM(4, 5, bias=False, **kw),
    "gru": lambda **kw: rk.GRU(4, 5, **kw),
    "rnn-tanh": lambda **kw: rk.RNN(4, 5, **kw),
    "rnn-relu": lambda **kw: rk.RNN(4, 5, activation="relu", **kw),
    "rnn-relu-out": lambda **kw: rk.RNN(4, 5, activation="relu", output_size=2, **kw),
}

SWEEP = list(
    itertools.product(
        REPRESENTABLE,
        [1, 2, 3],  # layers
        [False, True],  # bidirectional
        [False, True],  # lengths
        [True, False],  # batch_first
    )
)


def vendor_serves(layer) -> bool:
    """The vendor kernel can compute this layer (auto may still pick fused, where faster)."""
    return backends.vendor.unsupported_reason(layer, layer.training) is None


@pytest.mark.parametrize(("name", "layers", "bidirectional", "with_lengths", "batch_first"), SWEEP)
def test_vendor_equals_reference_float64(name, layers, bidirectional, with_lengths, batch_first):
    layer = REPRESENTABLE[name](
        num_layers=layers, bidirectional=bidirectional, batch_first=batch_first
    ).double()
    assert vendor_serves(layer)
    x, state, lengths = make_inputs(layer, batch_first, with_lengths, torch.float64)
    compare_backends(layer, x, state, lengths, torch.float64)


@pytest.mark.parametrize("name", list(REPRESENTABLE))
@pytest.mark.parametrize("with_lengths", [False, True])
def test_vendor_equals_reference_float32(name, with_lengths):
    layer = REPRESENTABLE[name](num_layers=2, bidirectional=True)
    x, state, lengths = make_inputs(layer, True, with_lengths, torch.float32)
    compare_backends(layer, x, state, lengths, torch.float32)


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn-relu-out"])
@pytest.mark.parametrize(
    "regularisers",
    [
        {"input_dropout": 0.3},
        {"weight_dropout": 0.3},
        {"dropout": 0.3, "input_dropout": 0.2, "weight_dropout": 0.2, "merge": "sum"},
        {"learn_initial_state": True},
    ],
    ids=repr,
)
def test_vendor_equals_reference_with_its_regularisers(name, regularisers):
    """Input dropout, DropConnect and dropout between layers stay on the vendor kernel."""
    layer = REPRESENTABLE[name](num_layers=2, bidirectional=True, **regularisers).double().train()
    assert vendor_serves(layer)
    x, state, lengths = make_inputs(layer, True, True, torch.float64)
    if layer.learn_initial_state:
        state = None
    compare_backends(layer, x, state, lengths, torch.float64)
    eval_layer = layer.eval()
    layer.backend = "vendor"
    torch.manual_seed(2)
    a = eval_layer(x, state=state, lengths=lengths)[0]
    layer.backend = "reference"
    assert_close(a, eval_layer(x, state=state, lengths=lengths)[0], torch.float64)


TORCH = {
    "lstm": (rk.LSTM, lambda **kw: nn.LSTM(4, 6, **kw)),
    "lstm-proj": (rk.LSTM, lambda **kw: nn.LSTM(4, 6, proj_size=3, **kw)),
    "gru": (rk.GRU, lambda **kw: nn.GRU(4, 6, **kw)),
    "rnn-tanh": (rk.RNN, lambda **kw: nn.RNN(4, 6, **kw)),
    "rnn-relu": (rk.RNN, lambda **kw: nn.RNN(4, 6, nonlinearity="relu", **kw)),
    "gru-nobias": (rk.GRU, lambda **kw: nn.GRU(4, 6, bias=False, **kw)),
}


@pytest.mark.parametrize("name", list(TORCH))
@pytest.mark.parametrize(
    ("layers", "bidirectional", "batch_first"),
    [(1, False, True), (2, True, False), (3, True, True)],
)
def test_from_torch_and_back(name, layers, bidirectional, batch_first):
    ours_class, make_theirs = TORCH[name]
    theirs = make_theirs(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    x = torch.randn((3, 5, 4) if batch_first else (5, 3, 4))
    ours = assert_exchanges_weights_with_torch(ours_class, theirs, x)
    assert ours.batch_first == batch_first and ours.num_layers == layers


def test_from_torch_keeps_dtype_and_takes_rnnkit_options():
    theirs = nn.GRU(3, 4).double()
    ours = rk.GRU.from_torch(theirs, recurrent_dropout=0.2)
    assert ours.cells[0].weight_ih.dtype == torch.float64
    assert ours.recurrent_dropout == 0.2 and ours.batch_first is False


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (lambda: rk.LSTM(3, 4, peephole=True), "peephole"),
        (lambda: rk.LSTM(3, 4, zoneout=0.1), "zoneout"),
        (lambda: rk.GRU(3, 4, bidirectional=True, merge="sum"), "merge='sum'"),
        (lambda: rk.RNN(3, 4, output_size=2), "output projection"),
        (lambda: rk.RNN(3, 4, activation="sigmoid"), "sigmoid"),
        (lambda: rk.LSTM(3, 4, learn_initial_state=True), "learned initial state"),
    ],
)
def test_to_torch_refuses_what_torch_cannot_compute(layer, message):
    with pytest.raises(ValueError, match=f"no torch.nn equivalent: .*{message}"):
        layer().to_torch()


def test_from_torch_wrong_class():
    with pytest.raises(TypeError, match=r"takes a torch.nn.LSTM, got GRU"):
        rk.LSTM.from_torch(nn.GRU(3, 4))
