"""Checkpoints: one directory per epoch, which appears whole or not at all.

``checkpoint_dir/epoch-0003/`` holds

- ``model.safetensors``: the model's ``state_dict`` after epoch 3;
- ``best.safetensors``: the best epoch's weights, when early stopping keeps them;
- ``trainer.pt``: everything else needed to continue (optimizer and scheduler state, counters,
  history, early-stopping state, generator states), readable with
  ``torch.load(path, weights_only=True)``.

A checkpoint is written into a hidden temporary directory and renamed into place, so a run
killed at any moment leaves the previous checkpoint intact; the older one is removed after.

``Checkpoints`` is the Trainer's hook (see ``rnnkit.training.hooks``) that writes one after
every epoch and, when ``fit`` resumes, restores the newest.
"""

import io
import os
import re
import shutil
from pathlib import Path

import torch

from .hooks import Hook
from .reproducibility import restore_rng_states, rng_states

MODEL = "model.safetensors"
BEST = "best.safetensors"
STATE = "trainer.pt"
# Settings that shape the sequence of updates: a checkpoint continues only a run that has them.
RUN_SETTINGS = ("seed", "batch_size", "shuffle", "optimizer", "tbptt", "stateful")
_CHECKPOINT = re.compile(r"epoch-(\d+)")
_TEMPORARY = ".tmp-"


def _checkpoints(directory: Path) -> list[Path]:
    """The checkpoint directories in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and _CHECKPOINT.fullmatch(p.name)]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest(directory) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None."""
    found = _checkpoints(Path(directory))
    return found[-1] if found else None


def clear(directory) -> None:
    """Remove the checkpoints (and unfinished writes) a previous run left in ``directory``."""
    directory = Path(directory)
    for path in _checkpoints(directory):
        shutil.rmtree(path)
    if directory.is_dir():
        for path in directory.glob(_TEMPORARY + "*"):
            shutil.rmtree(path)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _safetensors_bytes(state_dict: dict) -> bytes:
    from safetensors.torch import save

    # safetensors refuses tensors that share memory (tied weights) or are not contiguous;
    # a contiguous CPU copy of each is neither.
    tensors = {
        name: t.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
        for name, t in state_dict.items()
    }
    return save(tensors)


def save(directory, epoch: int, weights: dict, best_weights: dict | None, state: dict) -> Path:
    """Write the checkpoint of ``epoch`` and remove the older ones; returns its directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"epoch-{epoch:04d}"
    temporary = directory / f"{_TEMPORARY}{final.name}-{os.getpid()}"
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    _write(temporary / MODEL, _safetensors_bytes(weights))
    if best_weights is not None:
        _write(temporary / BEST, _safetensors_bytes(best_weights))
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _write(temporary / STATE, buffer.getvalue())
    if final.exists():  # left by an earlier run that reached this epoch and was not resumed
        shutil.rmtree(final)
    os.replace(temporary, final)
    for older in _checkpoints(directory):
        if older != final:
            shutil.rmtree(older)
    return final


def load(path) -> tuple[dict, dict | None, dict]:
    """(model weights, best weights or None, trainer state) of the checkpoint at ``path``."""
    from safetensors.torch import load_file

    path = Path(path)
    weights = load_file(path / MODEL)
    best = load_file(path / BEST) if (path / BEST).exists() else None
    state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    return weights, best, state


class Checkpoints(Hook):
    """The Trainer's hook for ``checkpoint_dir``: a checkpoint after every epoch; at the start
    of a fit, the newest one restored when it resumes, the ones an earlier run left removed
    when it does not.

    A checkpoint holds everything the fit continues from: the model, the optimizer and the
    schedule, ``trainer.history`` and ``trainer.steps``, ``early_stopping``'s state and best
    weights, and every process's random generators, so a resumed run ends with the weights of
    one that was not interrupted (bit for bit with the same number of processes).
    """

    def __init__(self, directory, early_stopping):
        self.directory = directory
        self.early_stopping = early_stopping

    def on_fit_start(self, trainer, run) -> None:
        if run.resume:
            self._resume(trainer, run)
        elif run.ctx.is_main:
            clear(self.directory)

    def on_epoch_end(self, trainer, run) -> None:
        generators = run.ctx.gather(rng_states())  # every process's: each draws its own
        if not run.ctx.is_main:
            return
        state = {
            "epoch": run.epoch,
            "settings": {name: getattr(trainer.settings, name) for name in RUN_SETTINGS},
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
            "history": trainer.history,
            "steps": trainer.steps,
            **self.early_stopping.state_dict(),
            "rng": generators,
        }
        save(
            self.directory,
            run.epoch,
            run.model.state_dict(),
            self.early_stopping.best_weights,
            state,
        )

    def _resume(self, trainer, run) -> None:
        """Restore the newest checkpoint and set ``run.epoch`` to its epoch; nothing when
        there is none."""
        path = latest(self.directory)
        if path is None:
            return
        weights, best, state = load(path)
        ours = {name: getattr(trainer.settings, name) for name in state["settings"]}
        differ = {k: v for k, v in state["settings"].items() if ours[k] != v}
        if differ:
            ours = {k: ours[k] for k in differ}
            raise ValueError(
                f"the checkpoint in {path} was written with {differ} but this Trainer has "
                f"{ours}; resuming would not continue the same run (resume=False starts over)"
            )
        run.model.load_state_dict(weights)
        run.optimizer.load_state_dict(state["optimizer"])
        if run.scheduler is not None:
            run.scheduler.load_state_dict(state["scheduler"])
        trainer.history, trainer.steps = state["history"], state["steps"]
        self.early_stopping.load_state_dict(state, best)
        # Bit for bit with the same number of processes; with another, as near as can be.
        generators = state["rng"]
        restore_rng_states(generators[min(run.ctx.rank, len(generators) - 1)])
        run.epoch = state["epoch"]
