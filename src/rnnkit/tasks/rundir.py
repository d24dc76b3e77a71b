"""Run directories: the one module that writes and reads them, for every task.

A run directory holds ``config.json`` (the task, versions, every setting), one
``NAME.safetensors`` per model (``model`` first), ``data_state.json`` (what the model needs
besides its weights: vocabularies, scalers), ``metrics.json`` (validation and test, the model
beside its baselines, the headline scores at the top, later evaluations under
``evaluations``), ``history.csv`` (per epoch), ``steps.csv`` (per optimizer step),
``learning_curves.png``, the task's own pictures and files, and ``report.html``, the run as
one page to open in a browser (``rnnkit.tasks.report``). ``metrics.json`` also keeps where
the data came from and every warning the run showed.

A run is assembled in ``NAME.partial`` next to its final place and renamed to ``NAME`` only
when everything is in it, so a crash, a kill or a bad argument never leaves a directory that
looks finished. The partial directory also holds the training checkpoint, which is what
``resume`` continues from, and ``started.json``, the settings and data it was started with,
so a resumed run is refused when they changed.

Under ``torchrun`` every process trains, and only the process of rank 0 writes: the other
processes create, rename and delete nothing (they read the checkpoint on ``resume``, so the
run directory must be on a file system they share).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

from ..training.distributed import process_rank


def partial_path(out) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".partial")


class RunLockedError(FileExistsError):
    """Another process is writing the same run directory (a ``FileExistsError``: the run is
    taken, as an existing one is)."""


@contextmanager
def run_lock(out):
    """Hold ``NAME.lock`` beside the run directory ``out`` while a run is written into it: an
    OS lock (``flock``), so a process that dies releases it and a killed run can still be
    resumed. A second process is refused at once with the holder's pid and start time
    (``RunLockedError``). Where the OS has no ``fcntl`` (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    import time

    path = Path(out).with_name(Path(out).name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 200).decode(errors="replace").strip() or "unknown"
            raise RunLockedError(
                f"out={str(out)!r} is being written by another process ({holder}); wait for "
                "it to end, or choose another out"
            ) from None
        os.ftruncate(descriptor, 0)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        os.write(descriptor, f"pid {os.getpid()}, started {stamp}".encode())
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # while still held: no other process is inside
    finally:
        os.close(descriptor)  # releases the lock


@contextmanager
def staging(out, *, overwrite: bool = False, resume: bool = False):
    """Yield the directory to write the run into; on success it becomes ``out``.

    ``out`` that already exists is an error unless ``overwrite``; the partial directory of an
    earlier, interrupted run is reused with ``resume`` and replaced otherwise. On an error the
    partial directory stays when resuming could use it (it holds a checkpoint), else it goes.
    """
    out = Path(out)
    partial = partial_path(out)
    if process_rank() != 0:  # the main process alone writes
        if out.exists() and not overwrite:
            raise FileExistsError(
                f"out={str(out)!r} already exists; choose another or overwrite it"
            )
        yield partial
        return
    with run_lock(out):
        if out.exists() and not overwrite:
            raise FileExistsError(
                f"out={str(out)!r} already exists; choose another or overwrite it"
            )
        yield from _staged(out, partial, resume)


def _staged(out: Path, partial: Path, resume: bool):
    """``staging``'s work once the run is locked: the partial directory, then ``out``."""
    if partial.exists() and not resume:
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    try:
        yield partial
    except BaseException:
        if not (partial / "checkpoint").exists():
            shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(partial / "checkpoint", ignore_errors=True)
    if out.exists():  # overwrite: keep the old run until the new one is in place
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old)
    else:
        os.replace(partial, out)


def save_weights(module, path) -> None:
    """``module``'s state dict as a safetensors file. Each tensor is copied: safetensors
    refuses tensors that share memory, as tied weights do, and views that are not contiguous."""
    from safetensors.torch import save_file

    save_file({k: v.detach().clone() for k, v in module.state_dict().items()}, path)


def require_run(run) -> Path:
    """The run directory ``run``, or a clear error if it is not one."""
    run = Path(run)
    if not (run / "config.json").is_file():
        hint = (
            " (training was interrupted; rerun it with --resume)"
            if partial_path(run).exists()
            else ""
        )
        raise FileNotFoundError(f"run={str(run)!r} is not a finished run directory{hint}")
    return run


