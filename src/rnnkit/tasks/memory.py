"""``rnnkit bench-memory``: do plain RNNs forget and LSTMs remember? Measured.

Each cell is trained on a long-dependency task (``rnnkit.data.memory_tasks``) at each length
T with the same budget, scored on fresh test data against the task's trivial baseline, and
diagnosed while it trains (the gradient flow through time before and after). The result is a
run directory:

- ``results.csv``: one row per cell and T: test error, baseline, training time, steps;
- ``memory_<task>.png``: test error against T, one line per cell, baseline dashed;
- ``gradient_flow_<cell>.png``: ‖∂loss/∂h_t‖ over t at each T, before and after training;
- ``runs/<cell>_T<T>/diagnostics/``: every recorded diagnosis (``rnnkit diagnose --run``
  draws them), and ``config.json`` with every setting.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data import memory_tasks
from . import rundir

TASKS = ("adding", "copy", "smnist")
CELLS = ("rnn", "lstm", "gru")
KEY = "rnn.0.forward/h"  # MemoryNet's one layer, in the diagnoses
METRICS = {"adding": "MSE", "copy": "cross-entropy (nats/step)", "smnist": "error rate"}


class MemoryNet(nn.Module):
    """A recurrent layer and a linear readout: of the last step (adding, digits) or of every
    step (copy). Token inputs (copy) enter one-hot."""

    def __init__(self, cell: str, inputs: int, hidden_size: int, outputs: int, every_step: bool):
        super().__init__()
        from .. import layers

        layer = {"rnn": layers.RNN, "lstm": layers.LSTM, "gru": layers.GRU}[cell]
        self.inputs = inputs
        self.every_step = every_step
        self.rnn = layer(inputs, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, outputs)

    def forward(self, x):
        if not x.is_floating_point():
            x = F.one_hot(x, self.inputs).to(self.head.weight.dtype)
        out, _ = self.rnn(x)
        return self.head(out if self.every_step else out[:, -1])


@dataclass
class Setting:
    """The budget and shape of every run of a benchmark."""

    task: str = "adding"
    hidden_size: int = 64
    train_size: int = 10_000
    test_size: int = 1_000
    batch_size: int = 64
    max_steps: int = 2_000
    minutes: float | None = None  # per run, on top of max_steps
    lr: float = 1e-3
    clip_norm: float = 1.0
    diagnose_every: int = 250
    seed: int = 0


def _data(setting: Setting, steps: int):
    """-> (train, test, baseline error, model shape: inputs, outputs, every step, loss)."""
    task, seed = setting.task, setting.seed
    if task == "adding":
        train = memory_tasks.adding_problem(setting.train_size, steps, seed)
        test = memory_tasks.adding_problem(setting.test_size, steps, seed + 1)
        return train, test, memory_tasks.ADDING_BASELINE_MSE, (2, 1, False, "mse")
    if task == "copy":
        train = memory_tasks.copy_task(setting.train_size, steps, seed=seed)
        test = memory_tasks.copy_task(setting.test_size, steps, seed=seed + 1)
        # Inputs: blank, 8 symbols, delimiter; outputs: blank and the 8 symbols.
        return train, test, memory_tasks.copy_baseline(steps), (10, 9, True, "cross_entropy")
    digits = memory_tasks.sequential_mnist(seed=seed)
    baseline = 1 - memory_tasks.majority_accuracy(digits.y_train, digits.y_test)
    train, test = (digits.x_train, digits.y_train), (digits.x_test, digits.y_test)
    return train, test, baseline, (1, 10, False, "cross_entropy")


@torch.no_grad()
def _test_error(model: nn.Module, task: str, x, y, batch: int = 500) -> float:
    """Mean squared error (adding), cross-entropy per step (copy) or error rate (digits)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(x), batch):
        out, target = model(x[start : start + batch]), y[start : start + batch]
        if task == "adding":
            total += float(F.mse_loss(out, target, reduction="sum"))
        elif task == "copy":
            total += float(F.cross_entropy(out.flatten(0, 1), target.flatten(), reduction="sum"))
        else:
            total += float((out.argmax(1) != target).sum())
        count += target.numel()
    return total / count


