r"""The nearest-neighbour baselines of time-series classification: 1-NN-ED and 1-NN-DTW.

A recurrent classifier of time series is compared with these, as the UCR archive reports them
for every data set (Dau et al. 2019, "The UCR Time Series Archive"): the label of the closest
training series under the Euclidean distance ("ED"), under unconstrained dynamic time warping
("DTW (w=100)") and under DTW in a Sakoe–Chiba band learned on the training set ("DTW
(learned_w)"). A network that does not beat 1-NN-DTW has not learned more than "which
training series looks most like this one, allowing some stretching in time".

Series are float arrays (T, D): time down the rows, D channels (a 1-D array is one channel);
their lengths may differ. The interface follows scikit-learn: the constructor stores settings,
``fit(series, labels)`` keeps the training set (and learns the band) and returns ``self``,
``predict(series)`` returns the labels; learned state ends in ``_``.

DTW runs in dtaidistance's C kernels (Apache-2.0, needs only numpy; imported at first use).
On this project's 2-core machine the 300 × 300 block of series of length 500
(``benchmarks/bench_dtw.py``) took it 10.8 s in a 10 % band and 56 s unconstrained (4·10^8
cells/s on both cores), against 31 s and 98 s for a vectorised anti-diagonal programme in
torch and 27 s and 62 s for tslearn 0.10's ``cdist_dtw`` on two threads. dtaidistance installs
in 20 MB; tslearn (BSD-2) brings numba and llvmlite (208 MB), scikit-learn, scipy, statsmodels
and pandas (570 MB in all), and aeon (BSD-3) the same numba stack (135 MB of wheels).
"""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .._checks import check_integer, is_number

ArrayLike = Any  # anything np.asarray turns into a float array: list, ndarray, CPU tensor

METRICS = ("euclidean", "dtw")

LEARNED_WINDOWS = tuple(percent / 100 for percent in range(21))
"""The bands ``window="learned"`` tries: 0 %, 1 %, … 20 % of the length, smallest first.

UCR's "DTW (learned_w)" also picks the band by leave-one-out 1-NN on the training set. The
search stops at 20 % because the cost grows with the band: a data set that needs a wider band
gets 20 %, and unconstrained DTW (``window=None``) is the comparison for it.
"""

DTW_CELLS_PER_SECOND = 4e8
"""Dynamic-programme cells dtaidistance fills per second on this project's 2-core CPU machine.

Measured with ``python -m benchmarks dtw`` on an idle machine (univariate, length 500, both
cores: 399 M/s in a 10 % band, 401 M/s unconstrained); three channels cost the same per cell,
and with other work on the cores it falls to 130-200 M/s.
"""

DTW_CELL_LIMIT = 4 * 10**10
"""The work above which a caller should skip 1-NN-DTW: 100 s at :data:`DTW_CELLS_PER_SECOND`.

Compare :func:`dtw_cells` with it. Fashion-MNIST (60,000 x 10,000 series of 784 steps) needs
4·10^15 cells for the learned band (four months at that speed) and 4·10^14 for unconstrained
DTW (eleven days); 1-NN-ED does it in under a minute."""

_ED_BLOCK_BYTES = 2**28  # 256 MiB of float64 distances per block of test series
_DTW_BLOCK_DISTANCES = 2**22  # distances per call to dtaidistance (32 MiB)
# The matmul identity loses ~D·eps relative accuracy; candidates within this are re-checked
# exactly so that ties go to the first training series as a brute-force search would.
_ED_RECHECK = 1e-8


def band_steps(window: float, length: int) -> int:
    """The Sakoe–Chiba radius r = ⌊w·L⌋ in steps, for the window fraction w of length L."""
    # w·L in floating point can land just below the integer it means (0.29 · 100 = 28.99…96).
    return math.floor(window * length + 1e-9)


def band_cells(radius: int | None, length: int) -> int:
    """Cells (i, j) of an L × L programme with |i − j| ≤ r: L(2r + 1) − r(r + 1); L² if None."""
    if radius is None or radius >= length - 1:
        return length * length
    return length * (2 * radius + 1) - radius * (radius + 1)


