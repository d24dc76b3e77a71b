"""What the classify and tag tasks share: settings, training, batched inference, run directories.

A task is an estimator in scikit-learn's manner: the constructor stores settings, ``fit``
learns (the fitted state ends in ``_``), ``save`` writes a run directory and ``load`` reads
one back. Subclasses say what their data is, how the model is built, and what data state
(vocabularies, scalers) the model needs.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..data.text import Vocabulary
from .rundir import read_json, require_run, save_weights, staging, write_json

EVAL_BATCH = 256


class SupervisedTask:
    """Base of ``Classifier`` and ``Tagger``: see the module docstring."""

    task = ""  # the name in config.json and on the command line
    headline: tuple[str, ...] = ()  # the model's scores that metrics.json carries at its top
    unit = "examples"  # what ``score`` counts, under this key

    def table(self, scores: dict) -> list[str]:
        """``score``'s result as the lines of a table: the model and its baselines."""
        raise NotImplementedError

    def report(self) -> str:
        """The scores on validation (and test) as tables, and how training went."""
        lines = []
        for part in ("validation", "test"):
            if part in self.metrics_:
                scores = self.metrics_[part]
                header = f"{part.capitalize()} ({scores[self.unit]} {self.unit}):"
                lines += [header, *self.table(scores), ""]
        restored = self.best_epoch_ and self.patience
        best = f", kept the best epoch, {self.best_epoch_}" if restored else ""
        lines.append(f"Trained {len(self.history_)} epochs{best}.")
        return "\n".join(lines)

    def get_params(self) -> dict:
        """The constructor's settings, by name."""
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    # --- training --------------------------------------------------------------------------

    def _trainer(
        self, *, checkpoint_dir, val_metrics, monitor, seed=None, diagnose_dir=None, **loss
    ):
        from ..training import Trainer

        return Trainer(
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            lr=self.lr,
            weight_decay=self.weight_decay,
            clip_norm=self.clip_norm,
            early_stopping=self.patience if val_metrics else None,
            monitor=monitor if val_metrics else "loss",
            mode="max" if val_metrics else "min",
            # Accuracy and F1 tie often on small validation sets (entity F1 is 0 for a tagger's
            # first epochs): the lower val_loss decides, so patience measures real stagnation.
            tie_break="val_loss" if val_metrics else None,
            schedule=self.schedule,
            val_metrics=val_metrics,
            checkpoint_dir=checkpoint_dir,
            seed=self.seed if seed is None else seed,
            progress=self.progress,
            # Only the model a run keeps is diagnosed (not ensemble members or baselines).
            diagnose_every=self.diagnose_every if diagnose_dir is not None else None,
            diagnose_dir=diagnose_dir,
            **loss,
        )

    model_class: type = object  # the model it trains, whose own settings rnn_options may not set

    def _check_settings(self) -> None:
        if not 0 <= self.val < 1:
            raise ValueError(f"val={self.val!r} must be a fraction in [0, 1)")
        own = set(inspect.signature(self.model_class).parameters) - {"rnn_options"}
        clash = sorted(set(self.rnn_options) & own)
        if clash:
            raise ValueError(
                f"rnn_options {clash} are settings of {self.model_class.__name__} itself; set "
                f"them as {type(self).__name__}'s own settings (on the command line, --"
                f"{clash[0].replace('_', '-')} where there is such an option)"
            )

    def _split(self, count: int, labels=None):
        """(train rows, validation rows) for ``val``, stratified by ``labels`` if given; a
        clear error when the data is too small to hold any out."""
        labels = np.zeros(count) if labels is None else np.asarray(labels)
        keep, hold = stratified_split(labels, self.val, self.seed)
        if len(hold) == 0:
            raise ValueError(
                f"val={self.val} holds out nothing from {count} {self.unit} (the fraction of "
                f"each class is rounded); use val=0 to train without validation, or more data"
            )
        return keep, hold

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted; call fit() or load()")

    # --- run directories -------------------------------------------------------------------

    def save(self, out, *, overwrite: bool = False) -> Path:
        """Write the run directory ``out`` (see DESIGN.md); whole or not at all."""
        self._check_fitted()
        with staging(out, overwrite=overwrite) as partial:
            self._write(partial)
        return Path(out)

    def _write(self, directory: Path) -> None:
        from .. import plots

        write_json(directory / "config.json", self._config())
        for name, model in self._models().items():
            save_weights(model, directory / f"{name}.safetensors")
        write_json(directory / "data_state.json", self._data_state())
        write_json(directory / "metrics.json", self.metrics_)
        pd.DataFrame(self.history_).to_csv(directory / "history.csv", index=False)
        if self.history_:
            plots.plot_learning_curves(directory / "learning_curves.png", self.history_)
        self._write_pictures(directory)

    def _config(self) -> dict:
        return {
            "task": self.task,
            "rnnkit": __version__,
            "torch": torch.__version__,
            "settings": self.get_params(),
            "best_epoch": self.best_epoch_,
            "parameters": sum(p.numel() for p in self.model_.parameters()),
        }

    @classmethod
    def load(cls, run):
        """A fitted task from its run directory; needs nothing else."""
        from safetensors.torch import load_file

        run = require_run(run)
        config = read_json(run / "config.json")
        if config.get("task") != cls.task:
            raise ValueError(
                f"run={str(run)!r} holds a {config.get('task')!r} run, not a {cls.task!r} run"
            )
        task = cls(**config["settings"])
        for name in ("data_state.json", "metrics.json"):
            if not (run / name).is_file():
                raise ValueError(f"run={str(run)!r} is incomplete: {name} is missing")
        task._restore(read_json(run / "data_state.json"))
        task.metrics_ = read_json(run / "metrics.json")
        task.best_epoch_ = config.get("best_epoch")
        task.history_ = []
        for name, model in task._models().items():
            path = run / f"{name}.safetensors"
            if not path.is_file():
                raise ValueError(f"run={str(run)!r} is incomplete: {path.name} is missing")
            model.load_state_dict(load_file(path))
            model.eval()
        return task

    # What subclasses provide.
    def _models(self) -> dict:  # file name -> module, "model" first
        raise NotImplementedError

    def _data_state(self) -> dict:
        raise NotImplementedError

    def _restore(self, state: dict) -> None:  # the data state back, and untrained models
        raise NotImplementedError

    def _write_pictures(self, directory: Path) -> None:
        raise NotImplementedError


