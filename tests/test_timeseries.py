"""Reading series, splits, transforms, scalers and windows: no look-ahead, no silent repair."""

import numpy as np
import pandas as pd
import pytest

from rnnkit.data.datasets import load_stocks, stocks_path
from rnnkit.data.tables import describe_spacing, load_series
from rnnkit.data.timeseries import (
    TRANSFORMS,
    Scaler,
    chronological_split,
    first_valid_row,
    future_windows,
    invert_target,
    past_windows,
    transform_target,
    window_origins,
)


def frame(values, start="2024-01-01", freq="B", **columns):
    dates = pd.date_range(start, periods=len(values), freq=freq)
    return pd.DataFrame({"date": dates, "y": values, **columns})


# --- reading -----------------------------------------------------------------------------------


def test_bundled_stocks_are_goog_daily_closes():
    goog = load_stocks("GOOG")
    assert len(goog) == 2148 and goog["Date"].iloc[0] == pd.Timestamp("2004-08-19")
    series = load_series(stocks_path(), ["Close"], date_col="Date", where={"Ticker": "GOOG"})
    assert len(series) == 2148 and series.column("Close")[-1] == 806.19
    assert series.report["spacing"] == "1 business days" and series.report["gaps"] > 0


def test_auto_date_column_and_unsorted_rows_are_sorted_and_reported():
    data = frame([1.0, 2.0, 3.0]).iloc[[2, 0, 1]]
    series = load_series(data, ["y"], date_col="auto")
    assert series.column("y").tolist() == [1.0, 2.0, 3.0]
    assert series.report["sorted_by_date"] is True
    assert load_series(data.drop(columns="date"), ["y"], date_col="auto").dates is None


def test_gaps_are_measured_in_business_days_for_trading_data():
    dates = pd.DatetimeIndex(["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-10"])
    assert describe_spacing(dates) == {
        "spacing": "1 business days",
        "gaps": 1,
        "longest_gap": "2 business days before 2024-01-10",
    }
    calendar = pd.DatetimeIndex(["2024-01-06", "2024-01-07", "2024-01-10"])  # a weekend
    assert describe_spacing(calendar)["longest_gap"] == "3 days before 2024-01-10"


@pytest.mark.parametrize(
    "data, kwargs, message",
    [
        (frame([1.0, 2.0]), {"columns": ["Close"]}, "column 'Close' is not in the data; it has"),
        (frame(["1", "x"]), {"columns": ["y"]}, "row 1: column 'y' holds 'x', not a finite number"),
        (frame([1.0, np.inf]), {"columns": ["y"]}, "row 1: column 'y' holds inf, not a finite"),
        (
            frame([1.0]),
            {"columns": ["y"], "where": {"Ticker": "X"}},
            "column 'Ticker' is not in the data (where Ticker='X')",
        ),
        (
            frame([1.0, 2.0]).assign(date=["2024-01-01", "2024-01-01"]),
            {"columns": ["y"]},
            "'date' has 1 duplicate dates, e.g. ['2024-01-01']",
        ),
        (
            frame([1.0, 2.0]).assign(date=["2024-01-01", "soon"]),
            {"columns": ["y"]},
            "row 1: date column 'date' holds 'soon', not a date",
        ),
        (
            frame([1.0, np.nan, 3.0]),
            {"columns": ["y"]},
            "missing values in {'y': 1} (first at 2024-01-02); pass fill='ffill'",
        ),
        (frame([1.0]), {"columns": ["y"], "fill": "mean"}, "fill='mean' is not one of"),
        (frame([1.0]), {"columns": ["y"], "where": {"y": 5}}, "where y=5 matches no row"),
    ],
)
def test_bad_tables_are_refused_with_the_reason(data, kwargs, message):
    with pytest.raises(ValueError) as error:
        load_series(data, date_col="date", **kwargs)
    assert message in str(error.value)


