"""TensorBoard logs of a fit: a hook on the Trainer (``rnnkit.training.hooks``).

Every optimizer step: the training loss, the gradient's global norm before clipping, and
the learning rate (``step/…``); every epoch: each number of its history row (``epoch/…``:
the loss, the validation loss and metrics, the gradient norms, the throughput), at the step
it ended on, so the two lines share an axis. ``add_baselines`` draws a task's baselines as
constant lines beside the model's validation scores, and ``add_pictures`` adds PNG files
(the gradient flow that ``diagnose_every`` records). Written by ``torch.utils.tensorboard``
(the ``tensorboard`` package: ``pip install rnnkit[tensorboard]``); on the main process only,
as every hook.
"""

from __future__ import annotations

import math
from numbers import Real
from pathlib import Path

from .hooks import Hook


def writer(folder):
    """A SummaryWriter for ``folder``, or a clear error naming the package to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:  # torch's module needs the tensorboard package
        raise ImportError(
            "tensorboard logs need the tensorboard package: pip install rnnkit[tensorboard]"
        ) from error
    return SummaryWriter(log_dir=str(folder))


class TensorBoard(Hook):
    """Log a fit's steps and epochs to the TensorBoard folder ``folder``."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.writer = None

    def on_fit_start(self, trainer, context) -> None:
        self.writer = writer(self.folder)

    def on_step(self, trainer, context) -> None:
        row = trainer.steps[-1]
        for key in ("loss", "grad_norm", "lr"):
            _scalar(self.writer, f"step/{key}", row[key], row["step"])

    def on_epoch_end(self, trainer, context) -> None:
        row = trainer.history[-1]
        for key, value in row.items():
            if key != "epoch":
                _scalar(self.writer, f"epoch/{key}", value, context.step)
        self.writer.flush()

    def on_fit_end(self, trainer, context) -> None:
        self.writer.close()


def _scalar(summary, tag: str, value, step: int) -> None:
    if isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value):
        summary.add_scalar(tag, float(value), step)


def add_baselines(folder, scores: dict, steps: int) -> None:
    """Each entry of a task's validation ``scores`` (``{"model": {metric: value}, "<baseline>":
    {...}}``) as a line from step 0 to ``steps``: ``validation/<metric>/<name>``, so the
    model's scores stand beside the baselines' in one chart per metric."""
    summary = writer(folder)
    for name, metrics in scores.items():
        if not isinstance(metrics, dict):
            continue
        for metric, value in metrics.items():
            for step in (0, max(steps, 1)):
                _scalar(summary, f"validation/{metric}/{name}", value, step)
    summary.close()


def add_pictures(folder, pictures, step: int = 0) -> None:
    """PNG files as images (``pictures/<file name>``)."""
    import matplotlib.image

    summary = writer(folder)
    for path in pictures:
        image = matplotlib.image.imread(str(path))[..., :3]
        summary.add_image(f"pictures/{Path(path).stem}", image, step, dataformats="HWC")
    summary.close()
