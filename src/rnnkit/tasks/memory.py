"""``rnnkit bench-memory``: do plain RNNs forget and LSTMs remember? Measured.

Each cell is trained on a long-dependency problem (``rnnkit.data.memory_tasks``) at each
length T with the same budget, scored on fresh test data against the problem's trivial
baseline, and diagnosed while it trains (the gradient flow through time before and after).
The result is a run directory, with what every run directory holds (``rnnkit.tasks.rundir``:
config.json, model.safetensors with every run's weights, metrics.json, data_state.json) and:

- ``results.csv``: one row per cell and T: test error, baseline, training time, steps;
- ``memory_<problem>.png``: test error against T, one line per cell, baseline dashed;
- ``gradient_flow_<cell>.png``: ‖∂loss/∂h_t‖ over t at each T, before and after training;
- ``runs/<cell>_T<T>/diagnostics/``: every recorded diagnosis (``rnnkit diagnose --run``
  draws them), with that run's ``config.json`` and ``history.csv``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import registry
from .._checks import is_integer
from ..data import memory_tasks
from ..training.distributed import process_rank
from . import rundir
from .estimator import Estimator
from .settings import Setting, integers, names, shared, training_settings

PROBLEMS = ("adding", "copy", "smnist")
CELLS = tuple(registry.CELLS)
KEY = "rnn.0.forward/h"  # MemoryNet's one layer, in the diagnoses
METRICS = {"adding": "MSE", "copy": "cross-entropy (nats/step)", "smnist": "error rate"}


class MemoryNet(nn.Module):
    """A recurrent layer and a linear readout: of the last step (adding, digits) or of every
    step (copy). Token inputs (copy) enter one-hot."""

    def __init__(self, cell: str, inputs: int, hidden_size: int, outputs: int, every_step: bool):
        super().__init__()
        layer = registry.entry(cell).layer
        self.inputs = inputs
        self.every_step = every_step
        self.rnn = layer(inputs, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, outputs)

    def forward(self, x):
        if not x.is_floating_point():
            x = F.one_hot(x, self.inputs).to(self.head.weight.dtype)
        out, _ = self.rnn(x)
        return self.head(out if self.every_step else out[:, -1])


def _data(problem: str, steps: int, train_size: int, test_size: int, seed: int):
    """-> (train, test, baseline error, model shape: inputs, outputs, every step, loss)."""
    if problem == "adding":
        train = memory_tasks.adding_problem(train_size, steps, seed)
        test = memory_tasks.adding_problem(test_size, steps, seed + 1)
        return train, test, memory_tasks.ADDING_BASELINE_MSE, (2, 1, False, "mse")
    if problem == "copy":
        train = memory_tasks.copy_task(train_size, steps, seed=seed)
        test = memory_tasks.copy_task(test_size, steps, seed=seed + 1)
        # Inputs: blank, 8 symbols, delimiter; outputs: blank and the 8 symbols.
        return train, test, memory_tasks.copy_baseline(steps), (10, 9, True, "cross_entropy")
    digits = memory_tasks.sequential_mnist(seed=seed)
    baseline = 1 - memory_tasks.majority_accuracy(digits.y_train, digits.y_test)
    train, test = (digits.x_train, digits.y_train), (digits.x_test, digits.y_test)
    return train, test, baseline, (1, 10, False, "cross_entropy")


@torch.no_grad()
def _test_error(model: nn.Module, problem: str, x, y, batch: int = 500) -> float:
    """Mean squared error (adding), cross-entropy per step (copy) or error rate (digits)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(x), batch):
        out, target = model(x[start : start + batch]), y[start : start + batch]
        if problem == "adding":
            total += float(F.mse_loss(out, target, reduction="sum"))
        elif problem == "copy":
            total += float(F.cross_entropy(out.flatten(0, 1), target.flatten(), reduction="sum"))
        else:
            total += float((out.argmax(1) != target).sum())
        count += target.numel()
    return total / count


