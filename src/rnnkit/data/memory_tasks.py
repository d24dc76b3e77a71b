"""The long-dependency benchmarks of the literature, generated: the adding problem and the copy
(delayed-recall) task. Each comes with the loss of the trivial strategy it must beat, so a
model that has learnt nothing about the distant past is seen to have learnt nothing.

Both are drawn from a ``torch.Generator`` seeded by ``seed``: the same seed, the same data.
"""

from __future__ import annotations

import math

import torch

ADDING_BASELINE_MSE = 1 / 6  # Var(u1 + u2) for u ~ U(0, 1): always predicting 1


def _check(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


def adding_problem(count: int, steps: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem (Hochreiter & Schmidhuber 1997; as in Le et al. 2015, Arjovsky et
    al. 2016): ``count`` sequences of ``steps`` steps with two channels, a value
    ``u_t ~ U(0, 1)`` and a marker that is 1 at exactly two steps, one drawn in the first half
    of the sequence and one in the second. The target is the sum of the two marked values.

    Predicting 1 whatever the input scores MSE ``Var(u_a + u_b) = 1/6 ≈ 0.167``
    (``ADDING_BASELINE_MSE``); to go below it a model must carry the first marked value
    across at least half the sequence.

    Returns ``(x (count, steps, 2) float32, y (count, 1) float32)``.
    """
    _check("count", count, 1)
    _check("steps", steps, 2)
    generator = torch.Generator().manual_seed(_check("seed", seed, 0))
    values = torch.rand(count, steps, generator=generator)
    half = steps // 2
    first = torch.randint(0, half, (count,), generator=generator)
    second = torch.randint(half, steps, (count,), generator=generator)
    markers = torch.zeros(count, steps)
    rows = torch.arange(count)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return torch.stack([values, markers], -1), target[:, None]


def copy_task(
    count: int, delay: int, *, symbols: int = 8, length: int = 10, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The copy (delayed-recall) task of Arjovsky et al. (2016): remember ``length`` symbols
    through a blank stretch and write them out when a delimiter says so.

    Tokens: 0 is the blank, 1..``symbols`` the data, ``symbols + 1`` the delimiter. An input
    sequence has ``delay + 2 * length`` steps: the ``length`` data symbols, ``delay - 1``
    blanks, the delimiter, then ``length`` blanks. The target is blank for the first
    ``delay + length`` steps, then the data symbols in order.

    A model without memory does best by writing blanks and then guessing uniformly among the
    symbols: cross-entropy per step ``length * log(symbols) / (delay + 2 * length)``
    (``copy_baseline``), 10 log 8 / (T + 20) with the usual settings.

    Returns ``(inputs (count, delay + 2 * length) int64, targets (same shape) int64)``.
    """
    _check("count", count, 1)
    _check("delay", delay, 1)
    _check("symbols", symbols, 2)
    _check("length", length, 1)
    generator = torch.Generator().manual_seed(_check("seed", seed, 0))
    data = torch.randint(1, symbols + 1, (count, length), generator=generator)
    steps = delay + 2 * length
    inputs = torch.zeros(count, steps, dtype=torch.long)
    inputs[:, :length] = data
    inputs[:, delay + length - 1] = symbols + 1
    targets = torch.zeros(count, steps, dtype=torch.long)
    targets[:, delay + length :] = data
    return inputs, targets


def copy_baseline(delay: int, *, symbols: int = 8, length: int = 10) -> float:
    """Cross-entropy per step (nats) of the memoryless strategy on ``copy_task``."""
    return length * math.log(symbols) / (delay + 2 * length)
