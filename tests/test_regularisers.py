"""Regularisers do what the papers say, and nothing at evaluation."""

import pytest
import torch
from torch import nn

import rnnkit as rk
from rnnkit.backends.noise import dropout_mask

from conftest import MinimalRNN, assert_close

D64 = torch.float64


def identity_rnn(size, input_weight, recurrent_weight, **options):
    """h_t = W_ih x_t + W_hh h_{t-1}: masks show through unchanged."""
    layer = rk.RNN(size, size, activation="identity", bias=False, **options).double()
    with torch.no_grad():
        layer.cells[0].weight_ih.copy_(input_weight * torch.eye(size))
        layer.cells[0].weight_hh.copy_(recurrent_weight * torch.eye(size))
    return layer


def distinct_rows(t):
    return len({tuple(row.tolist()) for row in t})


def test_input_mask_is_the_same_at_every_step_and_differs_between_sequences():
    p = 0.5
    layer = identity_rnn(16, 1.0, 0.0, input_dropout=p)  # h_t = x_t ⊙ m
    out, _ = layer(torch.ones(8, 10, 16, dtype=D64))
    mask = out[:, 0]
    assert set(mask.unique().tolist()) == {0.0, 1 / (1 - p)}
    assert torch.equal(out, mask[:, None].expand_as(out)), "one mask for all steps"
    assert distinct_rows(mask) > 1, "one mask per sequence"


class Hold(nn.Module):
    """A user's cell that keeps its state: h_t = h_{t-1}."""

    input_size = hidden_size = 16

    def initial_state(self, batch, device=None, dtype=None):
        return torch.ones(batch, 16, device=device, dtype=dtype)

    def step(self, x_t, h):
        return h, h


@pytest.mark.parametrize("kind", ["built-in", "user cell"])
def test_recurrent_mask_is_the_same_at_every_step_and_differs_between_sequences(kind):
    p = 0.5
    if kind == "built-in":  # h_t = h_{t-1} ⊙ m, from h_0 = 1
        layer = identity_rnn(16, 0.0, 1.0, recurrent_dropout=p)
        state = torch.ones(1, 8, 16, dtype=D64)
    else:
        layer, state = rk.Recurrent(Hold(), recurrent_dropout=p), None
    out, _ = layer(torch.ones(8, 6, 16, dtype=D64), state=state)
    dropped = out == 0
    assert dropped[:, 0].any() and not dropped[:, 0].all()
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped)), "one mask for all steps"
    assert distinct_rows(dropped[:, 0]) > 1, "one mask per sequence"
    kept = out[:, 3][~dropped[:, 3]]
    torch.testing.assert_close(kept, torch.full_like(kept, (1 / (1 - p)) ** 4))


def test_gru_recurrent_mask_spares_the_interpolation():
    """Gal & Ghahramani: the mask acts in U h only; z ⊙ h_{t-1} uses the undropped state."""
    layer = rk.GRU(3, 4, recurrent_dropout=0.5).double()
    cell = layer.cells[0]
    x, h0 = torch.randn(2, 1, 3, dtype=D64), torch.randn(1, 2, 4, dtype=D64)
    torch.manual_seed(3)
    out, _ = layer(x, state=h0)
    torch.manual_seed(3)
    mask = dropout_mask((2, 4), 0.5, x)  # the layer's draw, redone
    _, expected = cell.step(x[:, 0], h0[0], recurrent_mask=mask)
    assert_close(out[:, 0], expected, D64)
    _, everywhere = cell.step(x[:, 0], h0[0] * mask)
    assert not torch.allclose(out[:, 0], everywhere)


