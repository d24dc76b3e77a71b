"""Time-series preparation: chronological splits, target transforms, scalers and windows.

The rule throughout is no look-ahead. A window's inputs end at its *origin* row ``t``; its
targets are rows ``t+1 … t+horizon``. A window belongs to the part (train / validation / test)
that holds all of its targets; its inputs may reach back into an earlier part, which is the
past and fair to use. Scalers and every other fitted statistic see training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

TRANSFORMS = ("none", "diff", "returns", "log_returns")
SCALERS = ("minmax", "standard", "none")


# --- target transforms -------------------------------------------------------------------------


def transform_target(levels: np.ndarray, kind: str) -> np.ndarray:
    """The target series as the model sees it, row for row; row 0 is NaN for a change.

    - ``none``: the levels themselves (the tutorials).
    - ``diff``: ``y_t - y_{t-1}``: level-free, so prices above anything seen in training are
      no harder than any other.
    - ``returns``: ``y_t / y_{t-1} - 1``; ``log_returns``: ``log(y_t / y_{t-1})``: also free of
      the series' scale; they need positive values.
    """
    _check_choice("transform", kind, TRANSFORMS)
    if kind == "none":
        return levels.copy()
    if kind in ("returns", "log_returns") and (levels <= 0).any():
        raise ValueError(
            f"transform={kind!r} needs positive values, but the target has "
            f"{int((levels <= 0).sum())} values <= 0; use transform='diff'"
        )
    changed = np.full_like(levels, np.nan)
    if kind == "diff":
        changed[1:] = levels[1:] - levels[:-1]
    elif kind == "returns":
        changed[1:] = levels[1:] / levels[:-1] - 1
    else:
        changed[1:] = np.log(levels[1:] / levels[:-1])
    return changed


def invert_target(changes: np.ndarray, last: np.ndarray, kind: str) -> np.ndarray:
    """Levels from the transformed values of ``horizon`` future steps.

    ``changes`` is (N, horizon, k); ``last`` is (N, k), each window's last observed level.
    """
    _check_choice("transform", kind, TRANSFORMS)
    last = last[:, None, :]
    if kind == "none":
        return changes
    if kind == "diff":
        return last + np.cumsum(changes, axis=1)
    if kind == "returns":
        return last * np.cumprod(1 + changes, axis=1)
    return last * np.exp(np.cumsum(changes, axis=1))


def first_valid_row(kind: str) -> int:
    """The first row a transformed series has a value for."""
    return 0 if kind == "none" else 1


# --- scalers -----------------------------------------------------------------------------------


@dataclass
class Scaler:
    """Per-column affine scaling ``(x - shift) / scale``, fitted on training rows only.

    ``minmax`` maps the training range to [0, 1] (scikit-learn's MinMaxScaler, the tutorials'
    choice); ``standard`` to zero mean and unit variance; ``none`` leaves values alone. A
    constant column gets scale 1, so it maps to 0 instead of dividing by zero.
    """

    kind: str = "standard"
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None

    def __post_init__(self):
        _check_choice("scaler", self.kind, SCALERS)

    def fit(self, values: np.ndarray) -> Scaler:
        values = np.asarray(values, np.float64)
        if self.kind == "minmax":
            shift, scale = values.min(0), values.max(0) - values.min(0)
        elif self.kind == "standard":
            shift, scale = values.mean(0), values.std(0)
        else:
            shift, scale = np.zeros(values.shape[1]), np.ones(values.shape[1])
        self.shift, self.scale = shift, np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, values: np.ndarray, columns=slice(None)) -> np.ndarray:
        """Scale ``values`` (…, columns); ``columns`` picks which fitted columns they are."""
        self._check_fitted()
        return (values - self.shift[columns]) / self.scale[columns]

    def inverse(self, values: np.ndarray, columns=slice(None)) -> np.ndarray:
        self._check_fitted()
        return values * self.scale[columns] + self.shift[columns]

    def to_dict(self) -> dict:
        self._check_fitted()
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> Scaler:
        return cls(state["kind"], np.asarray(state["shift"]), np.asarray(state["scale"]))

    def _check_fitted(self) -> None:
        if self.shift is None:
            raise RuntimeError("the scaler is not fitted: call fit(training rows) first")


# --- splits and windows ------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Row boundaries: train is ``[0, val_start)``, validation ``[val_start, test_start)``,
    test ``[test_start, rows)``."""

    val_start: int
    test_start: int
    rows: int

    def part(self, name: str) -> tuple[int, int]:
        """The rows ``[start, stop)`` of part ``name``: "train", "validation" or "test"."""
        bounds = {
            "train": (0, self.val_start),
            "validation": (self.val_start, self.test_start),
            "test": (self.test_start, self.rows),
        }
        return bounds[name]


