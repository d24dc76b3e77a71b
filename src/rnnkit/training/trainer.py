"""The Trainer: fits a recurrent model by full or truncated backpropagation through time."""

import math
import time
from dataclasses import dataclass, field, fields

import torch
from torch import nn
from torch.utils.data import IterableDataset

from . import checkpoint, distributed, losses
from .batches import epoch_batches, fetch, fetch_share, unpack
from .hooks import FitContext
from .losses import lengths_argument, prediction_of, time_steps
from .progress import Progress
from .reproducibility import restore_rng_states, rng_states, set_seed
from .settings import HISTORY_COLUMNS, OPTIMIZERS, SCHEDULES, TrainerSettings
from .tbptt import check_aligned, chunks, detach, keep_rows, zero_rows

# The tables of settings.py stay importable from here, where rnnkit.tasks reads them.
__all__ = ["HISTORY_COLUMNS", "OPTIMIZERS", "SCHEDULES", "Trainer", "TrainerSettings"]
# Settings that shape the sequence of updates: a checkpoint continues only a run that has them.
_RUN_SETTINGS = ("seed", "batch_size", "shuffle", "optimizer", "tbptt", "stateful")


def _check_dataset(name: str, dataset) -> None:
    mapped = hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")
    if not mapped or isinstance(dataset, IterableDataset):
        raise TypeError(
            f"{name} must be a map-style torch.utils.data.Dataset (with len and indexing), "
            f"got {type(dataset).__name__}"
        )
    if len(dataset) == 0:
        raise ValueError(f"{name} is empty")


def _prediction_and_state(output):
    if not (isinstance(output, tuple) and len(output) == 2):
        raise ValueError(
            "with tbptt the model is called as model(x, state=state) and must return "
            f"(prediction, state), as rnnkit's layers do; it returned {type(output).__name__}"
        )
    return output


