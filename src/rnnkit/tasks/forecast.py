"""Forecasting: the tutorials' stock-price job, done so that its numbers can be trusted.

The tutorials scale a price with MinMaxScaler, cut 60-step windows, train stacked LSTMs with
dropout on MSE and plot the prediction against the truth. What they never show is the forecast
any model must beat: "tomorrow = today". ``Forecaster`` does the same job with that baseline,
three more, and a linear autoregression beside the model on the same windows, in the units of
the data. Its default is level-free (the model sees and predicts changes, so prices above the
training range are no harder than others); ``Forecaster.from_preset("tutorial")`` is the
tutorials' model exactly, failure included.

    >>> forecaster = Forecaster(target="Close", test_start="2012-01-01").fit(load_stocks("GOOG"))
    >>> test = forecaster.score()  # the test part of the data fit saw
    >>> test["model"]["rmse"], test["persistence"]["rmse"]
"""

from __future__ import annotations

import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, TensorDataset

from .. import metrics
from .._checks import is_fraction
from ..data.tables import FILLS, Series, describe_spacing, load_series
from ..data.timeseries import (
    SCALERS,
    TRANSFORMS,
    Scaler,
    Split,
    chronological_split,
    first_valid_row,
    future_windows,
    invert_target,
    past_windows,
    transform_target,
    window_origins,
)
from ..models.baselines import make_baselines
from ..models.forecaster import FORECASTERS
from .estimator import Estimator
from .settings import Setting, positive_integer, shared, training_settings
from .supervised import check_rnn_options

PRESETS = {
    # The tutorials' Keras model: scaled prices, 60-step windows, four LSTM(50) layers each
    # followed by Dropout(0.2), Dense(1), Adam, MSE, batch 32, 100 epochs, no validation.
    "tutorial": {
        "transform": "none",
        "scaler": "minmax",
        "lookback": 60,
        "horizon": 1,
        "model": "direct",
        "cell": "lstm",
        "hidden_size": 50,
        "num_layers": 4,
        "dropout": 0.2,
        "output_dropout": 0.2,
        "keras_init": True,
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": 32,
        "epochs": 100,
        "val": 0.0,
        "patience": None,
        "clip_norm": None,
    },
}

WHAT_THE_NUMBERS_MEAN = (
    "What this means: daily prices move almost like a random walk, so the best simple guess "
    "for tomorrow is today's value (persistence), and few models, linear or recurrent, beat it "
    "by much. A model is worth using only where its error is below every baseline's. "
    "(Persistence scores 0 on direction: it never predicts a move.)"
)

PARTS = ("validation", "test")


def level(value) -> str | None:
    """A ``Setting.rule``: the level of a prediction interval."""
    return None if is_fraction(value, "(0, 1)") else "must be a level in (0, 1), or None"


@dataclass
class Backtest:
    """Rolling-origin forecasts over one part of the series, without retraining.

    For every origin ``t`` (the last observed row) the model and each baseline forecast rows
    ``t+1 … t+horizon`` from the ``lookback`` rows up to ``t``. Arrays are in the data's units:
    ``actual`` and each forecast are (origins, horizon, targets), ``last`` (origins, targets).
    """

    origins: np.ndarray
    labels: list[str]
    targets_span: tuple[str, str]
    actual: np.ndarray
    last: np.ndarray
    forecasts: dict[str, np.ndarray]
    interval: tuple[np.ndarray, np.ndarray] | None = None  # the model's (low, high), if any

    def metrics(self, scale) -> dict[str, dict[str, float]]:
        """Every metric of the model and each baseline; ``scale`` is the MASE scale of each
        target (its training series' mean absolute one-step change)."""
        scale = np.asarray(scale, np.float64)
        results = {}
        for name, forecast in self.forecasts.items():
            scores = metrics.forecast_metrics(self.actual, forecast, self.last[:, None], 1.0)
            # One scale per target, so targets in different units weigh the same.
            scores["mase"] = metrics.mae(self.actual / scale, forecast / scale)
            results[name] = scores
        if self.interval is not None:
            low, high = self.interval
            results["model"]["interval_coverage"] = metrics.interval_coverage(
                self.actual, low, high
            )
            results["model"]["interval_width"] = float(np.mean(high - low))
        return results

    def describe(self) -> dict:
        """How many forecasts, from which origin to which."""
        return {"origins": len(self.origins), "first_origin": self.labels[0],
                "last_origin": self.labels[-1], "first_target": self.targets_span[0],
                "last_target": self.targets_span[1]}  # fmt: skip

    def frame(self, targets: list[str]) -> pd.DataFrame:
        """One row per origin, step and target: the actual value beside every forecast."""
        index = pd.MultiIndex.from_product(
            [self.labels, range(1, self.actual.shape[1] + 1), targets],
            names=["origin", "step", "target"],
        )
        columns = {"actual": self.actual, **self.forecasts}
        if self.interval is not None:
            columns["model_low"], columns["model_high"] = self.interval
        return pd.DataFrame({k: v.reshape(-1) for k, v in columns.items()}, index=index)


