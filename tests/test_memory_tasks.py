"""The long-dependency task generators and the losses of their trivial strategies."""

import math

import pytest
import torch

from rnnkit.data.memory_tasks import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_baseline,
    copy_task,
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