def chronological_split(
    dates: pd.DatetimeIndex | None,
    rows: int,
    *,
    val: float = 0.1,
    test: float = 0.2,
    val_start=None,
    test_start=None,
) -> Split:
    """Split rows in time order by fractions, or at dates (the first row on or after each).

    ``test_start`` given without ``val_start`` keeps the validation part at ``val`` of the rows
    before the test part.
    """
    for name, fraction in (("val", val), ("test", test)):
        if not 0 <= fraction < 1:
            raise ValueError(f"{name}={fraction!r} must be a fraction in [0, 1)")
    if test_start is not None:
        test_row = _row_at(dates, test_start, "test_start")
    else:
        test_row = rows - round(rows * test)
    if val_start is not None:
        val_row = _row_at(dates, val_start, "val_start")
    else:
        val_row = test_row - round(test_row * val)
    if not 0 < val_row <= test_row < rows:
        span = f"{dates[0].date()} to {dates[-1].date()}" if dates is not None else "rows"
        given = {"val": val} if val_start is None else {"val_start": val_start}
        given.update({"test": test} if test_start is None else {"test_start": test_start})
        settings = ", ".join(f"{k}={v!r}" for k, v in given.items())
        raise ValueError(
            f"{settings} split the {rows} rows ({span}) into train [0, {val_row}), validation "
            f"[{val_row}, {test_row}), test [{test_row}, {rows}); train and test must not be "
            "empty, and validation must come before test"
        )
    return Split(val_row, test_row, rows)


def window_origins(
    targets: tuple[int, int], lookback: int, horizon: int, first_valid: int = 0
) -> np.ndarray:
    """The origin rows ``t`` of every window whose targets ``t+1 … t+horizon`` all lie in the
    rows ``targets = [start, stop)`` and whose inputs ``t-lookback+1 … t`` start at or after
    ``first_valid``."""
    start, stop = targets
    first = max(start - 1, first_valid + lookback - 1)
    return np.arange(first, stop - horizon, dtype=np.int64)


def past_windows(values: np.ndarray, origins: np.ndarray, lookback: int) -> np.ndarray:
    """``values[t-lookback+1 : t+1]`` for every origin ``t``: (N, lookback, columns), a copy."""
    windows = sliding_window_view(values, lookback, axis=0)  # (T-lookback+1, columns, lookback)
    return np.ascontiguousarray(windows[origins - lookback + 1].transpose(0, 2, 1))


def future_windows(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """``values[t+1 : t+1+horizon]`` for every origin ``t``: (N, horizon, columns), a copy."""
    windows = sliding_window_view(values, horizon, axis=0)
    return np.ascontiguousarray(windows[origins + 1].transpose(0, 2, 1))


def _row_at(dates: pd.DatetimeIndex | None, when, name: str) -> int:
    if dates is None:
        if isinstance(when, (int, np.integer)):
            return int(when)
        raise ValueError(f"{name}={when!r} is a date, but the series has no date column")
    try:
        stamp = pd.Timestamp(when)
    except (ValueError, TypeError):
        raise ValueError(f"{name}={when!r} is not a date (write it as YYYY-MM-DD)") from None
    return int(dates.searchsorted(stamp))


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {choices}")