@dataclass
class _Part:
    """A part of a series: the origins of its forecast windows."""

    series: Series
    origins: np.ndarray


class _Windows(Dataset):
    """Training windows with known-future covariates: ``((past, future), target)``."""

    def __init__(self, past, future, target):
        self.past, self.future, self.target = past, future, target

    def __len__(self):
        return len(self.past)

    def __getitem__(self, i):
        return (self.past[i], self.future[i]), self.target[i]


class Forecaster(Estimator):
    """Train, evaluate, save and load a recurrent forecaster of one or more series (see
    ``rnnkit.tasks.estimator`` for the contract).

    The data are split in time: ``val`` and ``test`` are chronological fractions, or
    ``val_start`` / ``test_start`` dates; the scaler is fitted on the training rows only.
    ``transform="none"`` reads scaled levels as the tutorials do. ``rnn_options`` are more
    layer options, e.g. ``{"layer_norm": True, "zoneout": 0.1}`` (``cell_options``, its old
    name, still works in this release). Early stopping (``patience``; None: train all
    epochs) watches the validation RMSE. The prediction interval comes from the validation
    errors by split conformal prediction (``rnnkit.metrics.residual_interval``); its test
    coverage is reported.
    """

    task = "forecast"
    settings = (
        Setting(
            "target", "Close", "Column to forecast (repeatable).", list, flags=("--target", "-t")
        ),
        Setting(
            "covariates",
            (),
            "Past-observed input column (repeatable).",
            list,
            flags=("--covariate",),
        ),
        Setting("known_future", (), "Input column known ahead (repeatable).", list),
        Setting(
            "date_col", "auto", 'Date column ("auto": a column named "date").', str, optional=True
        ),
        Setting(
            "where",
            None,
            "Keep rows with COLUMN=VALUE (repeatable).",
            dict,
            optional=True,
            parse=str,
        ),
        Setting("fill", "error", "Missing values.", str, FILLS),
        shared("val"),
        Setting("test", 0.2, "Test fraction.", float, fraction="[0, 1)"),
        Setting("val_start", None, "First validation date.", str, optional=True),
        Setting("test_start", None, "First test date.", str, optional=True),
        Setting("lookback", 60, "Steps of history per forecast.", rule=positive_integer),
        Setting("horizon", 1, "Steps forecast at once.", rule=positive_integer),
        Setting("transform", "diff", "What the model reads and predicts.", str, TRANSFORMS),
        Setting("scaler", "standard", "Scaling, fitted on the training rows.", str, SCALERS),
        Setting("model", "direct", "Forecasting strategy.", str, tuple(FORECASTERS)),
        shared("cell"),
        shared("hidden_size", rule=positive_integer),
        shared("num_layers", default=2),
        shared("dropout", help="Dropout between recurrent layers."),
        shared("output_dropout"),
        shared("rnn_options"),
        Setting(
            "keras_init",
            False,
            "Initialise like Keras (Glorot over the whole input "
            "kernel, orthogonal recurrent kernel), as the tutorial preset does.",
            bool,
        ),
        Setting("interval", 0.9, "Prediction interval level.", float, optional=True, rule=level),
        Setting("season", 5, "Period of the seasonal naive baseline."),
        Setting("ar_order", 5, "Lags of the linear autoregression."),
    )
    training = training_settings(epochs=30, lr=1e-3, clip_norm=1.0, patience=5)
    headline = ("rmse", "mae")

    def __init__(self, *legacy, **settings):
        if legacy:  # the target was positional before the estimator contract
            if len(legacy) > 1:
                raise TypeError("Forecaster takes its settings as keywords: target=, ...")
            warnings.warn(
                "Forecaster(target) is now Forecaster(target=...); the positional form goes in "
                "the next release",
                DeprecationWarning,
                stacklevel=2,
            )
            settings["target"] = legacy[0]
        if "cell_options" in settings:
            warnings.warn(
                "Forecaster(cell_options=) is now rnn_options=, as in every task; the old "
                "name goes in the next release",
                DeprecationWarning,
                stacklevel=2,
            )
            settings["rnn_options"] = settings.pop("cell_options")
        self._store(settings)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> Forecaster:
        """A forecaster with a preset's settings; ``overrides`` win."""
        if name not in PRESETS:
            raise ValueError(f"preset={name!r} is not one of {tuple(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    # --- learning --------------------------------------------------------------------------

    def read(self, data) -> Series:
        """The columns the settings name, of ``data`` (a CSV path or a DataFrame)."""
        return self._load(data)

    def _split(self, series: Series, val_data):
        """The training and validation windows (``Windows``; the validation part's None
        where there is none): the series is split in time, so the validation part is the
        one before the test part, not other data."""
        if val_data is not None:
            raise ValueError(
                "val_data: a forecaster validates on the part of the series before the test "
                "part (val or val_start), not on other data"
            )
        self.series_ = series
        self.split_ = chronological_split(
            series.dates, len(series), val=self.val, test=self.test,
            val_start=self.val_start, test_start=self.test_start,
        )  # fmt: skip
        self.split_labels_ = {
            "val_start": series.label(self.split_.val_start),
            "test_start": series.label(self.split_.test_start),
        }
        # Every part must hold a window before any time is spent training.
        train = _Part(series, self._origins(self.split_.part("train"), "train"))
        held = None
        if self.split_.val_start < self.split_.test_start:
            held = _Part(series, self._origins(self.split_.part("validation"), "validation"))
        self._origins(self.split_.part("test"), "test")
        return train, held

    def _prepare(self, train: _Part, held: _Part | None):
        """The scaler, fitted on the training rows; the windows scaled."""
        first = first_valid_row(self.transform)
        features = self._features(train.series)
        self.scaler_ = Scaler(self.scaler).fit(features[first : self.split_.val_start])
        self._scaled = self.scaler_.transform(features)
        held_set = self._dataset(self._scaled, held.origins) if held is not None else None
        return self._dataset(self._scaled, train.origins), held_set

    def _trainer_options(self, held, held_set) -> dict:
        if held is None:
            return {"loss": "mse"}
        levels = held.series.values[:, : self.n_targets]

        def val_rmse(model) -> float:
            forecast = self._forecast(model, self._scaled, levels, held.origins)
            return metrics.rmse(future_windows(levels, held.origins, self.horizon), forecast)

        return {"loss": "mse", "monitor": "val_rmse", "val_metrics": {"val_rmse": val_rmse}}

    def _fit_baselines(self, train: _Part, held) -> None:
        """The baselines, fitted on the training windows; the MASE scale of each target."""
        levels = train.series.values[:, : self.n_targets]
        self.mase_scale_ = [metrics.mase_scale(c) for c in levels[: self.split_.val_start].T]
        self.baselines_ = make_baselines(season=self.season, ar_order=self.ar_order)
        for baseline in self.baselines_.values():
            baseline.fit(
                past_windows(levels, train.origins, self.lookback),
                future_windows(levels, train.origins, self.horizon),
            )

    def _fit_metrics(self, train: _Part, held) -> dict:
        """Backtests of the validation and test parts; the prediction interval from the
        validation errors (split conformal)."""
        self.interval_ = None
        parts = PARTS if held is not None else PARTS[1:]
        backtests = {part: self.backtest(part=part) for part in parts}
        if held is not None and self.interval:
            validation = backtests["validation"]
            residuals = validation.actual - validation.forecasts["model"]
            low, high = metrics.residual_interval(residuals, self.interval)
            self.interval_ = {"level": self.interval, "low": low, "high": high}
            for backtest in backtests.values():
                backtest.interval = self._bounds(backtest.forecasts["model"])
        fitted = {"data": train.series.report, "windows": {}}
        for part, backtest in backtests.items():
            fitted[part] = backtest.metrics(self.mase_scale_)
            fitted["windows"][part] = backtest.describe()
        return fitted

    # --- using -----------------------------------------------------------------------------

    def backtest(self, data=None, part: str = "test") -> Backtest:
        """Rolling-origin forecasts of the model and every baseline over ``part`` of ``data``
        (default: the data ``fit`` saw), all origins at once, in the data's units.

        On new data the part boundaries are the fitted ones: the same dates (or, without
        dates, the same row numbers).
        """
        self._check_fitted()
        if part not in PARTS:
            raise ValueError(f"part={part!r} is not one of {PARTS}")
        if data is None and not hasattr(self, "series_"):
            raise ValueError("a forecaster loaded from a run keeps no data: pass data=")
        series = self.series_ if data is None else self._load(data)
        split = self.split_ if data is None else self._split_like_fit(series)
        levels = series.values[:, : self.n_targets]
        origins = self._origins(split.part(part), part)
        history = past_windows(levels, origins, self.lookback)
        scaled = self.scaler_.transform(self._features(series))
        model = self._forecast(self.model_, scaled, levels, origins)
        forecasts = {"model": model}
        for name, baseline in self.baselines_.items():
            forecasts[name] = baseline.predict(history, self.horizon)
        return Backtest(
            origins=origins,
            labels=[series.label(t) for t in origins],
            targets_span=(
                series.label(origins[0] + 1),
                series.label(origins[-1] + self.horizon),
            ),
            actual=future_windows(levels, origins, self.horizon),
            last=levels[origins],
            forecasts=forecasts,
            interval=self._bounds(model),
        )

    def score(self, data=None, part: str = "test") -> dict[str, dict[str, float]]:
        """Metrics of the model and every baseline over ``part`` of ``data`` (default: the
        data ``fit`` saw), keyed by name: ``{"model": …, "persistence": …, …}``."""
        return self.backtest(data, part).metrics(self.mase_scale_)

    def evaluate(self, data=None, part: str = "test") -> dict[str, dict[str, float]]:
        """The old name of ``score``, kept for this release."""
        warnings.warn(
            "Forecaster.evaluate is now Forecaster.score, as in every task; the old name goes "
            "in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.score(data, part)

    def predict(self, data, future=None) -> pd.DataFrame:
        """Forecast the ``horizon`` steps after the last row of ``data``.

        ``future`` (a DataFrame with the known-future columns, ``horizon`` rows) is needed
        when the model uses known-future covariates. Returns one row per step ahead, dated
        when the data's dates have a regular spacing (trading days continue as business
        days), with the interval's bounds as ``<target>_low`` / ``<target>_high``.
        """
        self._check_fitted()
        series = self._load(data)
        needed = self.lookback + first_valid_row(self.transform)
        if len(series) < needed:
            raise ValueError(f"data has {len(series)} rows; a forecast needs the last {needed}")
        scaled = self.scaler_.transform(self._features(series))
        levels = series.values[:, : self.n_targets]
        origin = np.array([len(series) - 1])
        known = None
        if self.known_future:
            known = self._future_frame(future)
        forecast = self._forecast(self.model_, scaled, levels, origin, known=known)
        steps = pd.RangeIndex(1, self.horizon + 1, name="step")
        frame = pd.DataFrame(forecast[0], index=steps, columns=self.targets)
        bounds = self._bounds(forecast)
        if bounds is not None:
            for side, values in zip(("low", "high"), bounds, strict=True):
                for i, target in enumerate(self.targets):
                    frame[f"{target}_{side}"] = values[0, :, i]
        dates = None if series.dates is None else _dates_after(series.dates, self.horizon)
        if dates is not None:
            frame.insert(0, "date", dates)
        return frame

    # --- run directories -------------------------------------------------------------------

    def save(self, out, *, overwrite: bool = False) -> Path:
        """Write the run directory ``out`` (see ``rnnkit.tasks.rundir``): config, weights,
        data state, metrics, history, test predictions and pictures. Written whole or not at
        all."""
        self._check_fitted()
        if not hasattr(self, "series_"):
            raise ValueError(
                "a forecaster loaded from a run keeps no training data or history to save; "
                "copy the run directory instead"
            )
        return super().save(out, overwrite=overwrite)

    def _write_extra(self, directory: Path) -> None:
        backtest = self.backtest(part="test")
        backtest.frame(self.targets).to_csv(directory / "predictions.csv")
        self._plot(directory, backtest)

    def _restore(self, state: dict) -> None:
        self.split_ = Split(**state["split"])
        self.split_labels_ = state["split_labels"]
        self.scaler_ = Scaler.from_dict(state["scaler"])
        self.mase_scale_ = state["mase_scale"]
        interval = state["interval"]
        self.interval_ = interval and {k: _array_or_value(v) for k, v in interval.items()}
        self.baselines_ = make_baselines(season=self.season, ar_order=self.ar_order)
        for name, fitted in state["baselines"].items():
            for attribute, value in fitted.items():
                setattr(self.baselines_[name], attribute, _array_or_value(value))
        self.model_ = self._build_model()

    def _config(self) -> dict:
        return {
            "columns": {"targets": self.targets, "covariates": list(self.covariates),
                        "known_future": list(self.known_future)},
            "split": self.split_labels_,
            "rows": len(self.series_),
        }  # fmt: skip

    def stream(self):
        """A series read as it arrives: ``feed(rows)`` (a DataFrame of new rows, as ``predict``
        reads data: the date, target and covariate columns) returns the forecast from the
        newest row, as ``predict`` on the whole series so far gives it, or None while fewer
        rows than a window have come. Only the last rows a window needs are kept. See
        ``rnnkit.tasks.streaming``."""
        from .streaming import Stream

        self._check_fitted()
        if self.known_future:
            raise ValueError(
                f"this model reads known-future columns {list(self.known_future)}: call "
                "predict(data, future=...) for each forecast instead of streaming"
            )
        needed = self.lookback + first_valid_row(self.transform)

        def step(rows, kept):
            if not isinstance(rows, pd.DataFrame):
                raise TypeError(f"rows must be a DataFrame of new rows, got {type(rows).__name__}")
            kept = rows if kept is None else pd.concat([kept, rows], ignore_index=True)
            kept = kept.iloc[-needed:]
            return (self.predict(kept) if len(kept) == needed else None), kept

        return Stream(step)

    def _export_graphs(self) -> list:
        from ..export import Graph

        k, f = self.n_targets, len(self.known_future)
        size = k + len(self.covariates) + f

        def sample(batch: int, steps: int) -> dict:
            inputs = {"past": torch.randn(batch, steps, size)}
            if f:
                inputs["future"] = torch.randn(batch, self.horizon, f)
            return inputs

        dynamic = {"past": {0: "batch", 1: "time"}} | ({"future": {0: "batch"}} if f else {})
        example = sample(2, self.lookback)
        return [Graph("model", self.model_, example, ["forecast"], dynamic, sample)]

    def _export_notes(self) -> str:
        return (
            "past: the last lookback rows (the model was trained on that many) of its input "
            "columns: the targets after the settings' transform, then the covariates, then "
            "the known-future columns, each scaled by data_state's scaler; future: the "
            "known-future columns of the horizon rows ahead, scaled the same; forecast "
            "(batch, horizon, targets): the targets' transformed values, scaled: unscale them "
            "with the scaler's target columns, then undo the transform from each window's "
            "last level (none: as they are; diff: last + cumulative sum; returns: last * "
            "cumulative product of 1 + r; log: last * exp(cumulative sum))"
        )

    def _data_state(self) -> dict:
        return {
            "split": vars(self.split_),
            "split_labels": self.split_labels_,
            "scaler": self.scaler_.to_dict(),
            "mase_scale": self.mase_scale_,
            "interval": self.interval_,
            "baselines": {
                name: {k: v for k, v in vars(b).items() if k.endswith("_")}
                for name, b in self.baselines_.items()
            },
        }

    def _plot(self, directory: Path, backtest: Backtest) -> None:
        from .. import plots

        series = self.series_
        first = backtest.origins[0] + 1
        x = series.dates if series.dates is not None else np.arange(len(series))
        target_x = x[backtest.origins + 1]
        context = slice(max(0, first - 3 * self.lookback), first)
        one_step = {name: f[:, 0, 0] for name, f in backtest.forecasts.items()}
        band = None
        if backtest.interval is not None:
            low, high = (side[:, 0, 0] for side in backtest.interval)
            band = (low, high, f"{self.interval:.0%} interval")
        plots.plot_forecast(
            directory / "forecast.png",
            target_x,
            backtest.actual[:, 0, 0],
            one_step.pop("model"),
            baselines={k: one_step[k] for k in ("persistence", "linear_ar")},
            train=(x[context], series.values[context, 0]),
            title=f"{self.targets[0]}: one step ahead over the test period",
            ylabel=self.targets[0],
            band=band,
        )
        errors = {
            name: np.abs(f - backtest.actual)[:, 0].mean(-1)
            for name, f in backtest.forecasts.items()
        }
        plots.plot_backtest_error(directory / "backtest_error.png", target_x, errors)

    # --- internals -------------------------------------------------------------------------

    @property
    def targets(self) -> list[str]:
        return [self.target] if isinstance(self.target, str) else list(self.target)

    @property
    def n_targets(self) -> int:
        return len(self.targets)

    def _check_settings(self) -> None:
        check_rnn_options(self, FORECASTERS[self.model])
        columns = self.targets + list(self.covariates) + list(self.known_future)
        if len(set(columns)) != len(columns):
            raise ValueError(
                f"a column is named twice among target, covariates and known_future: {columns}"
            )
        # The baselines read the same windows: each needs enough of them.
        needs = {"season": self.season, "ar_order + 1": self.ar_order + 1, "drift": 2}
        for name, steps in needs.items():
            if self.lookback < steps:
                raise ValueError(
                    f"lookback={self.lookback} is shorter than the baselines need "
                    f"({name}: {steps} steps); raise lookback or lower season / ar_order"
                )

    def _load(self, data) -> Series:
        if isinstance(data, Series):  # read already
            return data
        columns = self.targets + list(self.covariates) + list(self.known_future)
        return load_series(data, columns, date_col=self.date_col, where=self.where, fill=self.fill)

    def _features(self, series: Series) -> np.ndarray:
        """(T, inputs): the transformed targets, then the covariates as they are."""
        k = self.n_targets
        return np.hstack(
            [transform_target(series.values[:, :k], self.transform), series.values[:, k:]]
        )

    def _origins(self, rows: tuple[int, int], part: str) -> np.ndarray:
        first = first_valid_row(self.transform)
        origins = window_origins(rows, self.lookback, self.horizon, first)
        if len(origins) == 0:
            start, stop = rows
            raise ValueError(
                f"the {part} part (rows {start} to {stop - 1}, {stop - start} rows) has no "
                f"complete window: lookback={self.lookback} + horizon={self.horizon}"
                + (f" + 1 for transform={self.transform!r}" if first else "")
                + " need more rows; shorten them or give this part more data"
            )
        return origins

    def _dataset(self, scaled: np.ndarray, origins: np.ndarray) -> Dataset:
        k, f = self.n_targets, len(self.known_future)
        past = _tensor(past_windows(scaled, origins, self.lookback))
        target = _tensor(future_windows(scaled[:, :k], origins, self.horizon))
        if not f:
            return TensorDataset(past, target)
        return _Windows(
            past, _tensor(future_windows(scaled[:, -f:], origins, self.horizon)), target
        )

    def _forecast(self, model, scaled, levels, origins, known=None) -> np.ndarray:
        """The model's forecasts for ``origins`` in the data's units: (N, horizon, targets).

        ``known`` gives the scaled known-future covariates when they are not in ``scaled``
        (a forecast beyond the end of the data)."""
        k, f = self.n_targets, len(self.known_future)
        past = _tensor(past_windows(scaled, origins, self.lookback))
        if f and known is None:
            known = future_windows(scaled[:, -f:], origins, self.horizon)
        inputs = (past,) if not f else (past, _tensor(known))
        device = next(model.parameters()).device  # a GPU while torchrun trains there
        was_training = model.training
        model.eval()
        with torch.no_grad():
            scaled_changes = (
                torch.cat(
                    [
                        model(*(x.to(device) for x in chunk)).cpu()
                        for chunk in zip(*(x.split(4096) for x in inputs), strict=True)
                    ]
                )
                .double()
                .numpy()
            )
        model.train(was_training)
        changes = self.scaler_.inverse(scaled_changes, columns=slice(0, k))
        return invert_target(changes, levels[origins], self.transform)

    def _bounds(self, forecast: np.ndarray):
        """The model's interval ``(low, high)`` around ``forecast`` (N, horizon, targets)."""
        if self.interval_ is None:
            return None
        return forecast + self.interval_["low"], forecast + self.interval_["high"]

    def _future_frame(self, future) -> np.ndarray:
        if future is None:
            raise ValueError(
                f"this model uses known-future columns {list(self.known_future)}: "
                f"pass future= with {self.horizon} rows of them"
            )
        values = load_series(future, list(self.known_future)).values
        if len(values) != self.horizon:
            raise ValueError(f"future has {len(values)} rows; the horizon is {self.horizon}")
        f = len(self.known_future)
        return self.scaler_.transform(values, columns=slice(-f, None))[None]

    def _split_like_fit(self, series: Series) -> Split:
        """The fitted part boundaries on new data: the same dates (or row numbers), clipped to
        the data; rows before a part serve as its windows' history, no training rows needed."""
        if series.dates is None:
            val_row, test_row = self.split_.val_start, self.split_.test_start
        else:
            labels = self.split_labels_
            val_row, test_row = (
                int(series.dates.searchsorted(pd.Timestamp(labels[key])))
                for key in ("val_start", "test_start")
            )
        rows = len(series)
        return Split(min(val_row, rows), min(test_row, rows), rows)

    def _build_model(self):
        k, f = self.n_targets, len(self.known_future)
        inputs = k + len(self.covariates) + f
        model = FORECASTERS[self.model](
            inputs, k, self.horizon, future_size=f, cell=self.cell, hidden_size=self.hidden_size,
            num_layers=self.num_layers, dropout=self.dropout, output_dropout=self.output_dropout,
            rnn_options=self.rnn_options,
        )  # fmt: skip
        if self.keras_init:
            from ..models.forecaster import keras_init_

            keras_init_(model)
        return model

    def report(self) -> str:
        return format_report(self)

    def table(self, scores: dict) -> list[str]:
        # No window line: ``scores`` may be of any part of any data, not the fitted test part.
        return format_report(self, part=None, results=scores).splitlines()


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _array_or_value(value):
    return np.asarray(value) if isinstance(value, list) else value


def _dates_after(dates: pd.DatetimeIndex, steps: int) -> pd.DatetimeIndex | None:
    """The ``steps`` dates after the last one, spaced like the data; None when the spacing has
    no name (irregular dates).

    The frequency is read from the recent dates (weekly, month-end, daily, …); trading days,
    whose holidays hide any regular frequency, continue as business days.
    """
    recent = dates[-60:]
    with warnings.catch_warnings():
        # pandas announces a str -> offset change of the result; date_range takes either.
        warnings.simplefilter("ignore")
        frequency = pd.infer_freq(recent) if len(recent) >= 3 else None
    if frequency is None and describe_spacing(recent).get("spacing") == "1 business days":
        frequency = "B"
    if frequency is None:
        return None
    return pd.date_range(dates[-1], periods=steps + 1, freq=frequency)[1:]


def format_report(forecaster: Forecaster, part: str | None = "test", results=None) -> str:
    """The table of model against baselines that a user reads first, and what it means.

    ``results`` defaults to the fitted metrics of ``part``; every row that is not a baseline
    is a model and gets a verdict (the demo adds the tutorial preset's row). ``part`` None:
    no line describing the part's windows (``results`` of other data)."""
    results = results or forecaster.metrics_[part]
    window = forecaster.metrics_.get("windows", {}).get(part)
    steps = "one-step" if forecaster.horizon == 1 else f"{forecaster.horizon}-step"
    lines = []
    if window:
        lines.append(
            f"{part}: {window['origins']} {steps} forecasts of {', '.join(forecaster.targets)} "
            f"for {window['first_target']} to {window['last_target']} (rolling origin, no "
            "retraining)"
        )
    lines += _table(results)
    lines.append("")
    persistence = results["persistence"]["rmse"]
    for name, scores in results.items():
        if name in forecaster.baselines_:
            continue
        subject = "The model" if name == "model" else name
        lines += _wrap(f"{subject}'s {_verdict(scores['rmse'], persistence)}")
        better = [b for b in forecaster.baselines_ if results[b]["rmse"] < scores["rmse"]]
        if better:
            lines += _wrap(
                f"Baselines with a lower RMSE than {subject.lower()}: {', '.join(better)}."
            )
        if "interval_coverage" in scores:
            lines += _wrap(
                f"{subject}'s {forecaster.interval:.0%} interval (from its validation errors) "
                f"holds {scores['interval_coverage']:.1%} of the actual values; mean width "
                f"{scores['interval_width']:.4g}. (The validation part also chose the epoch, so "
                "the interval may be a little narrow.)"
            )
    lines += _wrap(WHAT_THE_NUMBERS_MEAN)
    return "\n".join(lines)


def _table(results: dict) -> list[str]:
    columns = [("rmse", "RMSE", "{:.4g}"), ("mae", "MAE", "{:.4g}"), ("mape", "MAPE", "{:.2f}%"),
               ("smape", "sMAPE", "{:.2f}%"), ("mase", "MASE", "{:.3f}"),
               ("directional_accuracy", "direction", "{:.1%}")]  # fmt: skip
    width = max(map(len, results)) + 2
    lines = [" " * width + "".join(f"{title:>10}" for _, title, _ in columns)]
    best = min(results, key=lambda name: results[name]["rmse"])
    for name, scores in results.items():
        cells = "".join(f"{form.format(scores[key]):>10}" for key, _, form in columns)
        lines.append(f"{name:<{width}}{cells}" + ("   <- lowest RMSE" if name == best else ""))
    return lines


def _verdict(rmse: float, persistence: float) -> str:
    change = (rmse - persistence) / persistence
    if change >= 0:
        verdict = 'it does not beat "tomorrow = today".'
    elif change > -0.01:
        verdict = 'a margin this small is a tie with "tomorrow = today", not a skill.'
    else:
        verdict = 'it beats "tomorrow = today".'
    where = "below" if change < 0 else "above"
    return f"RMSE is {abs(change):.1%} {where} persistence's: {verdict}"


DEMO_INTRO = """\
rnnkit demo: forecast Google's daily closing price one day ahead, two ways, beside four
baselines. Data: GOOG 2004-08-19 to 2013-03-01, bundled with rnnkit (public domain); test
period 2012-01-03 to 2013-03-01; every number in US dollars.
1. rnnkit's default: two LSTM layers (64 units) read 60 days of price changes; trained on
   2004-2011, keeping the epoch that does best on the last tenth of that.
2. The tutorials' recipe (--preset tutorial): four LSTM(50) layers with dropout read 60 days
   of min-max-scaled prices; 100 epochs, about two minutes.
"""


def demo(out="runs/demo", *, epochs: int | None = None, tutorial: bool = True) -> str:
    """The main job on the bundled data: GOOG's daily close, 2012-01-03 onward as test.

    Trains rnnkit's default forecaster into ``out/default`` and, with ``tutorial``, the
    tutorials' recipe into ``out/tutorial``, and returns one table of both models beside the
    baselines (those of the default run, fitted on the same training windows).
    """
    from ..data.datasets import stocks_path
    from .rundir import train_run

    data = {"date_col": "Date", "where": {"Ticker": "GOOG"}, "test_start": "2012-01-01"}
    settings = {**data, **({"epochs": epochs} if epochs else {})}
    runs = {"rnnkit default": Forecaster(target="Close", **settings)}
    if tutorial:
        runs["tutorial preset"] = Forecaster.from_preset("tutorial", target="Close", **settings)
    folders = {"rnnkit default": Path(out) / "default", "tutorial preset": Path(out) / "tutorial"}
    for name, forecaster in runs.items():
        train_run(forecaster, stocks_path(), folders[name], overwrite=True)

    default = runs["rnnkit default"]
    results = {name: forecaster.metrics_["test"]["model"] for name, forecaster in runs.items()}
    results.update({k: v for k, v in default.metrics_["test"].items() if k != "model"})
    lines = [format_report(default, "test", results), ""]
    if tutorial:
        lines += _wrap(_tutorial_diagnosis(runs["tutorial preset"], default))
        lines.append("")
    for name in runs:
        lines.append(f"{name} run: {folders[name]}  (picture: {folders[name] / 'forecast.png'})")
    return "\n".join(lines)


def _tutorial_diagnosis(tutorial: Forecaster, default: Forecaster) -> str:
    """Where the tutorial recipe's error comes from, measured on this run: its bias, and its
    error on the test days above the training range against the days within it."""
    backtest = tutorial.backtest(part="test")
    actual = backtest.actual[:, 0, 0]
    error = backtest.forecasts["model"][:, 0, 0] - actual
    persistence = backtest.forecasts["persistence"][:, 0, 0] - actual
    series, test_start = default.series_, default.split_.test_start
    above = actual > series.values[:test_start, 0].max()
    text = (
        "Where the tutorial recipe's error comes from: it predicts the price itself from "
        "min-max-scaled prices, so a small error in the level counts in full, while a model of "
        "changes starts from today's price. Its forecasts are off by "
        f"{error.mean():+.2f} on average (persistence: {persistence.mean():+.2f})."
    )
    if above.any() and not above.all():
        text += (
            f" On the {int(above.sum())} test days that close above the highest training price "
            f"its RMSE is {metrics.rmse(actual[above], actual[above] + error[above]):.4g}, on "
            f"the other {int((~above).sum())} days "
            f"{metrics.rmse(actual[~above], actual[~above] + error[~above]):.4g}."
        )
    return text


def _wrap(text: str) -> list[str]:
    """Report lines of at most 92 characters, never broken inside a hyphenated word."""
    return textwrap.wrap(text, 92, break_on_hyphens=False)
