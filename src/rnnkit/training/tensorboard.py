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
import warnings
from numbers import Real
from pathlib import Path

import torch
from torch import nn

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
        self._add_graph(context)

    def _add_graph(self, context) -> None:
        """The model's graph, traced on the first training example in eval mode with every
        recurrent layer on the reference backend (TorchScript's tracer follows neither the
        fused kernels nor the scan loop): the loop unrolled at that example's length. A
        model the tracer cannot follow gets a note (``graph/not_drawn``) instead. Nothing
        of training changes: the mode, the backends and the random state are put back."""
        from ..layers import Recurrent
        from .batches import fetch, unpack

        model = context.model
        layers = [m for m in model.modules() if isinstance(m, Recurrent)]
        backends, training = [layer.backend for layer in layers], model.training
        random_state = torch.random.get_rng_state()
        try:
            parts = unpack(fetch(context.train, torch.tensor([0])))
            inputs = [part.to(context.device) for part in parts.inputs]
            if parts.lengths is not None:
                inputs.append(parts.lengths.to(context.device))
            model.eval()
            for layer in layers:
                layer.backend = "reference"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's notes on Python values
                self.writer.add_graph(_Traced(model, parts.lengths is not None), tuple(inputs))
        except Exception as error:  # a layout or a model the tracer cannot follow
            self.writer.add_text("graph/not_drawn", f"{type(error).__name__}: {error}"[:500])
        finally:
            for layer, backend in zip(layers, backends, strict=True):
                layer.backend = backend
            model.train(training)
            torch.random.set_rng_state(random_state)

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


class _Traced(nn.Module):
    """A model called as the Trainer calls it, with the lengths (the last input) by name."""

    def __init__(self, model, with_lengths: bool):
        super().__init__()
        self.model, self.with_lengths = model, with_lengths

    def forward(self, *inputs):
        if self.with_lengths:
            return self.model(*inputs[:-1], lengths=inputs[-1])
        return self.model(*inputs)


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
