"""The forecasting task end to end on a short real series: no look-ahead, baselines beside the
model, backtests that equal one forecast at a time, run directories that load back exactly."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from rnnkit.cli import main
from rnnkit.data.datasets import load_stocks
from rnnkit.tasks.forecast import PRESETS, Forecaster, format_report

BASELINES = ["persistence", "seasonal_naive", "drift", "linear_ar"]
METRICS = ["rmse", "mae", "mape", "smape", "mase", "directional_accuracy"]


@pytest.fixture(scope="module")
def goog():
    """GOOG's last 400 trading days: 2011-08 to 2013-03."""
    return load_stocks("GOOG").iloc[-400:].reset_index(drop=True)


def small(**settings):
    options = dict(
        target="Close", test_start="2012-09-01", lookback=10, hidden_size=8, num_layers=1,
        epochs=2, patience=None, progress="none", ar_order=3,
    )  # fmt: skip
    return Forecaster(**{**options, **settings})


@pytest.fixture(scope="module")
def fitted(goog):
    return small().fit(goog)


def test_metrics_hold_the_model_and_every_baseline_side_by_side(fitted, goog):
    for part in ("validation", "test"):
        assert list(fitted.metrics_[part]) == ["model", *BASELINES]
        for name, scores in fitted.metrics_[part].items():
            extra = ["interval_coverage", "interval_width"] if name == "model" else []
            assert list(scores) == METRICS + extra and all(np.isfinite(list(scores.values())))
    window = fitted.metrics_["windows"]["test"]
    assert window["first_origin"] == "2012-08-31"  # the first forecast is of the first test day
    assert (window["first_target"], window["last_target"]) == ("2012-09-04", "2013-03-01")
    assert window["origins"] == (goog["Date"] >= "2012-09-01").sum() == 122


def test_persistence_and_the_report_are_in_the_data_units(fitted, goog):
    test = goog[goog["Date"] >= "2012-09-01"]["Close"].to_numpy()
    previous = goog[goog["Date"] < "2012-09-01"]["Close"].to_numpy()[-1]
    by_hand = np.sqrt(np.mean((test - np.r_[previous, test[:-1]]) ** 2))
    assert fitted.metrics_["test"]["persistence"]["rmse"] == pytest.approx(by_hand, rel=1e-12)
    report = format_report(fitted)
    assert "test: 122 one-step forecasts of Close for 2012-09-04 to 2013-03-01" in report
    words = " ".join(report.split())
    assert "The model's RMSE is " in words and '"tomorrow = today"' in words


def test_nothing_from_the_test_period_reaches_training(goog, fitted):
    changed = goog.copy()
    test = changed["Date"] >= "2012-09-01"
    changed.loc[test, "Close"] = changed.loc[test, "Close"] * 3 + 100
    other = small().fit(changed)
    np.testing.assert_array_equal(other.scaler_.shift, fitted.scaler_.shift)
    for a, b in zip(other.model_.parameters(), fitted.model_.parameters(), strict=True):
        assert torch.equal(a, b)
    assert other.metrics_["validation"] == fitted.metrics_["validation"]
    assert other.metrics_["test"] != fitted.metrics_["test"]


def test_prediction_interval_comes_from_validation_errors(goog, fitted):
    validation = fitted.metrics_["validation"]["model"]
    assert validation["interval_coverage"] >= 0.9  # split conformal, on its own residuals
    assert 0 < fitted.metrics_["test"]["model"]["interval_coverage"] <= 1
    low, high = fitted.interval_["low"], fitted.interval_["high"]
    assert low.shape == high.shape == (1, 1) and low[0, 0] < 0 < high[0, 0]
    forecast = fitted.predict(goog)
    assert list(forecast.columns) == ["date", "Close", "Close_low", "Close_high"]
    np.testing.assert_allclose(forecast["Close_high"] - forecast["Close"], high[:, 0])
    assert "90% interval (from its validation errors) holds" in " ".join(
        format_report(fitted).split()
    )
    assert small(interval=None).fit(goog).interval_ is None


def test_backtest_equals_one_forecast_at_a_time(goog, fitted):
    backtest = fitted.backtest(part="test")
    for i in [0, 1, 50, len(backtest.origins) - 1]:
        one = fitted.predict(goog.iloc[: backtest.origins[i] + 1])
        np.testing.assert_allclose(one["Close"].to_numpy(), backtest.forecasts["model"][i, :, 0])
        assert one["date"].iloc[0] > goog["Date"].iloc[backtest.origins[i]]
    last = backtest.last[:, None]
    np.testing.assert_array_equal(
        backtest.forecasts["persistence"], np.broadcast_to(last, backtest.actual.shape)
    )


