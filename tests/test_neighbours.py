"""1-NN-ED and 1-NN-DTW against brute force, the window's meaning, the learned band, errors."""

import math
import subprocess
import sys

import numpy as np
import pytest

from rnnkit.models import NearestNeighbour
from rnnkit.models import neighbours as nb


def brute_dtw(x: np.ndarray, y: np.ndarray, radius: int | None) -> float:
    """sqrt(C[n, m]) of the plain O(n·m) programme, cells outside the documented band skipped:
    -(r + max(0, n - m)) <= j - i <= r + max(0, m - n), costs squared Euclidean."""
    n, m = len(x), len(y)
    cost = np.full((n + 1, m + 1), np.inf)
    cost[0, 0] = 0.0
    for i in range(n):
        for j in range(m):
            if radius is not None and not (
                -(radius + max(0, n - m)) <= j - i <= radius + max(0, m - n)
            ):
                continue
            step = float(np.sum((x[i] - y[j]) ** 2))
            cost[i + 1, j + 1] = step + min(cost[i, j], cost[i, j + 1], cost[i + 1, j])
    return math.sqrt(cost[n, m])


def interpolate(series: np.ndarray, length: int) -> np.ndarray:
    """Each channel through np.interp on [0, 1]: what resampling to ``length`` must give."""
    old, new = np.linspace(0, 1, len(series)), np.linspace(0, 1, length)
    return np.stack([np.interp(new, old, series[:, c]) for c in range(series.shape[1])], axis=1)


def random_series(rng, count: int, channels: int, lengths: tuple[int, int]) -> list[np.ndarray]:
    return [
        rng.normal(size=(int(rng.integers(lengths[0], lengths[1] + 1)), channels)).cumsum(0)
        for _ in range(count)
    ]


def labels_for(count: int) -> list[str]:
    return [f"class{k % 3}" for k in range(count)]


# ------------------------------------------------------------------------- DTW distances


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("lengths", [(18, 18), (11, 23)], ids=["equal", "unequal"])
@pytest.mark.parametrize("window", [None, 0.0, 0.1, 0.25, 1.0])
def test_dtw_distances_equal_a_brute_force_programme(channels, lengths, window):
    rng = np.random.default_rng(channels * 100 + lengths[0])
    train = random_series(rng, 5, channels, lengths)
    test = random_series(rng, 4, channels, lengths)
    model = NearestNeighbour("dtw", window=window).fit(train, labels_for(5))
    assert model.length_ == max(len(s) for s in train)
    radius = None if window is None else math.floor(window * model.length_ + 1e-9)
    assert model.band_ == radius
    expected = np.array([[brute_dtw(t, s, radius) for s in train] for t in test])
    np.testing.assert_allclose(model.distances(test), expected, rtol=1e-12, atol=1e-12)
    nearest = [labels_for(5)[k] for k in expected.argmin(axis=1)]
    assert model.predict(test) == nearest
    if window == 0.1:  # r = 1 or 2 steps: the band must bind, or this test checks nothing
        unconstrained = np.array([[brute_dtw(t, s, None) for s in train] for t in test])
        assert np.all(expected >= unconstrained - 1e-12)
        assert np.any(expected > unconstrained + 1e-6)


@pytest.mark.parametrize("channels", [1, 2])
def test_a_shift_of_r_steps_is_free_in_band_r_and_not_in_band_r_minus_1(channels):
    # |i - j| <= r, not < r: a spike moved by exactly r steps aligns inside the band of r.
    length, shift = 50, 5
    spike, moved = np.zeros((length, channels)), np.zeros((length, channels))
    spike[20], moved[20 + shift] = 1.0, 1.0
    inside = NearestNeighbour("dtw", window=shift / length).fit([spike], ["a"])
    outside = NearestNeighbour("dtw", window=(shift - 1) / length).fit([spike], ["a"])
    assert (inside.band_, outside.band_) == (shift, shift - 1)
    assert inside.distances([moved])[0, 0] == 0.0
    assert outside.distances([moved])[0, 0] == pytest.approx(math.sqrt(2 * channels))