def dtw_cells(n_train: int, n_test: int, length: int, window: Any = None) -> int:
    """An estimate of the work of 1-NN-DTW, in dynamic-programme cells.

    Counts the train × test block at the band of ``window`` (see :class:`NearestNeighbour`),
    plus, for ``window="learned"``, the leave-one-out search: n(n − 1)/2 training pairs for each
    band of :data:`LEARNED_WINDOWS`, and the test block at the largest band (an upper bound:
    the band chosen is not known before the search). Every series is taken to be ``length``
    long, so with unequal lengths pass the longest. Divide by :data:`DTW_CELLS_PER_SECOND` for
    seconds on this project's 2-core machine; skip DTW above :data:`DTW_CELL_LIMIT`.

    >>> dtw_cells(60_000, 10_000, 784, "learned") > DTW_CELL_LIMIT
    True
    """
    _check_window(window)
    for name, value in (("n_train", n_train), ("n_test", n_test), ("length", length)):
        check_integer(name, value, 0, numpy=True, got=True)
    if window is None:
        return int(n_train) * int(n_test) * band_cells(None, int(length))
    if window == "learned":
        radii = sorted({band_steps(w, int(length)) for w in LEARNED_WINDOWS})
        pairs = int(n_train) * (int(n_train) - 1) // 2
        search = sum(pairs * band_cells(r, int(length)) for r in radii)
        return search + int(n_train) * int(n_test) * band_cells(radii[-1], int(length))
    radius = band_steps(float(window), int(length))
    return int(n_train) * int(n_test) * band_cells(radius, int(length))


