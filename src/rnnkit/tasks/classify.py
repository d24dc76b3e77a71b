"""Sequence classification (many-to-one): sentiment of a sentence, the speaker of a signal,
the class of an image read row by row.

``Classifier`` reads text (tokenised, then embedded) or sequences of feature vectors, trains
a ``SequenceClassifier`` for a budget that follows the size of the data (``training_budget``),
and always reports it beside baselines on the same data: the majority class; the one-to-one
network with the same input and head but no recurrence (``BagClassifier``), so the run shows
what reading the sequence in order adds; and what each field compares with: three linear
models on word n-grams for text (NB-SVM, naive Bayes, TF-IDF logistic regression:
``rnnkit.models.linear_text``), 1-NN with the Euclidean and DTW
distances for feature sequences (``rnnkit.models.NearestNeighbour``). Every job that
differs between text and feature sequences is done by the kind of input the data holds
(``rnnkit.tasks.classify_inputs``); the classifier itself never asks which it is.

    >>> classifier = Classifier(cell="gru", epochs=5).fit("reviews.csv")
    >>> classifier.predict(["a gorgeous, witty film", "tedious and overlong"])
    >>> classifier.score("test.csv")["model"]["accuracy"]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from .. import metrics
from .._checks import is_integer
from ..data import readers
from ..data.batching import SequenceDataset
from ..data.series import NORMALISATIONS
from ..data.text import Vocabulary
from ..models.classifier import NGRAM_ORDERS, BagClassifier, SequenceClassifier
from . import supervised
from .classify_inputs import (
    KINDS,
    SIGNAL_CONV_CHANNELS,
    SIGNAL_HIDDEN_SIZE,
    TEXT_HIDDEN_SIZE,
    Inputs,
)
from .estimator import Estimator
from .settings import Setting, positive_integer, shared, training_settings
from .supervised import label_vocabulary, run_batches

SMALL_DATA = 1000
"""Below this many training examples a tenth held out is under 100 examples: one of them
moves the validation accuracy by more than a point, too noisy to stop on. Such a set trains on
all its examples for a fixed number of steps (``training_budget``)."""

SMALL_STEPS = 1000
"""Optimizer steps for a small set. On seven signal sets of 36-270 series the test accuracy
of the default model stops rising between 500 and 800 steps and stays there to 2,000
(README, "Classification on data nobody tuned for"); 1,000 steps annealed by a cosine
schedule end on a settled model. It is also the least budget of a large set."""

LARGE_EPOCHS = 15
"""A large set trains for up to this many epochs (at least ``SMALL_STEPS`` steps), stopped
early on its validation part: MR's 9,400 training sentences peak within 3-10 epochs, and
Fashion-MNIST's 54,000 images still gain at 10 (88.9 % on the test; 89.5 % at 15)."""


BY_SIZE = "unset: by the size of the training data (see the report)"

BEFORE_RULES = {"rule": "before 0.3", "reason": "the defaults of runs before 0.3",
                "embedding_dropout": 0.0, "min_freq": 1, "ngrams": 0, "stop_on": "accuracy",
                "blend": "none"}  # fmt: skip
"""What the settings a kind's rule now sets were, for runs saved before the rules."""

BLEND_WEIGHTS = tuple(k / 10 for k in range(11))
"""The weights of the linear partner in a blend that the validation part chooses from."""

SMALL_BLEND_WEIGHT = 0.5
"""The linear partner's weight where there is no validation part to choose it on."""


def ngram_orders(value) -> str | None:
    """A ``Setting.rule``: the longest n-gram of the bag, or 0 for no bag."""
    return None if is_integer(value, 0, 3) else f"must be {NGRAM_ORDERS}"