def test_dtaidistance_window_allows_i_minus_j_below_it_widened_by_the_length_difference():
    # What the conversion window = r + 1 rests on, checked on the library itself.
    from dtaidistance import dtw

    spike, moved = np.zeros(40), np.zeros(40)
    spike[10], moved[15] = 1.0, 1.0
    assert dtw.distance_fast(spike, moved, window=6) == 0.0  # |i - j| = 5 < 6
    assert dtw.distance_fast(spike, moved, window=5) == pytest.approx(math.sqrt(2))
    assert dtw.distance_fast(spike, moved, window=0) == 0.0  # 0: no band
    rng = np.random.default_rng(2)
    for n, m in [(9, 14), (14, 9)]:
        x, y = rng.normal(size=n), rng.normal(size=m)
        for window in (1, 2, 3):
            assert dtw.distance_fast(x, y, window=window) == pytest.approx(
                brute_dtw(x[:, None], y[:, None], window - 1), rel=1e-12
            )


def test_the_band_reaches_both_corners_for_unequal_lengths():
    # Band 0 between 10 and 14 steps: still a path (widened by the length difference).
    rng = np.random.default_rng(3)
    short, long = rng.normal(size=(10, 1)), rng.normal(size=(14, 1))
    model = NearestNeighbour("dtw", window=0.0).fit([short, long], ["s", "l"])
    distances = model.distances([long, short])
    assert np.isfinite(distances).all()
    assert distances[0, 0] == pytest.approx(brute_dtw(long, short, 0), rel=1e-12)
    assert distances[1, 1] == pytest.approx(brute_dtw(short, long, 0), rel=1e-12)


def test_dtw_blocks_of_test_series_give_the_same_answer(monkeypatch):
    rng = np.random.default_rng(4)
    train, test = random_series(rng, 6, 1, (15, 20)), random_series(rng, 7, 1, (15, 20))
    model = NearestNeighbour("dtw", window=0.2).fit(train, labels_for(6))
    whole, labels = model.distances(test), model.predict(test)
    monkeypatch.setattr(nb, "_DTW_BLOCK_DISTANCES", 12)  # 2 test series per call
    np.testing.assert_array_equal(model.distances(test), whole)
    assert model.predict(test) == labels


# ------------------------------------------------------------------------- Euclidean