def _check(setting: Setting, cells, lengths) -> None:
    if setting.task not in TASKS:
        raise ValueError(f"task={setting.task!r} is not known; expected one of {TASKS}")
    unknown = [c for c in cells if c not in CELLS]
    if not cells or unknown or len(set(cells)) < len(cells):
        raise ValueError(f"cells={list(cells)!r} must be a non-empty list of distinct {CELLS}")
    bad = any(isinstance(t, bool) or not isinstance(t, int) or t < 2 for t in lengths)
    if not lengths or bad or len(set(lengths)) < len(lengths):
        raise ValueError(f"T={list(lengths)!r} must be a non-empty list of distinct integers >= 2")
    if setting.minutes is not None and not setting.minutes > 0:
        raise ValueError(f"minutes={setting.minutes!r} must be a number > 0, or None")
    if setting.task == "smnist" and set(lengths) != {memory_tasks.MNIST_PIXELS}:
        raise ValueError(
            f"T={list(lengths)!r}: sequential MNIST has T = {memory_tasks.MNIST_PIXELS} "
            "(one pixel per step) only"
        )
    for name in ("hidden_size", "train_size", "test_size", "batch_size", "max_steps"):
        value = getattr(setting, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1")


def run_one(setting: Setting, cell: str, steps: int, folder: Path) -> dict:
    """Train one cell at one T, recording diagnostics into ``folder``; -> its results row."""
    from torch.utils.data import TensorDataset

    from ..training import Trainer, set_seed

    (x, y), (x_test, y_test), baseline, shape = _data(setting, steps)
    inputs, outputs, every_step, loss = shape
    set_seed(setting.seed)
    model = MemoryNet(cell, inputs, setting.hidden_size, outputs, every_step)
    trainer = Trainer(
        epochs=None,
        max_steps=setting.max_steps,
        time_limit=None if setting.minutes is None else setting.minutes * 60,
        batch_size=setting.batch_size,
        lr=setting.lr,
        clip_norm=setting.clip_norm,
        loss=loss,
        seed=setting.seed,
        progress="none",
        diagnose_every=setting.diagnose_every,
        diagnose_dir=folder / "diagnostics",
    )
    started = time.perf_counter()
    trainer.fit(model, TensorDataset(x, y))
    seconds = time.perf_counter() - started - trainer.diagnose_seconds
    error = _test_error(model, setting.task, x_test, y_test)
    rundir.write_json(folder / "config.json", {"cell": cell, "T": steps, **asdict(setting)})
    trainer.write_history(folder / "history.csv")
    return {
        "cell": cell,
        "T": steps,
        "test_error": error,
        "baseline": baseline,
        "error_vs_baseline": error / baseline,
        "train_seconds": seconds,
        "steps": len(trainer.steps),
        "final_train_loss": trainer.steps[-1]["loss"],
        "backend": model.rnn.backend_in_use,
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


def bench_memory(
    out, *, cells=CELLS, lengths=None, overwrite: bool = False, progress=print,
    **settings,
) -> list[dict]:  # fmt: skip
    """Train every cell at every T (``lengths``) on ``settings["task"]`` and write the run
    directory ``out`` described in the module docstring. ``settings`` are ``Setting``'s.
    ``lengths`` defaults to 100, 200, 400 (784 for sequential MNIST, its only length).

    -> the results rows, also in ``results.csv``.
    """
    import pandas as pd

    from .. import plots

    setting = Setting(**settings)
    if lengths is None:
        lengths = [memory_tasks.MNIST_PIXELS] if setting.task == "smnist" else [100, 200, 400]
    cells, lengths = list(cells), list(lengths)
    _check(setting, cells, lengths)
    rows = []
    with rundir.staging(out, overwrite=overwrite) as partial:
        for cell in cells:
            for steps in lengths:
                row = run_one(setting, cell, steps, partial / "runs" / f"{cell}_T{steps}")
                rows.append(row)
                progress(
                    f"{cell:>4} T={steps:<4} test {METRICS[setting.task]} "
                    f"{row['test_error']:.4g} (baseline {row['baseline']:.4g}) in "
                    f"{row['train_seconds']:.0f} s, {row['steps']} steps"
                )
        table = pd.DataFrame(rows)
        table.to_csv(partial / "results.csv", index=False)
        errors = {
            c: table[table.cell == c].set_index("T").test_error.reindex(lengths) for c in cells
        }
        baselines = table.groupby("T").baseline.first().reindex(lengths)
        plots.plot_memory_benchmark(
            partial / f"memory_{setting.task}.png",
            lengths,
            errors,
            baselines.to_numpy(),
            METRICS[setting.task],
        )
        for cell in cells:
            plots.plot_gradient_flow(
                partial / f"gradient_flow_{cell}.png",
                _gradient_panels(partial, cell, lengths),
                title=f"{cell}: gradient flow through time on the {setting.task} task",
            )
    return rows


def table_text(rows: list[dict], task: str) -> str:
    """The results as a Markdown table."""
    metric = METRICS[task]
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


__all__ = ["CELLS", "TASKS", "MemoryNet", "Setting", "bench_memory", "run_one", "table_text"]