@pytest.mark.parametrize("model", ["recursive", "seq2seq"])
@pytest.mark.parametrize("transform", ["none", "log_returns"])
def test_multi_step_strategies_forecast_the_horizon(goog, model, transform):
    forecaster = small(model=model, transform=transform, horizon=3, cell="gru", epochs=1).fit(goog)
    backtest = forecaster.backtest(part="test")
    assert backtest.forecasts["model"].shape == backtest.actual.shape == (120, 3, 1)
    assert np.isfinite(backtest.forecasts["model"]).all()


def test_covariates_and_known_future_columns(goog):
    data = goog.assign(monday=(goog["Date"].dt.day_of_week == 0).astype(float))
    forecaster = small(covariates=["Volume"], known_future=["monday"], horizon=2).fit(data)
    future = pd.DataFrame({"monday": [1.0, 0.0]})
    assert forecaster.predict(data, future=future).shape == (2, 4)  # date, Close, low, high
    with pytest.raises(ValueError, match=r"uses known-future columns \['monday'\]"):
        forecaster.predict(data)


def test_run_directory_round_trip_gives_identical_predictions(tmp_path, goog, fitted):
    run = fitted.save(tmp_path / "run")
    for name in ["config.json", "model.safetensors", "data_state.json", "metrics.json",
                 "history.csv", "steps.csv", "predictions.csv", "forecast.png",
                 "learning_curves.png", "backtest_error.png"]:  # fmt: skip
        assert (run / name).is_file(), name
    loaded = Forecaster.load(run)
    pd.testing.assert_frame_equal(loaded.predict(goog), fitted.predict(goog))
    assert loaded.score(goog) == fitted.metrics_["test"]
    with pytest.warns(DeprecationWarning, match="Forecaster.evaluate is now Forecaster.score"):
        assert loaded.evaluate(goog) == fitted.metrics_["test"]  # the old name still works
    assert json.loads((run / "config.json").read_text())["settings"]["lookback"] == 10


def test_without_epochs_training_stops_by_steps(goog):
    """epochs=None (--epochs none) is a setting of every task: the steps limit training."""
    forecaster = small(epochs=None, steps=5).fit(goog)
    assert len(forecaster.steps_) == 5 and len(forecaster.history_) == 1
    with pytest.raises(ValueError, match="epochs=0 must be an integer >= 1 or None"):
        small(epochs=0).fit(goog)


def test_tutorial_preset_is_the_tutorials_keras_model():
    forecaster = Forecaster.from_preset("tutorial", epochs=1)
    model = forecaster._build_model()
    assert (model.rnn.num_layers, model.rnn.hidden_size, model.rnn.dropout) == (4, 50, 0.2)
    assert model.output_dropout.p == 0.2 and model.head.out_features == 1
    settings = PRESETS["tutorial"]
    assert (settings["lookback"], settings["batch_size"], settings["scaler"]) == (60, 32, "minmax")
    assert forecaster.epochs == 1  # overrides win
    with pytest.raises(ValueError, match="preset='keras' is not one of"):
        Forecaster.from_preset("keras")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"target": "Price"}, "column 'Price' is not in the data"),
        ({"lookback": 300}, "the train part (rows 0 to "),
        ({"lookback": 0}, "lookback=0 must be a positive integer"),
        ({"model": "arima"}, "model='arima' is not one of"),
        ({"transform": "log"}, "transform='log' is not one of"),
        ({"target": "Close", "covariates": ["Close"]}, "a column is named twice"),
        ({"test_start": "2020-01-01"}, "train and test must not be empty"),
        ({"lookback": 4, "season": 5}, "lookback=4 is shorter than the baselines need (season"),
        ({"interval": 1.5}, "interval=1.5 must be a level in (0, 1), or None"),
    ],
)
def test_bad_settings_are_refused_before_training(goog, settings, message):
    with pytest.raises(ValueError) as error:
        small(**settings).fit(goog)
    assert message in str(error.value)


# --- command line ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv(tmp_path_factory, goog):
    path = tmp_path_factory.mktemp("data") / "goog.csv"
    goog.to_csv(path, index=False)
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


SMALL_CLI = ["--target", "Close", "--test-start", "2012-09-01", "--lookback", 10,
             "--hidden-size", 8, "--num-layers", 1, "--epochs", 2, "--ar-order", 3]  # fmt: skip


def test_cli_train_evaluate_predict(tmp_path, csv):
    out = tmp_path / "run"
    result = invoke("forecast", "train", "--data", csv, *SMALL_CLI, "--out", out)
    assert result.exit_code == 0, result.output
    assert "persistence" in result.output and f"Run directory: {out}" in result.output
    assert (out / "forecast.png").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"model", *BASELINES}
    assert metrics["scored_on"] == "test"
    assert (metrics["rmse"], metrics["mae"]) == (
        metrics["test"]["model"]["rmse"],
        metrics["test"]["model"]["mae"],
    )

    result = invoke("forecast", "evaluate", "--run", out, "--data", csv)
    assert result.exit_code == 0 and "lowest RMSE" in result.output
    evaluation = json.loads((out / "metrics.json").read_text())["evaluations"][0]
    assert (evaluation["data"], evaluation["part"]) == (str(csv), "test")
    assert evaluation["scores"] == metrics["test"]

    result = invoke("forecast", "predict", "--run", out, "--data", csv)
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == "step,date,Close,Close_low,Close_high"
    assert result.output.splitlines()[1].startswith("1,2013-03-04,")  # Friday -> Monday

    again = invoke("forecast", "train", "--data", csv, *SMALL_CLI, "--out", out)
    assert (
        again.exit_code == 1 and "Error: out=" in again.output and "already exists" in again.output
    )


