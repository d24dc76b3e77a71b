"""Diagnostics in runs: the Recorder hook records them on a schedule without changing training,
`rnnkit diagnose` draws them, `rnnkit bench-memory` trains and compares cells end to end, and
the pictures are real PNGs."""

import csv
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.utils.data import TensorDataset

from rnnkit import diagnostics, layers, plots
from rnnkit.cli import main
from rnnkit.data.memory_tasks import ADDING_BASELINE_MSE, adding_problem, copy_baseline
from rnnkit.diagnostics import Recorder
from rnnkit.tasks import rundir
from rnnkit.tasks.memory import MemoryBenchmark, MemoryNet
from rnnkit.training import Trainer


def assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = layers.GRU(2, 8, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x, lengths=None):
        out, _ = self.rnn(x, lengths=lengths)
        return self.head(out[:, -1])


def recording(folder, every) -> list:
    """The hooks of a run that records every ``every`` steps into ``folder``; none without."""
    return [] if every is None else [Recorder(every=every, folder=folder)]


def _fit(folder=None, every=None, **options):
    torch.manual_seed(0)
    model = Net()
    x, y = adding_problem(100, 12)
    trainer = Trainer(
        epochs=2, batch_size=16, progress="none", hooks=recording(folder, every), **options
    )
    trainer.fit(model, TensorDataset(x, y), **({"val": TensorDataset(x[:20], y[:20])}))
    return model, trainer


def test_trainer_records_on_schedule_and_training_is_unchanged(tmp_path):
    plain, _ = _fit()
    diagnosed, trainer = _fit(tmp_path / "diagnostics", every=5)
    for a, b in zip(plain.state_dict().values(), diagnosed.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # recording draws no randomness and touches no gradient
    records = diagnostics.read_run(tmp_path)
    steps = [meta["step"] for _, meta in records]
    assert len(trainer.steps) == 14  # 2 epochs of 7 batches
    assert steps == [0, 5, 10, 14]  # before training, every 5, and the last
    first, meta = records[0]
    assert meta["epoch"] == 0 and records[-1][1]["epoch"] == 2
    # The recorded batch is the first rows of the val set, scored as training scores it.
    x, y = adding_problem(100, 12)
    torch.manual_seed(0)
    fresh = diagnostics.diagnose(Net(), (x[:20], y[:20]))
    assert first.loss == pytest.approx(fresh.loss, rel=1e-6)
    for key, norms in fresh.gradient_norms.items():
        torch.testing.assert_close(first.gradient_norms[key], norms.float())
    assert set(first.gates["rnn.0.forward"]) == {"reset", "update", "candidate"}


class Regularised(nn.Module):
    """Dropout, recurrent dropout and zoneout: randomness a recording must not draw."""

    def __init__(self):
        super().__init__()
        self.rnn = layers.LSTM(2, 8, batch_first=True, num_layers=2, dropout=0.2,
                               recurrent_dropout=0.2, zoneout=0.1)  # fmt: skip
        self.head = nn.Linear(8, 1)

    def forward(self, x, lengths=None):
        return self.head(self.rnn(x, lengths=lengths)[0][:, -1])


def test_recording_draws_no_randomness_from_a_regularised_model(tmp_path):
    x, y = adding_problem(64, 10)
    weights = []
    for folder, every in ((None, None), (tmp_path, 3)):
        torch.manual_seed(0)
        model = Regularised()
        Trainer(epochs=2, batch_size=16, progress="none", hooks=recording(folder, every)).fit(
            model, TensorDataset(x, y)
        )
        weights.append(model.state_dict())
    for a, b in zip(*(w.values() for w in weights), strict=True):
        assert torch.equal(a, b)


def test_fresh_fit_replaces_old_records_and_best_weights_get_their_own(tmp_path):
    folder = tmp_path / "diagnostics"
    _fit(folder, every=3)
    model, trainer = _fit(folder, every=5, early_stopping=5)  # restore_best is on by default
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "step_0000000.safetensors", "step_0000005.safetensors", "step_0000010.safetensors",
        "step_0000014.safetensors", "step_0000014_best.safetensors",
    ]  # fmt: skip
    best, meta = diagnostics.read_run(tmp_path)[-1]
    assert meta["restored_best_epoch"] == trainer.best_epoch
    x, y = adding_problem(100, 12)
    again = diagnostics.diagnose(model, (x[:20], y[:20]))  # the weights the model ended with
    assert best.loss == pytest.approx(again.loss, rel=1e-6)
    assert trainer.hook_seconds > 0  # counted apart from the training time


