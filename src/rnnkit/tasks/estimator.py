"""The estimator contract every task follows: scikit-learn's.

- The constructor takes keyword arguments only and stores them as given: settings, nothing
  learnt. ``get_params`` returns them, ``set_params`` changes them, and
  ``sklearn.base.clone`` makes an unfitted copy.
- ``fit(data, ...)`` learns and returns the estimator; what it learnt ends in ``_``
  (``model_``, ``vocabulary_``, ``history_``, ``metrics_``).
- ``predict(data)`` uses it; ``score(data)`` returns ``{"model": {metric: value},
  "<baseline>": {...}}``: the model beside the baselines it has to beat, on the same data.
- ``save(dir)`` writes a run directory and ``load(dir)`` reads one back
  (``rnnkit.tasks.rundir``); ``report()`` is what ``rnnkit <task> train`` prints.

A task's settings are declared once, as data (``rnnkit.tasks.settings.Setting``): its own in
its class attribute ``settings``, and the training settings of
``rnnkit.tasks.settings.TRAINING`` that apply to it, with the task's defaults, in
``training``. The constructor, the signature that ``inspect.signature``, ``help()`` and the
CLI show, and the check of every value when ``fit`` starts are all made from them.

``fit`` is written once, here; a task fills in hooks. Every task defines these (a class with
a ``task`` name that lacks one is refused when it is defined, naming the hook):

- ``_prepare(train, held)``: learn the data state (vocabularies, scalers) from the training
  part and return the (training, validation or None) datasets the Trainer reads;
- ``_build_model()``: a new model of the data state's shapes (also what ``load`` fills);
- ``score(data)``, ``predict(data)``, ``table(scores)``;
- ``_data_state()`` and ``_restore(state)``: the data state as JSON, and back.

and may override these, whose defaults serve most tasks: ``read`` (data as ``fit`` takes
it), ``_split`` (hold out ``val`` of the examples at random), ``_trainer_options`` (the
task's loss and validation scores for the Trainer), ``_fit_models`` (one model, seeded,
trained), ``_fit_baselines`` (none), ``_fit_metrics`` (sizes and validation scores) and
``_keep`` (what the run keeps of training).
"""

from __future__ import annotations

import difflib
import inspect
import os
import time
import warnings
from pathlib import Path
from typing import ClassVar

from .settings import TRAINING, Setting


