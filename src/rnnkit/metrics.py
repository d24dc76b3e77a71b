"""Point-forecast accuracy measures: numpy in, Python floats out.

Every function takes array-likes (lists, numpy arrays, CPU tensors) of any shape, as long as
``actual`` and ``predicted`` have the *same* shape; both are flattened, so a (N, horizon, k) block
of forecasts is scored as N·horizon·k points. Shapes are never broadcast against each other: a
(N,) against (N, 1) mix-up is an error, not a silently wrong N×N average. NaN in the inputs gives
NaN, so a broken forecast is not hidden by a good-looking number.

Which measure to read:

- ``rmse`` / ``mae``: in the series' own units; the numbers to compare a model with a baseline on
  the same test windows.
- ``mape`` / ``smape``: unit-free percentages, comparable across series, undefined or unstable
  near zero (prices are fine, returns are not).
- ``mase``: MAE divided by the in-sample MAE of the naive forecast; below 1 beats the naive
  forecast on the *training* data's scale (Hyndman & Koehler 2006), the measure of choice when
  series differ in scale.
- ``directional_accuracy``: how often the forecast moves the right way from the last observed
  value; 0.5 is a coin flip for a series that always moves.
"""

from typing import Any

import numpy as np

ArrayLike = Any  # anything np.asarray turns into a float array: list, ndarray, CPU tensor

METRIC_NAMES = ("rmse", "mae", "mape", "smape", "mase", "directional_accuracy")


