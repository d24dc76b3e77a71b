"""The honest baselines a forecast is compared with, on the same windows as the model.

A recurrent forecaster's test error means nothing on its own: daily prices are close to a random
walk, and "tomorrow = today" beats most networks trained on them (see the Stocks note in the data
README). Every forecast rnnkit reports is therefore shown beside these baselines, computed on
exactly the same history windows and scored with the same metrics.

All baselines work in original units on windows of the target columns:

- ``history``: (N, lookback, k), the last ``lookback`` values of the k targets before each
  forecast origin, oldest first;
- ``future``: (N, horizon, k), the values to forecast.

The interface follows scikit-learn: the constructor stores settings only, ``fit(history,
future)`` learns from training windows (nothing, for the naive ones) and returns ``self``,
``predict(history, horizon)`` returns (N, horizon, k); learned state ends in ``_``. ``name`` is
the key in :data:`BASELINES`, the label used in metrics files and plots.
"""

import math
from typing import Any

import numpy as np

from .._checks import check_integer

ArrayLike = Any  # anything np.asarray turns into a float array: list, ndarray, CPU tensor


def _as_windows(name: str, values: ArrayLike) -> np.ndarray:
    windows = np.asarray(values, dtype=np.float64)
    if windows.ndim != 3:
        raise ValueError(
            f"{name} must be 3-D (windows, steps, targets), got shape {windows.shape}; "
            f"for a single target use {name}[..., None]"
        )
    if windows.shape[1] == 0 or windows.shape[2] == 0:
        raise ValueError(f"{name} has no steps or no targets: shape {windows.shape}")
    return windows


def _check_horizon(horizon: int) -> None:
    check_integer("horizon", horizon, 1, numpy=True, got=True)


def _check_training_pair(history: np.ndarray, future: np.ndarray) -> None:
    if history.shape[0] == 0:
        raise ValueError(f"there are no training windows: history has shape {history.shape}")
    if history.shape[0] != future.shape[0] or history.shape[2] != future.shape[2]:
        raise ValueError(
            f"history {history.shape} and future {future.shape} must have the same number of "
            "windows (axis 0) and targets (axis 2)"
        )


class Baseline:
    """The shared interface; the naive baselines learn nothing, so ``fit`` only checks shapes."""

    name: str = ""

    def fit(self, history: ArrayLike, future: ArrayLike) -> "Baseline":
        _check_training_pair(_as_windows("history", history), _as_windows("future", future))
        return self

    def predict(self, history: ArrayLike, horizon: int) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Persistence(Baseline):
    """Every future step equals the last observed value: "tomorrow = today".

    The random-walk forecast, optimal when the changes are unpredictable. On daily prices it is
    the bar that matters: a model that does not beat it has learned nothing about the series.
    """

    name = "persistence"

    def predict(self, history: ArrayLike, horizon: int) -> np.ndarray:
        history = _as_windows("history", history)
        _check_horizon(horizon)
        return np.repeat(history[:, -1:, :], horizon, axis=1)


class SeasonalNaive(Baseline):
    """Each future step repeats the value one season earlier: y_{t+h} = y_{t+h−m·⌈h/m⌉}.

    The forecast for a series whose pattern is mostly its season (weekday effects, daily
    cycles): it replays the last observed season of length ``m``. With ``season=1`` it is
    persistence. A model that merely learned the calendar does no better than this.

    Args:
        season: the season length m in steps (5 for a trading week of daily data).
    """

    name = "seasonal_naive"

    def __init__(self, season: int = 5):
        self.season = int(check_integer("season", season, 1, numpy=True, got=True))

    def predict(self, history: ArrayLike, horizon: int) -> np.ndarray:
        history = _as_windows("history", history)
        _check_horizon(horizon)
        lookback = history.shape[1]
        if lookback < self.season:
            raise ValueError(
                f"SeasonalNaive(season={self.season}) needs a lookback of at least "
                f"{self.season} steps, got {lookback}"
            )
        last = lookback - 1
        source_steps = [
            last + step - self.season * math.ceil(step / self.season)
            for step in range(1, horizon + 1)
        ]
        return history[:, source_steps, :]

    def __repr__(self) -> str:
        return f"SeasonalNaive(season={self.season})"


class Drift(Baseline):
    """The last value plus the window's average change: last + h·(last − first)/(lookback − 1).

    The random walk with drift, its drift estimated on each history window (Hyndman &
    Athanasopoulos, "Forecasting: Principles and Practice", §5.2). It extends the recent trend in
    a straight line: a model that only learned "prices went up lately" does no better.
    """

    name = "drift"

    def predict(self, history: ArrayLike, horizon: int) -> np.ndarray:
        history = _as_windows("history", history)
        _check_horizon(horizon)
        lookback = history.shape[1]
        if lookback < 2:
            raise ValueError(f"Drift needs a lookback of at least 2 steps, got {lookback}")
        last = history[:, -1:, :]
        slope = (last - history[:, :1, :]) / (lookback - 1)
        steps_ahead = np.arange(1, horizon + 1, dtype=np.float64)[None, :, None]
        return last + steps_ahead * slope