def resample(series: ArrayLike, length: int) -> np.ndarray:
    """``series`` (T, D) (or (T,)) linearly interpolated, each channel alone, to (length, D).

    Step k of the result lies at position k·(T − 1)/(length − 1) of the original, so the first
    and last values are kept and the series is stretched or squeezed uniformly in time. A
    single-step series becomes a constant; ``length=1`` keeps the first step.
    """
    check_integer("length", length, 1, numpy=True, got=True)
    values = np.asarray(series, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    steps = values.shape[0]
    if steps == length:
        return values
    if steps == 1:
        return np.repeat(values, length, axis=0)
    positions = np.linspace(0.0, steps - 1, length)
    left = np.minimum(positions.astype(np.int64), steps - 2)
    weight = (positions - left)[:, None]
    return values[left] * (1.0 - weight) + values[left + 1] * weight


def _check_window(window: Any) -> None:
    if window is None or (isinstance(window, str) and window == "learned"):
        return
    if not is_number(window, numpy=True):
        raise ValueError(
            f"window must be None (unconstrained DTW), a fraction of the length in [0, 1], "
            f"or 'learned', got {window!r}"
        )
    if not 0.0 <= float(window) <= 1.0:
        raise ValueError(
            f"window={window!r} is out of range: it is a fraction of the series length, "
            "in [0, 1] (0.1 is a Sakoe-Chiba band of 10 % of the length)"
        )


def _as_series_list(name: str, series: ArrayLike) -> list[np.ndarray]:
    """The series as a list of float64 arrays (T_i, D), checked: same D, finite, T_i >= 1."""
    if isinstance(series, torch.Tensor):
        series = series.detach().cpu().numpy()
    if isinstance(series, np.ndarray) and series.ndim in (2, 3):
        items: Sequence = list(series)  # (N, T) or (N, T, D): one series per row
    elif isinstance(series, np.ndarray) or not isinstance(series, Sequence):
        raise ValueError(
            f"{name} must be a list of arrays (T, D) (or an array (N, T) or (N, T, D)), "
            f"got {type(series).__name__}"
            + (f" of shape {series.shape}" if isinstance(series, np.ndarray) else "")
        )
    else:
        items = series
    if len(items) == 0:
        raise ValueError(f"{name} is empty: there are no series")
    arrays, channels = [], None
    for index, item in enumerate(items):
        try:
            values = np.asarray(item, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name}[{index}] is not an array of numbers: {error}") from None
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2:
            raise ValueError(
                f"{name}[{index}] must be 2-D (steps, channels) or 1-D (steps,), "
                f"got shape {values.shape}"
            )
        if values.shape[0] == 0 or values.shape[1] == 0:
            raise ValueError(f"{name}[{index}] has no steps or no channels: shape {values.shape}")
        if channels is None:
            channels = values.shape[1]
        elif values.shape[1] != channels:
            raise ValueError(
                f"{name}[{index}] has {values.shape[1]} channels, {name}[0] has {channels}: "
                "every series must have the same channels"
            )
        if not np.isfinite(values).all():
            step = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
            raise ValueError(
                f"{name}[{index}] has a non-finite value (NaN or inf) at step {step}; "
                "trim NaN padding of variable-length series, or fill missing values, first"
            )
        arrays.append(values)
    return arrays


class NearestNeighbour:
    r"""1-nearest-neighbour classification of time series, Euclidean or DTW.

    Each series gets the label of the closest training series; of equally close training
    series the first (in training order) wins, so predictions are deterministic.

    **Euclidean** (``metric="euclidean"``): between series x, y ∈ ℝ^{L×D}

    .. math::

        d_{\mathrm{ED}}(x, y) = \Bigl(\sum_{t=1}^{L} \lVert x_t - y_t \rVert^2\Bigr)^{1/2}

    Series of unequal length are first resampled by :func:`resample` (linear interpolation per
    channel, uniform in time) to the longest training length, kept in ``length_``; test series
    are resampled to that same length.

    **DTW** (``metric="dtw"``, dependent DTW for D > 1): between x ∈ ℝ^{n×D} and y ∈ ℝ^{m×D},
    with the cumulative cost

    .. math::

        C_{i,j} = \lVert x_i - y_j \rVert^2 + \min(C_{i-1,j-1},\ C_{i-1,j},\ C_{i,j-1}),
        \qquad C_{0,0} = 0,\quad C_{i,0} = C_{0,j} = \infty,

        d_{\mathrm{DTW}}(x, y) = \sqrt{C_{n,m}}

    over the cells (i, j) of the band

    .. math::

        -\bigl(r + \max(0, n - m)\bigr) \;\le\; j - i \;\le\; r + \max(0, m - n)

    (all cells for unconstrained DTW). For equal lengths this is the Sakoe–Chiba band
    |i − j| ≤ r; for unequal lengths the band of radius r is laid around both the diagonal
    from (1, 1) and the one into (n, m), so a path always exists. The radius r = ⌊w·L⌋ steps
    for the window fraction w and the longest training length L = ``length_`` (UCR's
    convention: the window is a percentage of the length). DTW works on the series as they
    are, without resampling; with w = 0 and equal lengths it is the Euclidean distance.

    Args:
        metric: ``"euclidean"`` or ``"dtw"``.
        window: DTW only. ``None``: unconstrained (UCR's "w=100"); a float w in [0, 1]: the
            band of r = ⌊w·L⌋ steps; ``"learned"``: the band of :data:`LEARNED_WINDOWS` with
            the best leave-one-out 1-NN accuracy on the training set, the smaller on ties (the
            search holds the n × n matrix of training distances). Check :func:`dtw_cells`
            against :data:`DTW_CELL_LIMIT` before a large fit.

    Attributes (after ``fit``):
        length_: the longest training length L (ED resamples to it; DTW's band scales with it).
        channels_: D, the channels every series must have.
        window_: the window fraction used (``None`` for unconstrained DTW and for ED).
        band_: the band radius r in steps actually used (``None`` if unconstrained or ED).
        window_accuracies_: ``window="learned"`` only, {window fraction: leave-one-out
            accuracy} of every distinct band tried.
        labels_: the training labels, in training order.
    """

    def __init__(self, metric: str = "euclidean", window: Any = None):
        if not isinstance(metric, str) or metric not in METRICS:
            raise ValueError(f"metric must be 'euclidean' or 'dtw', got {metric!r}")
        _check_window(window)
        if metric == "euclidean" and window is not None:
            raise ValueError(
                f"window={window!r} applies to metric='dtw' only; the Euclidean distance "
                "has no warping window (it equals DTW with window=0 on equal lengths)"
            )
        self.metric = metric
        self.window = window

    def __repr__(self) -> str:
        if self.metric == "euclidean":
            return "NearestNeighbour(metric='euclidean')"
        return f"NearestNeighbour(metric='dtw', window={self.window!r})"

    dtw_cells = staticmethod(dtw_cells)

    def fit(self, series: ArrayLike, labels: Sequence) -> "NearestNeighbour":
        """Keep the training ``series`` with their ``labels`` (one per series); learn the band
        for ``window="learned"``. Returns ``self``."""
        train = _as_series_list("series", series)
        labels = list(labels)
        if len(labels) != len(train):
            raise ValueError(
                f"labels has {len(labels)} entries for {len(train)} series: give one label "
                "per series"
            )
        self.labels_ = labels
        self.length_ = max(values.shape[0] for values in train)
        self.channels_ = train[0].shape[1]
        self.window_, self.band_ = None, None
        self._train = None if self.metric == "euclidean" else train
        if self.metric == "euclidean":
            self._train_matrix = self._flatten(train)
            self._train_norms = np.einsum("ij,ij->i", self._train_matrix, self._train_matrix)
        elif self.window == "learned":
            self._learn_window(train)
        elif self.window is not None:
            self.window_ = float(self.window)
            self.band_ = band_steps(self.window_, self.length_)
        return self

    def predict(self, series: ArrayLike) -> list:
        """The label of the nearest training series of each of ``series``."""
        test = self._checked_test(series)
        if self.metric == "euclidean":
            nearest = self._nearest_euclidean(self._flatten(test))
        else:
            nearest = np.concatenate(
                [block.argmin(axis=0) for block in self._dtw_blocks(self._train, test)]
            )
        return [self.labels_[int(index)] for index in nearest]

    def distances(self, series: ArrayLike) -> np.ndarray:
        """(len(series), n_train): the distance of each series to each training series.

        The full matrix, for inspection and tests: for large sets prefer ``predict``, which
        keeps only a block of it at a time.
        """
        test = self._checked_test(series)
        if self.metric == "euclidean":
            flat = self._flatten(test)
            squared = self._train_norms[None, :] + np.einsum("ij,ij->i", flat, flat)[:, None]
            squared -= 2.0 * flat @ self._train_matrix.T
            return np.sqrt(np.maximum(squared, 0.0))
        return np.concatenate(list(self._dtw_blocks(self._train, test)), axis=1).T

    def _checked_test(self, series: ArrayLike) -> list[np.ndarray]:
        if not hasattr(self, "labels_"):
            raise RuntimeError(
                "this NearestNeighbour is not fitted: call fit(series, labels) first"
            )
        test = _as_series_list("series", series)
        if test[0].shape[1] != self.channels_:
            raise ValueError(
                f"series have {test[0].shape[1]} channels: "
                f"NearestNeighbour was fitted on {self.channels_}"
            )
        return test

    def _flatten(self, series: list[np.ndarray]) -> np.ndarray:
        """(N, L·D): each series resampled to ``length_`` and laid out as one row."""
        rows = np.empty((len(series), self.length_ * self.channels_), dtype=np.float64)
        for row, values in zip(rows, series, strict=True):
            row[:] = resample(values, self.length_).reshape(-1)
        return rows

    def _nearest_euclidean(self, flat: np.ndarray) -> np.ndarray:
        """Index of the nearest training row of each row of ``flat``, the first on ties.

        ||a − b||² = ||a||² + ||b||² − 2a·b in float64, one block of test rows at a time so
        the (block, n_train) matrix stays under ``_ED_BLOCK_BYTES``.
        """
        train = torch.from_numpy(self._train_matrix)
        train_norms = torch.from_numpy(self._train_norms)
        test_norms = np.einsum("ij,ij->i", flat, flat)
        block = max(1, _ED_BLOCK_BYTES // (8 * len(self._train_matrix)))
        nearest = np.empty(len(flat), dtype=np.int64)
        scale = float(self._train_norms.max())
        for start in range(0, len(flat), block):
            rows = torch.from_numpy(flat[start : start + block])
            norms = torch.from_numpy(test_norms[start : start + block])
            squared = rows @ train.T
            squared.mul_(-2.0).add_(train_norms[None, :]).add_(norms[:, None])
            best, index = squared.min(dim=1)
            nearest[start : start + block] = index.numpy()
            # Rows whose minimum is shared (to rounding) by several training series: the
            # identity's rounding must not decide which of them comes first.
            tolerance = _ED_RECHECK * (norms + scale) + 1e-300
            close = squared <= (best + tolerance)[:, None]
            for local in torch.nonzero(close.sum(dim=1) > 1).flatten().tolist():
                candidates = torch.nonzero(close[local]).flatten().numpy()
                exact = np.sum((self._train_matrix[candidates] - flat[start + local]) ** 2, 1)
                nearest[start + local] = candidates[int(np.argmin(exact))]
        return nearest

    def _dtw_blocks(self, train: list[np.ndarray], test: list[np.ndarray], band=...):
        """Yield (n_train, block) DTW distance blocks of train × test, test in order."""
        band = self.band_ if band is ... else band
        block = max(1, _DTW_BLOCK_DISTANCES // len(train))
        for start in range(0, len(test), block):
            chunk = test[start : start + block]
            yield _dtw_matrix(train, chunk, band).reshape(len(train), len(chunk))

    def _learn_window(self, train: list[np.ndarray]) -> None:
        """Pick the band of LEARNED_WINDOWS with the best leave-one-out 1-NN accuracy."""
        ids: dict = {}
        label_ids = np.asarray([ids.setdefault(label, len(ids)) for label in self.labels_])
        accuracies: dict[float, float] = {}
        best_window, best_band, best_accuracy = 0.0, 0, -1.0
        tried: set[int] = set()
        for window in LEARNED_WINDOWS:
            band = band_steps(window, self.length_)
            if band in tried:  # a short series maps several fractions to one band
                continue
            tried.add(band)
            square = _dtw_square(train, band)
            np.fill_diagonal(square, np.inf)
            accuracy = float(np.mean(label_ids[square.argmin(axis=1)] == label_ids))
            accuracies[window] = accuracy
            # Strictly better only: ties keep the smaller band found first.
            if accuracy > best_accuracy:
                best_window, best_band, best_accuracy = window, band, accuracy
        self.window_, self.band_ = best_window, best_band
        self.window_accuracies_ = accuracies


def _library_window(band: int | None) -> int | None:
    """dtaidistance's ``window`` for our radius r: it allows |i − j| < window (widened by the
    length difference), and reads 0 or None as no band, so r steps are window = r + 1."""
    return None if band is None else band + 1


def _dtw_module(channels: int):
    # Imported here so that `import rnnkit` does not load the C extension.
    if channels == 1:
        from dtaidistance import dtw

        return dtw
    from dtaidistance import dtw_ndim

    return dtw_ndim


def _library_series(series: list[np.ndarray]) -> list[np.ndarray]:
    """What dtaidistance reads: C-contiguous float64, 1-D for one channel."""
    if series[0].shape[1] == 1:
        return [np.ascontiguousarray(values[:, 0]) for values in series]
    return [np.ascontiguousarray(values) for values in series]


def _dtw_matrix(train: list[np.ndarray], test: list[np.ndarray], band: int | None) -> np.ndarray:
    """The n_train · n_test DTW distances, row-major (train, test), in one library call."""
    library = _dtw_module(train[0].shape[1])
    joined = _library_series(train) + _library_series(test)
    block = ((0, len(train)), (len(train), len(joined)))
    values = library.distance_matrix_fast(
        joined, block=block, compact=True, window=_library_window(band)
    )
    return np.asarray(values, dtype=np.float64)


def _dtw_square(series: list[np.ndarray], band: int | None) -> np.ndarray:
    """The symmetric n × n DTW matrix of ``series`` (the diagonal 0): n(n − 1)/2 programmes."""
    count = len(series)
    square = np.zeros((count, count))
    if count < 2:
        return square
    library = _dtw_module(series[0].shape[1])
    upper = library.distance_matrix_fast(
        _library_series(series), compact=True, window=_library_window(band)
    )
    rows, columns = np.triu_indices(count, k=1)
    square[rows, columns] = upper
    square[columns, rows] = upper
    return square