def _as_float_array(values: ArrayLike) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _paired(actual: ArrayLike, predicted: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays, checked to have one shape and at least one point (not yet flattened)."""
    actual_array, predicted_array = _as_float_array(actual), _as_float_array(predicted)
    if actual_array.shape != predicted_array.shape:
        raise ValueError(
            f"actual and predicted must have the same shape, got actual {actual_array.shape} "
            f"and predicted {predicted_array.shape}"
        )
    if actual_array.size == 0:
        raise ValueError(
            f"actual and predicted are empty (shape {actual_array.shape}); "
            "a metric needs at least one point"
        )
    return actual_array, predicted_array


def rmse(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Root mean squared error, sqrt(mean((p − a)²)), in the units of the series."""
    actual_array, predicted_array = _paired(actual, predicted)
    return float(np.sqrt(np.mean((predicted_array - actual_array) ** 2)))


def mae(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean absolute error, mean(|p − a|), in the units of the series."""
    actual_array, predicted_array = _paired(actual, predicted)
    return float(np.mean(np.abs(predicted_array - actual_array)))


def mape(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean absolute percentage error, 100 · mean(|p − a| / |a|), in percent.

    Points where ``actual == 0`` have no percentage error and are left out of the mean (rather
    than making the result infinite); when every actual value is zero the result is NaN. MAPE
    punishes over-forecasts more than under-forecasts and explodes near zero: use it for
    positive series far from zero (prices, demand levels), never for returns or differences.
    """
    actual_array, predicted_array = _paired(actual, predicted)
    nonzero = actual_array != 0
    if not nonzero.any():
        return float("nan")
    relative_errors = np.abs(predicted_array[nonzero] - actual_array[nonzero]) / np.abs(
        actual_array[nonzero]
    )
    return float(100.0 * np.mean(relative_errors))


def smape(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Symmetric MAPE, mean(200 · |p − a| / (|a| + |p|)), in percent, between 0 and 200.

    This is the form of Makridakis (1993, "Accuracy measures: theoretical and practical concerns",
    IJF 9(4)) used in the M3 and M4 competitions and by ``pmdarima``, so the numbers compare with
    the published stock benchmarks. A point where both ``a`` and ``p`` are 0 is a perfect
    forecast and counts as 0 (the formula alone would give 0/0).
    """
    actual_array, predicted_array = _paired(actual, predicted)
    denominator = np.abs(actual_array) + np.abs(predicted_array)
    ratios = np.divide(
        np.abs(predicted_array - actual_array),
        denominator,
        out=np.zeros_like(denominator),
        where=denominator != 0,
    )
    return float(200.0 * np.mean(ratios))


def mase_scale(train_series: ArrayLike, season: int = 1) -> float:
    """The MASE denominator: mean |y_t − y_{t−season}| over the training series.

    This is the in-sample mean absolute error of the (seasonal) naive forecast, the scale of
    Hyndman & Koehler (2006, "Another look at measures of forecast accuracy", IJF 22(4)). Compute
    it once on the training part only, so the test data never informs its own yardstick.

    Args:
        train_series: the training values in time order, shape (T,) or (T, k) with time along
            axis 0; with k columns the differences of all columns are averaged together, so
            give one column at a time when the targets differ in scale.
        season: the lag m of the naive forecast: 1 for "tomorrow = today", 5 for a trading
            week, 7 for a calendar week of daily data, 12 for monthly data.

    Raises:
        ValueError: when the series has no more than ``season`` values, or the scale is 0
            (a series constant at that lag; MASE would divide by zero) or not finite.
    """
    if isinstance(season, bool) or not isinstance(season, int | np.integer) or season < 1:
        raise ValueError(f"season must be an integer >= 1, got {season!r}")
    series = _as_float_array(train_series)
    if series.ndim not in (1, 2):
        raise ValueError(
            f"train_series must be 1-D (T,) or 2-D (T, k) with time along axis 0, "
            f"got shape {series.shape}"
        )
    if series.shape[0] <= season:
        raise ValueError(
            f"train_series has {series.shape[0]} values along time; a scale at season={season} "
            f"needs at least {season + 1}"
        )
    scale = float(np.mean(np.abs(series[season:] - series[:-season])))
    if not np.isfinite(scale) or scale == 0:
        raise ValueError(
            f"the MASE scale of train_series at season={season} is {scale}; it must be finite "
            "and > 0 (a series constant at that lag, or one holding NaN, has no naive error)"
        )
    return scale


def mase(actual: ArrayLike, predicted: ArrayLike, scale: float) -> float:
    """Mean absolute scaled error: ``mae(actual, predicted) / scale`` (Hyndman & Koehler 2006).

    ``scale`` comes from :func:`mase_scale` on the training series. Below 1, the forecast's
    errors are smaller than the naive forecast's in-sample errors; note that this is *not* the
    same as beating persistence on the test period, which is what the baselines measure.
    """
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be finite and > 0 (see mase_scale), got {scale}")
    return mae(actual, predicted) / scale


def directional_accuracy(
    actual: ArrayLike, predicted: ArrayLike, last_observed: ArrayLike
) -> float:
    """Fraction (0 to 1) of points where the forecast moves the same way as the truth.

    A point agrees when ``sign(actual − last) == sign(predicted − last)``, where ``last`` is the
    last observed value before the forecast. ``last_observed`` broadcasts against ``actual``:
    a (N, 1, k) block of last values serves a (N, horizon, k) block of forecasts.

    Zero moves follow the signs literally: a flat forecast agrees only with a flat truth, and
    a flat truth agrees only with a flat forecast. Persistence therefore scores the fraction of
    unchanged points (near 0 on prices), which is right: it makes no directional call. Returns
    NaN when any of the three inputs holds NaN.
    """
    actual_array, predicted_array = _paired(actual, predicted)
    last_array = _as_float_array(last_observed)
    try:
        last_array = np.broadcast_to(last_array, actual_array.shape)
    except ValueError:
        raise ValueError(
            f"last_observed of shape {last_array.shape} does not broadcast against actual "
            f"of shape {actual_array.shape}; for (N, horizon, k) forecasts give (N, 1, k)"
        ) from None
    actual_move = actual_array - last_array
    predicted_move = predicted_array - last_array
    if np.isnan(actual_move).any() or np.isnan(predicted_move).any():
        return float("nan")
    return float(np.mean(np.sign(actual_move) == np.sign(predicted_move)))


def forecast_metrics(
    actual: ArrayLike, predicted: ArrayLike, last_observed: ArrayLike, scale: float
) -> dict[str, float]:
    """All the measures above on one set of forecasts, keyed by :data:`METRIC_NAMES`.

    Args:
        actual: the true future values, e.g. (N, horizon, k).
        predicted: the forecasts, same shape.
        last_observed: the last value of each history window, broadcasting against
            ``actual``, e.g. (N, 1, k).
        scale: the MASE denominator from :func:`mase_scale` on the training series.

    Returns:
        ``{"rmse", "mae", "mape", "smape", "mase", "directional_accuracy"}`` as floats.
    """
    return {
        "rmse": rmse(actual, predicted),
        "mae": mae(actual, predicted),
        "mape": mape(actual, predicted),
        "smape": smape(actual, predicted),
        "mase": mase(actual, predicted, scale),
        "directional_accuracy": directional_accuracy(actual, predicted, last_observed),
    }


def residual_interval(residuals: ArrayLike, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds to add to a forecast so that about ``level`` of future values fall inside.

    Split conformal prediction (Vovk et al. 2005; Lei et al. 2018): the quantiles of errors
    ``actual - forecast`` on data the model did not train on (the validation part), taken
    over axis 0 and widened by the finite-sample factor ``(n + 1) / n``. If the future errors
    are exchangeable with those, coverage is at least ``level``; a test period calmer or wilder
    than validation shows up as coverage off target, which is why it is reported.

    Returns ``(low, high)`` with the shape of one residual, ``low <= 0 <= high`` typically.
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must be in (0, 1), e.g. 0.9")
    errors = _as_float_array(residuals)
    if errors.shape[0] < 2:
        raise ValueError(f"residuals has {errors.shape[0]} rows; an interval needs at least 2")
    n = errors.shape[0]
    upper = min(1.0, (1 - (1 - level) / 2) * (n + 1) / n)
    low = np.quantile(errors, 1 - upper, axis=0, method="lower")
    high = np.quantile(errors, upper, axis=0, method="higher")
    return low, high


def interval_coverage(actual: ArrayLike, low: ArrayLike, high: ArrayLike) -> float:
    """Fraction (0..1) of actual values inside ``[low, high]``."""
    actual_values, low_values = _paired(actual, low)
    _, high_values = _paired(actual, high)
    return float(np.mean((low_values <= actual_values) & (actual_values <= high_values)))