class MemoryBenchmark(Estimator):
    """Every cell of ``cells`` trained at every length of ``lengths`` on ``problem`` with
    the same budget, each scored on fresh test data against the problem's trivial baseline.

    The training sequences are generated from ``seed``, the test ones from ``seed + 1``;
    ``steps`` and ``minutes`` are each run's budget (no epochs or early stopping).

    ``fit()`` generates its data. Fitted: ``model_`` (a ``ModuleDict`` of every run's
    ``MemoryNet``, keyed ``<cell>_T<T>``), ``results_`` (a row per run), ``histories_``
    (each run's), ``metrics_``. ``score()`` returns ``{"model": {run: {"error": …}},
    "trivial": {run: {"error": …}}}``; ``predict(inputs, run=...)`` runs one of the models.

        >>> bench = MemoryBenchmark(problem="adding", cells=["rnn", "gru"], lengths=[50]).fit()
        >>> bench.score()["model"]["gru_T50"]
    """

    task = "bench-memory"
    settings = (
        Setting(
            "problem", "adding", "The long-dependency problem.", str, PROBLEMS, flags=("--task",)
        ),
        # The simplest cell first, as the README's tables are.
        Setting(
            "cells", ("rnn", "lstm", "gru"), "Cells to compare, comma-separated.", list, parse=names
        ),
        Setting(
            "lengths",
            None,
            "Sequence lengths, comma-separated (copy: the delay; smnist: "
            "784, its only length; none: 100,200,400).",
            list,
            optional=True,
            flags=("--T",),
            parse=integers,
        ),
        shared("hidden_size", help="Units of each cell."),
        Setting("train_size", 10_000, "Training sequences."),
        Setting("test_size", 1_000, "Test sequences."),
    )
    training = training_settings(
        steps=2_000, batch_size=64, lr=1e-3, clip_norm=1.0, diagnose_every=250,
        progress="log", exclude=("epochs", "patience"),
    )  # fmt: skip

    def _lengths(self) -> list[int]:
        if self.lengths is not None:
            return list(self.lengths)
        return [memory_tasks.MNIST_PIXELS] if self.problem == "smnist" else [100, 200, 400]

    def _runs(self) -> list[tuple[str, int]]:
        return [(cell, steps) for cell in self.cells for steps in self._lengths()]

    def _check_settings(self) -> None:
        problem, cells, lengths = self.problem, list(self.cells), self._lengths()
        unknown = [c for c in cells if c not in CELLS]
        if not cells or unknown or len(set(cells)) < len(cells):
            raise ValueError(f"cells={cells!r} must be a non-empty list of distinct {CELLS}")
        bad = not all(is_integer(t, 2) for t in lengths)
        if not lengths or bad or len(set(lengths)) < len(lengths):
            raise ValueError(f"T={lengths!r} must be a non-empty list of distinct integers >= 2")
        if problem == "smnist" and set(lengths) != {memory_tasks.MNIST_PIXELS}:
            raise ValueError(
                f"T={lengths!r}: sequential MNIST has T = {memory_tasks.MNIST_PIXELS} "
                "(one pixel per step) only"
            )
        if self.steps is None:  # the budget of every run is counted in steps
            raise ValueError("steps=None: the memory benchmark needs a number of steps >= 1")

    def read(self, data):
        if data is not None:
            raise ValueError("the memory benchmark generates its data: give no data")
        return None

    def fit(self, data=None, **places) -> MemoryBenchmark:
        """Train every cell at every T (see the class docstring); the data are generated, so
        ``data`` is None. ``places``: ``checkpoint_dir``, ``resume`` and ``diagnose_dir``
        (``rnnkit.tasks.rundir``); each run records into ``runs/<cell>_T<T>/diagnostics``
        beside ``diagnose_dir``."""
        return super().fit(data, **places)

    def _prepare(self, train, held):
        return None, None  # each run generates its sequences, at its T

    def _build_model(self) -> nn.ModuleDict:
        """Every run's ``MemoryNet``, keyed ``<cell>_T<T>``."""
        models = nn.ModuleDict()
        for cell, steps in self._runs():
            _, _, _, (inputs, outputs, every_step, _) = self._generate(steps)
            models[f"{cell}_T{steps}"] = MemoryNet(
                cell, inputs, self.hidden_size, outputs, every_step
            )
        return models

    def _fit_models(self, held, train_set, held_set) -> None:
        """Train each run on its own sequences, from the same seed, with the same budget."""
        from torch.utils.data import TensorDataset

        from ..training import set_seed

        self.model_ = nn.ModuleDict()
        self.results_, self.histories_, self.history_, self.steps_ = [], {}, [], []
        self.best_epoch_ = None
        for cell, steps in self._runs():
            name = f"{cell}_T{steps}"
            (x, y), (x_test, y_test), baseline, shape = self._generate(steps)
            inputs, outputs, every_step, loss = shape
            set_seed(self.seed)
            model = MemoryNet(cell, inputs, self.hidden_size, outputs, every_step)
            folder = self._places["diagnose_dir"]
            record = Path(folder).parent / "runs" / name / "diagnostics" if folder else False
            trainer = self._trainer(
                validation=False, loss=loss, record=record, checkpoint=name, progress="none"
            )
            started = time.perf_counter()
            self._train(trainer, model, TensorDataset(x, y))
            seconds = time.perf_counter() - started - trainer.hook_seconds
            self.model_[name] = model
            self.histories_[name] = trainer.history
            error = _test_error(model, self.problem, x_test, y_test)
            self.results_.append({
                "cell": cell, "T": steps, "test_error": error, "baseline": baseline,
                "error_vs_baseline": error / baseline, "train_seconds": seconds,
                "steps": len(trainer.steps), "final_train_loss": trainer.steps[-1]["loss"],
                "backend": model.rnn.backend_in_use,
            })  # fmt: skip
            if self.progress != "none" and process_rank() == 0:
                print(
                    f"{cell:>4} T={steps:<4} test {METRICS[self.problem]} {error:.4g} "
                    f"(baseline {baseline:.4g}) in {seconds:.0f} s, {len(trainer.steps)} steps",
                    file=sys.stderr,
                )

    def _fit_metrics(self, train, held) -> dict:
        return {"test": _scores(self.results_)}

    def _generate(self, steps: int):
        return _data(self.problem, steps, self.train_size, self.test_size, self.seed)

    def score(self, data=None) -> dict:
        """Every run's error on the test sequences (generated from ``seed + 1``) beside the
        trivial baseline's: ``{"model": {run: {"error": …}}, "trivial": {…}}``."""
        self._check_fitted()
        self.read(data)
        rows = []
        for cell, steps in self._runs():
            _, (x_test, y_test), baseline, _ = self._generate(steps)
            error = _test_error(self.model_[f"{cell}_T{steps}"], self.problem, x_test, y_test)
            rows.append({"cell": cell, "T": steps, "test_error": error, "baseline": baseline})
        return _scores(rows)

    def predict(self, inputs, *, run: str) -> torch.Tensor:
        """The outputs of the model of ``run`` (``<cell>_T<T>``) for ``inputs``."""
        self._check_fitted()
        if run not in self.model_:
            raise ValueError(f"run={run!r} is not one of {list(self.model_)}")
        with torch.no_grad():
            return self.model_[run].eval()(inputs)

    def table(self, scores: dict) -> list[str]:
        metric = METRICS[self.problem]
        lines = [f"| run | test {metric} | baseline | error / baseline |", "|---|--:|--:|--:|"]
        for name, entry in scores["model"].items():
            error, baseline = entry["error"], scores["trivial"][name]["error"]
            lines.append(f"| {name} | {error:.4g} | {baseline:.4g} | {error / baseline:.3f} |")
        return lines

    def report(self) -> str:
        return table_text(self.results_, self.problem)

    def _data_state(self) -> dict:
        return {"results": self.results_}

    def _restore(self, state: dict) -> None:
        self.results_ = state["results"]
        self.histories_ = {}  # each run's history.csv stays in the run directory it came from
        self.model_ = self._build_model()

    def _write_extra(self, directory: Path) -> None:
        import pandas as pd

        from .. import plots

        lengths, cells, problem = self._lengths(), list(self.cells), self.problem
        table = pd.DataFrame(self.results_)
        table.to_csv(directory / "results.csv", index=False)
        for cell, steps in self._runs():
            folder = directory / "runs" / f"{cell}_T{steps}"
            folder.mkdir(parents=True, exist_ok=True)
            settings = {"cell": cell, "T": steps, **self.get_params()}
            rundir.write_json(folder / "config.json", settings)
            if f"{cell}_T{steps}" in self.histories_:
                history = pd.DataFrame(self.histories_[f"{cell}_T{steps}"])
                history.to_csv(folder / "history.csv", index=False)
        errors = {
            c: table[table.cell == c].set_index("T").test_error.reindex(lengths) for c in cells
        }
        baselines = table.groupby("T").baseline.first().reindex(lengths).to_numpy()
        plots.plot_memory_benchmark(
            directory / f"memory_{problem}.png", lengths, errors, baselines, METRICS[problem]
        )
        recorded = all((directory / "runs" / f"{c}_T{t}" / "diagnostics").is_dir()
                       for c, t in self._runs())  # fmt: skip
        if recorded:  # by a run directory's fit (rnnkit.tasks.rundir.train_run)
            for cell in cells:
                plots.plot_gradient_flow(
                    directory / f"gradient_flow_{cell}.png",
                    _gradient_panels(directory, cell, lengths),
                    title=f"{cell}: gradient flow through time on the {problem} task",
                )


