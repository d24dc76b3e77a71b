"""The checks of argument values, at the bottom of the package: every part may import it, and
it imports nothing of rnnkit.

Predicates say whether a value is what is expected; checks refuse it with an error that names
the argument, the value and what is expected, and otherwise return it unchanged::

    check_integer("num_layers", 0, 1)    # ValueError: num_layers=0 must be an integer >= 1
    check_integer("window", 0, 1, got=True)  # ValueError: window must be an integer >= 1, got 0
    check_positive("lr", None, optional=True)   # None: accepted
    check_fraction("dropout", 1.0, noun="rate") # ValueError: dropout=1.0 must be a rate in [0, 1)

What counts as a number:

- A bool is never an integer nor a number (``True`` is an ``int`` to Python, not to a user
  giving a size or a rate).
- ``numpy=False`` (the default): an integer is a Python ``int``; a number an ``int`` or a
  ``float`` (NumPy's ``float64``, a subclass of ``float``, is one; ``float32`` and NumPy's
  integers are not).
- ``numpy=True``: any ``numbers.Integral`` / ``numbers.Real``, which NumPy's integer and float
  scalars register as (so does ``fractions.Fraction``, a real; ``numpy.bool_`` does not).
- NaN is no number of any range (every comparison with it is false): not > 0, not >= 0, not
  in [0, 1), not finite. Infinity is > 0 and >= 0, but not finite nor in a bounded range.

``optional=True`` accepts None and says "or None"; ``words`` are values accepted besides
("longest"), said by their repr: "an integer >= 1, 'longest' or None".
"""

import math
import numbers

INTERVALS = ("[0, 1)", "(0, 1)", "[0, 1]", "(0, 1]")


# ---------------------------------------------------------------- predicates


def is_integer(value, minimum=None, maximum=None, *, numpy: bool = False) -> bool:
    """An ``int`` that is not a bool (``numpy``: any ``numbers.Integral``, NumPy's integers
    included), within ``minimum`` and ``maximum`` (both included) where given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if numpy else int):
        return False
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


def is_number(value, *, numpy: bool = False) -> bool:
    """An ``int`` or ``float`` that is not a bool (``numpy``: any ``numbers.Real``); NaN and
    infinities are numbers."""
    kinds = numbers.Real if numpy else (int, float)
    return isinstance(value, kinds) and not isinstance(value, bool)


def is_positive(value, *, zero: bool = False, numpy: bool = False) -> bool:
    """A number > 0 (``zero``: >= 0); not NaN, but infinity."""
    return is_number(value, numpy=numpy) and (value >= 0 if zero else value > 0)


def is_finite(value, *, numpy: bool = False) -> bool:
    """A number that is neither infinite nor NaN."""
    return is_number(value, numpy=numpy) and math.isfinite(value)


def is_fraction(value, interval: str = "[0, 1)", *, numpy: bool = False) -> bool:
    """A number in ``interval``, one of ``INTERVALS``: "[0, 1)", "(0, 1)", "[0, 1]" (a
    probability) or "(0, 1]"."""
    if interval not in INTERVALS:
        raise ValueError(f"interval={interval!r} is not one of {INTERVALS}")
    if not is_number(value, numpy=numpy):
        return False
    above = value >= 0 if interval[0] == "[" else value > 0
    below = value <= 1 if interval[-1] == "]" else value < 1
    return above and below


# ---------------------------------------------------------------- the message


def expected(what: str, *, optional: bool = False, words=()) -> str:
    """``what`` and its alternatives: "an integer >= 1, 'longest' or None"."""
    *others, last = [what, *map(repr, words), *(["None"] if optional else [])]
    return f"{', '.join(others)} or {last}" if others else last


def refuse(name: str, value, what: str, *, got: bool = False, error=ValueError):
    """Raise ``error`` saying that ``name`` must be ``what``: "name=value must be what", or
    with ``got`` "name must be what, got value"."""
    if got:
        raise error(f"{name} must be {what}, got {value!r}")
    raise error(f"{name}={value!r} must be {what}")


def _check(ok: bool, name: str, value, what: str, optional, words, got, error):
    """``value`` if ``ok``, None with ``optional`` or one of ``words``; else the error."""
    if not (ok or (optional and value is None) or (words and value in words)):
        refuse(name, value, expected(what, optional=optional, words=words), got=got, error=error)
    return value


# ---------------------------------------------------------------- checks


def check_integer(
    name: str,
    value,
    minimum=1,
    *,
    maximum=None,
    numpy: bool = False,
    optional: bool = False,
    words=(),
    what: str | None = None,
    got: bool = False,
    error=ValueError,
):
    """``value``, if it is an integer >= ``minimum`` (None: any integer) and <= ``maximum``;
    else an error: "name=value must be an integer >= minimum" ("an integer in [minimum,
    maximum]", "an integer"), or ``what`` in place of "an integer >= …" ("a positive
    integer")."""
    if what is None and maximum is not None:
        what = f"an integer in [{minimum}, {maximum}]"
    elif what is None:
        what = "an integer" if minimum is None else f"an integer >= {minimum}"
    ok = is_integer(value, minimum, maximum, numpy=numpy)
    return _check(ok, name, value, what, optional, words, got, error)


def check_positive(
    name: str,
    value,
    *,
    zero: bool = False,
    finite: bool = False,
    numpy: bool = False,
    optional: bool = False,
    words=(),
    got: bool = False,
    error=ValueError,
):
    """``value``, if it is a number > 0 (``zero``: >= 0; never NaN; ``finite``: not
    infinity either); else an error: "name=value must be a number > 0" ("a finite number >
    0")."""
    ok = is_positive(value, zero=zero, numpy=numpy) and (not finite or math.isfinite(value))
    what = f"a {'finite ' if finite else ''}number {'>=' if zero else '>'} 0"
    return _check(ok, name, value, what, optional, words, got, error)


def check_finite(
    name: str,
    value,
    *,
    numpy: bool = False,
    optional: bool = False,
    words=(),
    got: bool = False,
    error=ValueError,
):
    """``value``, if it is a finite number; else "name=value must be a finite number"."""
    ok = is_finite(value, numpy=numpy)
    return _check(ok, name, value, "a finite number", optional, words, got, error)


def check_fraction(
    name: str,
    value,
    interval: str = "[0, 1)",
    *,
    noun: str = "fraction",
    numpy: bool = False,
    optional: bool = False,
    words=(),
    got: bool = False,
    error=ValueError,
):
    """``value``, if it is a number in ``interval`` (see ``is_fraction``); else an error:
    "name=value must be a fraction in [0, 1)", with ``noun`` in place of "fraction" ("rate",
    "probability", "number")."""
    ok = is_fraction(value, interval, numpy=numpy)
    return _check(ok, name, value, f"a {noun} in {interval}", optional, words, got, error)


def check_flag(name: str, value, *, got: bool = False, error=ValueError) -> bool:
    """``value``, if it is True or False; else "name=value must be True or False"."""
    return _check(isinstance(value, bool), name, value, "True or False", False, (), got, error)


def check_choice(name: str, value, choices, *, wording: str = "is not one of"):
    """``value``, if it is one of ``choices``; else "name=value is not one of choices", with
    ``wording`` in place of "is not one of" ("is not known; expected one of")."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} {wording} {choices}")
    return value