def test_trainer_records_with_compute_loss(tmp_path):
    x, y = adding_problem(64, 10)

    def compute_loss(model, batch):
        inputs, target = batch
        return ((model(inputs) - target) ** 2).mean()

    torch.manual_seed(0)
    trainer = Trainer(epochs=1, batch_size=16, progress="none", compute_loss=compute_loss,
                      hooks=[Recorder(every=2, folder=tmp_path / "diagnostics")])  # fmt: skip
    trainer.fit(Net(), TensorDataset(x, y))
    records = diagnostics.read_run(tmp_path)
    assert [meta["step"] for _, meta in records] == [0, 2, 4]
    assert all(d.gradient_norms["rnn.0.forward/h"].shape == (10,) for d, _ in records)


def test_frozen_layers_and_parameters_grad_are_left_alone():
    x, y = adding_problem(16, 10)
    torch.manual_seed(0)
    model = Net()
    reference = diagnostics.gradient_flow(model, (x, y)).gradients["rnn.0.forward/h"]
    for parameter in model.parameters():
        parameter.requires_grad_(False)  # nothing to train: the flow through time is the same
    frozen = diagnostics.gradient_flow(model, (x, y)).gradients["rnn.0.forward/h"]
    torch.testing.assert_close(frozen, reference, rtol=0, atol=0)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"every": 0, "folder": "x"}, r"Recorder every=0 must be an integer >= 1"),
        ({"every": 2.5, "folder": "x"}, r"Recorder every=2.5 must be an integer >= 1"),
        ({"every": True, "folder": "x"}, r"Recorder every=True must be an integer >= 1"),
        ({"every": 5, "folder": "x", "rows": 0}, r"Recorder rows=0 must be an integer >= 1"),
        ({"every": 5, "folder": None}, r"Recorder folder=None must be the directory to record"),
        ({"every": 5, "folder": 3}, r"Recorder folder=3 must be the directory to record"),
    ],
)
def test_recorder_settings_are_checked(settings, message):
    with pytest.raises(ValueError, match=message):
        Recorder(**settings)


def test_recorder_needs_every_and_folder():
    with pytest.raises(TypeError, match="every"):
        Recorder(folder="x")
    with pytest.raises(TypeError, match="folder"):
        Recorder(every=5)


def test_the_recorder_reads_a_few_rows_of_train_without_val_and_records_a_resume(tmp_path):
    x, y = adding_problem(48, 10)
    folder = tmp_path / "diagnostics"
    settings = {"batch_size": 16, "progress": "none", "checkpoint_dir": tmp_path / "checkpoints"}
    hooks = [Recorder(every=2, folder=folder, rows=5)]
    torch.manual_seed(0)
    model = Net()
    Trainer(epochs=1, hooks=hooks, **settings).fit(model, TensorDataset(x, y))
    first, _ = diagnostics.read_run(tmp_path)[0]
    torch.manual_seed(0)
    fresh = diagnostics.diagnose(Net(), (x[:5], y[:5]))  # the first 5 rows of train
    assert first.loss == pytest.approx(fresh.loss, rel=1e-6)
    # A resumed fit keeps the records so far and adds its own, with no second step 0.
    Trainer(epochs=2, hooks=hooks, **settings).fit(model, TensorDataset(x, y), resume=True)
    steps = [meta["step"] for _, meta in diagnostics.read_run(tmp_path)]
    assert steps == [0, 2, 3, 4, 6]  # 3 steps an epoch: 3 is the first fit's last


def test_read_run_without_records_says_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="--diagnose-every"):
        diagnostics.read_run(tmp_path)


def test_classify_train_records_and_diagnose_draws(tmp_path):
    data = "tests/data/mr_sample.tsv"
    out = tmp_path / "run"
    result = invoke(
        "classify", "train", "--data", data, "--epochs", 1, "--hidden-size", 8,
        "--embedding-dim", 8, "--no-baseline", "--diagnose-every", 50, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "diagnostics" / "step_0000000.safetensors").exists()
    result = invoke("diagnose", "--run", out)
    assert result.exit_code == 0, result.output
    assert "rnn.0.forward/h" in result.output and "forget mean" in result.output
    for name in ("gradient_flow", "gates", "state_norms", "heatmap_rnn.0.forward"):
        assert_png(out / "diagnostics" / f"{name}.png")


def test_diagnose_a_run_that_recorded_nothing(tmp_path):
    result = CliRunner().invoke(main, ["diagnose", "--run", str(tmp_path)])
    assert result.exit_code != 0
    assert "--diagnose-every" in result.output