def _scores(rows: list[dict]) -> dict:
    """Results rows as ``score`` returns them: the model's and the baseline's, by run."""
    names = [f"{row['cell']}_T{row['T']}" for row in rows]
    return {
        "model": {n: {"error": r["test_error"]} for n, r in zip(names, rows, strict=True)},
        "trivial": {n: {"error": r["baseline"]} for n, r in zip(names, rows, strict=True)},
    }


def _gradient_panels(folder: Path, cell: str, lengths) -> dict:
    """Panels of ``gradient_flow_<cell>.png``: one per T, the first and last recording."""
    from ..diagnostics import read_run

    panels = {}
    for steps in lengths:
        records = read_run(folder / "runs" / f"{cell}_T{steps}")
        (first, first_meta), (last, last_meta) = records[0], records[-1]
        panels[f"T = {steps}/h"] = {
            f"before training (step {first_meta['step']})": first.gradient_norms[KEY],
            f"after training (step {last_meta['step']})": last.gradient_norms[KEY],
        }
    return panels


def table_text(rows: list[dict], problem: str) -> str:
    """The results as a Markdown table."""
    metric = METRICS[problem]
    lines = [
        f"| cell | T | test {metric} | baseline | error / baseline | train time (s) | steps |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['cell']} | {row['T']} | {row['test_error']:.4g} | {row['baseline']:.4g} | "
            f"{row['error_vs_baseline']:.3f} | {row['train_seconds']:.0f} | {row['steps']} |"
        )
    return "\n".join(lines)


__all__ = ["CELLS", "PROBLEMS", "MemoryBenchmark", "MemoryNet", "table_text"]