def test_euclidean_equals_brute_force_on_resampled_series(monkeypatch):
    rng = np.random.default_rng(5)
    train = random_series(rng, 40, 2, (20, 30))
    test = random_series(rng, 25, 2, (15, 40))
    labels = labels_for(40)
    model = NearestNeighbour().fit(train, labels)
    assert model.length_ == max(len(s) for s in train)
    flat_train = np.stack([interpolate(s, model.length_).ravel() for s in train])
    flat_test = np.stack([interpolate(s, model.length_).ravel() for s in test])
    expected = np.sqrt(((flat_test[:, None, :] - flat_train[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(model.distances(test), expected, rtol=1e-10)
    nearest = [labels[k] for k in expected.argmin(axis=1)]
    assert model.predict(test) == nearest
    monkeypatch.setattr(nb, "_ED_BLOCK_BYTES", 8 * 40 * 3)  # 3 test series per block
    assert model.predict(test) == nearest


@pytest.mark.parametrize("metric", ["euclidean", "dtw"])
def test_ties_go_to_the_first_training_series(metric):
    rng = np.random.default_rng(6)
    middle = rng.integers(-5, 5, size=(30, 1)).astype(float)
    offset = rng.integers(-2, 3, size=(30, 1)).astype(float)
    # Exactly as far from `middle` on either side, and a duplicate of the first.
    # (Band 0 for DTW: warping would break the symmetry of the two sides.)
    window = 0.0 if metric == "dtw" else None
    train = [middle + 7.0, middle + offset, middle - offset, middle + offset]
    model = NearestNeighbour(metric, window).fit(train, ["far", "first", "second", "dup"])
    assert model.predict([middle]) == ["first"]
    model = NearestNeighbour(metric, window).fit(train[::-1], ["dup", "second", "first", "far"])
    assert model.predict([middle]) == ["dup"]
    if metric == "dtw":  # duplicates tie under any band
        model = NearestNeighbour("dtw").fit([middle + offset, middle, middle], ["a", "b", "c"])
        assert model.predict([middle + 0.25]) == ["b"]


def test_dtw_with_window_zero_is_euclidean_on_equal_lengths():
    rng = np.random.default_rng(7)
    train, test = random_series(rng, 30, 3, (25, 25)), random_series(rng, 20, 3, (25, 25))
    labels = labels_for(30)
    euclidean = NearestNeighbour("euclidean").fit(train, labels)
    dtw = NearestNeighbour("dtw", window=0.0).fit(train, labels)
    np.testing.assert_allclose(dtw.distances(test), euclidean.distances(test), rtol=1e-10)
    assert dtw.predict(test) == euclidean.predict(test)


def test_resampling_is_linear_per_channel_and_keeps_the_ends():
    series = np.array([[0.0, 10.0], [1.0, 30.0], [3.0, 20.0]])
    stretched = nb.resample(series, 5)
    np.testing.assert_allclose(stretched, [[0, 10], [0.5, 20], [1, 30], [2, 25], [3, 20]])
    np.testing.assert_allclose(nb.resample(stretched, 3), series)
    np.testing.assert_allclose(nb.resample(series, 4), interpolate(series, 4))
    assert nb.resample(np.array([2.0]), 3).tolist() == [[2.0], [2.0], [2.0]]
    assert nb.resample(series, 1).tolist() == [[0.0, 10.0]]


def test_euclidean_classifies_series_of_other_lengths_by_their_resampled_shape():
    steps = np.linspace(0, 1, 60)
    shapes = {"rise": steps, "fall": 1 - steps, "hump": np.sin(np.pi * steps)}
    model = NearestNeighbour().fit([v[:, None] for v in shapes.values()], list(shapes))
    assert model.length_ == 60
    # Slower and faster copies (other lengths, before and after) keep their labels.
    for length in (17, 60, 150):
        grid = np.linspace(0, 1, length)
        copies = [np.interp(grid, steps, v)[:, None] for v in shapes.values()]
        assert model.predict(copies) == list(shapes)


def test_inputs_may_be_arrays_and_labels_any_objects():
    rng = np.random.default_rng(8)
    train = rng.normal(size=(6, 12))  # (N, T): six univariate series
    model = NearestNeighbour("dtw", window=0.1).fit(train, [0, 1, 2, 0, 1, 2])
    assert model.channels_ == 1
    assert model.predict(train[None, 4, :, None]) == [1]  # (N, T, D) too
    assert repr(model) == "NearestNeighbour(metric='dtw', window=0.1)"


# ------------------------------------------------------------------------- learned window


def spikes_problem(length: int, shift: int) -> tuple[list[np.ndarray], list[str]]:
    """Class "spike": one spike at 20 and one at 20 + shift. Class "flat": zeros.

    In a band narrower than the shift the two spikes cannot align, and each spike is closer
    to a flat series (one unmatched spike) than to the other spike (two): leave-one-out
    accuracy 1/2 below the shift, 1 from it on.
    """
    first, second = np.zeros((length, 1)), np.zeros((length, 1))
    first[20], second[20 + shift] = 1.0, 1.0
    return [first, np.zeros((length, 1)), second, np.zeros((length, 1))], [
        "spike",
        "flat",
        "spike",
        "flat",
    ]


def test_the_learned_window_is_the_smallest_band_that_covers_the_shift():
    series, labels = spikes_problem(length=100, shift=4)
    model = NearestNeighbour("dtw", window="learned").fit(series, labels)
    assert (model.window_, model.band_) == (0.04, 4)
    assert list(model.window_accuracies_) == list(nb.LEARNED_WINDOWS)
    assert [model.window_accuracies_[p / 100] for p in range(6)] == [0.5] * 4 + [1.0] * 2
    assert min(model.window_accuracies_[p / 100] for p in range(4, 21)) == 1.0
    assert model.predict([np.roll(series[0], 3)]) == ["spike"]


def test_the_learned_window_takes_the_smallest_on_ties_and_tries_each_band_once():
    # Length 20: the 21 fractions give the bands 0..4 steps, each tried once; the classes
    # differ so much that every band is perfect, and the smallest (0: Euclidean) wins.
    rng = np.random.default_rng(9)
    series = [rng.normal(size=(20, 1)) + 50 * (k % 2) for k in range(6)]
    model = NearestNeighbour("dtw", window="learned").fit(series, ["a", "b"] * 3)
    assert model.window_accuracies_ == {0.0: 1.0, 0.05: 1.0, 0.1: 1.0, 0.15: 1.0, 0.2: 1.0}
    assert (model.window_, model.band_) == (0.0, 0)


# ------------------------------------------------------------------------- work estimate


def test_band_cells_counts_the_cells_of_the_band():
    for length in (1, 7, 30):
        for radius in (0, 1, 3, 29, None):
            i, j = np.indices((length, length))
            inside = np.abs(i - j) <= (length if radius is None else radius)
            assert nb.band_cells(radius, length) == int(inside.sum())


def test_dtw_cells_estimates_the_work_and_the_limit_skips_fashion_mnist():
    assert nb.dtw_cells(3, 2, 10) == 6 * 100
    assert nb.dtw_cells(3, 2, 10, 0.1) == 6 * nb.band_cells(1, 10)
    bands = range(0, 3)  # length 10: fractions 0..0.2 are bands 0, 1, 2
    learned = 3 * sum(nb.band_cells(r, 10) for r in bands) + 6 * nb.band_cells(2, 10)
    assert nb.dtw_cells(3, 2, 10, "learned") == learned
    assert NearestNeighbour.dtw_cells(60_000, 10_000, 784, "learned") > nb.DTW_CELL_LIMIT
    assert nb.dtw_cells(60_000, 10_000, 784, 0.0) > nb.DTW_CELL_LIMIT
    # GunPoint-sized (50 × 150 of 150 steps) takes seconds.
    assert nb.dtw_cells(50, 150, 150, "learned") < 10 * nb.DTW_CELLS_PER_SECOND
    seconds = nb.DTW_CELL_LIMIT / nb.DTW_CELLS_PER_SECOND
    assert 60 <= seconds <= 120


def test_importing_rnnkit_does_not_load_dtaidistance():
    code = "import sys, rnnkit, rnnkit.models; print('dtaidistance' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


# ------------------------------------------------------------------------- errors

GOOD = [np.zeros((5, 2)), np.ones((6, 2))]


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: NearestNeighbour("cosine"), ValueError, r"metric must be 'euclidean' or 'dtw', got 'cosine'"),
        (lambda: NearestNeighbour("dtw", window=1.5), ValueError, r"window=1.5 is out of range.*\[0, 1\]"),
        (lambda: NearestNeighbour("dtw", window=-0.1), ValueError, r"window=-0.1 is out of range"),
        (lambda: NearestNeighbour("dtw", window="learn"), ValueError, r"window must be None.*or 'learned', got 'learn'"),
        (lambda: NearestNeighbour("dtw", window=True), ValueError, r"window must be None.*got True"),
        (lambda: NearestNeighbour("euclidean", window=0.1), ValueError, r"window=0.1 applies to metric='dtw' only"),
        (lambda: NearestNeighbour().fit([], []), ValueError, r"series is empty"),
        (lambda: NearestNeighbour().fit([np.zeros((0, 2))], ["a"]), ValueError, r"series\[0\] has no steps or no channels: shape \(0, 2\)"),
        (lambda: NearestNeighbour().fit([np.zeros((4, 2)), np.zeros((4, 3))], ["a", "b"]), ValueError, r"series\[1\] has 3 channels, series\[0\] has 2"),
        (lambda: NearestNeighbour().fit([np.zeros((4, 2)), np.array([[0, 1], [np.nan, 1.0]])], ["a", "b"]), ValueError, r"series\[1\] has a non-finite value \(NaN or inf\) at step 1"),
        (lambda: NearestNeighbour().fit([np.zeros((2, 2, 2))], ["a"]), ValueError, r"series\[0\] must be 2-D .* got shape \(2, 2, 2\)"),
        (lambda: NearestNeighbour().fit([["a", "b"]], ["a"]), ValueError, r"series\[0\] is not an array of numbers"),
        (lambda: NearestNeighbour().fit(np.zeros(5), ["a"]), ValueError, r"series must be a list of arrays \(T, D\).*shape \(5,\)"),
        (lambda: NearestNeighbour().fit(GOOD, ["a"]), ValueError, r"labels has 1 entries for 2 series"),
        (lambda: NearestNeighbour().predict(GOOD), RuntimeError, r"not fitted: call fit\(series, labels\) first"),
        (lambda: NearestNeighbour("dtw").fit(GOOD, ["a", "b"]).predict([np.zeros((5, 1))]), ValueError, r"series have 1 channels: NearestNeighbour was fitted on 2"),
        (lambda: NearestNeighbour().fit(GOOD, ["a", "b"]).predict([np.full((5, 2), np.inf)]), ValueError, r"series\[0\] has a non-finite value .* at step 0"),
        (lambda: nb.dtw_cells(-1, 2, 10), ValueError, r"n_train must be an integer >= 0, got -1"),
        (lambda: nb.resample(np.zeros(3), 0), ValueError, r"length must be an integer >= 1, got 0"),
    ],
)  # fmt: skip
def test_bad_input_is_named(make, error, match):
    with pytest.raises(error, match=match):
        make()
