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


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda m: m(X, lengths=[7, 9, 2]),
            ValueError,
            r"lengths\[0\] = 7 is longer than the 6 time steps",
        ),
        (
            lambda m: m(X, lengths=[]),
            ValueError,
            r"lengths must have shape \(batch,\) = \(3,\), got \(0,\)",
        ),
        (
            lambda m: m(X, mask=torch.tensor([[True] * 6, [False] * 6, [True] * 6])),
            ValueError,
            "mask row 1 has no valid step",
        ),
        (
            lambda m: m(torch.randn(0, 6, 4)),
            ValueError,
            r"x has batch size 0 \(shape \(0, 6, 4\)\)",
        ),
    ],
)
def test_more_bad_input(lstm, call, error, message):
    with pytest.raises(error, match=message):
        call(lstm)


def test_time_first_mask_error_shows_the_shape_given():
    layer = rk.GRU(4, 5, batch_first=False)
    with pytest.raises(
        ValueError, match=r"mask must have shape \(time, batch\) like x, got \(3, 6\)"
    ):
        layer(X.transpose(0, 1), mask=torch.ones(3, 6, dtype=torch.bool))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: rk.LSTM(3, 0), "hidden_size=0 must be a positive integer"),
        (lambda: rk.GRU(0, 4), "input_size=0 must be a positive integer"),
        (lambda: rk.RNN(2.5, 4), "input_size=2.5 must be a positive integer"),
        (lambda: rk.RNN(3, 4, output_size=0), "output_size=0 must be a positive integer"),
        (
            lambda: rk.GRU(3, 4, bidirectional="False"),
            "bidirectional='False' must be True or False",
        ),
    ],
)
def test_bad_sizes_name_the_argument(build, message):
    with pytest.raises(ValueError, match=message):
        build()


class StrictCell(torch.nn.Module):
    """Written exactly to DESIGN.md's protocol: initial_state has no defaults."""

    input_size = hidden_size = 3

    def initial_state(self, batch, device, dtype):
        return torch.zeros(batch, 3, device=device, dtype=dtype)

    def step(self, x_t, h):
        return h + x_t, h + x_t


def test_protocol_cell_without_defaults_and_without_parameters():
    _, h = rk.Recurrent(StrictCell())(torch.ones(2, 4, 3))
    assert torch.equal(h[0], torch.full((2, 3), 4.0))
    learned = rk.Recurrent(StrictCell(), learn_initial_state=True)
    with pytest.raises(TypeError, match=r"x has dtype torch\.float64 but the layer's parameters"):
        learned(torch.ones(2, 4, 3, dtype=torch.float64))


class WideCell(StrictCell):
    def step(self, x_t, h):
        return torch.cat([h, h], -1), h


def test_cell_whose_output_is_not_its_declared_size():
    with pytest.raises(
        ValueError, match=r"WideCell.step returned outputs of size 6, but the cell declares 3"
    ):
        rk.Recurrent(WideCell())(torch.ones(2, 4, 3))


def test_from_torch_options_override_the_modules_settings():
    layer = rk.LSTM.from_torch(torch.nn.LSTM(3, 4, 2, dropout=0.5), batch_first=True, dropout=0.1)
    assert layer.batch_first is True and layer.dropout == 0.1