def write_json(path, data) -> None:
    """Write ``data`` as JSON; atomically, so a reader never sees half a file."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, default=_plain) + "\n")
    os.replace(temporary, path)


def as_json(data):
    """``data`` as it reads back from a JSON file written by ``write_json``."""
    return json.loads(json.dumps(data, default=_plain))


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def _plain(value):
    """JSON for numpy scalars and arrays, paths, and dates (as ISO text)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- what every task's run directory holds ------------------------------------------------------


def write_run(estimator, directory: Path) -> None:
    """Write the fitted ``estimator``'s run into ``directory`` (see the module docstring)."""
    import pandas as pd
    import torch

    from .. import plots
    from .._version import __version__

    config = {
        "task": estimator.task,
        "rnnkit": __version__,
        "torch": torch.__version__,
        "settings": estimator.get_params(),
        "best_epoch": estimator.best_epoch_,
        "parameters": sum(p.numel() for p in estimator.model_.parameters()),
        **estimator._config(),
    }
    write_json(directory / "config.json", config)
    for name, model in estimator._models().items():
        save_weights(model, directory / f"{name}.safetensors")
    write_json(directory / "data_state.json", estimator._data_state())
    write_json(directory / "metrics.json", estimator.metrics_)
    pd.DataFrame(estimator.history_).to_csv(directory / "history.csv", index=False)
    pd.DataFrame(estimator.steps_).to_csv(directory / "steps.csv", index=False)
    if estimator.history_:
        plots.plot_learning_curves(directory / "learning_curves.png", estimator.history_)
    estimator._write_extra(directory)
    from .report import write_report

    write_report(directory)  # last: it reads the files above


def read_run(cls, run):
    """The fitted estimator of class ``cls`` that the run directory ``run`` holds."""
    from safetensors.torch import load_file

    from .._version import __version__

    run = require_run(run)
    config = read_json(run / "config.json")
    if config.get("task") != cls.task:
        raise ValueError(
            f"run={str(run)!r} holds a {config.get('task')!r} run, not a {cls.task!r} run"
        )
    for name in ("data_state.json", "metrics.json"):
        _require_file(run, name)
    # JSON has no tuples: a setting whose default is one comes back as one.
    defaults = cls.defaults()
    settings = {
        name: tuple(value) if isinstance(defaults.get(name), tuple) and isinstance(value, list)
        else value
        for name, value in config["settings"].items()
    }  # fmt: skip
    try:
        estimator = cls(**settings)
        estimator._restore(read_json(run / "data_state.json"))
        for name, model in estimator._models().items():
            model.load_state_dict(load_file(_require_file(run, f"{name}.safetensors")))
            model.eval()
    except (KeyError, TypeError, RuntimeError) as error:
        raise ValueError(
            f"run={str(run)!r} does not hold a {cls.task!r} run that rnnkit {__version__} "
            f"reads ({type(error).__name__}: {error}); it was written by rnnkit "
            f"{config.get('rnnkit')}"
        ) from error
    estimator.metrics_ = read_json(run / "metrics.json")
    estimator.best_epoch_ = config.get("best_epoch")
    estimator.history_, estimator.steps_ = (_rows(run / f) for f in ("history.csv", "steps.csv"))
    return estimator


def _rows(path: Path) -> list[dict]:
    """A CSV file that ``write_run`` wrote, as one dict per row ([] for none)."""
    import pandas as pd

    if not path.is_file() or path.stat().st_size <= 1:  # an empty table is one line end
        return []
    return pd.read_csv(path).to_dict("records")


def _require_file(run: Path, name: str) -> Path:
    path = run / name
    if not path.is_file():
        raise ValueError(f"run={str(run)!r} is incomplete: {name} is missing")
    return path


@contextmanager
def noted_warnings(into: list):
    """Note in ``into`` every warning shown while the block runs (as the filters decide: a
    warning turned into an error or ignored is not noted), still showing it."""
    shown = warnings.showwarning

    def note(message, category, filename, lineno, file=None, line=None):
        into.append(f"{category.__name__}: {message}")
        shown(message, category, filename, lineno, file, line)

    warnings.showwarning = note
    try:
        yield
    finally:
        warnings.showwarning = shown


