"""Each forecast metric against a case small enough to compute by hand, plus edges and errors."""

import math

import numpy as np
import pytest
import torch

from rnnkit.metrics import (
    METRIC_NAMES,
    directional_accuracy,
    forecast_metrics,
    interval_coverage,
    mae,
    mape,
    mase,
    mase_scale,
    residual_interval,
    rmse,
    smape,
)

ACTUAL = [2.0, 4.0, 5.0, 10.0]
PREDICTED = [3.0, 4.0, 3.0, 6.0]  # errors +1, 0, −2, −4


def test_rmse_by_hand():
    # squared errors 1, 0, 4, 16: mean 21/4, root sqrt(5.25)
    assert rmse(ACTUAL, PREDICTED) == pytest.approx(math.sqrt(5.25))


def test_mae_by_hand():
    # |errors| 1, 0, 2, 4: mean 7/4
    assert mae(ACTUAL, PREDICTED) == pytest.approx(1.75)


def test_mape_by_hand():
    # 1/2, 0/4, 2/5, 4/10 = 0.5, 0, 0.4, 0.4: mean 1.3/4 = 0.325, in percent 32.5
    assert mape(ACTUAL, PREDICTED) == pytest.approx(32.5)


def test_mape_leaves_out_zero_actuals():
    # the point with actual 0 is dropped: 1/2 and 1/4 remain, mean 0.375 → 37.5 %
    assert mape([0.0, 2.0, 4.0], [5.0, 3.0, 3.0]) == pytest.approx(37.5)
    assert math.isnan(mape([0.0, 0.0], [1.0, 2.0]))


def test_smape_by_hand():
    # 200·|p−a|/(|a|+|p|): 200·1/5 = 40, 0, 200·2/8 = 50, 200·4/16 = 50: mean 140/4 = 35
    assert smape(ACTUAL, PREDICTED) == pytest.approx(35.0)


def test_smape_counts_zero_over_zero_as_perfect_and_is_bounded():
    # (0, 0) → 0; (0, 3) → 200·3/3 = 200; (−1, 1) → 200·2/2 = 200: mean 400/3
    assert smape([0.0, 0.0, -1.0], [0.0, 3.0, 1.0]) == pytest.approx(400 / 3)
    assert smape([0.0], [0.0]) == 0.0


def test_mase_scale_by_hand():
    # |diffs| of 1, 3, 2, 6: 2, 1, 4 → mean 7/3
    assert mase_scale([1.0, 3.0, 2.0, 6.0]) == pytest.approx(7 / 3)
    # season 2: |2 − 1|, |6 − 3| → mean 2
    assert mase_scale([1.0, 3.0, 2.0, 6.0], season=2) == pytest.approx(2.0)
    # (T, k): differences along time, all columns averaged: |1|,|10|,|2|,|20| → 33/4
    assert mase_scale([[0.0, 0.0], [1.0, 10.0], [3.0, 30.0]]) == pytest.approx(8.25)


def test_mase_by_hand():
    # MAE 1.75 over a scale of 7/3 → 0.75
    assert mase(ACTUAL, PREDICTED, 7 / 3) == pytest.approx(0.75)
    # the naive forecast scored on its own training series has MASE exactly 1
    train = np.array([1.0, 3.0, 2.0, 6.0])
    assert mase(train[1:], train[:-1], mase_scale(train)) == pytest.approx(1.0)


def test_directional_accuracy_by_hand():
    last = 5.0
    actual = [6.0, 4.0, 7.0, 5.0]  # moves up, down, up, flat
    predicted = [5.5, 6.0, 8.0, 5.0]  # up (agree), up (disagree), up (agree), flat (agree)
    assert directional_accuracy(actual, predicted, last) == pytest.approx(0.75)


def test_directional_accuracy_zero_moves_agree_only_with_zero_moves():
    # persistence makes no directional call: it agrees only where the truth is flat (1 of 3)
    assert directional_accuracy([6.0, 4.0, 5.0], [5.0, 5.0, 5.0], 5.0) == pytest.approx(1 / 3)


