"""Feature sequences prepared as the time-series field prepares them: gaps filled, series
z-normalised, channels standardised on the training part only.

A series is a float array (T, D): time down the rows, D channels. Missing values are NaN
(``?`` in a ``.ts`` file).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NORMALISATIONS = ("channel", "series")


@dataclass
class Gaps:
    """What ``fill_gaps`` did to a collection of series, for the run's report."""

    series: int = 0  # series that had a missing value
    filled: int = 0  # values filled by interpolation
    trimmed: int = 0  # steps dropped from the ends: wholly missing, like unequal lengths

    def add(self, filled: int, trimmed: int) -> None:
        self.series += bool(filled or trimmed)
        self.filled += filled
        self.trimmed += trimmed

    def as_dict(self) -> dict:
        return {"series": self.series, "filled": self.filled, "trimmed": self.trimmed}


def fill_gaps(x: np.ndarray, where: str, gaps: Gaps | None = None) -> np.ndarray:
    """``x`` (T, D) without NaN: steps missing in every channel at the start or the end are
    dropped (the UCR archive pads shorter series with NaN this way); any other missing value
    is interpolated linearly between its channel's neighbours, or takes the nearest value
    before the first or after the last observed one. ``gaps`` counts what was done.

    Infinite values, and a channel with no value at all, are refused with ``where`` named.
    """
    if np.isinf(x).any():
        step = int(np.argwhere(np.isinf(x))[0, 0])
        raise ValueError(f"{where}: step {step + 1} has an infinite value")
    missing = np.isnan(x)
    if not missing.any():
        return x
    observed = np.flatnonzero(~missing.all(1))
    if len(observed) == 0:
        raise ValueError(f"{where}: every value of the series is missing")
    first, last = observed[0], observed[-1] + 1
    trimmed = len(x) - (last - first)
    x, missing = x[first:last].copy(), missing[first:last]
    steps = np.arange(len(x))
    for channel in np.flatnonzero(missing.any(0)):
        known = ~missing[:, channel]
        if not known.any():
            raise ValueError(
                f"{where}: channel {channel + 1} has no value at all; drop the channel or "
                "fill it before training"
            )
        x[~known, channel] = np.interp(steps[~known], steps[known], x[known, channel])
    if gaps is not None:
        gaps.add(int(missing.sum()), trimmed)
    return x


def z_normalise(x: np.ndarray) -> np.ndarray:
    r"""Each channel of one series shifted and scaled to mean 0 and standard deviation 1,
    :math:`(x_t - \bar x) / \sigma_x` (a constant channel becomes 0): the UCR archive's
    convention, which compares shapes whatever a sensor's offset and gain."""
    std = x.std(0)
    return (x - x.mean(0)) / np.where(std > 0, std, 1.0)


@dataclass
class ChannelScaler:
    """Per-channel standardisation fitted on training series only: every step of every
    training series counts once, so long series weigh more, as in the loss."""

    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))

    @classmethod
    def fit(cls, series: list[np.ndarray]) -> ChannelScaler:
        steps = np.concatenate(series).astype(np.float64)
        std = steps.std(0)
        return cls(steps.mean(0).astype(np.float32),
                   np.where(std > 0, std, 1.0).astype(np.float32))  # fmt: skip

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> ChannelScaler:
        return cls(np.array(state["mean"], np.float32), np.array(state["std"], np.float32))
