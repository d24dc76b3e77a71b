"""The Trainer's settings: every one with its default and its check, in one frozen object.

``Trainer(**settings)`` makes a ``TrainerSettings`` with ``TrainerSettings.of(**settings)``
and reads nothing else. Each setting is checked when the object is made, with an error that
names the setting, the value and what is expected; the few checks that need the run (the
data, the number of processes, the metrics) are methods here too, which ``fit`` calls before
training starts. The optimizer and the schedule are made here from the settings.

Three settings have two spellings. The names the task estimators use are preferred:
``steps`` (the older ``max_steps``), ``minutes`` (``time_limit``, in seconds: ``minutes *
60``) and ``patience`` (``early_stopping``). The object stores the older names, which the
Trainer's messages and checkpoints use, and which ``trainer.steps`` (the list of steps
taken) rules out for one of them; giving both spellings of one setting is an error.
"""

import math
import os
from dataclasses import dataclass, fields

import torch
from torch import nn

from .._checks import check_choice, check_fraction, check_integer, check_positive
from . import losses
from .hooks import Hook, check_hooks
from .progress import MODES
from .reproducibility import MAX_SEED

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = (None, "cosine", "plateau")
# Columns of a history row that a val metric's name must not take.
HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "val_loss",
    "lr",
    "grad_norm_mean",
    "grad_norm_max",
    "seconds",
    "samples_per_s",
)


# The Trainer's numbers may be NumPy's (any numbers.Real); a value not among its choices is
# "not known", as in the layers.
def _check_number(name: str, value, optional: bool = False, positive: bool = True) -> None:
    check_positive(name, value, zero=not positive, numpy=True, optional=optional)


def _check_fraction(name: str, value, zero_allowed: bool) -> None:
    check_fraction(name, value, "[0, 1)" if zero_allowed else "(0, 1)", noun="number", numpy=True)


def _check_choice(name: str, value, choices) -> None:
    check_choice(name, value, choices, wording="is not known; expected one of")


def _count(name: str, value):
    return check_integer(name, value, 1, optional=True)


def _minutes(name: str, value):
    _check_number(name, value, optional=True)
    return None if value is None else value * 60


# The preferred spellings: {name: (the name stored, its check and conversion)}. A value is
# checked under the name it was given, so an error names the spelling the caller used.
SPELLINGS = {
    "steps": ("max_steps", _count),
    "minutes": ("time_limit", _minutes),
    "patience": ("early_stopping", _count),
}


