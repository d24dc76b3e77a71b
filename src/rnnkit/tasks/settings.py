"""Settings as data: each is declared once, with its type, range or choices, default and one
line of help, and everything else reads the declaration.

- ``TRAINING``: the training settings every task shares; a task takes those that apply to
  it, with defaults of its own (``training_settings``).
- ``SHARED``: the model and data settings that mean the same in every task that has them
  (``cell``, ``hidden_size``, ``val``, …); a task takes one with ``shared(name, default=…)``.
- A task's own settings: ``Setting(...)`` entries in its estimator's ``settings``.

From these declarations come the estimator's signature and ``__init__``
(``rnnkit.tasks.estimator``), the check of every value at the start of ``fit`` (``check``,
whose messages name the setting, the value and what is expected), and each ``train``
command's options with their help and the estimator's default (``rnnkit.cli``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass

from .._checks import (
    check_choice,
    check_flag,
    check_fraction,
    check_integer,
    check_positive,
    is_finite,
    is_fraction,
    is_integer,
)
from ..registry import CELLS
from ..training.progress import MODES
from ..training.reproducibility import MAX_SEED
from ..training.trainer import OPTIMIZERS, SCHEDULES


@dataclass(frozen=True)
class Setting:
    """One setting: its name, its usual default, one line of help, and what it may be.

    Args:
        type: int, float, str, bool; tuple (integers, "N,N" on the command line), list
            (strings, a repeatable option) or dict (``KEY=VALUE``, repeatable).
        choices: the values it may take (then ``type`` is not checked).
        optional: None is a value ("none" on the command line): no limit, no clipping.
        minimum: integers >= it; numbers > it (0: >= 0), and finite.
        maximum: integers <= it, where a larger one cannot work (a seed NumPy refuses) or is
            surely a slip (a billion layers, which never finish building).
        fraction: a number in this range, "[0, 1)" or "(0, 1)", instead of ``minimum``.
        words: texts it may be besides a number ("longest").
        rule: ``rule(value) -> None, or what the value must be`` where the above cannot say
            it (a probability, a finite number); it replaces the checks of the type.
        flags: the command line's spellings, where not ``--name`` (bool: ``--a/--b``).
        parse: how the command line's text becomes the value, where ``type`` does not say
            (``integers``: "100,200"; for a dict, each VALUE of KEY=VALUE); a ValueError's
            message is the option's error.
        cli: whether the ``train`` command has an option for it.
        shown: its default as the command's help says it, where the value would not say it.
    """

    name: str
    default: object
    help: str
    type: type = int
    choices: tuple | None = None
    optional: bool = False
    minimum: float = 1
    maximum: int | None = None
    fraction: str | None = None
    words: tuple = ()
    rule: Callable | None = None
    flags: tuple = ()
    parse: Callable | None = None
    cli: bool = True
    shown: str | None = None

    def but(self, **changes) -> Setting:
        """This setting with ``changes`` (a task's own default or help)."""
        return dataclasses.replace(self, **changes)

    def check(self, value, *, fractional: bool = False) -> None:
        """Refuse ``value`` with an error that names this setting, the value and what is
        expected. ``fractional``: a number, not only an integer, is allowed (an epoch count
        of a language model, which counts passes over its text)."""
        if (value is None and self.optional) or value in self.words:
            return
        if self.choices is not None:
            check_choice(self.name, value, self.choices)
        elif self.rule is not None:
            expected = self.rule(value)
            if expected:
                raise ValueError(f"{self.name}={value!r} {expected}")
        elif self.type is bool:
            check_flag(self.name, value)
        elif self.type in (int, float):
            spare = {"optional": self.optional, "words": self.words}
            if self.fraction:
                check_fraction(self.name, value, self.fraction, **spare)
            elif self.type is int and not fractional:
                check_integer(self.name, value, self.minimum, maximum=self.maximum, **spare)
            else:
                check_positive(self.name, value, zero=self.minimum == 0, finite=True, **spare)


def integers(text: str) -> list[int] | None:
    """A ``parse``: "100,200" -> [100, 200]; "none" -> None."""
    if text.strip().lower() == "none":
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{text!r} must be integers separated by commas") from None


def names(text: str) -> list[str]:
    """A ``parse``: "lstm, gru" -> ["lstm", "gru"]."""
    return [part.strip() for part in text.split(",") if part.strip()]


def positive_integer(value) -> str | None:
    """A ``rule``: an integer >= 1, in the words of the sizes of models."""
    return None if is_integer(value, 1) else "must be a positive integer"


def finite(value) -> str | None:
    """A ``rule``: any finite number."""
    return None if is_finite(value) else "must be a finite number"


def folder(value) -> str | None:
    """A ``rule``: a path to a folder (text or a path object)."""
    return None if isinstance(value, str | os.PathLike) and str(value) else "must be a folder path"


def existing_file(value) -> str | None:
    """A ``rule``: the path of a file that exists."""
    ok = isinstance(value, str | os.PathLike) and str(value) and os.path.isfile(value)
    return None if ok else "must be the path of an existing file"


def probability(value) -> str | None:
    """A ``rule``: a number in [0, 1]."""
    return None if is_fraction(value, "[0, 1]") else "must be a probability in [0, 1]"


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
            optional=True,
        ),
        Setting(
            "patience",
            3,
            "Early stopping: epochs without a better validation score before training stops "
            "(the best epoch's weights are kept).",
            optional=True,
        ),
        Setting(
            "seed",
            0,
            "Seed of the initial weights, dropout and batch order.",
            minimum=0,
            maximum=MAX_SEED,
        ),
        Setting(
            "progress", "auto", "Progress: a bar on a terminal, else a line per epoch.", str, MODES
        ),
        Setting(
            "tensorboard",
            None,
            "Write TensorBoard logs here: loss, gradient norm and learning rate per step, "
            "validation scores per epoch, the baselines as lines.",
            str,
            optional=True,
            rule=folder,
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


SHARED = {
    setting.name: setting
    for setting in (
        Setting("cell", "lstm", "Recurrent cell.", str, tuple(CELLS)),
        Setting("hidden_size", 64, "Units per recurrent layer."),
        Setting("num_layers", 1, "Stacked recurrent layers.", maximum=100),
        Setting("embedding_dim", 128, "Size of the token embedding."),
        Setting(
            "dropout",
            0.0,
            "Dropout (between layers and before the output).",
            float,
            fraction="[0, 1)",
        ),
        Setting(
            "output_dropout", 0.0, "Dropout before the output layer.", float, fraction="[0, 1)"
        ),
        Setting(
            "embedding_dropout",
            0.0,
            "Drop whole tokens from the embedding in training.",
            float,
            fraction="[0, 1)",
        ),
        Setting(
            "rnn_options",
            None,
            "Layer option KEY=VALUE, e.g. recurrent_dropout=0.2, layer_norm=true (repeatable).",
            dict,
            optional=True,
            flags=("--option",),
        ),
        Setting("min_freq", 1, "Rarer tokens become <unk>."),
        Setting("val", 0.1, "Fraction held out for validation.", float, fraction="[0, 1)"),
    )
}


def shared(name: str, **changes) -> Setting:
    """The setting ``name`` of ``SHARED``, with a task's ``changes`` (its default)."""
    return SHARED[name].but(**changes)