def test_memory_net_shapes():
    adding = MemoryNet("lstm", 2, 8, 1, every_step=False)
    assert adding(torch.rand(3, 7, 2)).shape == (3, 1)
    copy = MemoryNet("gru", 10, 8, 9, every_step=True)
    assert copy(torch.randint(0, 10, (3, 7))).shape == (3, 7, 9)


def test_bench_memory_end_to_end(tmp_path):
    out = tmp_path / "bench"
    result = invoke(
        "bench-memory", "--task", "adding", "--T", "12,24", "--cells", "rnn,gru", "--steps", 30,
        "--train-size", 256, "--test-size", 64, "--hidden-size", 8, "--diagnose-every", 10,
        "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| gru | 24 |" in result.output
    with open(out / "results.csv") as file:
        rows = list(csv.DictReader(file))
    assert [(r["cell"], int(r["T"])) for r in rows] == [
        ("rnn", 12), ("rnn", 24), ("gru", 12), ("gru", 24),
    ]  # fmt: skip
    for row in rows:
        assert float(row["baseline"]) == pytest.approx(ADDING_BASELINE_MSE)
        assert 0 < float(row["test_error"]) < 3 and int(row["steps"]) == 30
    for name in ("memory_adding", "gradient_flow_rnn", "gradient_flow_gru"):
        assert_png(out / f"{name}.png")
    steps = [meta["step"] for _, meta in diagnostics.read_run(out / "runs" / "gru_T24")]
    assert steps == [0, 10, 20, 30]
    result = invoke("diagnose", "--run", out / "runs" / "rnn_T12")
    assert result.exit_code == 0, result.output


def test_bench_memory_copy_task_scores_cross_entropy_per_step(tmp_path):
    bench = MemoryBenchmark(
        problem="copy", cells=["lstm"], lengths=[5], steps=5, train_size=64, test_size=32,
        hidden_size=8, diagnose_every=5, progress="none",
    ).fit()  # fmt: skip
    (row,) = bench.results_
    assert bench.score() == {"model": {"lstm_T5": {"error": row["test_error"]}},
                             "trivial": {"lstm_T5": {"error": row["baseline"]}}}  # fmt: skip
    assert row["baseline"] == pytest.approx(copy_baseline(5))
    # An untrained readout guesses among 9 outputs: about log 9 nats per step.
    assert row["test_error"] == pytest.approx(math.log(9), rel=0.2)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"problem": "parity"}, "problem='parity'"),
        ({"cells": ["lstm", "tcn"]}, "cells="),
        ({"lengths": [1]}, "T=\\[1\\]"),
        ({"problem": "smnist", "lengths": [100]}, "784"),
        ({"steps": 0}, "steps=0"),
    ],
)
def test_bench_memory_refuses_bad_settings_before_writing(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        rundir.train_run(MemoryBenchmark(**settings), None, tmp_path / "out")
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_diagnostic_plots(tmp_path):
    t = np.arange(30)
    panels = {"rnn.0.forward/h": {"step 0": 0.9 ** t[::-1], "step 10": np.r_[0.0, 0.8 ** t[1:]]}}
    assert_png(plots.plot_gradient_flow(tmp_path / "flow.png", panels))
    assert_png(plots.plot_state_norms(tmp_path / "norms.png", {"rnn.0.forward": np.ones(30)}))
    assert_png(plots.plot_state_heatmap(tmp_path / "heat.png", np.random.rand(30, 8)))
    saturated = {"l forget": [0.1, 0.2], "l activation": [math.nan, math.nan]}
    means = {"l forget": [0.7, 0.8], "l activation": [0.0, 0.1]}
    assert_png(plots.plot_gate_statistics(tmp_path / "gates.png", [0, 10], saturated, means))
    errors = {"rnn": [0.16, 0.17], "lstm": [0.01, math.nan]}
    assert_png(plots.plot_memory_benchmark(tmp_path / "m.png", [100, 200], errors, 1 / 6, "MSE"))
    with pytest.raises(ValueError, match="at least one curve"):
        plots.plot_gradient_flow(tmp_path / "x.png", {"a/h": {}})
    with pytest.raises(ValueError, match="states must be"):
        plots.plot_state_heatmap(tmp_path / "x.png", np.zeros(5))
    with pytest.raises(ValueError, match="errors\\['rnn'\\] has 1 values"):
        plots.plot_memory_benchmark(tmp_path / "x.png", [1, 2], {"rnn": [0.1]}, 0.2, "MSE")