def training_budget(count: int, *, epochs=None, steps=None, batch_size=None, val=None,
                    val_data=False, schedule=None, patience=3, text=False) -> dict:  # fmt: skip
    """How long, in which batches, and with which validation part a classifier trains on
    ``count`` labelled examples; every setting given (not None) is kept as it is.

    - **small** (``count`` < ``SMALL_DATA``): no validation part (``val`` 0), batches of a
      tenth of the data between 8 and 32, ``SMALL_STEPS`` optimizer steps under a cosine
      schedule, the last model kept. With a validation part all the same (``val`` or
      ``val_data`` given), early stopping waits at least a fifth of the budget.
    - **large**: a tenth held out per class, batches of 32, up to ``LARGE_EPOCHS`` epochs
      and at least ``SMALL_STEPS`` steps, stopped after ``patience`` epochs (at least a fifth
      of the budget) without a better validation score, the best epoch kept; a cosine
      schedule for arrays (images, signals), a constant rate for ``text``.
    - **given**: ``epochs`` or ``steps`` given: they are the budget (validation and batch
      size still follow the size unless given).

    Returns the settings the Trainer gets (``val``, ``batch_size``, ``epochs``, ``steps``,
    ``schedule``, ``patience``) with ``rule`` and the ``reason`` a report prints.
    """
    small = count < SMALL_DATA
    if val is None:
        val = 0.0 if small else 0.1
    validated = val_data or val > 0
    if batch_size is None:
        batch_size = min(32, max(8, count // 10)) if small else 32
    per_epoch = math.ceil(count * (1 - (0 if val_data else val)) / batch_size)
    size = f"{count} training examples, {'under' if small else 'at least'} {SMALL_DATA}"
    if epochs is not None or steps is not None:
        rule = "given"
        reason = (f"{size}; epochs={epochs}, steps={steps} as given, batches of {batch_size}, "
                  + ("a validation part" if validated else "no validation part"))  # fmt: skip
    elif small:
        rule, steps = "small", SMALL_STEPS
        schedule = schedule or "cosine"
        if validated:
            patience = max(patience, math.ceil(0.2 * steps / per_epoch))
        reason = (
            f"{size}: a tenth held out would be under 100, too few to stop on, so it trains on "
            f"{'the training part' if validated else 'all of them'} for {steps} steps of "
            f"{batch_size} (about {steps / per_epoch:.0f} epochs), {schedule} schedule"
        )
    else:
        rule = "large"
        # Measured with the defaults: cosine lifts Fashion-MNIST from 89.5 to 90.6 %, but
        # lowers MR's 10-fold ensemble from 78.4 to 77.9 %, so text keeps a constant rate.
        if not text:
            schedule = schedule or "cosine"
        steps = max(SMALL_STEPS, LARGE_EPOCHS * per_epoch)
        epochs = math.ceil(steps / per_epoch)
        # As for a small set: early stopping waits at least a fifth of the budget. Under
        # about 2,400 examples 3 epochs are under 200 steps, and the one-to-one network
        # stopped at its majority-class start on 1,500 Rotten Tomatoes texts.
        patience = max(patience, math.ceil(0.2 * steps / per_epoch))
        reason = (
            f"{size}: {'the validation data' if val_data else f'{val:.0%} held out'} stops "
            f"training after {patience} epochs without a better validation score, within {epochs} "
            f"epochs of {per_epoch} steps of {batch_size}, {schedule or 'constant'} schedule"
        )
    return {"rule": rule, "reason": reason, "val": val, "batch_size": batch_size,
            "epochs": epochs, "steps": steps, "schedule": schedule,
            "patience": patience}  # fmt: skip


@dataclass
class Examples:
    """Sequences to classify: texts, or arrays (T_i, features); and their labels if known."""

    inputs: list
    labels: list[str] | None
    kind: str
    source: str = "<memory>"
    names: list[str] = field(default_factory=list)  # where each came from, for messages
    fixed_length: bool = False  # every sequence has one length by nature (images)

    def __len__(self) -> int:
        return len(self.inputs)

    def where(self, i: int) -> str:
        return self.names[i] if self.names else f"{self.source}, example {i + 1}"


def read_examples(
    data, labels=None, *, fmt=None, text_col="text", label_col="label", need_labels=True
) -> Examples:
    """``data`` as ``Examples``: a path (format from the extension or ``fmt``; see
    ``rnnkit.data.readers.detect_format``), ``Examples``, or a list of texts or arrays with
    ``labels`` beside it."""
    if isinstance(data, Examples):
        examples = data
    elif isinstance(data, str | Path):
        examples = _read_file(Path(data), fmt, text_col, label_col if need_labels else None)
    else:
        inputs = list(data)
        if not inputs:
            raise ValueError("data is empty: no examples to read")
        kind = "text" if all(isinstance(x, str) for x in inputs) else "features"
        if kind == "features":
            inputs = [np.asarray(x, dtype=np.float32) for x in inputs]
        examples = Examples(inputs, None if labels is None else [str(y) for y in labels], kind)
        if labels is not None and len(labels) != len(inputs):
            raise ValueError(f"labels has {len(labels)} entries for {len(inputs)} examples")
    if need_labels and examples.labels is None:
        raise ValueError(
            f"data={examples.source!r} has no labels; training and evaluation need them"
        )
    return examples


def _read_file(path: Path, fmt, text_col, label_col) -> Examples:
    kind = readers.detect_format(path, fmt)
    source = str(path)
    if kind == "table":
        texts, labels = readers.read_table(path, text_col=text_col, label_col=label_col)
        return Examples(texts, labels, "text", source)
    if kind == "text":
        lines = readers.read_lines(path)
        return Examples(lines, None, "text", source)
    if kind == "ts":
        series, labels = readers.read_ts(path)
        return Examples(series, labels, "features", source)
    if kind == "idx":
        images = readers.read_idx(path)
        if images.ndim != 3:
            raise ValueError(
                f"{path}: an idx file of images (N, rows, columns) is needed, got shape "
                f"{images.shape}; pass the images file, the labels file is found beside it"
            )
        labels = None
        label_path = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
        if label_col is not None and label_path != path and label_path.exists():
            labels = [str(y) for y in readers.read_idx(label_path)]
            if len(labels) != len(images):
                raise ValueError(f"{label_path} has {len(labels)} labels for {len(images)} images")
        pixels = list(images.astype(np.float32) / 255.0)
        return Examples(pixels, labels, "features", source, fixed_length=True)
    if kind == "numpy":
        arrays = readers.read_numpy(path)
        x, y, lengths = arrays["x"], arrays["y"], arrays.get("lengths")
        inputs = [np.asarray(row, dtype=np.float32) for row in x]
        if lengths is not None:
            inputs = [row[: int(n)] for row, n in zip(inputs, lengths, strict=True)]
        inputs = [row[:, None] if row.ndim == 1 else row for row in inputs]
        labels = None if y is None else [str(v) for v in y]
        return Examples(inputs, labels, "features", source)
    raise ValueError(
        f"{path}: format {kind!r} holds no examples to classify; give a table (.csv/.tsv), "
        ".ts, idx, NumPy or plain-text file"
    )


class Classifier(Estimator):
    """Train, evaluate and use a sequence classifier; see the module docstring.

    Model (see ``rnnkit.models.SequenceClassifier``):
        cell, hidden_size, num_layers, bidirectional, pooling, embedding_dim, head_hidden,
        dropout, embedding_dropout; ``rnn_options``, a dict for the layer
        (``recurrent_dropout``, ``layer_norm``, ``activation``, ``backend``, …).
        ``hidden_size=None``: ``TEXT_HIDDEN_SIZE`` for text, ``SIGNAL_HIDDEN_SIZE`` for
        feature sequences.
        conv_channels, conv_kernels, downsample: the convolutional front-end before the RNN
        (``rnnkit.models.classifier.ConvFrontEnd``); ``conv_channels=None`` gives feature
        sequences ``SIGNAL_CONV_CHANNELS`` and text none, ``()`` none for either.
        ngrams, ngram_buckets: text only: a linear bag of hashed token n-grams up to this
            order added to the network's logits (``rnnkit.models.classifier.NgramBag``;
            0: none).
    Feature sequences:
        normalize: "channel" standardises each channel with the mean and deviation of the
            training part's steps (kept in the run); "series" first z-normalises each series
            on its own (the UCR convention: shapes compared whatever the offset and gain).
            Missing values (NaN, ``?`` in ``.ts``) are filled, see ``rnnkit.data.series``.
        resample: stretch or squeeze every series (linear interpolation, each channel
            alone) to this many steps before the model and the 1-NN baselines read it;
            "longest": the training part's longest (a no-op where all have one length, as
            1-NN-ED compares series of unequal length); None: each series keeps its length.
            On PickupGestureWiimoteZ (gestures of 29-361 steps) "longest" lifts the model
            from 60 % to 76-84 %.
    Text:
        tokenizer: "word", "char" or "bpe" (subwords; needs the ``tokenizers`` library);
        lowercase; bpe_vocab_size; min_freq and max_vocab for the vocabulary;
        max_length: keep the first this many tokens (steps) of a longer sequence.
    Training (``rnnkit.tasks.settings.TRAINING``): epochs, steps, minutes, batch_size,
        optimizer, lr, weight_decay, clip_norm, schedule, patience (early stopping on the
        held-out accuracy), seed, progress, diagnose_every. Unset (None), epochs, steps and
        batch_size follow ``training_budget``.
        val: the fraction of the training data held out (per class) for early stopping,
            unless ``fit`` is given ``val_data``; None: by ``training_budget`` (0 for a set
            under ``SMALL_DATA`` examples, else 0.1).
        ensemble: train this many models, from seeds ``seed``, ``seed + 1``, …, and average
            their class probabilities. On a few thousand sentences one model's accuracy moves
            by a point or two with its seed; the average of a few moves much less.
        baseline: also train and score the baselines (one-to-one, the linear text models or 1-NN).

    Fitted: ``members_`` (the ensemble's models; ``model_`` is the first), ``baseline_``,
    ``inputs_`` (the kind of input the data holds, which does every job that differs between
    text and feature sequences: ``rnnkit.tasks.classify_inputs.TextInputs`` or
    ``SeriesInputs``), ``labels_``, ``conv_channels_``, ``budget_``, ``history_``, ``steps_``
    and ``best_epoch_`` (of the first model), ``metrics_``; and what ``inputs_`` learnt,
    which reads on the classifier too: ``reference_`` (the baselines that are not networks,
    by name) and ``skipped_`` (those left out, with why), ``vocabulary_`` and ``tokenizer_``
    (text) or ``scaler_`` and ``length_`` (features: the steps every series is resampled to,
    or None).
    """

    task = "classify"
    settings = (
        shared("cell"),
        shared(
            "hidden_size",
            default=None,
            optional=True,
            help=f"Units per recurrent layer; unset: {TEXT_HIDDEN_SIZE} for text, "
            f"{SIGNAL_HIDDEN_SIZE} for feature sequences.",
        ),
        shared("num_layers"),
        Setting("bidirectional", True, "Read the sequence both ways.", bool),
        Setting(
            "pooling",
            "attention",
            "How the sequence becomes one vector.",
            str,
            ("last", "mean", "max", "attention"),
        ),
        shared("embedding_dim"),
        Setting(
            "head_hidden", 0, "Units of a hidden layer before the output (0: none).", minimum=0
        ),
        shared("dropout", default=0.5),
        shared(
            "embedding_dropout",
            default=None,
            optional=True,
            help=f"Drop whole tokens from the embedding in training; {BY_SIZE}.",
        ),
        Setting(
            "conv_channels",
            None,
            "Channels of each convolution block before the RNN "
            f"(none: no front-end); unset: {','.join(map(str, SIGNAL_CONV_CHANNELS))} for "
            "feature sequences, none for text.",
            tuple,
            optional=True,
        ),
        Setting("conv_kernels", (7, 5, 3), "Kernel width of each convolution block.", tuple),
        Setting("downsample", 1, "Max-pool the front-end's output by this factor."),
        Setting(
            "ngrams",
            None,
            "Text: add a linear bag of hashed token n-grams up to this order "
            f"to the network's logits (0: none); {BY_SIZE}.",
            rule=ngram_orders,
            optional=True,
        ),
        Setting("ngram_buckets", 2**18, "Hash buckets of the n-gram bag.", rule=positive_integer),
        shared("rnn_options"),
        Setting(
            "normalize",
            "channel",
            "Feature sequences: standardise each channel on the "
            "training part, or z-normalise each series first (the UCR convention).",
            str,
            NORMALISATIONS,
        ),
        Setting(
            "resample",
            "longest",
            "Feature sequences: stretch or squeeze every series to "
            "this many steps (longest: the training part's longest; none: keep each "
            "length).",
            optional=True,
            minimum=2,
            words=("longest",),
        ),
        Setting("tokenizer", "word", "Text tokens.", str, ("word", "char", "bpe")),
        Setting("lowercase", True, "Lower-case the text.", bool),
        Setting("bpe_vocab_size", 8000, "Subwords of the bpe tokenizer."),
        shared(
            "min_freq",
            default=None,
            optional=True,
            help=f"Rarer tokens become <unk>; {BY_SIZE}.",
        ),
        Setting("max_vocab", None, "Most token types kept.", optional=True),
        Setting("max_length", 400, "Keep the first this many steps.", optional=True),
        shared(
            "val",
            default=None,
            optional=True,
            help="Fraction held out for validation; none: by the budget rule (0 under "
            "1,000 examples, else 0.1).",
        ),
        Setting(
            "stop_on",
            None,
            f"The held-out score early stopping follows and keeps the best epoch of; {BY_SIZE}.",
            str,
            ("accuracy", "loss"),
            optional=True,
        ),
        Setting("ensemble", 1, "Models from consecutive seeds, averaged."),
        Setting(
            "blend",
            None,
            "Text: average the network's class probabilities with the linear baseline's "
            "of the best cross-validated accuracy, weighted on the validation part "
            f"(none: the network alone); {BY_SIZE}.",
            str,
            ("linear", "none"),
            optional=True,
        ),
        Setting(
            "baseline",
            True,
            "Also train and score the baselines (one-to-one, linear text models, 1-NN).",
            bool,
        ),
    )
    training = training_settings(epochs=None, batch_size=None, lr=2e-3, clip_norm=5.0, patience=3)
    # None: set by the budget rule (``training_budget``) from the size of the data.
    automatic = ("batch_size",)
    headline = ("accuracy", "macro_f1")
    renamed: ClassVar[dict] = {"vocab_": "vocabulary_"}

    # --- learning --------------------------------------------------------------------------

    def read(self, data, **options) -> Examples:
        """``data`` as ``Examples`` (see ``read_examples`` for ``options``)."""
        return read_examples(data, **options)

    def fit(self, data, labels=None, *, val_data=None, **places) -> Classifier:
        """Learn from ``data`` (see ``read_examples``; ``labels`` beside a list of texts or
        arrays), for the budget ``training_budget`` sets from its size unless ``epochs`` /
        ``steps`` / ``batch_size`` / ``val`` are given; a validation part (``val`` of the data,
        or ``val_data``) stops training early. The rule applied is ``budget_`` and
        ``metrics_["budget"]``; scores go to ``metrics_["validation"]``. ``places``:
        ``checkpoint_dir``, ``resume`` and ``diagnose_dir``, which a run directory gives
        (``rnnkit.tasks.rundir``)."""
        return super().fit(read_examples(data, labels), val_data=val_data, **places)

    def _split(self, examples: Examples, val_data):
        """The kind of input is the data's; the budget follows the size of the data, and so
        does the part held out (a share of each class)."""
        self.defaults_ = KINDS[examples.kind].defaults(len(examples))
        self.inputs_ = self._inputs(examples.kind)
        self.budget_ = training_budget(
            len(examples), epochs=self.epochs, steps=self.steps, batch_size=self.batch_size,
            val=self.val, val_data=val_data is not None, schedule=self.schedule,
            patience=self.patience, text=self.inputs_.constant_rate,
        )  # fmt: skip
        if val_data is not None:
            return examples, self.read(val_data)
        if not self.budget_["val"]:
            return examples, None
        keep, hold = supervised.hold_out(
            len(examples), self.budget_["val"], self.seed, self.unit, examples.labels
        )
        return _subset(examples, keep), _subset(examples, hold)

    def _inputs(self, kind: str) -> Inputs:
        """The kind of input ``kind`` names (``Examples.kind``, or a run's), with the
        settings it reads: the one place the classifier tells text from feature sequences."""
        return KINDS[kind].of(self)

    def _prepare(self, train: Examples, held: Examples | None):
        # The classes are a closed set: those of the validation data count too.
        self.labels_ = label_vocabulary(
            train.labels + (held.labels if held is not None else []),
            source=f"data={train.source!r}",
        )
        inputs = self.inputs_.fit(train)
        self.conv_channels_ = self._conv_channels()
        train_set = SequenceDataset(inputs, torch.tensor(self.labels_.encode(train.labels)))
        # Images have one size by nature: the one-to-one baseline reads them whole.
        self.fixed_length_ = int(train_set.lengths[0]) if train.fixed_length else None
        return train_set, self._dataset(held) if held is not None else None

    def _trainer_options(self, held, held_set, stop_on: str | None = None) -> dict:
        """The Trainer's options; early stopping follows ``stop_on`` (None: the setting's)."""
        budget = {key: self.budget_[key] for key in ("epochs", "batch_size", "schedule")}
        options = {"loss": "cross_entropy", "steps": self.budget_["steps"], **budget}
        if held is None:
            return options | {"patience": None}

        def val_accuracy(model) -> float:
            return metrics.accuracy(held_set.target.numpy(), self._classes(model, held_set))

        options |= {
            "patience": self.budget_["patience"],
            "val_metrics": {"val_accuracy": val_accuracy},
        }
        if (stop_on or self.resolved("stop_on")) == "loss":
            return options | {"monitor": "val_loss", "mode": "min"}
        # Accuracy ties often on small validation sets: the lower val_loss decides, so
        # patience measures real stagnation.
        return options | {"monitor": "val_accuracy", "mode": "max", "tie_break": "val_loss"}

    def _fit_models(self, held, train_set, held_set) -> None:
        """The ensemble's members from consecutive seeds, and the one-to-one network
        baseline, on the same budget."""
        from ..training import set_seed

        validation = held is not None
        options = {"validation": validation, **self._trainer_options(held, held_set)}
        self.members_ = []
        for member in range(self.ensemble):
            seed = self.seed + member
            set_seed(seed)
            model = self._build_model()
            folder = f"member-{member}" if self.ensemble > 1 else ""
            trainer = self._trainer(**options, seed=seed, record=member == 0, checkpoint=folder)
            self.members_.append(self._train(trainer, model, train_set, held_set))
            if member == 0:
                self._keep(trainer)
        self.model_ = self.members_[0]
        self.baseline_ = self._build_baseline()
        if self.baseline_ is not None:
            set_seed(self.seed)
            # The one-to-one network always stops on accuracy: on held-out loss it stops at
            # its first epochs, and scored the majority class on two of four text sets
            # (README, "Text classification that holds"); a baseline is fitted its best.
            options = {"validation": validation,
                       **self._trainer_options(held, held_set, "accuracy")}  # fmt: skip
            trainer = self._trainer(
                **options, record=False, checkpoint="one_to_one", progress="none"
            )
            self._train(trainer, self.baseline_, train_set, held_set)
        self.majority_ = self.labels_.tokens[int(np.bincount(train_set.target.numpy()).argmax())]

    def _fit_baselines(self, train: Examples, held) -> None:
        """The baselines that keep or count the training data (the kind's), and those left
        out, and why; and the blend of the network with one of them."""
        if self.baseline_ is not None or self.resolved("blend") != "none":
            self.inputs_.fit_baselines(train)
        self.blend_ = self._fit_blend(held)

    def _fit_blend(self, held: Examples | None) -> dict | None:
        """``{"partner", "weight", "reason"}``: the baseline the network's probabilities are
        averaged with (``Inputs.blend_partner``) and its weight, the one of ``BLEND_WEIGHTS``
        of least cross-entropy on the validation part (``SMALL_BLEND_WEIGHT`` without one);
        None where ``blend`` is "none" or the kind has no partner."""
        partner = self.inputs_.blend_partner() if self.resolved("blend") != "none" else None
        if partner is None:
            return None
        name = self.inputs_.baseline_names()[partner]
        if held is None:
            reason = f"no validation part to weigh it on: {SMALL_BLEND_WEIGHT} as measured"
            return {"partner": partner, "weight": SMALL_BLEND_WEIGHT, "reason": reason}
        network = self._probabilities(self.members_, self._dataset(held))
        linear = self.inputs_.partner_probabilities(partner, held, self.labels_.tokens)
        actual = np.asarray(self.labels_.encode(held.labels))

        def cross_entropy(weight: float) -> float:
            chosen = ((1 - weight) * network + weight * linear)[np.arange(len(actual)), actual]
            return float(-np.log(np.maximum(chosen, 1e-12)).mean())

        weight = min(BLEND_WEIGHTS, key=cross_entropy)
        reason = (f"{name} of the best cross-validated accuracy; weight {weight} of least "
                  f"cross-entropy on the validation part ({cross_entropy(weight):.3f}, the "
                  f"network alone {cross_entropy(0.0):.3f})")  # fmt: skip
        return {"partner": partner, "weight": weight, "reason": reason}

    def _fit_metrics(self, train: Examples, held) -> dict:
        fitted = {
            "data": {"train": len(train), "validation": len(held) if held is not None else 0},
            "labels": self.labels_.tokens,
            "budget": self.budget_,
            "defaults": self.defaults_,
        }
        fitted["data"] |= self.inputs_.fit_metrics()
        if self.blend_:
            fitted["blend"] = self.blend_
        if held is not None:
            fitted["validation"] = self.score(held)
        return fitted

    def score(self, data, labels=None) -> dict:
        """Accuracy, macro-F1 and per-class scores of the model and the baselines on
        labelled ``data``: ``{"model": …, "one_to_one": …, "majority": …}``, and beside them
        for text ``"nbsvm"``, ``"naive_bayes"`` and ``"tfidf_logistic"`` (the linear models
        of ``rnnkit.models.linear_text``), for feature sequences
        ``"nn_euclidean"`` and ``"nn_dtw"`` (1-NN, see ``rnnkit.models.neighbours``; DTW is
        left out, with the reason in ``"skipped"``, where it would take minutes). The
        model's also hold its ``confusion_matrix`` (rows: actual, columns: predicted, in the
        order of ``labels_.tokens``) and, for an ensemble, each member's accuracy
        (``members``)."""
        self._check_fitted()
        examples = read_examples(data, labels)
        unknown = sorted(set(examples.labels) - set(self.labels_.tokens))
        if unknown:
            raise ValueError(
                f"data={examples.source!r} has labels the model never saw: {unknown[:10]}; "
                f"it knows {self.labels_.tokens}"
            )
        dataset = self._dataset(examples)
        actual = examples.labels
        probabilities = [self._probabilities([m], dataset) for m in self.members_]
        network = np.mean(probabilities, 0)
        predictions = {"model": self._decode(self._blended(examples, network).argmax(1))}
        if self.blend_:  # what the blend adds to the network
            predictions["network"] = self._decode(network.argmax(1))
        if self.baseline_ is not None:
            predictions["one_to_one"] = self._decode(self._classes(self.baseline_, dataset))
        baselines, skipped = self.inputs_.predict_baselines(examples)
        predictions |= baselines
        predictions["majority"] = [self.majority_] * len(actual)
        labels = self.labels_.tokens
        scores = {
            name: metrics.classification_report(actual, predicted, labels)
            for name, predicted in predictions.items()
        }
        confusion = metrics.confusion_matrix(actual, predictions["model"], labels)
        scores["model"]["confusion_matrix"] = confusion.tolist()
        if len(self.members_) > 1:  # what each model of the ensemble scores alone
            scores["model"]["members"] = [
                metrics.accuracy(actual, self._decode(p.argmax(1))) for p in probabilities
            ]
        if skipped:
            scores["skipped"] = skipped
        return scores

    # --- using -----------------------------------------------------------------------------

    def predict(self, data, **read) -> list[str]:
        """The predicted label of each example in ``data`` (texts, arrays, or a path)."""
        return self._decode(self.predict_proba(data, **read).argmax(1))

    def predict_proba(self, data, **read) -> np.ndarray:
        """Class probabilities (N, classes), columns in the order of ``labels_.tokens``."""
        self._check_fitted()
        examples = read_examples(data, need_labels=False, **read)
        return self._blended(examples, self._probabilities(self.members_, self._dataset(examples)))

    def _blended(self, examples: Examples, network: np.ndarray) -> np.ndarray:
        """The network's probabilities, averaged with its blend partner's where it has one."""
        if not self.blend_:
            return network
        weight = self.blend_["weight"]
        linear = self.inputs_.partner_probabilities(
            self.blend_["partner"], examples, self.labels_.tokens
        )
        return (1 - weight) * network + weight * linear

    def stream(self):
        """A long sequence read as it arrives: ``feed(piece)`` (a text, or a (steps,
        features) array, as ``predict`` reads one example) returns the class probabilities
        after it, read after everything fed before: equal to ``predict_proba`` on the whole
        sequence so far. For models that pool by the last step and read forward only
        (``pooling="last"``, not bidirectional, no convolutions or n-grams); others are
        refused with the reason. See ``rnnkit.tasks.streaming``."""
        from .streaming import Stream

        self._check_fitted()
        reason = self.inputs_.stream_reason() or self.model_.stream_reason()
        if self.blend_:
            reason = (f"its probabilities blend the network's with "
                      f"{self.blend_['partner']}'s, which reads a whole text (train with "
                      "blend='none')")  # fmt: skip
        if reason:
            raise ValueError(f"this classifier cannot stream: {reason}")

        def step(piece, states):
            x, _, _ = self._dataset(read_examples([piece], need_labels=False)).batch(
                torch.tensor([0])
            )
            states = states or [None] * len(self.members_)
            probabilities, after = [], []
            with torch.no_grad():
                for member, state in zip(self.members_, states, strict=True):
                    logits, state = member.eval().stream_step(x, state)
                    probabilities.append(torch.softmax(logits[0], -1))
                    after.append(state)
            return torch.stack(probabilities).mean(0).numpy(), after

        return Stream(step)

    def explain(self, texts) -> list[list[tuple[str, float]]]:
        """Each text's tokens with the attention weight the model gave each (they sum to 1)."""
        self._check_fitted()
        if self.pooling != "attention" or not self.inputs_.names_steps:
            raise ValueError(
                "explain() shows attention weights: it needs a text classifier with "
                f"pooling='attention'; this one reads {self.inputs_.kind} with "
                f"pooling={self.pooling!r}"
            )
        examples = read_examples(texts, need_labels=False)
        dataset = self._dataset(examples)

        def attention(x, lengths):  # the ensemble's mean weights (each model's sum to 1)
            return torch.stack(
                [m.eval()(x, lengths=lengths, return_attention=True)[1] for m in self.members_]
            ).mean(0)

        weights = run_batches(dataset, attention, self.model_)
        return [
            [(t, float(w)) for t, w in zip(tokens, weights[i].tolist(), strict=False)]
            for i, tokens in enumerate(self.inputs_.tokens(examples))
        ]

    def table(self, scores: dict) -> list[str]:
        front = "conv + " if self.conv_channels_ else ""
        network = (
            f"{front}{self.cell.upper()} ({self.pooling} pooling){self.inputs_.network_label()}"
        )
        baselines = self.inputs_.baseline_names()
        blend = ""
        if self.blend_:
            blend = f" + {baselines[self.blend_['partner']]} (weight {self.blend_['weight']:g})"
        names = {
            "model": network + blend,
            "network": f"{network} alone",
            "one_to_one": "one-to-one (no recurrence)",
            **baselines,
            "majority": "majority class",
        }
        columns = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
        lines = supervised.score_table(scores, columns, names)
        for name, reason in scores.get("skipped", {}).items():
            lines.append(f"{names[name]}: not computed, {reason}")
        return lines

    def report(self) -> str:
        budget = self.metrics_.get("budget")  # runs before 0.2 have none
        rule = f"\nBudget ({budget['rule']}): {budget['reason']}" if budget else ""
        defaults = self.metrics_.get("defaults")  # runs before 0.3 have none
        if defaults:
            rule += f"\nDefaults ({defaults['rule']}): {defaults['reason']}"
        if self.blend_:
            rule += f"\nBlend: {self.blend_['reason']}"
        return super().report() + rule

    def __getattr__(self, name: str):
        # Only reached for names the classifier lacks: what its inputs learnt reads on the
        # classifier too (vocabulary_, scaler_, reference_, …), as before the kinds split.
        inputs = vars(self).get("inputs_")
        fitted = name.endswith("_") and not name.startswith("_")
        if fitted and inputs is not None and hasattr(inputs, name):
            return getattr(inputs, name)
        return super().__getattr__(name)

    # --- internals -------------------------------------------------------------------------

    def _check_settings(self) -> None:
        supervised.check_rnn_options(self, SequenceClassifier)

    def _dataset(self, examples: Examples) -> SequenceDataset:
        if examples.kind != self.inputs_.kind:
            raise ValueError(
                f"data={examples.source!r} holds {examples.kind}, but this classifier reads "
                f"{self.inputs_.kind}"
            )
        target = None
        if examples.labels is not None:
            target = torch.tensor(self.labels_.encode(examples.labels))
        return SequenceDataset(self.inputs_.encode(examples), target)

    def resolved(self, name: str):
        """The setting ``name`` as this fit uses it: as given, or where unset (None) and
        named by the kind's rule (``defaults_``, ``Inputs.defaults``), the rule's value."""
        value = getattr(self, name)
        defaults = vars(self).get("defaults_") or {}
        return defaults[name] if value is None and name in defaults else value

    def _hidden_size(self) -> int:
        if self.hidden_size is not None:
            return self.hidden_size
        return self.inputs_.default_hidden_size

    def _conv_channels(self) -> tuple:
        """The convolutional front-end's channels: ``conv_channels``, or by default (None)
        the kind's: three blocks of 64 for feature sequences (see the README's signal sets)
        and none for text, whose embedded tokens the RNN reads directly."""
        if self.conv_channels is not None:
            return tuple(self.conv_channels)
        return self.inputs_.default_conv_channels

    def _shared(self) -> dict:
        """What the classifier and its baseline have in common: input, embedding, head."""
        return {
            **self.inputs_.sizes(),
            "embedding_dim": self.embedding_dim,
            "head_hidden": self.head_hidden,
            "dropout": self.dropout,
            "embedding_dropout": self.resolved("embedding_dropout"),
        }

    def _build_model(self) -> SequenceClassifier:
        return SequenceClassifier(
            len(self.labels_), cell=self.cell, hidden_size=self._hidden_size(),
            num_layers=self.num_layers, bidirectional=self.bidirectional, pooling=self.pooling,
            rnn_options=self.rnn_options, **self._front_end(), **self.inputs_.network_options(),
            **self._shared(),
        )  # fmt: skip

    def _front_end(self) -> dict:
        if not self.conv_channels_:
            return {}
        return {"conv_channels": self.conv_channels_, "conv_kernels": tuple(self.conv_kernels),
                "downsample": self.downsample}  # fmt: skip

    def _build_baseline(self) -> BagClassifier | None:
        if not self.baseline:
            return None
        width = self.model_.rnn.output_size  # as wide as what the classifier's head reads
        # Word-type dropout is the network's only where the text rule chose it: at the rule's
        # 0.5 the one-to-one network never left the majority class on 1,500 and 3,000 Rotten
        # Tomatoes texts; without it, it scores 69 % on the 3,000 (README).
        shared = self._shared() | {"embedding_dropout": self.embedding_dropout or 0.0}
        return BagClassifier(len(self.labels_), hidden_size=width, steps=self.fixed_length_,
                             **shared)  # fmt: skip

    def _probabilities(self, models, dataset) -> np.ndarray:
        """The mean of ``models``' class probabilities (N, classes), in eval mode."""

        def mean_softmax(*x, lengths):
            return torch.stack(
                [torch.softmax(m.eval()(*x, lengths=lengths), -1) for m in models]
            ).mean(0)

        return torch.stack(run_batches(dataset, mean_softmax, models[0])).numpy()

    def _classes(self, model, dataset) -> np.ndarray:
        return self._probabilities([model], dataset).argmax(1)

    def _decode(self, ids) -> list[str]:
        return self.labels_.decode([int(i) for i in ids])

    def _models(self) -> dict:
        models = {"model": self.model_}
        models |= {f"model_{k}": m for k, m in enumerate(self.members_[1:], start=1)}
        if self.baseline_ is not None:
            models["one_to_one"] = self.baseline_
        return models

    def _export_graphs(self) -> list:
        from ..export import BATCH_AND_TIME, Graph, Positional, sequence_inputs

        sizes = self.inputs_.sizes()

        def sample(batch: int, steps: int) -> dict:
            return sequence_inputs(batch, steps, **sizes)

        def mean_probabilities(x, lengths):  # as predict_proba: over the ensemble
            return torch.stack([torch.softmax(m(x, lengths=lengths), -1) for m in members]).mean(0)

        members = torch.nn.ModuleList(self.members_)
        model = Positional(members, ["x", "lengths"], mean_probabilities)
        return [Graph("model", model, sample(2, 5), ["probabilities"], BATCH_AND_TIME, sample)]

    def _export_notes(self) -> str:
        blend = ""
        if self.blend_:
            blend = (f"; the network alone: rnnkit's predictions average them with "
                     f"{self.blend_['partner']}'s (weight {self.blend_['weight']:g}, kept in "
                     "data_state)")  # fmt: skip
        return (
            f"{self.inputs_.export_notes()}; lengths: each row's valid steps; probabilities "
            "(batch, classes) in the order of data_state's labels (the mean over the "
            f"ensemble's members){blend}"
        )

    def _data_state(self) -> dict:
        return {
            "kind": self.inputs_.kind,
            "labels": self.labels_.to_dict(),
            "majority": self.majority_,
            "fixed_length": self.fixed_length_,
            **self.inputs_.data_state(),
            "conv_channels": list(self.conv_channels_),
            **self.inputs_.baselines_state(),
            "blend": self.blend_,
            "defaults": self.defaults_,
        }

    def _restore(self, state: dict) -> None:
        self.defaults_ = state.get("defaults", BEFORE_RULES)
        self.inputs_ = self._inputs(state["kind"])
        self.labels_ = Vocabulary.from_dict(state["labels"])
        self.majority_ = state["majority"]
        self.fixed_length_ = self._entry(state, "fixed_length", "steps")
        self.inputs_.restore(state)
        self.conv_channels_ = tuple(state.get("conv_channels", ()))  # none before 0.2
        self.inputs_.restore_baselines(state)
        self.blend_ = state.get("blend")  # none before 0.3: the network alone
        self.members_ = [self._build_model() for _ in range(self.ensemble)]
        self.model_ = self.members_[0]
        self.baseline_ = self._build_baseline()

    def _write_extra(self, directory: Path) -> None:
        from .. import plots

        part = self.metrics_.get("scored_on", "validation")
        if part in self.metrics_:
            plots.plot_confusion_matrix(
                directory / "confusion_matrix.png",
                np.array(self.metrics_[part]["model"]["confusion_matrix"]),
                self.labels_.tokens,
                title=f"{self.cell.upper()} classifier, {part}",
            )


def _subset(examples: Examples, rows) -> Examples:
    rows = list(rows)
    return Examples(
        [examples.inputs[i] for i in rows],
        [examples.labels[i] for i in rows],
        examples.kind,
        examples.source,
        [examples.where(i) for i in rows],
        examples.fixed_length,
    )


# --- what the command line runs and prints ----------------------------------------------------


def predict_lines(run, source: str, *, explain=False, **read) -> str:
    """What ``classify predict`` prints: ``label<TAB>probability[<TAB>text]`` per example;
    with ``explain``, each token and its attention weight on the next line. ``source`` is a
    file, or ``-`` for standard input read as one text per line."""
    classifier = Classifier.load(run)
    if source == "-" or readers.detect_format(source, read.get("fmt")) == "text":
        examples = read_examples(readers.read_lines(source), need_labels=False)
    else:
        examples = read_examples(source, need_labels=False, **read)
    probabilities = classifier.predict_proba(examples)
    labels = classifier._decode(probabilities.argmax(1))
    explained = classifier.explain(examples.inputs) if explain else None
    lines = []
    for i, (label, p) in enumerate(zip(labels, probabilities.max(1), strict=True)):
        shown = classifier.inputs_.show(examples.inputs[i])
        lines.append(f"{label}\t{p:.3f}{shown}")
        if explained:
            lines.append("  " + " ".join(f"{t}({w:.2f})" for t, w in explained[i]))
    return "\n".join(lines)
