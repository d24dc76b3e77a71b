"""Training: the ``Trainer``, its ``TrainerSettings``, its ``Hook`` protocol and ``set_seed``.

The Trainer fits a model by full or truncated backpropagation through time, with gradient
clipping, learning-rate schedules, early stopping, checkpoints that resume bit for bit,
progress on stderr, a per-epoch and per-step history, and distributed data parallel under
``torchrun``. Hooks (``rnnkit.training.hooks``) watch a fit from outside: how diagnostics
reach it (``rnnkit.diagnostics.Recorder``) without the Trainer importing them. Import it
explicitly; ``import rnnkit`` does not load it.

>>> from rnnkit.training import Trainer
>>> trainer = Trainer(epochs=20, batch_size=64, clip_norm=1.0, patience=3)
>>> history = trainer.fit(model, TensorDataset(x, y), val=TensorDataset(x_val, y_val))
"""

from .hooks import FitContext, Hook
from .reproducibility import set_seed
from .settings import TrainerSettings
from .trainer import Trainer

__all__ = ["FitContext", "Hook", "Trainer", "TrainerSettings", "set_seed"]