def test_directional_accuracy_broadcasts_last_over_horizon():
    last = np.array([[[1.0, 10.0]], [[2.0, 20.0]]])  # (N=2, 1, k=2)
    actual = last + np.array([1.0, -1.0, 1.0])[None, :, None]  # (2, 3, 2): up, down, up
    predicted = last + np.array([1.0, 1.0, 1.0])[None, :, None]  # always up
    assert directional_accuracy(actual, predicted, last) == pytest.approx(2 / 3)


def test_forecast_metrics_keys_and_values():
    last = np.array([[[1.0]], [[2.0]]])
    actual = np.array([[[2.0], [3.0]], [[1.0], [4.0]]])
    predicted = np.array([[[2.0], [2.0]], [[3.0], [4.0]]])  # errors 0, −1, +2, 0
    metrics = forecast_metrics(actual, predicted, last, scale=0.5)
    assert tuple(metrics) == METRIC_NAMES
    assert all(type(value) is float for value in metrics.values())
    assert metrics["mae"] == pytest.approx(0.75)
    assert metrics["rmse"] == pytest.approx(math.sqrt(5 / 4))
    assert metrics["mase"] == pytest.approx(1.5)
    # moves up/up, up/up, down/up, up/up → 3 of 4
    assert metrics["directional_accuracy"] == pytest.approx(0.75)


def test_any_array_like_is_accepted_and_flattened():
    as_tensor = torch.tensor([ACTUAL])
    as_array = np.array([PREDICTED])
    assert mae(as_tensor, as_array) == pytest.approx(1.75)


def test_nan_propagates():
    assert math.isnan(rmse([1.0, float("nan")], [1.0, 2.0]))
    assert math.isnan(directional_accuracy([1.0, float("nan")], [1.0, 2.0], 0.0))


@pytest.mark.parametrize("metric", [rmse, mae, mape, smape])
def test_shape_mismatch_names_both_shapes(metric):
    with pytest.raises(ValueError, match=r"actual \(3,\) and predicted \(3, 1\)"):
        metric([1.0, 2.0, 3.0], [[1.0], [2.0], [3.0]])


@pytest.mark.parametrize("metric", [rmse, mae, mape, smape])
def test_empty_input_is_an_error(metric):
    with pytest.raises(ValueError, match="empty"):
        metric([], [])


def test_mase_rejects_a_zero_scale():
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        mase([1.0], [2.0], 0.0)


@pytest.mark.parametrize(
    ("series", "season", "message"),
    [
        ([1.0, 2.0], 2, "has 2 values along time; a scale at season=2 needs at least 3"),
        ([3.0, 3.0, 3.0], 1, "is 0.0; it must be finite and > 0"),
        ([1.0, 2.0, 3.0], 0, "season must be an integer >= 1"),
        (np.zeros((2, 2, 2)), 1, r"must be 1-D \(T,\) or 2-D \(T, k\)"),
    ],
)
def test_mase_scale_errors(series, season, message):
    with pytest.raises(ValueError, match=message):
        mase_scale(series, season=season)


def test_directional_accuracy_rejects_a_last_that_does_not_broadcast():
    with pytest.raises(ValueError, match=r"last_observed of shape \(3,\) does not broadcast"):
        directional_accuracy(np.zeros((2, 4)), np.zeros((2, 4)), np.zeros(3))


def test_residual_interval_is_the_split_conformal_quantile_pair():
    residuals = np.arange(1.0, 20.0)[:, None]  # 19 errors: 1 … 19
    low, high = residual_interval(residuals, 0.9)
    # (1 - 0.05) * 20 / 19 = 1.0: the largest error above; 1 - 1.0 = 0: the smallest below.
    assert (low[0], high[0]) == (1.0, 19.0)
    low, high = residual_interval(np.arange(1.0, 101.0), 0.8)
    assert (low, high) == (10.0, 91.0)  # 0.9 * 101 / 100 = 0.909 -> 91st value
    assert interval_coverage([1.0, 5.0, 9.0], [0.0, 6.0, 9.0], [2.0, 7.0, 9.0]) == 2 / 3
    with pytest.raises(ValueError, match=r"level=1\.5 must be in"):
        residual_interval(residuals, 1.5)
