"""Hooks: code that watches a fit from outside the Trainer.

A hook is an object whose methods the Trainer calls at fixed points of ``fit``; this is how
anything above training (``rnnkit.diagnostics.Recorder``, a task's own bookkeeping) sees a
run without the Trainer importing it. Subclass ``Hook`` and override the methods you need;
the others do nothing. Example::

    class Losses(Hook):
        def on_step(self, trainer, context):
            print(context.step, trainer.steps[-1]["loss"])

    Trainer(epochs=2, hooks=[Losses()]).fit(model, train)

The order of the calls in one ``fit``::

    on_fit_start                 once, before the first step (after a resume's restore)
    on_step                      after every optimizer step
    on_epoch_end                 after every epoch: validated, its history row written
    on_fit_end                   once, after the last epoch, the last step's weights in place
    on_best_restored             once more when ``restore_best`` put the best epoch's weights back

Hooks run on the main process only (rank 0 under DDP), in the order of ``Trainer(hooks=...)``.
They must not change the model's weights, the optimizer or the global random generators:
training with hooks is then bit for bit training without them. The time they take is
counted in ``trainer.hook_seconds`` and is not training time: ``minutes`` and the history's
``seconds`` and ``samples_per_s`` leave it out. A hook that raises stops ``fit``.

The Trainer's own hooks are on the same protocol: ``EarlyStopping`` (early_stopping.py) and
``Checkpoints`` (checkpoint.py), which it makes from its settings for each fit. They take part
in training rather than watch it, so they differ in four ways: they run before the hooks given
to the Trainer, on every process, their time is training time, and where a watching hook gets
a ``FitContext`` they get the fit's ``Run`` (its optimizer, scheduler and processes too),
whose state they may change (a checkpoint's restore).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FitContext:
    """What a hook is told about the fit it watches; a new one at every call.

    model: the bare model (never its DDP wrapper), on ``device``.
    train, val: the datasets ``fit`` was given (``val`` None without one).
    device: where the model trains.
    epoch: the epoch running (from 1), or the last one done: 0 before the first epoch of a
        fresh fit, the checkpoint's epoch at the start of a resumed one.
    step: optimizer steps so far, ``len(trainer.steps)``: 0 at the start of a fresh fit, the
        number of the step just taken in ``on_step``.
    resume: whether ``fit`` was called with ``resume=True`` (it may have found no
        checkpoint, in which case ``step`` is 0).
    """

    model: nn.Module
    train: object
    val: object
    device: torch.device
    epoch: int
    step: int
    resume: bool


@dataclass
class Run:
    """What one call of ``fit`` works with; the context of the Trainer's own hooks."""

    model: nn.Module  # the user's model
    net: nn.Module  # what the forward pass calls: the model, or its DDP wrapper
    train: object
    val: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    loss: object  # per-element loss function
    ctx: object  # the processes: a rnnkit.training.distributed.Context
    device: torch.device
    progress: object  # a rnnkit.training.progress.Progress
    tracking: bool  # the monitored metric exists, so the best epoch is tracked
    steps_per_epoch: int
    resume: bool  # fit was called with resume=True
    epoch: int = 0  # the epoch running, or the last one done (as FitContext's)


class Hook:
    """The base of Trainer hooks: every method does nothing. See the module docstring.

    ``trainer`` is the Trainer running the fit: its settings (``trainer.loss``,
    ``trainer.compute_loss``, ``trainer.batch_size``, …) and what it has filled so far
    (``trainer.steps``, ``trainer.history``, ``trainer.best_epoch``) can be read, not changed.
    """

    def on_fit_start(self, trainer, context: FitContext) -> None:
        """Before the first step of this fit: after the model is on its device and, with
        ``resume``, the checkpoint restored (``context.step`` steps already taken)."""

    def on_step(self, trainer, context: FitContext) -> None:
        """After optimizer step ``context.step`` (``trainer.steps[-1]``) of epoch
        ``context.epoch``, before the next batch."""

    def on_epoch_end(self, trainer, context: FitContext) -> None:
        """After epoch ``context.epoch``: validated, its row in ``trainer.history`` (the last),
        the best epoch and the checkpoint updated."""

    def on_fit_end(self, trainer, context: FitContext) -> None:
        """After the last epoch (its validation and checkpoint done), with the weights of the
        last step still in the model. Not called when training raised."""

    def on_best_restored(self, trainer, context: FitContext, best_epoch: int) -> None:
        """After ``on_fit_end``, when ``restore_best`` has put the weights of ``best_epoch``
        back into the model, the weights it ends with. Not called otherwise."""


def check_hooks(hooks) -> list[Hook]:
    """``hooks`` as a list, each a ``Hook``; a clear error otherwise."""
    if hooks is None:
        return []
    if isinstance(hooks, Hook):
        raise TypeError(f"hooks={hooks!r} must be a list of hooks; pass hooks=[{hooks!r}]")
    if not isinstance(hooks, list | tuple):
        raise TypeError(
            f"hooks={hooks!r} must be a list of rnnkit.training.Hook, got {type(hooks).__name__}"
        )
    for index, hook in enumerate(hooks):
        if not isinstance(hook, Hook):
            raise TypeError(
                f"hooks[{index}]={hook!r} must be a rnnkit.training.Hook (subclass it and "
                f"override the methods you need), got {type(hook).__name__}"
            )
    return list(hooks)


__all__ = ["FitContext", "Hook", "Run", "check_hooks"]