@dataclass(frozen=True)
class TrainerSettings:
    """Every setting of the ``Trainer``, checked; make it with ``TrainerSettings.of``.

    Args:
        epochs: passes over the training data; None to stop by ``steps`` only.
        steps (stored as ``max_steps``): optimizer steps after which training stops,
            mid-epoch if need be (that epoch still gets its history row, validation and
            checkpoint; a resumed run continues at the next epoch).
        minutes (stored as ``time_limit``, in seconds): minutes of training after which it
            stops like ``steps`` does: after the step that reaches it. The time counts
            everything ``fit`` does, validation included, and the ``seconds`` of epochs
            restored from a checkpoint. A limit by time ends at a step that depends on the
            machine's speed; ``steps`` does not.
        batch_size: the global batch size, split across processes under DDP.
        shuffle: a new order every epoch, from a generator seeded with (seed, epoch), so
            the order is the same in resumed and distributed runs.
        optimizer: "adam", "adamw" or "sgd" (with ``momentum``), with ``lr`` and
            ``weight_decay``.
        schedule: None; "cosine", annealing the learning rate to 0 over the planned steps
            (when truncated BPTT skips chunks that hold only padding, fewer steps run and the
            rate ends a little above 0); or "plateau", multiplying it by ``plateau_factor``
            when the monitored metric has not improved for more than ``plateau_patience``
            epochs.
        plateau_factor, plateau_patience: the plateau schedule's factor and patience.
        clip_norm: clip the gradient to this global norm.
        clip_value: then clip each gradient element to [-clip_value, clip_value].
        loss: "mse", "mae", "cross_entropy" (logits (B, C) or (B, T, C), class indices (B,)
            or (B, T)), or ``callable(prediction, target)`` returning one loss per target
            element (reduction "none"). The batch loss is the mean over valid elements.
        compute_loss: ``callable(model, batch) -> scalar loss``, the mean over the batch's
            rows, for anything the default call convention cannot express (teacher forcing,
            several outputs); or ``-> (loss sum, count)`` for a mean over other elements
            than rows (the tokens of a translation), so that under DDP each process's share
            is weighted by its count. ``batch`` is the collated batch, whatever its layout,
            on the device. Under DDP ``model`` is the DDP wrapper: call it, not its
            ``module``. The val loss calls it with the bare model in eval mode, gradients
            off.
        tbptt: truncated BPTT over chunks of this many steps: one optimizer step per chunk,
            the state carried to the next chunk and cut from the graph there.
        stateful: with ``tbptt``, carry each row's state on to the same row of the next
            batch (a continuous stream, as a language model reads); reset at each epoch's
            start, or per row by a batch's ``reset``. Needs ``shuffle=False`` and full
            batches (the dataset's length a multiple of ``batch_size``).
        patience (stored as ``early_stopping``): stop when the monitored metric has not
            improved for this many epochs; with ``restore_best`` the model ends with the best
            epoch's weights.
        monitor: the history column that early stopping, the plateau schedule and
            ``best_epoch`` follow: "val_loss", "loss" or a name of ``val_metrics``.
        mode: "min" or "max": which way ``monitor`` improves.
        tie_break: a second history column, lower is better (e.g. "val_loss"), that decides
            between an epoch and the best so far when their ``monitor`` values are equal.
            Accuracy and F1 on small validation sets tie often (a tagger's entity F1 is 0
            for its first epochs); without it the earliest of tied epochs stays the best
            and patience runs out while the model is still improving.
        restore_best: with ``patience``, end with the best epoch's weights.
        val_metrics: ``{name: callable(model) -> float}``, called after each epoch with the
            model in eval mode and gradients off; each becomes a history column of that name.
            Under DDP only the main process calls them (with the bare model) and sends the
            values to the others, so every process stops at the same epoch.
        checkpoint_dir: write a checkpoint after every epoch (see ``rnnkit.training.checkpoint``)
            and resume from it with ``fit(..., resume=True)``.
        seed: ``fit`` seeds Python, NumPy and torch with it (``set_seed``), and the batch
            order derives from it; the same seed gives the same weights.
        progress: "auto" (a tqdm bar when stderr is a terminal, else one line per epoch),
            "bar", "log" or "none". Only the main process reports.
        device: where to train; None keeps the model where it is (under DDP: the GPU of
            the process's LOCAL_RANK when CUDA is available, else the CPU).
        distributed: "auto" trains data-parallel when launched by torchrun (WORLD_SIZE > 1);
            False never does.
        hooks: a list of ``rnnkit.training.Hook``, called at the start of the fit, after
            every step, after every epoch, at its end and when the best weights are restored
            (see ``rnnkit.training.hooks``), on the main process only. The time they take
            (``hook_seconds``) is not training time for ``minutes``, ``seconds`` or
            ``samples_per_s``. ``hooks=[rnnkit.diagnostics.Recorder(every=N, folder=DIR)]``
            records the gradient flow through time and the gate and state statistics
            every N steps.
    """

    epochs: int | None = 10
    max_steps: int | None = None
    time_limit: float | None = None
    batch_size: int = 32
    shuffle: bool = True
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str | None = None
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    clip_norm: float | None = None
    clip_value: float | None = None
    loss: object = "mse"
    compute_loss: object = None
    tbptt: int | None = None
    stateful: bool = False
    early_stopping: int | None = None
    monitor: str = "val_loss"
    mode: str = "min"
    tie_break: str | None = None
    restore_best: bool = True
    val_metrics: dict | None = None
    checkpoint_dir: str | os.PathLike | None = None
    seed: int = 0
    progress: str = "auto"
    device: str | torch.device | None = None
    distributed: object = "auto"
    hooks: list[Hook] | None = None

    @classmethod
    def of(cls, **settings) -> "TrainerSettings":
        """The settings from keywords, taking either spelling of ``steps``, ``minutes`` and
        ``patience`` (see the module docstring); an unknown name is an error that lists the
        known ones."""
        for name, (stored, convert) in SPELLINGS.items():
            if name not in settings:
                continue
            if stored in settings:
                raise TypeError(
                    f"{name}={settings[name]!r} and {stored}={settings[stored]!r} are two "
                    f"spellings of one setting; give only {name}"
                )
            settings[stored] = convert(name, settings.pop(name))
        known = [f.name for f in fields(cls)]
        unknown = [name for name in settings if name not in known]
        if unknown:
            raise TypeError(
                f"Trainer got unknown settings {unknown}; the settings are "
                f"{sorted([*known, *SPELLINGS])}"
            )
        return cls(**settings)

    def __post_init__(self) -> None:
        check_integer("epochs", self.epochs, 1, optional=True)
        check_integer("max_steps", self.max_steps, 1, optional=True)
        _check_number("time_limit", self.time_limit, optional=True)
        if self.epochs is None and self.max_steps is None and self.time_limit is None:
            raise ValueError(
                "epochs, max_steps and time_limit are all None: give at least one of them"
            )
        check_integer("batch_size", self.batch_size, 1)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_number("lr", self.lr)
        _check_number("weight_decay", self.weight_decay, positive=False)
        _check_fraction("momentum", self.momentum, zero_allowed=True)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_fraction("plateau_factor", self.plateau_factor, zero_allowed=False)
        check_integer("plateau_patience", self.plateau_patience, 0)
        _check_number("clip_norm", self.clip_norm, optional=True)
        _check_number("clip_value", self.clip_value, optional=True)
        losses.resolve(self.loss)
        if self.compute_loss is not None and not callable(self.compute_loss):
            raise TypeError(f"compute_loss={self.compute_loss!r} must be callable(model, batch)")
        check_integer("tbptt", self.tbptt, 1, optional=True)
        if self.tbptt is not None and self.compute_loss is not None:
            raise ValueError(
                "tbptt and compute_loss do not combine: tbptt cuts batches for the default "
                "call convention, which compute_loss replaces"
            )
        if self.stateful and self.tbptt is None:
            raise ValueError("stateful=True carries the state between tbptt chunks; set tbptt")
        if self.stateful and self.shuffle:
            raise ValueError(
                "stateful=True carries each row's state to the same row of the next batch, "
                "which needs the data in order: set shuffle=False"
            )
        check_integer("early_stopping", self.early_stopping, 1, optional=True)
        _check_choice("mode", self.mode, ("min", "max"))
        val_metrics = dict(self.val_metrics or {})
        for name, metric in val_metrics.items():
            if not isinstance(name, str) or name in HISTORY_COLUMNS:
                raise ValueError(
                    f"val_metrics name {name!r} must be a string other than the history's own "
                    f"columns {HISTORY_COLUMNS}"
                )
            if not callable(metric):
                raise TypeError(f"val_metrics[{name!r}] must be callable(model) -> float")
        check_integer("seed", self.seed, 0, maximum=MAX_SEED)
        _check_choice("progress", self.progress, MODES)
        device = self.device
        if device is not None:
            try:
                device = torch.device(device)
            except (RuntimeError, TypeError) as error:
                raise ValueError(f"device={device!r} is not a torch device: {error}") from None
        _check_choice("distributed", self.distributed, ("auto", False))
        # Stored as checked: a dict of metrics, a torch.device, a list of hooks.
        object.__setattr__(self, "val_metrics", val_metrics)
        object.__setattr__(self, "device", device)
        object.__setattr__(self, "hooks", check_hooks(self.hooks))

    # ------------------------------------------------------------ checks against the run

    def check_data(self, train, val, resume: bool) -> None:
        """Refuse what these settings cannot do with these datasets."""
        if resume and self.checkpoint_dir is None:
            raise ValueError("resume=True continues from checkpoint_dir, which is None")
        if self.stateful:
            for name, data in (("train", train), ("val", val)):
                if data is not None and len(data) % self.batch_size:
                    raise ValueError(
                        f"stateful=True carries each row's state to the next batch, so every "
                        f"batch must be full, but len({name})={len(data)} is not a multiple "
                        f"of batch_size={self.batch_size}"
                    )

    def check_processes(self, world: int) -> None:
        """Refuse what these settings cannot do on ``world`` processes."""
        if self.time_limit is not None and world > 1:
            raise ValueError(
                "time_limit stops each process at a step its own clock picks, which would "
                "part the processes of a distributed run: use max_steps"
            )
        if self.batch_size % world:
            raise ValueError(
                f"batch_size={self.batch_size} is the global batch, split evenly across the "
                f"{world} processes; make it a multiple of {world}"
            )

    def tracks_monitor(self, has_val: bool) -> bool:
        """Whether ``monitor`` names a metric of a run with (or without) a val set, so the
        best epoch is tracked; an error if something needs it and it does not."""
        available = ["loss", *(["val_loss"] if has_val else []), *self.val_metrics]
        if self.tie_break is not None and self.tie_break not in available:
            raise ValueError(
                f"tie_break={self.tie_break!r} is not a metric of this run; the metrics are "
                f"{available}"
            )
        if self.monitor in available:
            return True
        users = [
            name
            for name, uses in (
                ("early_stopping", self.early_stopping is not None),
                ("schedule='plateau'", self.schedule == "plateau"),
            )
            if uses
        ]
        # The default monitor without a val set simply means no best epoch is tracked.
        if users or self.monitor != "val_loss":
            hint = " (val_loss needs a val dataset)" if self.monitor == "val_loss" else ""
            needed = f"; {' and '.join(users)} need(s) it" if users else ""
            raise ValueError(
                f"monitor={self.monitor!r} is not a metric of this run{hint}{needed}; "
                f"the metrics are {available}"
            )
        return False

    # ------------------------------------------------------------ what the settings make

    def epochs_planned(self, steps_per_epoch: int) -> int | None:
        """Epochs that ``epochs`` and ``max_steps`` allow; None when only time limits them."""
        by_steps = math.ceil(self.max_steps / steps_per_epoch) if self.max_steps else None
        return min((e for e in (self.epochs, by_steps) if e is not None), default=None)

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        params = model.parameters()
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(
            params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )

    def make_scheduler(self, optimizer, steps_per_epoch: int):
        """The learning-rate schedule's scheduler, or None; "cosine" steps after every
        optimizer step, "plateau" after every epoch with the monitored metric."""
        if self.schedule == "cosine":
            epochs = self.epochs_planned(steps_per_epoch)
            if epochs is None:
                raise ValueError(
                    "schedule='cosine' anneals over the planned steps, which time_limit alone "
                    "does not fix: give epochs or max_steps too"
                )
            total = epochs * steps_per_epoch
            if self.max_steps is not None:
                total = min(total, self.max_steps)
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        if self.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode=self.mode,
                factor=self.plateau_factor,
                patience=self.plateau_patience,
            )
        return None
