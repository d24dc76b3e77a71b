"""The three forecasting strategies: shapes, feedback, carried state, Keras initialisation."""

import pytest
import torch

from rnnkit.models.forecaster import (
    FORECASTERS,
    DirectForecaster,
    RecursiveForecaster,
    Seq2SeqForecaster,
    keras_init_,
)


@pytest.mark.parametrize("kind", FORECASTERS)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_every_strategy_and_cell_forecasts_the_horizon_and_learns(kind, cell):
    model = FORECASTERS[kind](3, 2, 4, future_size=1, cell=cell, hidden_size=8)
    past, future = torch.randn(5, 12, 3), torch.randn(5, 4, 1)
    out = model(past, future)
    assert out.shape == (5, 4, 2)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_recursive_carries_state_instead_of_rereading_the_window():
    model = RecursiveForecaster(2, 1, 3, future_size=1, hidden_size=8).double()
    past, future = torch.randn(4, 10, 2).double(), torch.randn(4, 3, 1).double()
    forecast = model(past, future)
    # Recompute from scratch: each step reruns the whole window extended by the predictions.
    window = past
    for step in range(3):
        summary, _ = model.rnn(window)
        prediction = model.head(summary)
        torch.testing.assert_close(prediction, forecast[:, step], rtol=0, atol=1e-12)
        window = torch.cat([window, torch.cat([prediction, future[:, step]], 1)[:, None]], 1)


def test_seq2seq_starts_from_the_last_observation_and_bridges_two_directions():
    model = Seq2SeqForecaster(
        1, 1, 2, hidden_size=6, num_layers=2, rnn_options={"bidirectional": True}
    )
    assert len(model.bridge) == 2  # h and c
    assert model(torch.randn(3, 7, 1)).shape == (3, 2, 1)


def test_direct_uses_the_known_future_over_the_horizon():
    model = DirectForecaster(2, 1, 3, future_size=1, hidden_size=4)
    past = torch.randn(2, 5, 2)
    a, b = model(past, torch.zeros(2, 3, 1)), model(past, torch.ones(2, 3, 1))
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match=r"future must be \(batch, 3, 1\), got None"):
        model(past)


def test_recursive_refuses_what_it_cannot_feed_back():
    with pytest.raises(ValueError, match="input_size=3 must equal targets=1 \\+ future_size=0"):
        RecursiveForecaster(3, 1, 2)
    with pytest.raises(ValueError, match="bidirectional=True cannot forecast step by step"):
        RecursiveForecaster(1, 1, 2, rnn_options={"bidirectional": True})


def test_unknown_cell_is_named():
    with pytest.raises(ValueError, match="cell='lstmm' is not one of"):
        DirectForecaster(1, 1, 1, cell="lstmm")


def test_keras_initialisation_draws_whole_kernels():
    model = keras_init_(DirectForecaster(3, 1, 1, hidden_size=5, num_layers=1))
    cell = model.rnn.cells[0]
    eye = torch.eye(5)
    torch.testing.assert_close(cell.weight_hh.T @ cell.weight_hh, eye, atol=1e-5, rtol=0)
    limit = (6 / (3 + 20)) ** 0.5  # Glorot over the whole (20, 3) input kernel
    assert cell.weight_ih.abs().max() <= limit and cell.weight_ih.abs().max() > 0.5 * limit
    assert cell.bias_ih[5:10].eq(1).all() and cell.bias_hh.eq(0).all()  # unit forget bias