def train_run(estimator, data, out, *, test=None, read=None, overwrite=False, resume=False) -> str:
    """Fit ``estimator`` on ``data``, score it on ``test`` if given, write the run directory
    ``out`` and return the report that ``rnnkit <task> train`` prints.

    Both data are read first (``estimator.read``, with the options ``read``), so a bad test
    file fails before training. The run is written whole or not at all; ``resume``
    continues an interrupted one from its checkpoint, and is refused if the settings or the
    data differ from those it started with. The top of metrics.json carries the model's
    ``headline`` scores on the test part (or else the validation part). Under torchrun only
    rank 0 writes; the others return "".
    """
    estimator.check_settings()  # before any data is read: a bad setting fails at once
    started = {"settings": as_json(estimator.get_params()), "data": describe(data, absolute=True)}
    data = estimator.read(data, **(read or {}))
    test = estimator.read(test, **(read or {})) if test is not None else None
    data, test = estimator._hold_out_test(data, test)
    main = process_rank() == 0
    with staging(out, overwrite=overwrite, resume=resume) as partial:
        record = partial / "started.json"
        if resume and record.exists():
            _check_same_run(read_json(record), started)
        if main:
            write_json(record, started)
        warned: list[str] = []
        with noted_warnings(warned):
            estimator.fit(
                data,
                checkpoint_dir=partial / "checkpoint",
                resume=resume,
                diagnose_dir=partial / "diagnostics",
            )
            if not main:
                return ""
            if test is not None:
                estimator.metrics_["test"] = estimator.score(test)
                estimator.metrics_.setdefault("data", {})["test"] = len(test)
        sources = {"train": describe(data)} | ({"test": describe(test)} if test else {})
        estimator.metrics_["sources"] = sources
        estimator.metrics_["warnings"] = warned
        part = "test" if "test" in estimator.metrics_ else "validation"
        if part in estimator.metrics_:
            estimator.metrics_ |= _headline(estimator, estimator.metrics_[part], part)
        write_run(estimator, partial)
        record.unlink()  # last: a run that fails to write still resumes with its check
    return f"{estimator.report()}\n\nRun directory: {out}"


def evaluate_run(cls, run, data, *, read=None, **options) -> str:
    """Score the saved run ``run`` of estimator class ``cls`` on ``data`` (read with the
    options ``read``; ``options`` go to ``score``), record it in the run's metrics.json and
    return what ``rnnkit <task> evaluate`` prints."""
    run = require_run(run)
    estimator = cls.load(run)
    source = describe(data)
    scores = estimator.score(estimator.read(data, **(read or {})), **options)
    path = run / "metrics.json"
    stored = read_json(path)
    stored.setdefault("evaluations", []).append({"data": source, **options, "scores": scores})
    stored |= _headline(estimator, scores, source)
    write_json(path, stored)
    return "\n".join([f"{source}:", *estimator.table(scores)])


def _headline(estimator, scores: dict, scored_on: str) -> dict:
    """The top of metrics.json: the headline scores of ``scores``, and what they scored."""
    entry = estimator._headline(scores)
    return {key: entry[key] for key in estimator.headline if key in entry} | {
        "scored_on": scored_on
    }


def describe(data, *, absolute: bool = False) -> str:
    """How a run names its data: the path (``absolute``: made absolute, so that a resumed
    run may name it relatively from elsewhere), or the kind of object it was given."""
    if data is None:
        return "generated from the settings"
    if isinstance(data, str | os.PathLike):
        return os.path.abspath(data) if absolute else os.fspath(data)
    return getattr(data, "source", None) or type(data).__name__


def _check_same_run(before: dict, now: dict) -> None:
    """Refuse to resume a checkpoint with settings or data other than its own."""
    changed = (
        [] if before["data"] == now["data"] else [f"data: {before['data']!r} -> {now['data']!r}"]
    )
    for name, value in now["settings"].items():
        # How progress is shown changes nothing the run computes.
        if name != "progress" and before["settings"].get(name) != value:
            changed.append(f"{name}: {before['settings'].get(name)!r} -> {value!r}")
    if changed:
        raise ValueError(
            "--resume continues a run with the settings and data it started with; changed: "
            + "; ".join(changed)
        )