def _sum_and_count(result, rows: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``compute_loss``'s result as (loss sum, count): a mean over ``rows`` rows, or the pair
    itself; a clear error for anything else."""
    if isinstance(result, tuple) and len(result) == 2:
        loss_sum, count = result
        if isinstance(loss_sum, torch.Tensor) and loss_sum.dim() == 0:
            return loss_sum, torch.as_tensor(count, dtype=torch.float64, device=device)
    elif isinstance(result, torch.Tensor) and result.dim() == 0:
        return result * rows, torch.tensor(float(rows), device=device)
    got = f"shape {tuple(result.shape)}" if isinstance(result, torch.Tensor) else repr(result)
    raise ValueError(
        "compute_loss must return the batch's mean loss as a scalar tensor, or (loss sum, "
        f"count), got {got}"
    )


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@dataclass
class _Run:
    """What one call of ``fit`` works with."""

    model: nn.Module  # the user's model
    net: nn.Module  # what the forward pass calls: the model, or its DDP wrapper
    train: object
    val: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    loss: object  # per-element loss function
    ctx: distributed.Context
    device: torch.device
    progress: Progress
    tracking: bool  # the monitored metric exists, so the best epoch is tracked
    keep_best: bool  # the best weights are kept, to restore at the end
    steps_per_epoch: int
    resume: bool  # fit was called with resume=True


@dataclass
class _Epoch:
    """Running totals of one training epoch."""

    number: int
    loss_sum: float = 0.0
    count: float = 0.0
    samples: int = 0
    grad_norms: list = field(default_factory=list)


class Trainer:
    """Trains a model on a dataset: full or truncated BPTT, clipping, schedules, early stopping,
    checkpoints that resume bit for bit, progress, a metrics history, and data-parallel
    training across processes.

    ``Trainer(**settings)`` takes the settings of ``TrainerSettings``, which documents and
    checks each (``trainer.settings``; each can be read as ``trainer.<name>`` too). The
    preferred names of three are the task estimators': ``steps``, ``minutes`` and
    ``patience``; the older ``max_steps``, ``time_limit`` (in seconds) and ``early_stopping``
    still work, and are the names the settings are stored and read under. ``fit`` trains and
    fills ``history``, ``steps``, ``best_epoch``, ``best_score`` and ``stopped_early``.

    Data: ``train`` and ``val`` are map-style datasets whose items are ``(inputs, target)``,
    ``(inputs, target, lengths)`` or ``(inputs, target, lengths, reset)``; ``inputs`` is a
    tensor or a tuple of tensors passed to the model positionally. A ``TensorDataset`` is
    indexed a whole batch at a time; a dataset with ``batch(indices)`` and
    ``epoch_batches(batch_size, seed, epoch, shuffle)`` (``rnnkit.data.SequenceDataset``)
    orders and pads its own batches; others are collated with ``default_collate``.
    The model is called as ``model(*inputs)``, or ``model(*inputs, lengths=lengths)`` when
    the batch has lengths; a tuple output such as a layer's ``(output, state)`` counts by its
    first element. When the target has the inputs' time axis (batch first, ``target.shape[1]
    == T``) and lengths are given, steps past each length are left out of the loss.

    Truncated BPTT cuts the inputs and the target along time and calls ``model(x_chunk,
    state=state, lengths=chunk_lengths)``. A row whose sequence has ended before a chunk
    runs it with length 1 (layers refuse 0), keeps its previous state and has no loss
    there; a chunk where every sequence has ended takes no step. With ``tbptt`` at least the
    sequence length, training equals full BPTT exactly. ``reset`` (bool, one per row)
    restarts a row's carried state from zeros, the default initial state of rnnkit's layers.

    Distributed data parallel: each global batch is split into contiguous slices, one per
    process (see ``rnnkit.training.batches``); every process's loss sum is scaled by the
    global count of valid elements, so the averaged gradient is the one-process gradient of
    the global batch, the last partial batch included. ``batch_size`` must be a multiple of
    the number of processes.

    Attributes, filled by ``fit``:
        history: one dict per epoch: ``epoch``; ``loss``, the mean training loss over the
            epoch's valid elements (rows without lengths); ``val_loss``, the same over the
            val set after the epoch; each val metric; ``lr`` at the end of the epoch;
            ``grad_norm_mean`` and ``grad_norm_max`` over its steps, before clipping;
            ``seconds`` (training and validation); ``samples_per_s`` (training).
        steps: one dict per optimizer step: ``step``, ``epoch``, ``loss`` (of the global
            batch or chunk), ``grad_norm`` (global, before clipping) and the ``lr`` it used.
            (The setting ``steps``, the most steps to take, is ``settings.max_steps``.)
        best_epoch, best_score: the epoch with the best ``monitor`` value so far, and that
            value (None when the run has no such metric).
        stopped_early: whether early stopping ended the run.
        hook_seconds: the time the hooks took, left out of the training time.

    Example::

        >>> trainer = Trainer(epochs=20, batch_size=64, clip_norm=1.0, patience=3)
        >>> history = trainer.fit(model, TensorDataset(x, y), val=TensorDataset(xv, yv))
        >>> trainer.write_history("history.csv")
    """

    def __init__(self, **settings):
        self.settings = TrainerSettings.of(**settings)
        self._reset()
        self._is_main = True

    def _reset(self) -> None:
        self.history: list[dict] = []
        self.steps: list[dict] = []
        self.best_epoch: int | None = None
        self.best_score: float | None = None
        self.stopped_early = False
        self._bad_epochs = 0
        self._best_weights: dict | None = None
        self.hook_seconds = 0.0

    # ---------------------------------------------------------------- fit

    def fit(self, model: nn.Module, train, val=None, resume: bool = False) -> list[dict]:
        """Train ``model`` on ``train``, validating on ``val`` after each epoch.

        With ``resume=True`` training continues from the newest checkpoint in
        ``checkpoint_dir`` (model, optimizer, schedule, history, early-stopping state and
        generator states), so a run killed and resumed ends with the same weights as one that
        was not; without a checkpoint there it starts from the beginning. Without ``resume``
        the checkpoints of an earlier run in ``checkpoint_dir`` are removed.

        Returns ``history``: one dict per epoch.
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        _check_dataset("train", train)
        if val is not None:
            _check_dataset("val", val)
        self.settings.check_data(train, val, resume)
        self._fit(distributed.setup(self.distributed, self.device), model, train, val, resume)
        return self.history

    def _fit(self, ctx, model, train, val, resume) -> None:
        self.settings.check_processes(ctx.world)
        self._is_main = ctx.is_main
        device = ctx.device or self.device or _model_device(model)
        model.to(device)
        set_seed(self.seed)
        tracking = self.settings.tracks_monitor(val is not None)
        steps_per_epoch = self._steps_per_epoch(train)
        if val is not None and self.compute_loss is None:
            unpack(fetch(val, torch.tensor([0])))  # a malformed val set fails now, not later
        optimizer = self.settings.make_optimizer(model)
        self._reset()
        run = _Run(
            model=model,
            net=model,
            train=train,
            val=val,
            optimizer=optimizer,
            scheduler=self.settings.make_scheduler(optimizer, steps_per_epoch),
            loss=losses.resolve(self.loss),
            ctx=ctx,
            device=device,
            progress=Progress(
                self.progress, self.settings.epochs_planned(steps_per_epoch), ctx.is_main
            ),
            tracking=tracking,
            keep_best=tracking and self.early_stopping is not None and self.restore_best,
            steps_per_epoch=steps_per_epoch,
            resume=resume,
        )
        epoch = 0
        self._started = time.perf_counter()
        if resume:
            epoch = self._resume(run)
            self._started -= sum(row["seconds"] for row in self.history)
        elif ctx.is_main and self.checkpoint_dir is not None:
            checkpoint.clear(self.checkpoint_dir)
        run.net = ctx.wrap(model)
        run.net.train()
        self._call_hooks(run, epoch, "on_fit_start")
        try:
            while not self._finished(epoch):
                epoch += 1
                self._run_epoch(run, epoch)
        finally:
            run.progress.close()
        self._call_hooks(run, epoch, "on_fit_end")
        if run.keep_best and self._best_weights is not None:
            model.load_state_dict(self._best_weights)
            self._call_hooks(run, epoch, "on_best_restored", self.best_epoch)

    def _finished(self, epoch: int) -> bool:
        """Whether training ends after ``epoch`` epochs."""
        epochs_done = self.epochs is not None and epoch >= self.epochs
        # A fresh run takes at least one step, however short its time limit.
        return self.stopped_early or epochs_done or (epoch > 0 and self._steps_done())

    def _steps_done(self) -> bool:
        """Whether ``max_steps`` or ``time_limit`` ends training now."""
        if self.max_steps is not None and len(self.steps) >= self.max_steps:
            return True
        elapsed = time.perf_counter() - self._started
        return self.time_limit is not None and elapsed >= self.time_limit

    def _steps_per_epoch(self, train) -> int:
        """Optimizer steps in a full epoch; checks the first item's layout on the way."""
        batches = math.ceil(len(train) / self.batch_size)
        if self.compute_loss is not None:
            return batches
        parts = unpack(fetch(train, torch.tensor([0])))
        if self.tbptt is None:
            return batches
        return batches * math.ceil(check_aligned(parts) / self.tbptt)

    # ---------------------------------------------------------------- one epoch

    def _run_epoch(self, run: _Run, number: int) -> None:
        """Train one epoch, validate, record its history row, checkpoint."""
        started = time.perf_counter()
        hooked = self.hook_seconds
        epoch = self._train_epoch(run, number)
        started += self.hook_seconds - hooked  # the hooks' time is not training time
        trained = time.perf_counter() - started
        validation = self._validate(run)
        norms = epoch.grad_norms
        row = {
            "epoch": number,
            "loss": epoch.loss_sum / epoch.count if epoch.count else math.nan,
            **validation,
        }
        self._track_best(run, row)
        if self.schedule == "plateau":  # which needs a tracked monitor: tracks_monitor
            run.scheduler.step(row[self.monitor])
        row |= {
            "lr": run.optimizer.param_groups[0]["lr"],
            "grad_norm_mean": sum(norms) / len(norms) if norms else math.nan,
            "grad_norm_max": max(norms, default=math.nan),
            "seconds": time.perf_counter() - started,
            "samples_per_s": epoch.samples / trained,
        }
        self.history.append(row)
        if self.checkpoint_dir is not None:
            self._save_checkpoint(run, number)
        run.progress.end_epoch(row)

    def _train_epoch(self, run: _Run, number: int) -> _Epoch:
        epoch = _Epoch(number)
        batches = epoch_batches(run.train, self.batch_size, self.seed, number, self.shuffle)
        planned = run.steps_per_epoch
        if self.max_steps is not None:
            planned = min(planned, self.max_steps - len(self.steps))
        run.progress.start_epoch(number, planned)
        state = None  # carried from batch to batch when stateful
        for indices in batches:
            batch = fetch_share(run.train, indices, run.ctx.rank, run.ctx.world, run.device)
            epoch.samples += len(indices)
            state = self._train_batch(run, epoch, batch.data, batch.rows, batch.row_weight, state)
            if self._steps_done():
                break
        return epoch

    def _train_batch(self, run: _Run, epoch: _Epoch, data, rows: int, row_weight, state):
        """The forward pass, backward pass and optimizer step(s) of one batch.

        ``state`` is the one carried from the previous batch (None unless stateful); returns
        the one to carry to the next.
        """
        if self.compute_loss is not None:
            # Weighted by what it averages, so processes with unequal shares count right.
            loss_sum, count = _sum_and_count(self.compute_loss(run.net, data), rows, run.device)
            self._step(run, epoch, loss_sum, count)
            return None
        parts = unpack(data)
        if self.tbptt is None:
            prediction = prediction_of(run.net(*parts.inputs, **lengths_argument(parts.lengths)))
            steps = time_steps(parts)
            valid = losses.valid_elements(row_weight, parts.target, parts.lengths, steps)
            self._step(run, epoch, *losses.masked_loss(run.loss, prediction, parts.target, valid))
            return None
        if state is not None and parts.reset is not None:
            state = zero_rows(parts.reset, state)
        for chunk in chunks(parts, self.tbptt):
            output = run.net(*chunk.inputs, state=state, **lengths_argument(chunk.lengths))
            prediction, new_state = _prediction_and_state(output)
            if chunk.active is not None and state is not None:
                new_state = keep_rows(~chunk.active, state, new_state)
            valid = losses.valid_elements(
                row_weight, chunk.target, parts.lengths, chunk.steps, chunk.start
            )
            stepped = self._step(
                run, epoch, *losses.masked_loss(run.loss, prediction, chunk.target, valid)
            )
            state = detach(new_state)
            # An empty chunk means every sequence has ended; the later chunks are empty too.
            if not stepped or self._steps_done():
                break
        return state if self.stateful else None

    def _step(self, run: _Run, epoch: _Epoch, loss_sum, count) -> bool:
        """Backward pass and optimizer step on the global mean of the loss.

        ``loss_sum`` is this process's sum over its valid elements and ``count`` their
        number. Scaled by (processes / global count), DDP's average of the gradients is the
        gradient of the global mean. Returns False, taking no step, when no element of the
        global batch counts (a chunk of padding only).
        """
        totals = torch.stack([loss_sum.detach().to(torch.float64), count.to(torch.float64)])
        total_loss, total_count = run.ctx.sum(totals).tolist()
        run.optimizer.zero_grad(set_to_none=True)
        (loss_sum * (run.ctx.world / max(total_count, 1.0))).backward()
        if total_count == 0:
            return False
        loss = total_loss / total_count
        step = len(self.steps) + 1
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"the training loss is {loss} at step {step} (epoch {epoch.number}); lower lr, "
                "set clip_norm, or look for NaN or inf in the data"
            )
        parameters = [p for p in run.model.parameters() if p.grad is not None]
        # With max_norm=inf clip_grad_norm_ only measures: the norm is always before clipping.
        norm = float(torch.nn.utils.clip_grad_norm_(parameters, self.clip_norm or math.inf))
        if self.clip_value is not None:
            torch.nn.utils.clip_grad_value_(parameters, self.clip_value)
        lr = run.optimizer.param_groups[0]["lr"]
        run.optimizer.step()
        if self.schedule == "cosine":
            run.scheduler.step()
        self.steps.append(
            {"step": step, "epoch": epoch.number, "loss": loss, "grad_norm": norm, "lr": lr}
        )
        epoch.loss_sum += total_loss
        epoch.count += total_count
        epoch.grad_norms.append(norm)
        run.progress.step(epoch.loss_sum / epoch.count, epoch.samples)
        self._call_hooks(run, epoch.number, "on_step")
        return True

    def _call_hooks(self, run: _Run, epoch: int, method: str, *args) -> None:
        """Call ``method`` of every hook, on the main process only. The time they take counts
        in ``hook_seconds``, not in the training time (``time_limit``, ``seconds``)."""
        if not self.hooks or not run.ctx.is_main:
            return
        started = time.perf_counter()
        context = FitContext(
            model=run.model,
            train=run.train,
            val=run.val,
            device=run.device,
            epoch=epoch,
            step=len(self.steps),
            resume=run.resume,
        )
        for hook in self.hooks:
            getattr(hook, method)(self, context, *args)
        seconds = time.perf_counter() - started
        self.hook_seconds += seconds
        self._started += seconds

    # ---------------------------------------------------------------- validation

    def _validate(self, run: _Run) -> dict:
        """val_loss and the val metrics, with the model in eval mode and gradients off."""
        if run.val is None and not self.val_metrics:
            return {}
        run.net.eval()
        row = {}
        with torch.no_grad():
            if run.val is not None:
                row["val_loss"] = self._val_loss(run)
            if self.val_metrics:
                values = None
                if run.ctx.is_main:
                    values = {name: float(fn(run.model)) for name, fn in self.val_metrics.items()}
                row |= run.ctx.from_main(values)
        run.net.train()
        return row

    def _val_loss(self, run: _Run) -> float:
        """The mean loss over the val set, split across processes like a training batch.

        The bare model runs here (not its DDP wrapper, whose forward may communicate).
        """
        totals = torch.zeros(2, dtype=torch.float64, device=run.device)
        state = None
        for indices in epoch_batches(run.val, self.batch_size, self.seed, 0, shuffle=False):
            batch = fetch_share(run.val, indices, run.ctx.rank, run.ctx.world, run.device)
            if self.compute_loss is not None:
                loss_sum, count = _sum_and_count(
                    self.compute_loss(run.model, batch.data), batch.rows, run.device
                )
                totals += torch.stack([loss_sum.to(torch.float64), count.to(torch.float64)])
                continue
            parts = unpack(batch.data)
            lengths = lengths_argument(parts.lengths)
            if self.tbptt is None:
                prediction = prediction_of(run.model(*parts.inputs, **lengths))
            else:
                if state is not None and parts.reset is not None:
                    state = zero_rows(parts.reset, state)
                output = run.model(*parts.inputs, state=state, **lengths)
                prediction, final = _prediction_and_state(output)
                state = final if self.stateful else None
            steps = time_steps(parts)
            valid = losses.valid_elements(batch.row_weight, parts.target, parts.lengths, steps)
            loss_sum, count = losses.masked_loss(run.loss, prediction, parts.target, valid)
            totals += torch.stack([loss_sum.to(torch.float64), count])
        loss_sum, count = run.ctx.sum(totals).tolist()
        return loss_sum / count

    def _track_best(self, run: _Run, row: dict) -> None:
        """Follow the monitored metric: best epoch and score, best weights, early stopping."""
        if not run.tracking:
            return
        score = row[self.monitor]
        if self.best_score is None:
            better = not math.isnan(score)
        else:
            better = score < self.best_score if self.mode == "min" else score > self.best_score
            if score == self.best_score and self.tie_break is not None:
                best_row = next(r for r in self.history if r["epoch"] == self.best_epoch)
                better = row[self.tie_break] < best_row[self.tie_break]
        if better:
            self.best_score, self.best_epoch, self._bad_epochs = score, row["epoch"], 0
            if run.keep_best:
                self._best_weights = {
                    name: t.detach().clone() for name, t in run.model.state_dict().items()
                }
            return
        self._bad_epochs += 1
        if self.early_stopping is not None and self._bad_epochs >= self.early_stopping:
            self.stopped_early = True

    # ---------------------------------------------------------------- checkpoints

    def _settings(self) -> dict:
        return {name: getattr(self, name) for name in _RUN_SETTINGS}

    def _save_checkpoint(self, run: _Run, epoch: int) -> None:
        generators = run.ctx.gather(rng_states())  # every process's: each draws its own
        if not run.ctx.is_main:
            return
        state = {
            "epoch": epoch,
            "settings": self._settings(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
            "history": self.history,
            "steps": self.steps,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "bad_epochs": self._bad_epochs,
            "stopped_early": self.stopped_early,
            "rng": generators,
        }
        checkpoint.save(
            self.checkpoint_dir, epoch, run.model.state_dict(), self._best_weights, state
        )

    def _resume(self, run: _Run) -> int:
        """Restore the newest checkpoint; returns its epoch (0 when there is none)."""
        path = checkpoint.latest(self.checkpoint_dir)
        if path is None:
            return 0
        weights, best, state = checkpoint.load(path)
        differ = {k: v for k, v in state["settings"].items() if getattr(self, k) != v}
        if differ:
            ours = {k: getattr(self, k) for k in differ}
            raise ValueError(
                f"the checkpoint in {path} was written with {differ} but this Trainer has "
                f"{ours}; resuming would not continue the same run (resume=False starts over)"
            )
        run.model.load_state_dict(weights)
        run.optimizer.load_state_dict(state["optimizer"])
        if run.scheduler is not None:
            run.scheduler.load_state_dict(state["scheduler"])
        self.history, self.steps = state["history"], state["steps"]
        self.best_epoch, self.best_score = state["best_epoch"], state["best_score"]
        self._bad_epochs, self.stopped_early = state["bad_epochs"], state["stopped_early"]
        self._best_weights = best
        # Bit for bit with the same number of processes; with another, as near as can be.
        generators = state["rng"]
        restore_rng_states(generators[min(run.ctx.rank, len(generators) - 1)])
        return state["epoch"]

    # ---------------------------------------------------------------- output

    def write_history(self, path) -> None:
        """Write ``history`` as CSV, one row per epoch (on the main process only under DDP)."""
        self._write_csv(path, self.history)

    def write_steps(self, path) -> None:
        """Write ``steps`` as CSV, one row per optimizer step (main process only under DDP)."""
        self._write_csv(path, self.steps)

    def _write_csv(self, path, rows: list[dict]) -> None:
        if not self._is_main:
            return
        import pandas as pd

        pd.DataFrame(rows).to_csv(path, index=False)


def _setting(name: str) -> property:
    return property(
        lambda trainer: getattr(trainer.settings, name),
        doc=f"The ``{name}`` setting, read-only (``Trainer.settings.{name}``).",
    )


# Each setting reads as an attribute, as it always has: trainer.loss, trainer.early_stopping.
for _field in fields(TrainerSettings):
    setattr(Trainer, _field.name, _setting(_field.name))
