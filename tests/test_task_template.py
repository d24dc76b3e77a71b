"""The task template: a new task is one class on ``Estimator`` and one line registering it
with the command line. ``SequenceSum``, which lives here only, learns to add up a sequence
of numbers; it is trained, saved, loaded and driven through ``rnnkit seqsum`` like the
tasks rnnkit ships, and a task missing a hook is refused when its class is defined."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from rnnkit import cli
from rnnkit.data.batching import SequenceDataset
from rnnkit.registry import recurrent_layer
from rnnkit.tasks import all_tasks
from rnnkit.tasks.estimator import Estimator
from rnnkit.tasks.settings import Setting, shared, training_settings
from rnnkit.tasks.supervised import run_batches


class SumModel(nn.Module):
    """An RNN over the numbers, its last state mapped to their sum."""

    def __init__(self, cell: str, hidden_size: int):
        super().__init__()
        self.rnn = recurrent_layer(cell, 1, hidden_size, 1, return_sequences=False,
                                   return_state=False)  # fmt: skip
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x, lengths=None):
        return self.head(self.rnn(x, lengths=lengths))


class SequenceSum(Estimator):
    """Adds up sequences of numbers with an RNN, beside the mean of the training sums."""

    task = "seqsum"
    about = "Sum sequences of numbers (the template's example task)."
    unit = "sequences"
    headline = ("rmse",)
    settings = (
        shared("cell", default="gru"),
        shared("hidden_size", default=16),
        Setting("scale", 10.0, "The sums are learnt divided by this.", float),
        shared("val", default=0.2),
    )
    training = training_settings(epochs=40, batch_size=16, lr=1e-2, patience=None)

    def read(self, data) -> list[list[float]]:
        """A file of sequences, one a line of numbers, or lists of numbers."""
        if isinstance(data, str | Path):
            lines = Path(data).read_text().splitlines()
            data = [line.split() for line in lines if line.strip()]
        sequences = [[float(x) for x in sequence] for sequence in data]
        if not sequences or not all(sequences):
            raise ValueError("data must hold sequences of at least one number")
        return sequences

    def _prepare(self, train, held):
        return self._dataset(train), self._dataset(held) if held else None

    def _dataset(self, sequences, *, targets=True) -> SequenceDataset:
        inputs = [torch.tensor(s)[:, None] for s in sequences]
        sums = torch.tensor([[sum(s) / self.scale] for s in sequences]) if targets else None
        return SequenceDataset(inputs, sums)

    def _build_model(self) -> SumModel:
        return SumModel(self.cell, self.hidden_size)

    def _trainer_options(self, held, held_set) -> dict:
        return {"loss": "mse"}

    def _fit_baselines(self, train, held) -> None:
        self.baselines_ = {"mean": float(np.mean([sum(s) for s in train]))}

    def predict(self, data) -> list[float]:
        self._check_fitted()
        dataset = self._dataset(self.read(data), targets=False)
        rows = run_batches(dataset, lambda x, lengths: self.model_(x, lengths), self.model_)
        return [float(row[0]) * self.scale for row in rows]

    def score(self, data) -> dict:
        sequences = self.read(data)
        actual = np.array([sum(s) for s in sequences])
        guesses = {"model": np.array(self.predict(sequences)),
                   "mean": np.full(len(actual), self.baselines_["mean"])}  # fmt: skip
        return {k: {"rmse": float(np.sqrt(np.mean((g - actual) ** 2)))} for k, g in guesses.items()}

    def table(self, scores: dict) -> list[str]:
        return [f"{name:>6}  RMSE {entry['rmse']:.3f}" for name, entry in scores.items()]

    def _data_state(self) -> dict:
        return {"mean": self.baselines_["mean"]}

    def _restore(self, state: dict) -> None:
        self.baselines_ = {"mean": state["mean"]}
        self.model_ = self._build_model()


cli.register(SequenceSum, data_help="Sequences, one a line of numbers.")


def _sequences(count: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [list(rng.integers(0, 10, rng.integers(1, 8)).astype(float)) for _ in range(count)]


def _write(path: Path, sequences) -> Path:
    path.write_text("".join(" ".join(f"{x:g}" for x in s) + "\n" for s in sequences))
    return path


def test_a_task_on_the_template_learns_beats_its_baseline_and_loads_back(tmp_path):
    estimator = SequenceSum(progress="none").fit(_sequences(400, 0))
    test = _sequences(100, 1)
    scores = estimator.score(test)
    assert scores["model"]["rmse"] < 0.5 * scores["mean"]["rmse"], scores
    assert set(estimator.metrics_) == {"data", "validation"}
    assert estimator.metrics_["data"] == {"train": 320, "validation": 80}
    assert len(estimator.history_) == 40 and estimator.training_seconds_ > 0
    estimator.save(tmp_path / "run")
    loaded = SequenceSum.load(tmp_path / "run")
    assert loaded.get_params() == estimator.get_params()
    assert loaded.predict(test) == estimator.predict(test)


def test_the_one_registration_line_gives_train_evaluate_and_predict(tmp_path):
    train = _write(tmp_path / "train.txt", _sequences(200, 0))
    test = _write(tmp_path / "test.txt", _sequences(50, 1))
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(cli.main, [
        "seqsum", "train", "--data", str(train), "--test", str(test), "--hidden-size", "8",
        "--scale", "5", "--epochs", "5", "--progress", "none", "--out", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "RMSE" in result.output and f"Run directory: {out}" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "seqsum" and config["settings"]["scale"] == 5.0
    assert json.loads((out / "metrics.json").read_text())["scored_on"] == "test"
    result = runner.invoke(cli.main, ["seqsum", "evaluate", "--run", str(out), "--data", str(test)])
    assert result.exit_code == 0 and "mean" in result.output, result.output
    result = runner.invoke(cli.main, ["seqsum", "predict", "--run", str(out), str(test)])
    assert result.exit_code == 0, result.output
    expected = SequenceSum.load(out).predict(test)
    assert [float(line) for line in result.output.split()] == pytest.approx(expected)
    help_text = " ".join(runner.invoke(cli.main, ["seqsum", "train", "--help"]).output.split())
    assert "--scale FLOAT The sums are learnt divided by this. [default: 10.0]" in help_text
    bad = runner.invoke(cli.main, ["seqsum", "train", "--data", str(train), "--scale", "-1",
                                   "--out", str(tmp_path / "bad")])  # fmt: skip
    assert bad.exit_code != 0 and "scale=-1.0 must be a finite number > 0" in bad.output
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()


def test_a_task_missing_a_hook_is_refused_when_it_is_defined():
    with pytest.raises(TypeError, match=r"Halfway \(task 'half'\) does not define _prepare, "
                       r"_build_model"):  # fmt: skip

        class Halfway(Estimator):
            task = "half"

            def score(self, data):
                return {}


def test_every_task_is_discovered():
    tasks = all_tasks()
    assert {"forecast", "classify", "tag", "lm", "translate", "music", "bench-memory"} <= set(tasks)
    assert tasks["seqsum"] is SequenceSum  # defined here, found all the same
