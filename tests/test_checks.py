"""rnnkit._checks: the predicates and checks every part's argument checks are made from.

What counts as an integer or a number, on the values people pass: ints, bools, floats, NaN,
infinities, None, strings, NumPy scalars and fractions; and the two forms of the message.
"""

import math
from fractions import Fraction

import numpy as np
import pytest

from rnnkit._checks import (
    check_choice,
    check_finite,
    check_flag,
    check_fraction,
    check_integer,
    check_positive,
    expected,
    is_finite,
    is_fraction,
    is_integer,
    is_number,
    is_positive,
    refuse,
)

NAN, INF = math.nan, math.inf


# ---------------------------------------------------------------- predicates


@pytest.mark.parametrize(
    ("value", "plain", "numpy"),
    [
        (0, True, True),
        (-3, True, True),
        (True, False, False),  # a bool is never an integer
        (False, False, False),
        (1.0, False, False),  # a whole float is not an integer
        (NAN, False, False),
        (INF, False, False),
        (None, False, False),
        ("1", False, False),
        (np.int64(1), False, True),  # NumPy's integers only with numpy=True
        (np.int8(1), False, True),
        (np.uint32(1), False, True),
        (np.bool_(True), False, False),
        (np.float64(1.0), False, False),
        (Fraction(2), False, False),
    ],
)
def test_is_integer(value, plain, numpy):
    assert is_integer(value) is plain
    assert is_integer(value, numpy=True) is numpy


def test_is_integer_bounds():
    assert is_integer(3, 3) and is_integer(3, 1, 3) and is_integer(3, maximum=3)
    assert not is_integer(2, 3) and not is_integer(4, 1, 3) and not is_integer(4, maximum=3)
    assert is_integer(np.int64(5), 5, numpy=True) and not is_integer(np.int64(4), 5, numpy=True)
    assert not is_integer(True, 1) and not is_integer(False, maximum=1)


@pytest.mark.parametrize(
    ("value", "plain", "numpy"),
    [
        (0, True, True),
        (2.5, True, True),
        (NAN, True, True),  # NaN is a number; the ranges below refuse it
        (INF, True, True),
        (-INF, True, True),
        (True, False, False),
        (None, False, False),
        ("1.5", False, False),
        (np.float64(0.5), True, True),  # a subclass of float
        (np.float32(0.5), False, True),
        (np.int64(1), False, True),
        (np.bool_(False), False, False),
        (Fraction(1, 2), False, True),  # a numbers.Real
        (complex(1, 0), False, False),
    ],
)
def test_is_number(value, plain, numpy):
    assert is_number(value) is plain
    assert is_number(value, numpy=True) is numpy


@pytest.mark.parametrize(
    ("value", "positive", "nonnegative", "finite"),
    [
        (1, True, True, True),
        (0.0, False, True, True),
        (0, False, True, True),
        (-1e-9, False, False, True),
        (NAN, False, False, False),
        (INF, True, True, False),
        (-INF, False, False, False),
        (True, False, False, False),
        (None, False, False, False),
    ],
)
def test_is_positive_and_is_finite(value, positive, nonnegative, finite):
    assert is_positive(value) is positive
    assert is_positive(value, zero=True) is nonnegative
    assert is_finite(value) is finite


@pytest.mark.parametrize(
    ("value", "inclusions"),
    [
        # "[0, 1)", "(0, 1)", "[0, 1]", "(0, 1]"
        (0, (True, False, True, False)),
        (0.5, (True, True, True, True)),
        (1, (False, False, True, True)),
        (1.0, (False, False, True, True)),
        (-0.1, (False, False, False, False)),
        (NAN, (False, False, False, False)),
        (INF, (False, False, False, False)),
        (True, (False, False, False, False)),
        (False, (False, False, False, False)),
        (None, (False, False, False, False)),
        ("0.5", (False, False, False, False)),
    ],
)
def test_is_fraction(value, inclusions):
    intervals = ("[0, 1)", "(0, 1)", "[0, 1]", "(0, 1]")
    assert tuple(is_fraction(value, interval) for interval in intervals) == inclusions


def test_is_fraction_numpy_and_unknown_interval():
    assert not is_fraction(np.float32(0.5)) and is_fraction(np.float32(0.5), numpy=True)
    assert is_fraction(np.float64(0.5))
    with pytest.raises(ValueError, match=r"interval='\[0, 2\)' is not one of"):
        is_fraction(0.5, "[0, 2)")


# ---------------------------------------------------------------- messages


def test_expected_lists_the_alternatives():
    assert expected("an integer >= 1") == "an integer >= 1"
    assert expected("an integer >= 1", optional=True) == "an integer >= 1 or None"
    assert expected("a number > 0", words=("longest",)) == "a number > 0 or 'longest'"
    assert (
        expected("an integer >= 1", optional=True, words=("longest", "all"))
        == "an integer >= 1, 'longest', 'all' or None"
    )


def test_refuse_has_two_forms_and_any_error():
    with pytest.raises(ValueError, match=r"^k=0 must be positive$"):
        refuse("k", 0, "positive")
    with pytest.raises(ValueError, match=r"^k must be positive, got 'x'$"):
        refuse("k", "x", "positive", got=True)
    with pytest.raises(TypeError, match=r"^k must be positive, got None$"):
        refuse("k", None, "positive", got=True, error=TypeError)


# ---------------------------------------------------------------- checks


