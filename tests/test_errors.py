"""Bad input gets an error that names the argument, the value and what was expected."""

import pytest
import torch

import rnnkit as rk


@pytest.fixture
def lstm():
    return rk.LSTM(4, 5, 2, bidirectional=True)


X = torch.randn(3, 6, 4)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda m: m(torch.randn(6, 4)),
            ValueError,
            r"x must be 3-D \(batch, time, features\), got shape \(6, 4\); for one sequence use x.unsqueeze\(0\)",
        ),
        (lambda m: m(torch.randn(1, 3, 6, 4)), ValueError, r"x must be 3-D"),
        (lambda m: m([[1.0]]), TypeError, "x must be a torch.Tensor"),
        (lambda m: m(torch.randn(3, 6, 7)), ValueError, "x has 7 features .* input_size=4"),
        (
            lambda m: m(torch.ones(3, 6, 4, dtype=torch.int64)),
            TypeError,
            "x must be floating point, got dtype torch.int64",
        ),
        (
            lambda m: m(X.double()),
            TypeError,
            "x has dtype torch.float64 but the layer's parameters are torch.float32",
        ),
        (lambda m: m(torch.randn(3, 0, 4)), ValueError, "x has 0 time steps"),
        (
            lambda m: m(X, lengths=torch.tensor([6, 9, 2])),
            ValueError,
            r"lengths\[1\] = 9 is longer than the 6 time steps of x",
        ),
        (
            lambda m: m(X, lengths=torch.tensor([6, 0, 2])),
            ValueError,
            r"lengths must be >= 1, got lengths\[1\] = 0",
        ),
        (
            lambda m: m(X, lengths=torch.tensor([6, -1, 2])),
            ValueError,
            r"lengths must be >= 1, got lengths\[1\] = -1",
        ),
        (
            lambda m: m(X, lengths=torch.tensor([6.0, 2.0, 2.0])),
            TypeError,
            "lengths must hold integers, got dtype torch.float32",
        ),
        (lambda m: m(X, lengths=[6, 2.5, 2]), TypeError, "lengths must hold integers"),
        (
            lambda m: m(X, lengths=torch.tensor([6, 2])),
            ValueError,
            r"lengths must have shape \(batch,\) = \(3,\), got \(2,\)",
        ),
        (lambda m: m(X, lengths="6"), TypeError, "lengths must be a tensor or list of ints"),
        (
            lambda m: m(X, lengths=[6, 6, 6], mask=torch.ones(3, 6, dtype=torch.bool)),
            ValueError,
            "lengths or mask, not both",
        ),
        (
            lambda m: m(X, mask=torch.tensor([[False] * 2 + [True] * 4] * 3)),
            ValueError,
            "mask row 0 is not a run of True followed by False.*left padding",
        ),
        (lambda m: m(X, mask=torch.ones(3, 6)), TypeError, "mask must be a bool tensor"),
        (
            lambda m: m(X, mask=torch.ones(3, 5, dtype=torch.bool)),
            ValueError,
            r"mask must have shape \(batch, time\) like x, got \(3, 5\)",
        ),
        (
            lambda m: m(X, state=torch.zeros(4, 3, 5)),
            ValueError,
            "state must be a tuple of 2 tensors .*got a tensor",
        ),
        (
            lambda m: m(X, state=(torch.zeros(4, 3, 5),)),
            ValueError,
            r"state must be a tuple of 2 tensors .*got 1 item\(s\)",
        ),
        (
            lambda m: m(X, state=(torch.zeros(2, 3, 5), torch.zeros(4, 3, 5))),
            ValueError,
            r"state\[0\] must have shape .* = \(4, 3, 5\), got \(2, 3, 5\)",
        ),
        (
            lambda m: m(X, state=(torch.zeros(4, 3, 5), torch.zeros(4, 3, 6))),
            ValueError,
            r"state\[1\] must have shape .* = \(4, 3, 5\), got \(4, 3, 6\)",
        ),
        (
            lambda m: m(X, state=(torch.zeros(4, 3, 5), torch.zeros(4, 3, 5, dtype=torch.float64))),
            TypeError,
            r"state\[1\] is torch.float64 on cpu, but x is torch.float32",
        ),
    ],
)
def test_bad_input_names_the_argument(lstm, call, error, message):
    with pytest.raises(error, match=message):
        call(lstm)


def test_tensor_state_layer_names_state_without_index():
    with pytest.raises(
        ValueError, match=r"state must have shape .* = \(1, 3, 5\), got \(1, 2, 5\)"
    ):
        rk.GRU(4, 5)(X, state=torch.zeros(1, 2, 5))


def test_time_first_layout_is_named():
    with pytest.raises(ValueError, match=r"x must be 3-D \(time, batch, features\)"):
        rk.GRU(4, 5, batch_first=False)(torch.randn(6, 4))


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: rk.LSTM(4, 5, 2, dropout=1.0),
            ValueError,
            r"dropout=1.0 must be a rate in \[0, 1\)",
        ),
        (
            lambda: rk.LSTM(4, 5, recurrent_dropout=-0.1),
            ValueError,
            "recurrent_dropout=-0.1 must be a rate",
        ),
        (
            lambda: rk.LSTM(4, 5, input_dropout="0.2"),
            ValueError,
            "input_dropout='0.2' must be a rate",
        ),
        (
            lambda: rk.LSTM(4, 5, zoneout=(0.1, 0.2, 0.3)),
            ValueError,
            "zoneout=.* gives 3 rates but the cell has 2 state tensors",
        ),
        (lambda: rk.LSTM(4, 5, zoneout=1.0), ValueError, "zoneout=1.0 must be a rate"),
        (lambda: rk.LSTM(4, 5, num_layers=0), ValueError, "num_layers=0 must be an integer >= 1"),
        (lambda: rk.LSTM(4, 5, num_layers=1.5), ValueError, "num_layers=1.5 must be an integer"),
        (
            lambda: rk.LSTM(4, 5, bidirectional=True, merge="avg"),
            ValueError,
            "merge='avg' is not known",
        ),
        (lambda: rk.LSTM(4, 5, backend="cudnn"), ValueError, "backend='cudnn' is not known"),
        (
            lambda: rk.Recurrent([rk.GRUCell(4, 5)], 2),
            ValueError,
            "list of 1 cells, but num_layers=2 .* needs 2",
        ),
        (
            lambda: rk.Recurrent([rk.GRUCell(4, 5), rk.GRUCell(4, 5)], 2),
            ValueError,
            "layer 1 receives 5 features, but its cell has input_size=4",
        ),
        (
            lambda: rk.Recurrent([rk.GRUCell(4, 5), rk.LSTMCell(5, 5)], 2),
            ValueError,
            "cell 1 has state sizes",
        ),
        (lambda: rk.Recurrent("lstm"), TypeError, "cell must be an nn.Module or a list of them"),
    ],
)
def test_bad_settings_name_the_argument(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_a_failed_call_changes_nothing(lstm):
    before = {k: v.clone() for k, v in lstm.state_dict().items()}
    with pytest.raises(ValueError):
        lstm(X, lengths=torch.tensor([6, 9, 2]))
    assert all(torch.equal(before[k], v) for k, v in lstm.state_dict().items())
    out, _ = lstm(X)
    assert out.shape == (3, 6, 10)