def test_zoneout_keeps_each_unit_or_updates_it_exactly():
    rate = 0.4
    # Bit for bit against cell.step, so on the reference backend (fused equals it to rounding,
    # tests/test_fused.py).
    layer = rk.GRU(3, 32, zoneout=rate, backend="reference").double().train()
    cell = layer.cells[0]
    x = torch.randn(4, 12, 3, dtype=D64)
    out, _ = layer(x)
    previous, kept, total = cell.initial_state(4, dtype=D64), 0, 0
    for t in range(12):
        fresh = cell.step(x[:, t], previous)[1]
        is_kept = out[:, t] == previous
        is_fresh = out[:, t] == fresh
        assert torch.all(is_kept | is_fresh), f"step {t}: a unit is neither kept nor updated"
        kept += int((is_kept & ~is_fresh).sum())
        total += is_kept.numel()
        previous = out[:, t]
    assert 0.3 < kept / total < 0.5, f"kept {kept / total:.2f} of units, rate {rate}"


def test_zoneout_at_evaluation_is_the_expectation_and_deterministic():
    rate_h, rate_c = 0.3, 0.6
    layer = rk.LSTM(3, 5, zoneout=(rate_h, rate_c)).double().eval()
    cell = layer.cells[0]
    x = torch.randn(2, 4, 3, dtype=D64)
    out, (_, c) = layer(x)
    assert torch.equal(out, layer(x)[0])
    state = cell.initial_state(2, dtype=D64)
    for t in range(4):
        _, (h_new, c_new) = cell.step(x[:, t], state)
        state = (rate_h * state[0] + (1 - rate_h) * h_new, rate_c * state[1] + (1 - rate_c) * c_new)
        assert_close(out[:, t], state[0], D64)
    assert_close(c[0], state[1], D64)


def test_zoneout_rate_zero_is_the_plain_cell():
    torch_lstm = nn.LSTM(3, 5, batch_first=True).double()
    layer = rk.LSTM.from_torch(torch_lstm, zoneout=(0.0, 0.0)).train()
    x = torch.randn(2, 4, 3, dtype=D64)
    assert_close(layer(x)[0], torch_lstm(x)[0], D64)


@pytest.mark.parametrize(
    "make",
    [
        lambda: rk.LSTM(3, 8, weight_dropout=0.5),
        lambda: rk.Recurrent(MinimalRNN(3, 8), weight_dropout=0.5),
    ],
    ids=["LSTM", "user cell"],
)
def test_weight_dropout_mask_is_shared_by_the_batch_and_redrawn_per_call(make):
    layer = make().double().train()
    x = torch.randn(1, 6, 3, dtype=D64).expand(4, -1, -1)
    out1, _ = layer(x)
    out2, _ = layer(x)
    assert torch.equal(out1, out1[:1].expand_as(out1)), "one mask for the whole batch"
    assert not torch.equal(out1, out2), "a new mask for each call"
    plain = layer.eval()(x)[0]
    assert not torch.equal(out1, plain)


def test_weight_dropout_needs_the_recurrent_weight():
    class NoWeights(nn.Module):
        input_size = hidden_size = 2

        def initial_state(self, batch, device=None, dtype=None):
            return torch.zeros(batch, 2)

        def step(self, x_t, h):
            return h, h

    with pytest.raises(ValueError, match=r"no parameter 'weight_hh'.*recurrent_weights"):
        rk.Recurrent(NoWeights(), weight_dropout=0.2)


@pytest.mark.parametrize("make", [rk.LSTM, rk.GRU, rk.RNN])
def test_every_regulariser_is_off_in_eval_mode(make):
    regularised = make(
        3,
        5,
        2,
        bidirectional=True,
        dropout=0.5,
        input_dropout=0.5,
        recurrent_dropout=0.5,
        weight_dropout=0.5,
    ).double()
    plain = make(3, 5, 2, bidirectional=True).double()
    plain.load_state_dict(regularised.state_dict())
    x = torch.randn(2, 4, 3, dtype=D64)
    regularised.train()
    assert not torch.allclose(regularised(x)[0], plain(x)[0])
    regularised.eval()
    assert_close(regularised(x)[0], plain(x)[0], D64)


def test_dropout_between_layers_only():
    layer = rk.GRU(3, 6, 2, dropout=0.5).double().train()
    x = torch.randn(2, 5, 3, dtype=D64)
    assert not torch.equal(layer(x)[0], layer(x)[0])
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    with pytest.warns(UserWarning, match="num_layers=1 has none"):
        rk.GRU(3, 6, dropout=0.5)