def test_check_integer():
    assert check_integer("n", 3) == 3
    assert check_integer("n", 0, 0) == 0
    assert check_integer("n", None, optional=True) is None
    assert check_integer("n", "longest", words=("longest",)) == "longest"
    value = np.int64(7)
    assert check_integer("n", value, numpy=True) is value  # returned as given
    for bad in (0, True, 1.0, NAN, None, "1", np.int64(1)):
        with pytest.raises(ValueError, match=r"^n=.* must be an integer >= 1$"):
            check_integer("n", bad)
    with pytest.raises(ValueError, match=r"^n=-1 must be an integer >= 0 or None$"):
        check_integer("n", -1, 0, optional=True)
    with pytest.raises(ValueError, match=r"^n=4 must be an integer in \[1, 3\]$"):
        check_integer("n", 4, maximum=3)
    with pytest.raises(ValueError, match=r"^n=1.0 must be an integer$"):
        check_integer("n", 1.0, None)
    assert check_integer("n", -5, None) == -5
    with pytest.raises(ValueError, match=r"^n=0 must be a positive integer$"):
        check_integer("n", 0, what="a positive integer")
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got True$"):
        check_integer("n", True, got=True)
    with pytest.raises(TypeError, match=r"^n=1.5 must be an integer >= 1$"):
        check_integer("n", 1.5, error=TypeError)


def test_check_positive():
    assert check_positive("lr", 0.1) == 0.1
    assert check_positive("lr", INF) == INF
    assert check_positive("decay", 0, zero=True) == 0
    assert check_positive("lr", np.float32(0.1), numpy=True) == np.float32(0.1)
    for bad in (0, -1, NAN, True, None, "0.1", np.float32(0.1)):
        with pytest.raises(ValueError, match=r"^lr=.* must be a number > 0$"):
            check_positive("lr", bad)
    with pytest.raises(ValueError, match=r"^decay=nan must be a number >= 0 or None$"):
        check_positive("decay", NAN, zero=True, optional=True)
    with pytest.raises(ValueError, match=r"^t=-1 must be a number > 0, 'longest' or None$"):
        check_positive("t", -1, optional=True, words=("longest",))


def test_check_finite():
    assert check_finite("x", -3.5) == -3.5
    for bad in (NAN, INF, -INF, True, None):
        with pytest.raises(ValueError, match=r"^x=.* must be a finite number$"):
            check_finite("x", bad)
    assert check_finite("x", np.float32(1), numpy=True) == 1


def test_check_fraction():
    assert check_fraction("val", 0) == 0
    assert check_fraction("p", 1, "[0, 1]", noun="probability") == 1
    for bad in (1, -0.1, NAN, True, None):
        with pytest.raises(ValueError, match=r"^val=.* must be a fraction in \[0, 1\)$"):
            check_fraction("val", bad)
    with pytest.raises(ValueError, match=r"^rate=0 must be a rate in \(0, 1\) or None$"):
        check_fraction("rate", 0, "(0, 1)", noun="rate", optional=True)
    with pytest.raises(ValueError, match=r"^beta must be a number in \[0, 1\], got 2$"):
        check_fraction("beta", 2, "[0, 1]", noun="number", got=True)


def test_check_flag():
    assert check_flag("shuffle", False) is False
    for bad in (0, 1, None, "True", np.bool_(True)):
        with pytest.raises(ValueError, match=r"^shuffle=.* must be True or False$"):
            check_flag("shuffle", bad)
    with pytest.raises(TypeError, match=r"^shuffle must be True or False, got 1$"):
        check_flag("shuffle", 1, got=True, error=TypeError)


def test_check_choice():
    assert check_choice("mode", "min", ("min", "max")) == "min"
    assert check_choice("schedule", None, (None, "cosine")) is None
    with pytest.raises(ValueError, match=r"^mode='mid' is not one of \('min', 'max'\)$"):
        check_choice("mode", "mid", ("min", "max"))
    with pytest.raises(ValueError, match=r"^mode='mid' is not known; expected one of \['min'\]$"):
        check_choice("mode", "mid", ["min"], wording="is not known; expected one of")


# ---------------------------------------------------------------- the sites keep their acceptance


def test_numpy_scalars_are_taken_where_they_were():
    """Most sites take Python ints only (``numpy=False``); the forecasting baselines, the
    metrics, the plots, DTW, decoding and the Trainer's numbers take NumPy's too."""
    import rnnkit as rk
    from rnnkit.models.baselines import SeasonalNaive
    from rnnkit.tasks.settings import TRAINING
    from rnnkit.training.settings import TrainerSettings

    assert SeasonalNaive(np.int64(3)).season == 3
    assert TrainerSettings.of(lr=np.float32(0.1), epochs=2).lr == np.float32(0.1)
    with pytest.raises(ValueError, match=r"num_layers=np.int64\(2\) must be an integer >= 1"):
        rk.LSTM(2, 3, num_layers=np.int64(2))
    with pytest.raises(ValueError, match=r"lr=np.float32\(0.1\) must be a finite number > 0"):
        TRAINING["lr"].check(np.float32(0.1))
    TRAINING["lr"].check(np.float64(0.1))  # a float
    with pytest.raises(ValueError, match=r"epochs=True must be an integer >= 1 or None"):
        TRAINING["epochs"].check(True)
    with pytest.raises(ValueError, match=r"lr=nan must be a finite number > 0"):
        TRAINING["lr"].check(NAN)
