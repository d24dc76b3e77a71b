"""The Trainer: fits a recurrent model by full or truncated backpropagation through time.

Each of its jobs has one place: the settings and their checks are ``TrainerSettings``
(settings.py); the training loop is ``Trainer.fit``, read top to bottom; early stopping
(early_stopping.py) and checkpoints (checkpoint.py) are hooks that the loop calls at their
points, on the protocol of hooks.py; batches, losses, truncated BPTT's chunks and the
processes of a distributed run are batches.py, losses.py, tbptt.py and distributed.py.
"""

import math
import time
from dataclasses import fields

import torch
from torch import nn
from torch.utils.data import IterableDataset

from . import distributed, losses
from .batches import epoch_batches, fetch, fetch_share, unpack
from .checkpoint import Checkpoints
from .early_stopping import EarlyStopping
from .hooks import FitContext, Run
from .losses import lengths_argument, prediction_of, time_steps
from .progress import Progress
from .reproducibility import set_seed
from .settings import HISTORY_COLUMNS, OPTIMIZERS, SCHEDULES, TrainerSettings
from .tbptt import check_aligned, chunks, detach, keep_rows, zero_rows

# The tables of settings.py stay importable from here, where rnnkit.tasks reads them.
__all__ = ["HISTORY_COLUMNS", "OPTIMIZERS", "SCHEDULES", "Trainer", "TrainerSettings"]


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
        s = self.settings
        self.history: list[dict] = []
        self.steps: list[dict] = []
        self.hook_seconds = 0.0
        # The Trainer's own hooks, called before the user's at every point (see hooks.py).
        self._early_stopping = EarlyStopping(
            monitor=s.monitor,
            mode=s.mode,
            patience=s.early_stopping,
            tie_break=s.tie_break,
            restore_best=s.restore_best,
        )
        self._own_hooks = [self._early_stopping]
        if s.checkpoint_dir is not None:
            self._own_hooks.append(Checkpoints(s.checkpoint_dir, self._early_stopping))
        self._is_main = True

    @property
    def best_epoch(self) -> int | None:
        return self._early_stopping.best_epoch

    @property
    def best_score(self) -> float | None:
        return self._early_stopping.best_score

    @property
    def stopped_early(self) -> bool:
        return self._early_stopping.stopped

    # ---------------------------------------------------------------- the training loop

    def fit(self, model: nn.Module, train, val=None, resume: bool = False) -> list[dict]:
        """Train ``model`` on ``train``, validating on ``val`` after each epoch.

        With ``resume=True`` training continues from the newest checkpoint in
        ``checkpoint_dir`` (model, optimizer, schedule, history, early-stopping state and
        generator states), so a run killed and resumed ends with the same weights as one that
        was not; without a checkpoint there it starts from the beginning. Without ``resume``
        the checkpoints of an earlier run in ``checkpoint_dir`` are removed.

        Returns ``history``: one dict per epoch.
        """
        s = self.settings
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        _check_dataset("train", train)
        if val is not None:
            _check_dataset("val", val)
        s.check_data(train, val, resume)
        run = self._start(model, train, val, resume)
        self.history, self.steps, self.hook_seconds = [], [], 0.0
        self._started = time.perf_counter()  # moved on by the hooks' time: see _call_hooks
        # Checkpoints restores a resumed run here (history, steps, run.epoch, ...) or removes
        # an earlier run's checkpoints; EarlyStopping starts afresh or from the checkpoint.
        self._call_hooks(run, "on_fit_start")
        self._started -= sum(row["seconds"] for row in self.history)  # a resumed run's time
        try:
            while not self._finished(run.epoch):
                run.epoch += 1
                started, hooked = time.perf_counter(), self.hook_seconds
                loss_sum, count, samples, grad_norms = 0.0, 0.0, 0, []
                planned = run.steps_per_epoch
                if s.max_steps is not None:
                    planned = min(planned, s.max_steps - len(self.steps))
                run.progress.start_epoch(run.epoch, planned)
                state = None  # carried from batch to batch when stateful
                for indices in epoch_batches(train, s.batch_size, s.seed, run.epoch, s.shuffle):
                    batch, parts, state = self._fetch(run, train, indices, state)
                    samples += len(indices)
                    # One optimizer step per piece: the batch, or with tbptt each chunk of it,
                    # the state carried from chunk to chunk and cut from the graph between.
                    for chunk in [None] if s.tbptt is None else chunks(parts, s.tbptt):
                        piece_sum, piece_count, state = self._loss(
                            run, run.net, batch, parts, chunk, state
                        )
                        # This process's loss sum, scaled by (processes / global count): DDP's
                        # average of the gradients is then the gradient of the global mean.
                        totals = torch.stack(
                            [piece_sum.detach().to(torch.float64), piece_count.to(torch.float64)]
                        )
                        total_loss, total_count = run.ctx.sum(totals).tolist()
                        run.optimizer.zero_grad(set_to_none=True)
                        (piece_sum * (run.ctx.world / max(total_count, 1.0))).backward()
                        if total_count == 0:
                            break  # padding only: every sequence has ended, so no step here on
                        step_loss = total_loss / total_count
                        if not math.isfinite(step_loss):
                            raise FloatingPointError(
                                f"the training loss is {step_loss} at step {len(self.steps) + 1} "
                                f"(epoch {run.epoch}); lower lr, set clip_norm, or look for NaN "
                                "or inf in the data"
                            )
                        parameters = [p for p in model.parameters() if p.grad is not None]
                        # With max_norm=inf clip_grad_norm_ only measures: the norm logged is
                        # always the one before clipping.
                        norm = float(nn.utils.clip_grad_norm_(parameters, s.clip_norm or math.inf))
                        if s.clip_value is not None:
                            nn.utils.clip_grad_value_(parameters, s.clip_value)
                        lr = run.optimizer.param_groups[0]["lr"]
                        run.optimizer.step()
                        if s.schedule == "cosine":
                            run.scheduler.step()
                        self.steps.append(
                            {
                                "step": len(self.steps) + 1,
                                "epoch": run.epoch,
                                "loss": step_loss,
                                "grad_norm": norm,
                                "lr": lr,
                            }
                        )
                        loss_sum += total_loss
                        count += total_count
                        grad_norms.append(norm)
                        run.progress.step(loss_sum / count, samples)
                        self._call_hooks(run, "on_step")
                        if self._steps_done():
                            break
                    if not s.stateful:
                        state = None
                    if self._steps_done():
                        break
                started += self.hook_seconds - hooked  # the hooks' time is not training time
                trained = time.perf_counter() - started
                row = {
                    "epoch": run.epoch,
                    "loss": loss_sum / count if count else math.nan,
                    **self._validate(run),
                }
                if s.schedule == "plateau":  # which needs a tracked monitor: tracks_monitor
                    run.scheduler.step(row[s.monitor])
                row |= {
                    "lr": run.optimizer.param_groups[0]["lr"],
                    "grad_norm_mean": sum(grad_norms) / len(grad_norms) if grad_norms else math.nan,
                    "grad_norm_max": max(grad_norms, default=math.nan),
                    "seconds": time.perf_counter() - started,
                    "samples_per_s": samples / trained,
                }
                self.history.append(row)
                # EarlyStopping follows the monitored metric, and may stop the run; then
                # Checkpoints writes the epoch's checkpoint.
                self._call_hooks(run, "on_epoch_end")
                run.progress.end_epoch(row)
        finally:
            run.progress.close()
        self._call_hooks(run, "on_fit_end")
        if self._early_stopping.restore(model):  # with restore_best: the best epoch's weights
            self._call_hooks(run, "on_best_restored", self.best_epoch)
        return self.history

    def _start(self, model: nn.Module, train, val, resume: bool) -> Run:
        """What the loop works with: the processes, the model on its device in training mode,
        the seed set, the data's layout checked, the optimizer and the schedule."""
        s = self.settings
        ctx = distributed.setup(s.distributed, s.device)
        s.check_processes(ctx.world)
        self._is_main = ctx.is_main
        device = ctx.device or s.device or _model_device(model)
        model.to(device)
        set_seed(s.seed)
        tracking = s.tracks_monitor(val is not None)
        steps_per_epoch = self._steps_per_epoch(train)
        if val is not None and s.compute_loss is None:
            unpack(fetch(val, torch.tensor([0])))  # a malformed val set fails now, not later
        optimizer = s.make_optimizer(model)
        scheduler = s.make_scheduler(optimizer, steps_per_epoch)
        net = ctx.wrap(model)
        net.train()
        return Run(
            model=model,
            net=net,
            train=train,
            val=val,
            optimizer=optimizer,
            scheduler=scheduler,
            loss=losses.resolve(s.loss),
            ctx=ctx,
            device=device,
            progress=Progress(s.progress, s.epochs_planned(steps_per_epoch), ctx.is_main),
            tracking=tracking,
            steps_per_epoch=steps_per_epoch,
            resume=resume,
        )

    def _steps_per_epoch(self, train) -> int:
        """Optimizer steps in a full epoch; checks the first item's layout on the way."""
        s = self.settings
        batches = math.ceil(len(train) / s.batch_size)
        if s.compute_loss is not None:
            return batches
        parts = unpack(fetch(train, torch.tensor([0])))
        if s.tbptt is None:
            return batches
        return batches * math.ceil(check_aligned(parts) / s.tbptt)

    def _finished(self, epoch: int) -> bool:
        """Whether training ends after ``epoch`` epochs: by early stopping, ``epochs``,
        or ``max_steps`` or ``time_limit`` (a fresh run takes at least one step)."""
        epochs_done = self.settings.epochs is not None and epoch >= self.settings.epochs
        return self.stopped_early or epochs_done or (epoch > 0 and self._steps_done())

    def _steps_done(self) -> bool:
        """Whether ``max_steps`` or ``time_limit`` ends training now."""
        s = self.settings
        if s.max_steps is not None and len(self.steps) >= s.max_steps:
            return True
        elapsed = time.perf_counter() - self._started
        return s.time_limit is not None and elapsed >= s.time_limit

    def _fetch(self, run: Run, data, indices, state):
        """This process's share of a batch, its parts (None with ``compute_loss``), and the
        carried ``state`` with the rows that start a new stream (``reset``) set to zero."""
        batch = fetch_share(data, indices, run.ctx.rank, run.ctx.world, run.device)
        parts = None if self.settings.compute_loss is not None else unpack(batch.data)
        if state is not None and parts.reset is not None:
            state = zero_rows(parts.reset, state)
        return batch, parts, state

    def _loss(self, run: Run, net: nn.Module, batch, parts, chunk=None, state=None):
        """(loss sum, count, state after) of a batch run through ``net``: by ``compute_loss``;
        or the whole batch (``chunk`` None), from ``state`` when the Trainer truncates BPTT
        (validation runs the whole sequences); or one ``chunk`` of it from ``state``, where
        the rows that have ended keep theirs, and the state after is cut from the graph."""
        s = self.settings
        if s.compute_loss is not None:
            # Weighted by what it averages, so processes with unequal shares count right.
            result = s.compute_loss(net, batch.data)
            return (*_sum_and_count(result, batch.rows, run.device), None)
        if chunk is not None:
            output = net(*chunk.inputs, state=state, **lengths_argument(chunk.lengths))
            prediction, new_state = _prediction_and_state(output)
            if chunk.active is not None and state is not None:
                new_state = keep_rows(~chunk.active, state, new_state)
            valid = losses.valid_elements(
                batch.row_weight, chunk.target, parts.lengths, chunk.steps, chunk.start
            )
            loss_sum, count = losses.masked_loss(run.loss, prediction, chunk.target, valid)
            return loss_sum, count, detach(new_state)
        lengths = lengths_argument(parts.lengths)
        if s.tbptt is None:
            prediction = prediction_of(net(*parts.inputs, **lengths))
        else:
            prediction, state = _prediction_and_state(net(*parts.inputs, state=state, **lengths))
        valid = losses.valid_elements(
            batch.row_weight, parts.target, parts.lengths, time_steps(parts)
        )
        return (*losses.masked_loss(run.loss, prediction, parts.target, valid), state)

    def _call_hooks(self, run: Run, method: str, *args) -> None:
        """Call ``method`` of the Trainer's own hooks, on every process, as training; then of
        ``hooks``, on the main process only, their time counted in ``hook_seconds``, not in
        the training time (``time_limit``, ``seconds``)."""
        for hook in self._own_hooks:
            getattr(hook, method)(self, run, *args)
        if not self.hooks or not run.ctx.is_main:
            return
        started = time.perf_counter()
        context = FitContext(
            model=run.model,
            train=run.train,
            val=run.val,
            device=run.device,
            epoch=run.epoch,
            step=len(self.steps),
            resume=run.resume,
        )
        for hook in self.hooks:
            getattr(hook, method)(self, context, *args)
        seconds = time.perf_counter() - started
        self.hook_seconds += seconds
        self._started += seconds

    # ---------------------------------------------------------------- validation

    def _validate(self, run: Run) -> dict:
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

    def _val_loss(self, run: Run) -> float:
        """The mean loss over the val set, split across processes like a training batch.

        The bare model runs here (not its DDP wrapper, whose forward may communicate).
        """
        s = self.settings
        totals = torch.zeros(2, dtype=torch.float64, device=run.device)
        state = None  # carried from batch to batch when stateful
        for indices in epoch_batches(run.val, s.batch_size, s.seed, 0, shuffle=False):
            batch, parts, state = self._fetch(run, run.val, indices, state)
            loss_sum, count, state = self._loss(run, run.model, batch, parts, state=state)
            totals += torch.stack([loss_sum.to(torch.float64), count.to(torch.float64)])
            if not s.stateful:
                state = None
        loss_sum, count = run.ctx.sum(totals).tolist()
        return loss_sum / count

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