def test_cli_failure_leaves_no_run_directory(tmp_path, csv):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["forecast", "train", "--data", str(csv), "--target", "Price", "--out", str(out)]
    )
    assert result.exit_code == 1 and "Error: column 'Price' is not in the data" in result.output
    assert not out.exists() and not (tmp_path / "run.partial").exists()


def test_several_targets_are_forecast_together_and_scaled_apart(goog):
    forecaster = small(target=["Open", "Close"], cell="rnn", epochs=1).fit(goog)
    backtest = forecaster.backtest(part="test")
    assert backtest.forecasts["model"].shape == (122, 1, 2)
    assert len(forecaster.mase_scale_) == 2
    columns = ["date", "Open", "Close", "Open_low", "Close_low", "Open_high", "Close_high"]
    assert list(forecaster.predict(goog).columns) == columns


def test_layer_options_reach_the_network_from_the_command_line(tmp_path, csv):
    out = tmp_path / "run"
    options = ["--option", "layer_norm=true", "--option", "zoneout=0.1", "--epochs", 1]
    result = invoke("forecast", "train", "--data", csv, *SMALL_CLI, *options, "--out", out)
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["rnn_options"] == {"layer_norm": True, "zoneout": 0.1}
    assert Forecaster.load(out).model_.rnn.cells[0].layer_norm
    bad = invoke("forecast", "train", "--data", csv, "--option", "layer_norm", "--out", out)
    assert bad.exit_code == 1 and "--option 'layer_norm' must be written KEY=VALUE" in bad.output


@pytest.mark.slow
def test_demo_runs_the_main_job_end_to_end(tmp_path):
    result = invoke("demo", "--out", tmp_path / "demo", "--epochs", 2)
    assert result.exit_code == 0, result.output
    assert "test: 291 one-step forecasts of Close for 2012-01-03 to 2013-03-01" in result.output
    rows = ["rnnkit default", "tutorial preset", "persistence", "seasonal_naive", "drift"]
    for name in [*rows, "linear_ar"]:
        assert f"\n{name} " in result.output
    words = " ".join(result.output.split())
    assert "On the 43 test days that close above the highest training price its RMSE is" in words
    assert "tutorial preset's RMSE is " in words
    for run in ("default", "tutorial"):
        picture = tmp_path / "demo" / run / "forecast.png"
        assert f"(picture: {picture})" in words and picture.stat().st_size > 10_000


def test_evaluate_on_newer_data_alone_uses_the_fitted_test_start(goog, fitted):
    newer = goog[goog["Date"] >= "2012-07-01"]  # starts after the fitted validation start
    results = fitted.score(newer)
    assert results == fitted.metrics_["test"]  # the same test days, history from the new rows


@pytest.mark.parametrize(
    "freq, expected",
    [("W-FRI", ["2024-03-15", "2024-03-22"]), ("ME", ["2024-11-30", "2024-12-31"])],
)
def test_predicted_dates_follow_the_data_spacing(freq, expected):
    dates = pd.date_range(end="2024-10-31" if freq == "ME" else "2024-03-08", periods=80, freq=freq)
    data = pd.DataFrame({"date": dates, "y": np.sin(np.arange(80.0)) + 10})
    forecaster = small(target="y", test_start=None, horizon=2, epochs=1, season=2).fit(data)
    assert [str(d.date()) for d in forecaster.predict(data)["date"]] == expected


def test_resume_refuses_other_settings(tmp_path, csv):
    out = tmp_path / "run"
    partial = tmp_path / "run.partial"
    partial.mkdir()
    (partial / "started.json").write_text(json.dumps({
        "settings": {**small().get_params(), "lookback": 20}, "data": str(csv)
    }))  # fmt: skip
    result = invoke("forecast", "train", "--data", csv, *SMALL_CLI, "--out", out, "--resume")
    assert result.exit_code == 1 and "changed: lookback: 20 -> 10" in result.output


def test_a_run_of_another_kind_or_a_loaded_forecaster_is_refused_clearly(tmp_path, fitted):
    (tmp_path / "config.json").write_text(json.dumps({"task": "classify"}))
    with pytest.raises(ValueError, match="holds a 'classify' run, not a 'forecast' run"):
        Forecaster.load(tmp_path)
    loaded = Forecaster.load(fitted.save(tmp_path / "run"))
    with pytest.raises(ValueError, match="keeps no training data"):
        loaded.save(tmp_path / "again")
