"""Early stopping: the best epoch by the monitored metric, its weights, and when to stop.

``EarlyStopping`` is one of the Trainer's own hooks (see ``rnnkit.training.hooks``): the
Trainer makes it from its settings (``monitor``, ``mode``, ``tie_break``, ``patience``,
``restore_best``), reads ``best_epoch``, ``best_score`` and ``stopped`` from it, stops when it
says so and, at the end of the fit, has it put the best epoch's weights back. It follows the
monitored metric whenever the run has it, with or without patience, so ``best_epoch`` is
known even when nothing stops early.
"""

import math

from torch import nn

from .hooks import Hook


class EarlyStopping(Hook):
    """Follows ``monitor`` after every epoch; stops after ``patience`` epochs without a
    better value, and keeps the best epoch's weights to restore when ``restore_best``.

    An epoch is better when its ``monitor`` value beats the best so far in ``mode``'s
    direction ("min" or "max"), or equals it and its ``tie_break`` column is lower. The first
    epoch whose value is not NaN is the first best.
    """

    def __init__(self, *, monitor: str, mode: str, patience, tie_break, restore_best: bool):
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.tie_break = tie_break
        self.restore_best = restore_best
        self.tracking = False  # whether this fit has the monitored metric
        self.keep_best = False  # whether the best weights are kept, to restore at the end
        self.load_state_dict(None, None)

    def state_dict(self) -> dict:
        """What a checkpoint keeps, besides the best weights (``best_weights``)."""
        return {
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped,
        }

    def load_state_dict(self, state: dict | None, best_weights: dict | None) -> None:
        """Continue from ``state_dict()``'s ``state`` and the best weights; None: a new fit."""
        state = state or {}
        self.best_epoch: int | None = state.get("best_epoch")
        self.best_score: float | None = state.get("best_score")
        self.bad_epochs: int = state.get("bad_epochs", 0)
        self.stopped: bool = state.get("stopped_early", False)
        self.best_weights: dict | None = best_weights

    def on_fit_start(self, trainer, run) -> None:
        self.load_state_dict(None, None)  # before a resume restores it
        self.tracking = run.tracking
        self.keep_best = self.tracking and self.patience is not None and self.restore_best

    def on_epoch_end(self, trainer, run) -> None:
        if not self.tracking:
            return
        row = trainer.history[-1]
        score = row[self.monitor]
        if self.best_score is None:
            better = not math.isnan(score)
        else:
            better = score < self.best_score if self.mode == "min" else score > self.best_score
            if score == self.best_score and self.tie_break is not None:
                best_row = next(r for r in trainer.history if r["epoch"] == self.best_epoch)
                better = row[self.tie_break] < best_row[self.tie_break]
        if better:
            self.best_score, self.best_epoch, self.bad_epochs = score, row["epoch"], 0
            if self.keep_best:
                self.best_weights = {
                    name: t.detach().clone() for name, t in run.model.state_dict().items()
                }
            return
        self.bad_epochs += 1
        if self.patience is not None and self.bad_epochs >= self.patience:
            self.stopped = True

    def restore(self, model: nn.Module) -> bool:
        """Put the best epoch's weights back into ``model`` when they were kept; whether it
        did."""
        if not self.keep_best or self.best_weights is None:
            return False
        model.load_state_dict(self.best_weights)
        return True