def test_missing_values_are_repaired_only_when_asked_and_counted():
    data = frame([np.nan, 2.0, np.nan, 4.0])
    filled = load_series(data, ["y"], date_col="date", fill="ffill")
    assert filled.column("y").tolist() == [2.0, 2.0, 4.0]  # the leading gap has no past
    assert filled.report["forward_filled"] == {"y": 2} and filled.report["dropped_rows"] == 1
    dropped = load_series(data, ["y"], date_col="date", fill="drop")
    assert dropped.column("y").tolist() == [2.0, 4.0] and dropped.report["dropped_rows"] == 2
    assert list(dropped.dates.day) == [2, 4]


def test_reading_a_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_series(tmp_path / "absent.csv", ["y"])


# --- transforms and scalers --------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_transforms_invert_exactly(kind):
    levels = np.exp(np.random.default_rng(0).normal(size=(40, 2)).cumsum(0) * 0.1) * 50
    changes = transform_target(levels, kind)
    assert np.isnan(changes[: first_valid_row(kind)]).all()
    origins = np.arange(5, 30)
    future = future_windows(changes, origins, 4)
    np.testing.assert_allclose(
        invert_target(future, levels[origins], kind), future_windows(levels, origins, 4)
    )


def test_returns_need_positive_values():
    with pytest.raises(ValueError, match=r"needs positive values.*use transform='diff'"):
        transform_target(np.array([[1.0], [0.0]]), "log_returns")


def test_scalers_match_their_definitions_and_survive_a_round_trip():
    train = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]])
    minmax = Scaler("minmax").fit(train)
    np.testing.assert_allclose(minmax.transform(train)[:, 0], [0.0, 1.0, 0.5])
    assert (minmax.transform(train)[:, 1] == 0).all()  # constant column: scale 1, not 0/0
    standard = Scaler.from_dict(Scaler("standard").fit(train).to_dict())
    np.testing.assert_allclose(
        standard.transform(train)[:, 0], (train[:, 0] - 2) / np.std([1, 3, 2])
    )
    np.testing.assert_allclose(standard.inverse(standard.transform(train)), train)
    with pytest.raises(RuntimeError, match="not fitted"):
        Scaler().transform(train)


# --- splits and windows ------------------------------------------------------------------------


def test_split_by_fraction_and_by_date():
    dates = pd.date_range("2024-01-01", periods=100, freq="D")
    assert vars(chronological_split(dates, 100)) == {"val_start": 72, "test_start": 80, "rows": 100}
    by_date = chronological_split(dates, 100, val_start="2024-02-01", test_start="2024-03-01")
    assert (by_date.val_start, by_date.test_start) == (31, 60)
    with pytest.raises(ValueError, match="test_start='soon' is not a date"):
        chronological_split(dates, 100, test_start="soon")
    with pytest.raises(ValueError) as error:
        chronological_split(dates, 100, test_start="2023-01-01")
    assert str(error.value) == (
        "val=0.1, test_start='2023-01-01' split the 100 rows (2024-01-01 to 2024-04-09) into "
        "train [0, 0), validation [0, 0), test [0, 100); train and test must not be empty, and "
        "validation must come before test"
    )


def test_windows_equal_a_slow_loop_and_never_look_ahead():
    values = np.arange(60.0).reshape(30, 2)
    lookback, horizon = 4, 3
    origins = window_origins((10, 20), lookback, horizon, first_valid=1)
    assert origins[0] == 9 and origins[-1] == 16  # targets 10…12 up to 17…19: all in [10, 20)
    past, future = past_windows(values, origins, lookback), future_windows(values, origins, horizon)
    for i, t in enumerate(origins):
        np.testing.assert_array_equal(past[i], values[t - lookback + 1 : t + 1])
        np.testing.assert_array_equal(future[i], values[t + 1 : t + 1 + horizon])
    # Near the start the first valid row bounds the inputs.
    assert window_origins((0, 20), lookback, horizon, first_valid=1)[0] == lookback