def run_batches(dataset, function, batch_size: int = EVAL_BATCH) -> list:
    """``function(inputs, lengths)`` over ``dataset`` in batches of similar length, with
    gradients off; returns the per-sequence results (rows of what it returns) in the
    dataset's order."""
    results = [None] * len(dataset)
    with torch.no_grad():
        for indices in dataset.epoch_batches(batch_size, 0, 0, shuffle=False):
            inputs, _, lengths = dataset.batch(indices)
            inputs = inputs if isinstance(inputs, tuple) else (inputs,)
            out = function(*inputs, lengths=lengths)
            for row, index in enumerate(indices.tolist()):
                results[index] = out[row]
    return results


def train_run(task: SupervisedTask, data, out, *, test=None, overwrite=False, resume=False):
    """Fit ``task`` on ``data``, score it on ``test`` if given, write the run directory ``out``
    (whole or not at all; ``resume`` continues an interrupted run from its checkpoint) and
    return the report that ``<task> train`` prints. The top of metrics.json carries the
    ``headline`` scores of the test (or else the validation) part."""
    with staging(out, overwrite=overwrite, resume=resume) as partial:
        task.fit(
            data,
            checkpoint_dir=partial / "checkpoint",
            resume=resume,
            diagnose_dir=partial / "diagnostics",
        )
        if test is not None:
            task.metrics_["test"] = task.score(test)
        part = "test" if test is not None else "validation"
        if part in task.metrics_:
            task.metrics_ |= {key: task.metrics_[part][key] for key in task.headline}
            task.metrics_["scored_on"] = part
        task._write(partial)
    return f"{task.report()}\n\nRun directory: {out}"


def evaluate_run(cls, run, data, source: str) -> str:
    """Score the saved run ``run`` of task class ``cls`` on labelled ``data``, record it in
    the run's metrics.json and return the table that ``<task> evaluate`` prints."""
    task = cls.load(run)
    scores = task.score(data)
    record_evaluation(run, {"data": source, **scores})
    return "\n".join([f"{source}: {scores[task.unit]} {task.unit}", *task.table(scores)])


def record_evaluation(run, entry: dict) -> None:
    """Add ``entry`` to the run's metrics.json: under ``evaluations``, and its top-level
    scores become the run's latest."""
    path = Path(run) / "metrics.json"
    stored = read_json(path)
    stored.setdefault("evaluations", []).append(entry)
    stored.update({k: v for k, v in entry.items() if isinstance(v, float)})
    stored["scored_on"] = entry["data"]
    write_json(path, stored)


def label_vocabulary(labels) -> Vocabulary:
    """The distinct labels as a vocabulary without pad/unk, in sorted order (numerically when
    they all are numbers: "2" before "10"), so class ids do not depend on the data's order."""
    distinct = set(labels)
    try:  # ("1", "1.0") are equal as numbers: the text decides, not the set's order
        ordered = sorted(distinct, key=lambda label: (float(label), label))
    except ValueError:
        ordered = sorted(distinct)
    return Vocabulary.from_dict(
        {"min_freq": 1, "max_size": None, "specials": [], "tokens": ordered}
    )


def stratified_split(labels: np.ndarray, fraction: float, seed: int):
    """(train indices, validation indices): ``fraction`` of each class held out at random."""
    generator = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        generator.shuffle(rows)
        held.append(rows[: round(fraction * len(rows))])
    held = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(labels)), held), held


def score_table(scores: dict, columns: dict[str, str], names: dict[str, str]) -> list[str]:
    """Lines of a table: one row per scored model (``names``: key -> row label), one column
    per metric (``columns``: key -> heading), values as percentages."""
    width = max(len(label) for label in names.values())
    lines = [" " * width + "".join(f"{heading:>11}" for heading in columns.values())]
    for key, label in names.items():
        if key in scores:
            values = "".join(f"{100 * scores[key][c]:>10.1f}%" for c in columns)
            lines.append(f"{label:<{width}}{values}")
    return lines