class Estimator:
    """Base of every task's estimator; see the module docstring.

    Class attributes a subclass sets:
        task: its name, in config.json and on the command line.
        about: one line on what it does (the help of ``rnnkit <task>``).
        settings: its own settings, ``Setting`` declarations, in the order of its signature.
        training: ``{setting: default}`` of the training settings it takes
            (``training_settings(...)``).
        headline: the model's scores that metrics.json carries at its top.
        unit: what the data counts, in reports.
        fractional: training settings that may be a fraction (a language model's epochs).
        automatic: training settings whose None means "chosen by the task from the data"
            (a classifier's batch size, by its budget rule).
        renamed: ``{old attribute: new}`` of fitted state renamed in this release (new: an
            attribute, or ``(attribute, key)`` of a dict); the old name still reads, with a
            DeprecationWarning.
    """

    task = ""
    about = ""
    settings: ClassVar[tuple[Setting, ...]] = ()
    training: ClassVar[dict] = {}
    headline: tuple[str, ...] = ()
    unit = "examples"
    fractional: tuple[str, ...] = ()
    automatic: tuple[str, ...] = ()
    renamed: ClassVar[dict] = {}

    # The hooks every task defines; see the module docstring.
    hooks = ("_prepare", "_build_model", "score", "predict", "table", "_data_state", "_restore")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        missing = [h for h in cls.hooks if getattr(cls, h) is getattr(Estimator, h)]
        if cls.task and missing:  # a class without a task name is a base of tasks
            raise TypeError(
                f"{cls.__name__} (task {cls.task!r}) does not define {', '.join(missing)}: "
                "every task defines the hooks Estimator.hooks lists (see rnnkit.tasks.estimator)"
            )
        if "settings" not in cls.__dict__ and "training" not in cls.__dict__:
            return
        parameters = [
            inspect.Parameter(setting.name, inspect.Parameter.KEYWORD_ONLY, default=setting.default)
            for setting in cls.declarations().values()
        ]
        if "__init__" not in cls.__dict__:  # one made from the declarations

            def __init__(self, **settings):
                self._store(settings)

            __init__.__qualname__ = f"{cls.__qualname__}.__init__"
            __init__.__doc__ = f"Store the settings of {cls.__name__} as given; see the class."
            cls.__init__ = __init__
        self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        cls.__init__.__signature__ = inspect.Signature([self_parameter, *parameters])
        if cls.__doc__:  # help() lists the settings from their declarations
            cls.__doc__ = f"{cls.__doc__.rstrip()}\n\n{_settings_section(cls)}"

    def _store(self, given: dict) -> None:
        """Store every setting as given (``given``: by name), the defaults for the others."""
        self._check_names(given)
        for name, setting in self.declarations().items():
            setattr(self, name, given.get(name, setting.default))

    # --- settings ----------------------------------------------------------------------------

    @classmethod
    def declarations(cls) -> dict[str, Setting]:
        """Every setting's declaration, by name, in the order of the signature: the task's
        own, then the training settings it takes, with its defaults."""
        declared = {setting.name: setting for setting in cls.settings}
        for name, default in cls.training.items():
            if name not in declared:
                declared[name] = TRAINING[name].but(default=default)
        return declared

    @classmethod
    def setting_names(cls) -> list[str]:
        """Every setting, in the order of the signature."""
        return list(cls.declarations())

    @classmethod
    def defaults(cls) -> dict:
        """Every setting's default."""
        return {name: setting.default for name, setting in cls.declarations().items()}

    def get_params(self, deep: bool = True) -> dict:
        """The settings, by name, as they were given (``deep`` is scikit-learn's; nothing
        here holds a nested estimator)."""
        return {name: getattr(self, name) for name in self.setting_names()}

    def set_params(self, **params):
        """Change settings; returns the estimator. The fitted state is not touched: fit
        again for the new settings to take effect."""
        self._check_names(params)
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _check_names(self, given) -> None:
        names = self.setting_names()
        for name in given:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(
                    f"{name!r} is not a setting of {type(self).__name__}{hint}; its settings "
                    f"are {names}"
                )

    def __repr__(self) -> str:
        defaults = self.defaults()
        changed = {
            name: value
            for name, value in self.get_params().items()
            if not _same(value, defaults[name])
        }
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def __getattr__(self, name: str):
        # Only reached for names the instance lacks: old spellings of fitted state.
        renamed = type(self).renamed
        if name in renamed:
            new = renamed[name]  # an attribute, or (attribute, key) of a dict
            spelled = new if isinstance(new, str) else f"{new[0]}[{new[1]!r}]"
            warnings.warn(
                f"{type(self).__name__}.{name} is now {spelled}; the old name goes in the next "
                "release",
                DeprecationWarning,
                stacklevel=2,
            )
            return getattr(self, new) if isinstance(new, str) else getattr(self, new[0])[new[1]]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # --- training: the one procedure ---------------------------------------------------------

    def fit(self, data, *, val_data=None, **places):
        """Learn from ``data`` (a path or the task's in-memory form, see ``read``), holding out
        a validation part for early stopping and the validation scores (``val`` of it, or
        ``val_data`` when given); returns the estimator. ``places``: ``checkpoint_dir``,
        ``resume`` and ``diagnose_dir``, which a run directory gives (``rnnkit.tasks.rundir``).

        The procedure every task follows: check the settings and forget the last fit, read
        and split the data, learn the data state, train the model (seeded), fit the
        baselines, and score the validation part.
        """
        self._start_fit(**places)
        train, held = self._split(self.read(data), val_data)
        train_set, held_set = self._prepare(train, held)
        self._fit_models(held, train_set, held_set)
        self._fit_baselines(train, held)
        self.metrics_ = self._fit_metrics(train, held)
        self._log_tensorboard()
        return self

    def _start_fit(self, *, checkpoint_dir=None, resume=False, diagnose_dir=None) -> None:
        """Check the settings and note where this fit checkpoints and records (a run
        directory's, when ``rnnkit.tasks.rundir.train_run`` calls it)."""
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True continues from checkpoint_dir, which is None")
        self.check_settings()
        # A new fit forgets the last one: a fit that fails leaves an unfitted estimator,
        # never the new vocabulary beside the old model.
        for name in [name for name in vars(self) if name.endswith("_")]:
            delattr(self, name)
        self._places = {"checkpoint_dir": checkpoint_dir, "resume": resume,
                        "diagnose_dir": diagnose_dir}  # fmt: skip

    def check_settings(self) -> None:
        """Refuse a setting that cannot work, naming it: each value against its declaration,
        then the task's ``_check_settings``. ``fit`` starts with it; a run
        (``rundir.train_run``) calls it before it reads any data."""
        for name, setting in self.declarations().items():
            value = getattr(self, name)
            if not (value is None and name in self.automatic):
                setting.check(value, fractional=name in self.fractional)
        if getattr(self, "tensorboard", None):
            try:
                import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
            except ImportError:
                raise ValueError(
                    f"tensorboard={str(self.tensorboard)!r} needs the tensorboard package: "
                    "pip install rnnkit[tensorboard]"
                ) from None
        self._check_settings()

    def _check_settings(self) -> None:
        """Refuse settings that cannot work together, before any time is spent (each value
        alone is checked against its declaration)."""

    def _split(self, data, val_data):
        """(training part, validation part or None) of the data ``read`` gave: ``val_data``
        read, or ``val`` of the examples held out at random, or none when the task has no
        ``val`` or it is 0."""
        if val_data is not None:
            return data, self.read(val_data)
        fraction = getattr(self, "val", None)
        if not fraction:
            return data, None
        from .supervised import hold_out

        keep, hold = hold_out(len(data), fraction, self.seed, self.unit)
        return self._subset(data, keep), self._subset(data, hold)

    def _subset(self, data, rows):
        """The examples ``rows`` of ``data``."""
        return [data[i] for i in rows]

    def _fit_models(self, held, train_set, held_set) -> None:
        """Train ``model_`` on ``train_set``, ``held_set`` (the validation part ``held`` as a
        dataset) for early stopping: seeded, built by ``_build_model``, trained by the Trainer
        of the training settings and the task's ``_trainer_options``. A task that trains
        several models (an ensemble, a benchmark) overrides this."""
        from ..training import set_seed

        set_seed(self.seed)
        self.model_ = self._build_model()
        # A validation part may be scored by val_metrics alone (held_set None: a text).
        validation = held is not None
        trainer = self._trainer(validation=validation, **self._trainer_options(held, held_set))
        started = time.perf_counter()
        self._train(trainer, self.model_, train_set, held_set)
        self.training_seconds_ = time.perf_counter() - started
        self._keep(trainer)

    def _trainer_options(self, held, held_set) -> dict:
        """The task's own Trainer arguments (``loss`` or ``compute_loss``, ``val_metrics``,
        ``monitor``, ``mode``, ``tbptt``, …) for a fit whose validation part is ``held``, as
        the dataset ``held_set`` (both None: no validation part)."""
        return {}

    def _fit_baselines(self, train, held) -> None:
        """Fit ``baselines_`` (name -> what scores beside the model) on the training part."""
        self.baselines_ = {}

    def _fit_metrics(self, train, held) -> dict:
        """metrics.json of a fit: the sizes of the parts, and the validation part's scores."""
        fitted = {"data": {"train": len(train), "validation": len(held) if held else 0}}
        if held is not None:
            fitted["validation"] = self.score(held)
        return fitted

    def _log_tensorboard(self) -> None:
        """Into the fit's TensorBoard folder (``tensorboard``), beside what the Trainer
        logged: the validation scores of the model and its baselines as lines, and the
        gradient flow and gates that ``diagnose_every`` recorded."""
        from ..training.distributed import process_rank

        folder = getattr(self, "tensorboard", None)
        if not folder or process_rank() != 0:
            return
        from ..training import tensorboard

        steps = len(getattr(self, "steps_", []))
        if "validation" in self.metrics_:
            tensorboard.add_baselines(folder, self.metrics_["validation"], steps)
        records = self._places["diagnose_dir"]
        files = sorted(Path(records).glob("step_*.safetensors")) if records else []
        if self.diagnose_every and files:
            import tempfile

            from ..diagnostics import Diagnosis, render

            with tempfile.TemporaryDirectory() as pictures:
                drawn = render([Diagnosis.load(path) for path in files], pictures)
                tensorboard.add_pictures(folder, drawn, steps)

    def _trainer(
        self,
        *,
        validation: bool,
        monitor: str = "val_loss",
        mode: str = "min",
        record: bool | os.PathLike = True,
        checkpoint: str | None = "",
        seed: int | None = None,
        **task,
    ):
        """The Trainer of this estimator's training settings, for one model.

        ``validation``: whether the fit has a validation part (early stopping and
        ``monitor`` need one). ``record``: whether ``diagnose_every`` records this model
        (only the model a run keeps is diagnosed, not baselines), or the folder to record it
        in (default: the fit's ``diagnose_dir``). ``checkpoint``: a
        sub-folder of the checkpoint directory ("" for the directory itself; None for none).
        ``task``: the task's own Trainer arguments (loss, val_metrics, tbptt, …).
        """
        from ..training import Trainer

        places = self._places
        hooks = []
        records = record if isinstance(record, str | os.PathLike) else places["diagnose_dir"]
        if record and self.diagnose_every and records is not None:
            from ..diagnostics import Recorder

            hooks.append(Recorder(every=self.diagnose_every, folder=records))
        if record and getattr(self, "tensorboard", None):
            from ..training.tensorboard import TensorBoard

            hooks.append(TensorBoard(self.tensorboard))
        root = places["checkpoint_dir"]
        folder = None if root is None or checkpoint is None else Path(root) / checkpoint
        # The Trainer takes the training settings by the same names; those a task does
        # not take (a language model's patience) are off.
        arguments = {
            name: getattr(self, name, None)
            for name in TRAINING
            if name not in ("diagnose_every", "tensorboard")
        }
        arguments |= {
            "patience": arguments["patience"] if validation else None,
            "monitor": monitor if validation else "loss",
            "mode": mode if validation else "min",
            "checkpoint_dir": folder,
            "seed": self.seed if seed is None else seed,
            "hooks": hooks,
        }
        return Trainer(**(arguments | task))

    def _train(self, trainer, model, train, val=None):
        """``trainer.fit``, resuming when this fit resumes and the trainer checkpoints;
        returns the model in eval mode, on the CPU, where ``predict`` and ``score`` run
        (under torchrun on GPUs each process trains on its own GPU)."""
        resume = self._places["resume"] and trainer.checkpoint_dir is not None
        trainer.fit(model, train, val=val, resume=resume)
        return model.cpu().eval()

    def _keep(self, trainer) -> None:
        """What the run directory keeps of the model's training: history, steps, best epoch."""
        self.history_, self.steps_ = trainer.history, trainer.steps
        # The epoch whose weights the model ends with; None when it ends with the last.
        restored = trainer.early_stopping is not None and trainer.restore_best
        self.best_epoch_ = trainer.best_epoch if restored else None

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError(
                f"this {type(self).__name__} is not fitted: call fit() or "
                f"{type(self).__name__}.load(run)"
            )

    # --- what a subclass provides --------------------------------------------------------------

    def read(self, data, **options):
        """``data`` (a path, or the task's in-memory form) as ``fit`` and ``score`` take it;
        reading what it returned gives it back. The CLI reads the test data before training,
        so a bad file fails at once."""
        return data

    def _hold_out_test(self, data, test):
        """(training data, test data) for a run: ``test`` as given by default; a task may
        hold out a part of ``data`` when no test data is given (translation does)."""
        return data, test

    def _prepare(self, train, held) -> tuple:
        """Learn the data state from ``train`` and return (training dataset, validation
        dataset or None) as the Trainer reads them."""
        raise NotImplementedError

    def _build_model(self):
        """A new, untrained model of the shapes the data state says."""
        raise NotImplementedError

    def predict(self, data):
        raise NotImplementedError

    def score(self, data) -> dict:
        raise NotImplementedError

    def _headline(self, scores: dict) -> dict:
        """Of ``score``'s result, the entry whose ``headline`` scores metrics.json carries
        at its top: the model's."""
        return scores["model"]

    def table(self, scores: dict) -> list[str]:
        """``score``'s result as the lines of a table: the model and its baselines."""
        raise NotImplementedError

    def report(self) -> str:
        """The scores of the validation (and test) part as tables, and how training went."""
        lines = []
        for part in ("validation", "test"):
            if part in self.metrics_:
                count = self.metrics_.get("data", {}).get(part)
                header = f"{part.capitalize()}" + (f" ({count} {self.unit})" if count else "")
                lines += [f"{header}:", *self.table(self.metrics_[part]), ""]
        restored = self.best_epoch_ and getattr(self, "patience", None)
        best = f", kept the best epoch, {self.best_epoch_}" if restored else ""
        lines.append(f"Trained {len(self.history_)} epochs{best}.")
        return "\n".join(lines)

    def _models(self) -> dict:
        """File name -> module, "model" first: the weights a run directory holds."""
        return {"model": self.model_}

    def _data_state(self) -> dict:
        """What the model needs besides its weights (vocabularies, scalers), as JSON."""
        raise NotImplementedError

    def _restore(self, state: dict) -> None:
        """The data state back, and untrained models of the right shapes."""
        raise NotImplementedError

    @staticmethod
    def _entry(state: dict, name: str, old: str):
        """``state[name]``, or what a run of the last release kept under ``old``."""
        return state[name] if name in state else state[old]

    def _config(self) -> dict:
        """Task-specific entries of config.json, beside the settings."""
        return {}

    def _write_extra(self, directory: Path) -> None:
        """The task's own files in a run directory: pictures, predictions."""

    # --- export ------------------------------------------------------------------------------

    def export(self, out, *, format: str = "onnx", overwrite: bool = False) -> Path:
        """Write the model as ``format`` ("onnx" or "pt2") graphs, with ``export.json`` (the
        schema, the graphs' inputs and outputs, the settings and the data state), into the
        folder ``out``, whole or not at all; each graph checked against the model on new
        sizes (see ``rnnkit.export``). Returns the folder."""
        import torch

        from .. import export
        from .._version import __version__
        from . import rundir

        self._check_fitted()
        if format not in export.FORMATS:
            raise ValueError(f"format={format!r} must be one of {list(export.FORMATS)}")
        graphs = self._export_graphs()
        with rundir.staging(out, overwrite=overwrite) as partial:
            described = {}
            for graph in graphs:
                path = partial / f"{graph.name}{export.SUFFIXES[format]}"
                export.export_graph(graph, path, format)
                described[graph.name] = export.describe(graph, path)
                described[graph.name]["check"] = export.check_graph(graph, path, format)
            rundir.write_json(partial / "export.json", {
                "schema": export.SCHEMA, "task": self.task, "format": format,
                "opset": export.OPSET if format == "onnx" else None,
                "rnnkit": __version__, "torch": torch.__version__,
                "traced_on": "the scan backend (the fused kernels cannot be traced); each "
                             "graph checked against the model on its own backend",
                "settings": rundir.as_json(self.get_params()), "graphs": described,
                "outside_the_graph": self._export_notes(),
                "data_state": rundir.as_json(self._data_state()),
                **self._export_extra(),
            })  # fmt: skip
        return Path(out)

    def _export_graphs(self) -> list:
        """The graphs ``export`` writes (``rnnkit.export.Graph``); a task whose model maps
        tensors to tensors defines it."""
        from ..export import ExportError

        raise ExportError(f"the {self.task!r} task has no model that maps tensors to tensors")

    def _export_notes(self) -> str:
        """What a user of the exported graphs does outside them (decoding, scaling)."""
        return ""

    def _export_extra(self) -> dict:
        """More of export.json: what decoding outside the graphs needs (a CRF's scores)."""
        return {}

    # --- run directories ---------------------------------------------------------------------

    def save(self, out, *, overwrite: bool = False) -> Path:
        """Write the run directory ``out`` (see ``rnnkit.tasks.rundir``); whole or not at all."""
        from ..training.distributed import process_rank
        from . import rundir

        self._check_fitted()
        if process_rank() != 0:  # under torchrun the main process alone writes
            return Path(out)
        with rundir.staging(out, overwrite=overwrite) as partial:
            rundir.write_run(self, partial)
        return Path(out)

    @classmethod
    def load(cls, run):
        """A fitted estimator from its run directory; needs nothing else."""
        from . import rundir

        return rundir.read_run(cls, run)


def _settings_section(cls) -> str:
    """The settings of ``cls`` as a docstring section: name, help and default of each."""
    lines = ["    Settings (keyword only; the training settings from ``TRAINING`` last):"]
    for name, setting in cls.declarations().items():
        lines.append(f"        {name}: {setting.help} Default: {setting.default!r}.")
    return "\n".join(lines)


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b
