"""The training settings every task shares: one list, read by every estimator and the CLI.

Each task takes the settings of ``TRAINING`` that apply to it, with defaults of its own
(``training_settings``); the estimator's signature, its ``get_params`` and the ``train``
command's options and help, defaults included, are all made from that one table.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..training.progress import MODES
from ..training.trainer import OPTIMIZERS, SCHEDULES


@dataclass(frozen=True)
class Setting:
    """One training setting: its name, its usual default, what it does, and its type."""

    name: str
    default: object
    help: str
    type: type = int
    choices: tuple | None = None
    # Whether None is a value ("none" on the command line): no limit, no clipping.
    optional: bool = False
    minimum: float = 1  # the least value allowed: integers >= it, numbers > it (0: >= 0)

    def check(self, value, *, fraction: bool = False) -> None:
        """Refuse ``value`` with an error that names this setting, the value and what is
        expected. ``fraction``: a number, not only an integer, is allowed (an epoch count
        of a language model, which counts passes over its text)."""
        if value is None and self.optional:
            return
        if self.choices is not None:
            if value not in self.choices and value is not None:
                raise ValueError(f"{self.name}={value!r} is not one of {self.choices}")
            return
        if self.type is str:
            return
        whole = self.type is int and not fraction
        kind = int if whole else (int, float)
        numeric = isinstance(value, kind) and not isinstance(value, bool)
        low = self.minimum
        if whole:
            ok, expected = numeric and value >= low, f"an integer >= {low}"
        elif low == 0:
            ok, expected = numeric and value >= 0, "a number >= 0"
        else:
            ok, expected = numeric and value > 0, "a number > 0"
        if not ok or (numeric and value != value):  # NaN
            extra = " or None" if self.optional else ""
            raise ValueError(f"{self.name}={value!r} must be {expected}{extra}")


TRAINING = {
    setting.name: setting
    for setting in (
        Setting("epochs", 10, "Passes over the training data.", optional=True),
        Setting(
            "steps",
            None,
            "Stop after this many optimizer steps (with epochs: whichever comes first).",
            optional=True,
        ),
        Setting(
            "minutes",
            None,
            "Stop training after this many minutes (validation included); not under torchrun.",
            float,
            optional=True,
        ),
        Setting("batch_size", 32, "Examples per optimizer step (the global batch under torchrun)."),
        Setting("optimizer", "adam", "The optimizer.", str, OPTIMIZERS),
        Setting("lr", 1e-3, "Learning rate.", float),
        Setting("weight_decay", 0.0, "Weight decay (L2; decoupled with adamw).", float, minimum=0),
        Setting(
            "clip_norm",
            1.0,
            "Clip the gradient to this global norm (none: never).",
            float,
            optional=True,
        ),
        Setting(
            "schedule",
            None,
            "Learning-rate schedule: cosine annealing, or halving on a plateau.",
            str,
            tuple(s for s in SCHEDULES if s),
        ),
        Setting(
            "patience",
            3,
            "Early stopping: epochs without a better validation score before training stops "
            "(the best epoch's weights are kept).",
            optional=True,
        ),
        Setting("seed", 0, "Seed of the initial weights, dropout and batch order.", minimum=0),
        Setting(
            "progress", "auto", "Progress: a bar on a terminal, else a line per epoch.", str, MODES
        ),
        Setting(
            "diagnose_every",
            None,
            "Record gradient flow and gate statistics every N steps (`rnnkit diagnose`).",
            optional=True,
        ),
    )
}


def training_settings(*, exclude=(), **defaults) -> dict[str, object]:
    """A task's training settings: ``TRAINING``'s names with their defaults, ``defaults``
    overriding them, ``exclude`` left out (a language model has no early stopping)."""
    unknown = sorted((set(defaults) | set(exclude)) - set(TRAINING))
    if unknown:
        raise ValueError(f"{unknown} are not training settings; they are {list(TRAINING)}")
    return {
        name: defaults.get(name, setting.default)
        for name, setting in TRAINING.items()
        if name not in exclude
    }
