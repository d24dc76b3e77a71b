"""The baselines on hand-made windows, on processes they must recover, and on bad input."""

import numpy as np
import pytest

from rnnkit.models import (
    BASELINES,
    Drift,
    LinearAR,
    Persistence,
    SeasonalNaive,
    make_baselines,
)

# One window, one target: 1, 2, 4, 3, 5, 6 (lookback 6).
WINDOW = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 6.0])[None, :, None]


def windows_of(series: np.ndarray, lookback: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (history, future) pair of a (T, k) series, stride 1."""
    starts = range(len(series) - lookback - horizon + 1)
    history = np.stack([series[start : start + lookback] for start in starts])
    future = np.stack([series[start + lookback : start + lookback + horizon] for start in starts])
    return history, future


def test_persistence_repeats_the_last_value():
    assert Persistence().predict(WINDOW, 3)[0, :, 0].tolist() == [6.0, 6.0, 6.0]


def test_seasonal_naive_replays_the_last_season():
    # season 3: the last season is 3, 5, 6; steps 1..5 read back 3, 5, 6, 3, 5
    # (y_{t+h−3·ceil(h/3)}: h=1 → t−2, h=3 → t, h=4 → t−2)
    forecast = SeasonalNaive(season=3).predict(WINDOW, 5)
    assert forecast[0, :, 0].tolist() == [3.0, 5.0, 6.0, 3.0, 5.0]


def test_seasonal_naive_with_season_one_is_persistence():
    np.testing.assert_array_equal(
        SeasonalNaive(season=1).predict(WINDOW, 4), Persistence().predict(WINDOW, 4)
    )


def test_drift_extends_the_window_slope():
    # slope (6 − 1) / (6 − 1) = 1 per step: 7, 8, 9
    assert Drift().predict(WINDOW, 3)[0, :, 0].tolist() == [7.0, 8.0, 9.0]


@pytest.mark.parametrize("name", list(BASELINES))
def test_shapes_with_two_targets_and_horizon_three(name):
    rng = np.random.default_rng(0)
    history, future = rng.normal(size=(7, 10, 2)), rng.normal(size=(7, 3, 2))
    baseline = make_baselines([name], season=4, ar_order=2)[name]
    forecast = baseline.fit(history, future).predict(history[:5], 3)
    assert forecast.shape == (5, 3, 2)
    assert baseline.name == name


def test_naive_baselines_keep_the_targets_apart():
    history = np.stack([WINDOW[0, :, 0], 100 * WINDOW[0, :, 0]], axis=-1)[None]  # (1, 6, 2)
    for baseline in (Persistence(), SeasonalNaive(season=3), Drift()):
        forecast = baseline.predict(history, 4)
        np.testing.assert_allclose(forecast[..., 1], 100 * forecast[..., 0])


def test_linear_ar_recovers_an_ar1_process():
    # y_t − μ = 0.8 (y_{t−1} − μ), noiseless. The future change y_{t+h} − y_t = (0.8^h − 1)(y_t − μ)
    # equals (0.8^h − 1)/(1/0.8 − 1) · (y_{t−1} − y_t): linear in one lag, whatever the level μ,
    # so order 1 recovers it from trajectories of different levels and starts.
    rng = np.random.default_rng(0)

    def trajectory_windows(count):
        pairs = []
        for _ in range(count):
            level, start = rng.uniform(-50, 50), rng.uniform(-5, 5)
            series = (level + start * 0.8 ** np.arange(12))[:, None]
            pairs.append(windows_of(series, lookback=4, horizon=3))
        return np.concatenate([h for h, _ in pairs]), np.concatenate([f for _, f in pairs])

    model = LinearAR(order=1).fit(*trajectory_windows(20))
    test_history, test_future = trajectory_windows(5)
    # exact but for the 1e-8 ridge
    np.testing.assert_allclose(model.predict(test_history, 3), test_future, rtol=0, atol=1e-6)
    # not a trivial pass: persistence is far off on the same windows
    assert np.abs(Persistence().predict(test_history, 3) - test_future).mean() > 0.1


def test_linear_ar_recovers_a_linear_trend_in_two_targets():
    steps = np.arange(50.0)
    series = np.stack([3.0 + 0.5 * steps, 100.0 - 2.0 * steps], axis=-1)
    history, future = windows_of(series, lookback=6, horizon=3)
    model = LinearAR(order=3).fit(history[:30], future[:30])
    forecast = model.predict(history[30:], 3)
    np.testing.assert_allclose(forecast, future[30:], rtol=0, atol=1e-8)
    # the level never enters: the same model on the trend shifted far above training is exact
    np.testing.assert_allclose(model.predict(history + 1e4, 3), future + 1e4, atol=1e-6)


def test_linear_ar_recovers_a_mixing_var1_process():
    # two targets that feed each other: the features include every target's lags
    transition = np.array([[0.5, 0.3], [-0.2, 0.7]])
    series = [np.array([4.0, -3.0])]
    for _ in range(80):
        series.append(transition @ series[-1])
    history, future = windows_of(np.array(series), lookback=5, horizon=2)
    model = LinearAR(order=1).fit(history[:50], future[:50])
    np.testing.assert_allclose(model.predict(history[50:], 2), future[50:], atol=1e-8)


def test_linear_ar_on_a_random_walk_is_close_to_persistence():
    rng = np.random.default_rng(1)
    series = np.cumsum(rng.normal(size=(3000, 1)), axis=0)
    history, future = windows_of(series, lookback=10, horizon=1)
    model = LinearAR(order=5).fit(history[:2000], future[:2000])
    test_history, test_future = history[2000:], future[2000:]

    def mean_absolute_error(forecast):
        return np.mean(np.abs(forecast - test_future))

    ar_error = mean_absolute_error(model.predict(test_history, 1))
    persistence_error = mean_absolute_error(Persistence().predict(test_history, 1))
    assert abs(ar_error / persistence_error - 1) < 0.02
    assert np.abs(model.coef_).max() < 0.1


def test_make_baselines_builds_all_in_registry_order_with_settings():
    baselines = make_baselines(season=7, ar_order=2)
    assert list(baselines) == ["persistence", "seasonal_naive", "drift", "linear_ar"]
    assert baselines["seasonal_naive"].season == 7
    assert baselines["linear_ar"].order == 2
    assert list(make_baselines(["drift", "persistence"])) == ["drift", "persistence"]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: make_baselines(["persistance"]),
            ValueError,
            r"unknown baselines \['persistance'\]",
        ),
        (lambda: Persistence().predict(np.zeros((2, 5)), 1), ValueError, r"history must be 3-D"),
        (lambda: Persistence().predict(WINDOW, 0), ValueError, "horizon must be an integer >= 1"),
        (
            lambda: SeasonalNaive(season=7).predict(WINDOW, 1),
            ValueError,
            "needs a lookback of at least 7",
        ),
        (lambda: SeasonalNaive(season=0), ValueError, "season must be an integer >= 1"),
        (lambda: Drift().predict(WINDOW[:, :1], 1), ValueError, "at least 2 steps"),
        (lambda: LinearAR(order=0), ValueError, "order must be an integer >= 1"),
        (lambda: LinearAR().predict(WINDOW, 1), RuntimeError, "LinearAR is not fitted"),
        (
            lambda: LinearAR(order=6).fit(WINDOW, WINDOW[:, :2]),
            ValueError,
            r"needs a lookback of at least 7 steps \(the last value and 6 lags\), got 6",
        ),
        (
            lambda: LinearAR(order=2).fit(WINDOW, WINDOW[:, :2]).predict(WINDOW, 3),
            ValueError,
            "fitted for horizon 2 .* cannot forecast horizon 3",
        ),
        (
            lambda: LinearAR().fit(np.zeros((0, 6, 1)), np.zeros((0, 2, 1))),
            ValueError,
            "no training windows",
        ),
        (
            lambda: Persistence().fit(np.zeros((4, 6, 1)), np.zeros((3, 2, 1))),
            ValueError,
            "same number of windows",
        ),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