class LinearAR(Baseline):
    """A direct linear autoregression on changes, fitted by least squares: ARIMA(p,1,0)-like.

    For each window with last value ``y_t`` it predicts every future change ``y_{t+h} − y_t``
    (h = 1 … horizon, each target) from the ``order`` previous values of *all* targets taken
    relative to the last, ``y_{t−j} − y_t`` for j = 1 … order, plus an intercept::

        y_{t+h} − y_t = c_h + Σ_j Σ_targets w_{h,j} · (y_{t−j} − y_t)

    One least-squares fit per output column ("direct" multi-step forecasting, no feeding of
    forecasts back). Working relative to the last value makes it level-free: it imposes a unit
    root, so on a random walk it learns (nearly) nothing and reduces to persistence plus the
    mean training change, and it cannot fail the way a model of min-max-scaled levels fails
    when test prices leave the training range. The price is that it cannot learn a fixed level
    to revert to other than through the recent changes. It is the linear model a recurrent
    forecaster must beat to justify its nonlinearity.

    A ridge penalty of ``ridge`` times the mean feature variance keeps the solve stable when
    lags are collinear; the intercept is not penalised.

    Args:
        order: number of lagged values p per target; a window needs ``lookback >= order + 1``
            (the last value and p lags).
        ridge: relative ridge strength.

    Attributes (after ``fit``):
        coef_: (order·k, horizon·k) weights; features are ordered (lag, target), outputs
            (step, target).
        intercept_: (horizon·k,) mean changes not explained by the lags.
        horizon_, n_targets_: the shapes it was fitted for.
    """

    name = "linear_ar"

    def __init__(self, order: int = 5, ridge: float = 1e-8):
        check_integer("order", order, 1, numpy=True, got=True)
        if not ridge >= 0:
            raise ValueError(f"ridge must be >= 0, got {ridge!r}")
        self.order = int(order)
        self.ridge = float(ridge)

    def _features(self, history: np.ndarray) -> np.ndarray:
        """(N, order·k): the ``order`` values before the last, minus the last, newest first."""
        lookback = history.shape[1]
        if lookback < self.order + 1:
            raise ValueError(
                f"LinearAR(order={self.order}) needs a lookback of at least {self.order + 1} "
                f"steps (the last value and {self.order} lags), got {lookback}"
            )
        last = history[:, -1:, :]
        lags = history[:, -self.order - 1 : -1, :][:, ::-1, :]
        return (lags - last).reshape(history.shape[0], -1)

    def fit(self, history: ArrayLike, future: ArrayLike) -> "LinearAR":
        history, future = _as_windows("history", history), _as_windows("future", future)
        _check_training_pair(history, future)
        features = self._features(history)
        changes = (future - history[:, -1:, :]).reshape(future.shape[0], -1)
        if not (np.isfinite(features).all() and np.isfinite(changes).all()):
            raise ValueError("LinearAR.fit: history and future must be finite (found NaN or inf)")

        # Centring takes the intercept out of the penalised solve.
        feature_mean, change_mean = features.mean(axis=0), changes.mean(axis=0)
        centred_features, centred_changes = features - feature_mean, changes - change_mean
        n_features = centred_features.shape[1]
        mean_variance = float(np.sum(centred_features**2)) / n_features
        # Constant features (e.g. a perfectly linear series) have zero variance: any positive
        # penalty then gives them zero weight, which is the answer wanted.
        penalty = self.ridge * (mean_variance if mean_variance > 0 else 1.0)
        # Ridge as an augmented least-squares problem: better conditioned than normal equations.
        augmented_features = np.vstack([centred_features, math.sqrt(penalty) * np.eye(n_features)])
        augmented_changes = np.vstack([centred_changes, np.zeros((n_features, changes.shape[1]))])
        self.coef_ = np.linalg.lstsq(augmented_features, augmented_changes, rcond=None)[0]
        self.intercept_ = change_mean - feature_mean @ self.coef_
        self.horizon_, self.n_targets_ = future.shape[1], future.shape[2]
        return self

    def predict(self, history: ArrayLike, horizon: int) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise RuntimeError("LinearAR is not fitted: call fit(history, future) first")
        history = _as_windows("history", history)
        _check_horizon(horizon)
        if horizon != self.horizon_:
            raise ValueError(
                f"LinearAR was fitted for horizon {self.horizon_} and predicts each step "
                f"directly, so it cannot forecast horizon {horizon}; refit on that horizon"
            )
        if history.shape[2] != self.n_targets_:
            raise ValueError(
                f"LinearAR was fitted on {self.n_targets_} targets, history has {history.shape[2]}"
            )
        changes = self._features(history) @ self.coef_ + self.intercept_
        return history[:, -1:, :] + changes.reshape(history.shape[0], horizon, self.n_targets_)

    def __repr__(self) -> str:
        return f"LinearAR(order={self.order}, ridge={self.ridge:g})"


BASELINES: dict[str, type[Baseline]] = {
    "persistence": Persistence,
    "seasonal_naive": SeasonalNaive,
    "drift": Drift,
    "linear_ar": LinearAR,
}


def make_baselines(
    names: list[str] | tuple[str, ...] | None = None, season: int = 5, ar_order: int = 5
) -> dict[str, Baseline]:
    """Unfitted baselines by name, in the order asked (all of :data:`BASELINES` by default).

    Args:
        names: keys of :data:`BASELINES`; ``None`` for all.
        season: the season of ``seasonal_naive`` (5 = a trading week of daily data).
        ar_order: the number of lags of ``linear_ar``; it needs ``lookback >= ar_order + 1``.

    Returns:
        ``{name: baseline}``; call ``fit`` on each (a no-op for the naive ones) before
        ``predict``.
    """
    names = list(BASELINES) if names is None else list(names)
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; known: {sorted(BASELINES)}")
    settings: dict[str, dict[str, int]] = {
        "seasonal_naive": {"season": season},
        "linear_ar": {"order": ar_order},
    }
    return {name: BASELINES[name](**settings.get(name, {})) for name in names}
