"""Every plot writes a real PNG, on date and integer axes, with and without its optional parts."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rnnkit.plots import plot_backtest_error, plot_forecast, plot_learning_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T = 40


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000


def x_axes():
    """The same test period as datetime64, a DatetimeIndex, date strings and plain integers."""
    index = pd.bdate_range("2012-01-03", periods=T)
    return {
        "datetime64": index.to_numpy(),
        "DatetimeIndex": index,
        "strings": [str(day.date()) for day in index],
        "integers": np.arange(T),
    }


X_AXES = x_axes()
RNG = np.random.default_rng(0)
ACTUAL = 100 + np.cumsum(RNG.normal(size=T))
PREDICTED = ACTUAL + RNG.normal(scale=0.5, size=T)


@pytest.mark.parametrize("axis", list(X_AXES))
def test_plot_forecast_minimal(tmp_path, axis):
    path = plot_forecast(tmp_path / "forecast.png", X_AXES[axis], ACTUAL, PREDICTED)
    assert path == tmp_path / "forecast.png"
    assert_png(path)


def test_plot_forecast_with_everything(tmp_path):
    train_days = pd.bdate_range(end="2011-12-30", periods=60)
    path = plot_forecast(
        tmp_path / "nested" / "forecast.png",
        X_AXES["datetime64"],
        ACTUAL,
        PREDICTED[:, None],  # a (T, 1) column is one target
        baselines={"persistence": np.r_[ACTUAL[0], ACTUAL[:-1]], "drift": ACTUAL + 1},
        title="GOOG close, test period",
        train=(train_days, 100 + np.cumsum(RNG.normal(size=60))),
        ylabel="Close (USD)",
        band=(ACTUAL - 2, ACTUAL + 2, "90% interval"),
    )
    assert_png(path)


def test_plot_forecast_integer_train_tail(tmp_path):
    train = (np.arange(-20, 0), np.linspace(90, 100, 20))
    assert_png(plot_forecast(tmp_path / "f.png", np.arange(T), ACTUAL, PREDICTED, train=train))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predicted": PREDICTED[:-1]}, "predicted has 39 values but dates has 40"),
        ({"baselines": {"drift": ACTUAL[:5]}}, r"baselines\['drift'\] has 5 values"),
        ({"train": (np.arange(5), np.arange(6.0))}, "train values has 6 values but train dates"),
        ({"actual": np.zeros((T, 2))}, r"actual must be 1-D \(one target"),
        ({"dates": []}, "dates is empty"),
    ],
)
def test_plot_forecast_bad_input(tmp_path, kwargs, message):
    arguments = {"dates": np.arange(T), "actual": ACTUAL, "predicted": PREDICTED} | kwargs
    with pytest.raises(ValueError, match=message):
        plot_forecast(tmp_path / "f.png", **arguments)
    assert not (tmp_path / "f.png").exists()


def epochs(count, **extra):
    return [
        {"epoch": epoch, "loss": 1.0 / epoch, "val_loss": 1.2 / epoch, **extra}
        for epoch in range(1, count + 1)
    ]


@pytest.mark.parametrize(
    "history",
    [
        epochs(1),
        epochs(30),
        epochs(10, lr=1e-3, val_rmse=3.0, val_mae=np.float32(2.0), time_s=1.5, val_note="x"),
        [{"loss": 0.5 - 0.1 * step} for step in range(8)],  # no epoch key, negative loss: linear
        # validation only every other epoch leaves gaps
        [
            {"epoch": e, "loss": 1.0 / e, "val_loss": 1.0 / e if e % 2 else None}
            for e in range(1, 9)
        ],
    ],
    ids=["one-epoch", "losses", "lr-and-metrics", "no-epoch-key", "gaps"],
)
def test_plot_learning_curves(tmp_path, history):
    assert_png(plot_learning_curves(tmp_path / "curves.png", history))


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([], "history is empty"),
        ([{"epoch": 1, "lr": 0.1}], "neither 'loss' nor 'val_loss'"),
        ([1.0, 2.0], "list of dicts"),
    ],
)
def test_plot_learning_curves_bad_input(tmp_path, history, message):
    with pytest.raises(ValueError, match=message):
        plot_learning_curves(tmp_path / "curves.png", history)


@pytest.mark.parametrize("axis", ["datetime64", "integers"])
@pytest.mark.parametrize("window", [1, 5, 100])  # 100 > T: one window over everything
def test_plot_backtest_error(tmp_path, axis, window):
    errors = {
        "model": RNG.normal(size=T),  # signed errors are made absolute
        "persistence": np.abs(RNG.normal(size=T)),
    }
    path = plot_backtest_error(tmp_path / "backtest.png", X_AXES[axis], errors, window=window)
    assert_png(path)


@pytest.mark.parametrize(
    ("errors", "window", "message"),
    [
        ({"model": np.zeros(T - 1)}, 5, r"errors\['model'\] has 39 values but dates has 40"),
        ({}, 5, "errors is empty"),
        ({"model": np.zeros(T)}, 0, "window must be an integer >= 1"),
    ],
)
def test_plot_backtest_error_bad_input(tmp_path, errors, window, message):
    with pytest.raises(ValueError, match=message):
        plot_backtest_error(tmp_path / "b.png", np.arange(T), errors, window=window)


def test_plots_leave_pyplot_alone():
    """Importing loads no matplotlib; plotting never loads pyplot (no window, no global state)."""
    script = """
import sys, tempfile, pathlib
import rnnkit.plots as plots
assert "matplotlib" not in sys.modules, "import rnnkit.plots loaded matplotlib"
folder = pathlib.Path(tempfile.mkdtemp())
plots.plot_forecast(folder / "f.png", [0, 1, 2], [1.0, 2.0, 3.0], [1.0, 2.5, 2.0])
plots.plot_learning_curves(folder / "c.png", [{"loss": 1.0, "lr": 0.1}])
plots.plot_backtest_error(folder / "b.png", [0, 1, 2], {"m": [1.0, 2.0, 3.0]}, window=2)
assert "matplotlib.pyplot" not in sys.modules, "plotting loaded pyplot"
"""
    subprocess.run([sys.executable, "-c", script], check=True)
