"""The two kinds of sequence a ``Classifier`` reads, one class each: ``TextInputs`` (texts,
tokenised, then embedded) and ``SeriesInputs`` (sequences of feature vectors: signals,
images read row by row).

A kind owns every job that differs between them: what it learns from the training part
(a tokenizer and vocabulary; a channel scaler and a length to resample to) and how it turns
examples into the tensors the network reads; the model's defaults for it (width,
convolutional front-end, n-gram bag); the baselines that keep or count the training data
(NB-SVM; 1-NN with the Euclidean and DTW distances) and when one is left out; its part of
the run's data state and of ``metrics_["data"]``; and how ``predict_lines`` and ``explain``
show an example. The classifier keeps the procedure and holds one kind as ``inputs_``,
chosen by the data ``fit`` reads (``KINDS``) or by the ``kind`` a run recorded.

Each kind defines every hook ``Inputs.hooks`` names; a class that lacks one is refused when
it is defined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from ..data.series import ChannelScaler, Gaps, fill_gaps, z_normalise
from ..data.text import Vocabulary, make_tokenizer, tokenizer_from_dict
from ..models.neighbours import resample
from .estimator import Estimator

if TYPE_CHECKING:
    from .classify import Examples

SIGNAL_HIDDEN_SIZE = 64
"""The default RNN width for feature sequences (text: ``TEXT_HIDDEN_SIZE``). On the signal
sets of the README, 64 units per direction score as 128 do and train three times faster."""

TEXT_HIDDEN_SIZE = 128

SIGNAL_CONV_CHANNELS = (64, 64, 64)
"""The default front-end of feature sequences: three convolution blocks of 64 channels
(kernels ``conv_kernels`` = 7, 5, 3) before the RNN, as in LSTM-FCN, measured in the README."""

REFERENCE_VALUES = 250_000
"""The training values a run keeps for its 1-NN baselines (about 5 MB of JSON); a larger set
is scored against 1-NN when trained, not when its run is evaluated again later."""


class Inputs:
    """One kind of sequence a classifier reads; see the module docstring.

    Class attributes a kind sets:
        kind: its name, as ``Examples.kind`` and a run's data state spell it.
        settings: the classifier's settings it reads, which its constructor takes.
        default_hidden_size, default_conv_channels: the model's width and front-end when
            ``hidden_size`` / ``conv_channels`` are unset.
        constant_rate: a large set trains at a constant rate (``training_budget``'s
            ``text``), not under a cosine schedule.
        names_steps: its steps have names (tokens) that ``explain`` shows with their
            attention weights; such a kind defines ``tokens``.

    Fitted: what the kind learnt (``vocabulary_``, ``scaler_``, …; the classifier reads
    them as its own), ``reference_`` (the baselines that keep or count the training data,
    by name; None: none fitted) and ``skipped_`` (those left out, with why).
    """

    kind: ClassVar[str]
    settings: ClassVar[tuple[str, ...]]
    default_hidden_size: ClassVar[int]
    default_conv_channels: ClassVar[tuple[int, ...]]
    constant_rate: ClassVar[bool]
    names_steps: ClassVar[bool] = False

    # The hooks every kind defines (and the class attributes above); see each one's docstring.
    hooks = (
        "defaults", "fit", "encode", "sizes", "network_options", "network_label", "fit_metrics",
        "data_state", "restore", "fit_baselines", "baseline_names", "baselines_state",
        "restore_baselines", "show", "_baseline_inputs", "_too_slow", "blend_partner",
    )  # fmt: skip

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        missing = [h for h in cls.hooks if getattr(cls, h) is getattr(Inputs, h)]
        missing += [name for name in Inputs.__annotations__ if not hasattr(cls, name)]
        if missing:
            raise TypeError(
                f"{cls.__name__} (kind {getattr(cls, 'kind', None)!r}) does not define "
                f"{', '.join(missing)}: every kind of input sets the class attributes and "
                "defines the hooks of Inputs"
            )

    def __init__(self, **settings):
        for name in self.settings:
            setattr(self, name, settings[name])
        self.reference_, self.skipped_ = None, {}

    @classmethod
    def of(cls, estimator) -> Inputs:
        """This kind with the settings of ``estimator`` it reads."""
        return cls(**{name: estimator.resolved(name) for name in cls.settings})

    @property
    def kind_(self) -> str:
        """The kind, as the classifier's fitted ``kind_``."""
        return self.kind

    @staticmethod
    def defaults(count: int) -> dict:
        """The classifier's settings that follow the size of the data, for ``count``
        training examples of this kind: ``embedding_dropout``, ``min_freq``, ``ngrams``,
        ``stop_on`` and ``blend``, with the ``rule`` applied and the ``reason`` a report
        prints. A setting given keeps its value (``Classifier.resolved``)."""
        raise NotImplementedError

    # --- preparing the inputs ----------------------------------------------------------------

    def fit(self, train: Examples) -> list[torch.Tensor]:
        """Learn what the kind needs from the training part and return it encoded."""
        raise NotImplementedError

    def encode(self, examples: Examples) -> list[torch.Tensor]:
        """Each example as the tensor the network reads (a sequence each)."""
        raise NotImplementedError

    def fit_metrics(self) -> dict:
        """What ``metrics_["data"]`` says of the training part, beside its size."""
        raise NotImplementedError

    def data_state(self) -> dict:
        """What was learnt, as JSON: its part of the run's data state."""
        raise NotImplementedError

    def restore(self, state: dict) -> None:
        """What was learnt, from the run's data state."""
        raise NotImplementedError

    def show(self, example) -> str:
        """What ``predict_lines`` prints of an example after its label and probability."""
        raise NotImplementedError

    def tokens(self, examples: Examples) -> list[list[str]]:
        """Each example's steps by name (a kind that ``names_steps``)."""
        raise NotImplementedError(f"the steps of {self.kind} have no names")

    # --- the model's defaults ----------------------------------------------------------------

    def sizes(self) -> dict:
        """The input's size as the network and its one-to-one baseline take it."""
        raise NotImplementedError

    def network_options(self) -> dict:
        """The network's own options for this kind (not the one-to-one baseline's)."""
        raise NotImplementedError

    def export_notes(self) -> str:
        """What an exported graph's input ``x`` is, and how to make it outside rnnkit."""
        raise NotImplementedError

    def stream_reason(self) -> str | None:
        """Why pieces of an example cannot be prepared alone as the whole would be, or None."""
        raise NotImplementedError

    def network_label(self) -> str:
        """What the network's name in a score table adds for those options."""
        raise NotImplementedError

    # --- the baselines that keep or count the training data ----------------------------------

    def fit_baselines(self, train: Examples) -> None:
        """Fit ``reference_``, and note in ``skipped_`` the ones left out, and why."""
        raise NotImplementedError

    def predict_baselines(self, examples: Examples) -> tuple[dict, dict]:
        """(predicted labels by baseline, reasons by baseline left out) for ``examples``."""
        skipped, inputs, predictions = dict(self.skipped_), None, {}
        for name, reference in (self.reference_ or {}).items():
            reason = self._too_slow(name, len(examples))
            if reason:
                skipped[name] = reason
                continue
            inputs = self._baseline_inputs(examples) if inputs is None else inputs
            predictions[name] = reference.predict(inputs)
        return predictions, skipped

    def baseline_names(self) -> dict:
        """The baselines' names in a score table, by key."""
        raise NotImplementedError

    def blend_partner(self) -> str | None:
        """The fitted baseline whose class probabilities the network's may be averaged with
        (``Classifier``'s ``blend``), or None: this kind has none that gives probabilities."""
        raise NotImplementedError

    def partner_probabilities(self, name: str, examples: Examples, labels: list[str]):
        """The baseline ``name``'s class probabilities (N, len(labels)), columns in the order
        of ``labels`` (0 for a class it never saw)."""
        reference = self.reference_[name]
        fitted = reference.predict_proba(self._baseline_inputs(examples))
        probabilities = np.zeros((len(examples), len(labels)))
        for column, label in enumerate(reference.classes_):
            probabilities[:, labels.index(label)] = fitted[:, column]
        return probabilities

    def baselines_state(self) -> dict:
        """The baselines and those left out, as JSON: their part of the run's data state."""
        raise NotImplementedError

    def restore_baselines(self, state: dict) -> None:
        """The baselines back from the run's data state."""
        raise NotImplementedError

    def _baseline_inputs(self, examples: Examples) -> list:
        """The examples as the baselines read them."""
        raise NotImplementedError

    def _too_slow(self, name: str, tests: int) -> str:
        """Why the baseline ``name`` is not computed for ``tests`` examples, or ""."""
        raise NotImplementedError


LARGE_TEXT = 8_000
"""From this many training texts on, text is regularised less (``text_defaults``)."""

TEXT_WORD_DROPOUT = {"tiny": 0.5, "small": 0.5, "large": 0.3}
"""The word-type dropout of each size of training set; see ``text_defaults``."""

TEXT_EVERY_SIZE = {"min_freq": 2, "ngrams": 2, "stop_on": "loss", "blend": "linear"}
"""The text settings of the rule that are the same at every size."""


def text_defaults(count: int) -> dict:
    """The text settings that follow the size of the data, for ``count`` training texts.

    - **tiny** (under ``SMALL_DATA``): ``training_budget`` holds nothing out, so there is no
      early stopping and the blend's weight is ``SMALL_BLEND_WEIGHT``; word-type dropout 0.5;
    - **small** (under ``LARGE_TEXT``): word-type dropout 0.5;
    - **large**: word-type dropout 0.3.

    Every size: tokens seen once become ``<unk>`` (``min_freq`` 2), a bag of word uni- and
    bigrams beside the network (``ngrams`` 2), early stopping on the held-out cross-entropy
    (``stop_on`` "loss"), and the network's probabilities blended with the linear baseline of
    the best cross-validated accuracy (``blend`` "linear").

    Measured in the README ("Text classification that holds"), on public sets of 600-10,246
    training texts: the old defaults (none of these) lost 5 points to the best linear
    baseline on average and up to 15. Word-type dropout 0.5 beats 0.3 on 600 and 1,500
    Rotten Tomatoes texts and on the four tuning sets of 3,000-6,000 (the worst gap to the
    best linear baseline -0.4 against -1.7, the network alone +0.9 points on average); on
    10,246 texts 0.3 and 0.5 give the network the same 77.9 %, 0.3 the blend 0.4 more, and
    0.1 loses 1.6.
    """
    from .classify import SMALL_DATA

    rule = "tiny" if count < SMALL_DATA else "small" if count < LARGE_TEXT else "large"
    settings = {"embedding_dropout": TEXT_WORD_DROPOUT[rule], **TEXT_EVERY_SIZE}
    bounds = {"tiny": f"under {SMALL_DATA:,}", "small": f"{SMALL_DATA:,} to {LARGE_TEXT:,}",
              "large": f"{LARGE_TEXT:,} or more"}  # fmt: skip
    reason = (
        f"{count:,} training texts, {bounds[rule]}: word-type dropout "
        f"{settings['embedding_dropout']}, tokens seen once as <unk>, a word 1-2-gram bag "
        "beside the network, early stopping on the held-out cross-entropy, and a blend with "
        "the best linear baseline"
    )
    return {"rule": rule, "reason": reason, **settings}


class TextInputs(Inputs):
    """Texts: tokenised (``tokenizer``: word, char or BPE subwords), the first ``max_length``
    tokens kept, and ids of a vocabulary learnt on the training part, which the network
    embeds; no front-end by default, ``TEXT_HIDDEN_SIZE`` units, and the n-gram bag
    (``ngrams``) if asked. Its baselines are the three linear models of
    ``rnnkit.models.linear_text`` (NB-SVM, multinomial naive Bayes, TF-IDF logistic
    regression), always computed."""

    kind = "text"
    settings = ("tokenizer", "lowercase", "bpe_vocab_size", "min_freq", "max_vocab",
                "max_length", "ngrams", "ngram_buckets")  # fmt: skip
    default_hidden_size = TEXT_HIDDEN_SIZE
    default_conv_channels = ()
    # Measured with the defaults: cosine lowers MR's 10-fold ensemble from 78.4 to 77.9 %.
    constant_rate = True
    names_steps = True

    def fit(self, train: Examples) -> list[torch.Tensor]:
        options = {"lowercase": self.lowercase}
        if self.tokenizer == "bpe":
            options["vocab_size"] = self.bpe_vocab_size
        self.tokenizer_ = make_tokenizer(self.tokenizer, **options)
        self.tokenizer_.fit(train.inputs)
        self.vocabulary_ = Vocabulary(min_freq=self.min_freq, max_size=self.max_vocab)
        self.vocabulary_.fit(self.tokens(train))
        return self.encode(train)

    def encode(self, examples: Examples) -> list[torch.Tensor]:
        return [torch.tensor(self.vocabulary_.encode(tokens)) for tokens in self.tokens(examples)]

    def tokens(self, examples: Examples) -> list[list[str]]:
        """Each text's tokens, the first ``max_length``; a text without any is refused."""
        tokenized = []
        for i, text in enumerate(examples.inputs):
            tokens = self.tokenizer_(text)
            if not tokens:
                raise ValueError(f"{examples.where(i)}: the text {text!r} has no tokens")
            tokenized.append(tokens[: self.max_length])
        return tokenized

    def fit_metrics(self) -> dict:
        return {}

    def data_state(self) -> dict:
        return {"tokenizer": self.tokenizer_.to_dict(), "vocabulary": self.vocabulary_.to_dict()}

    def restore(self, state: dict) -> None:
        self.tokenizer_ = tokenizer_from_dict(state["tokenizer"])
        self.vocabulary_ = Vocabulary.from_dict(Estimator._entry(state, "vocabulary", "vocab"))

    def show(self, example) -> str:
        return f"\t{example}"

    def sizes(self) -> dict:
        return {"vocab_size": len(self.vocabulary_)}

    def stream_reason(self) -> str | None:
        return None  # each token is read alone (whole words: feed a text at its spaces)

    def export_notes(self) -> str:
        return (
            "x: token ids (batch, time) of data_state's vocabulary (0 pads, 1 is <unk>), "
            "after the tokenizer the settings name"
        )

    def network_options(self) -> dict:
        if not self.ngrams:
            return {}
        return {"ngrams": self.ngrams, "ngram_buckets": self.ngram_buckets}

    def network_label(self) -> str:
        return f" + {self.tokenizer} 1-{self.ngrams}-gram bag" if self.ngrams else ""

    def fit_baselines(self, train: Examples) -> None:
        from ..models.linear_text import LINEAR_BASELINES

        tokens = self.tokens(train)
        self.skipped_ = {}
        self.reference_ = {name: model().fit(tokens, train.labels)
                           for name, model in LINEAR_BASELINES.items()}  # fmt: skip

    def baseline_names(self) -> dict:
        return {
            "nbsvm": "NB-SVM (word 1-2-grams)",
            "naive_bayes": "multinomial naive Bayes (words)",
            "tfidf_logistic": "logistic regression (TF-IDF 1-2-grams)",
        }

    defaults = staticmethod(text_defaults)

    def blend_partner(self) -> str | None:
        """The linear model of the highest cross-validated accuracy on the training part
        (NB-SVM where none was cross-validated: a class of a single text)."""
        reference = self.reference_ or {}

        def cross_validated(name: str) -> float:
            return max(reference[name].cv_.get("accuracy", {"": -1.0}).values())

        return max(reference, key=cross_validated, default=None)

    def baselines_state(self) -> dict:
        linear = {name: model.to_dict() for name, model in (self.reference_ or {}).items()}
        return {"skipped": dict(self.skipped_), **linear}

    def restore_baselines(self, state: dict) -> None:
        from ..models.linear_text import LINEAR_BASELINES

        self.skipped_ = state.get("skipped", {})
        # Runs before 0.3 kept NB-SVM alone.
        self.reference_ = {
            name: model.from_dict(state[name])
            for name, model in LINEAR_BASELINES.items()
            if name in state
        }

    def _baseline_inputs(self, examples: Examples) -> list:
        return self.tokens(examples)

    def _too_slow(self, name: str, tests: int) -> str:
        return self.skipped_.get(name, "")  # linear models are always fast enough


class SeriesInputs(Inputs):
    """Sequences of feature vectors (T_i, features): gaps filled (``fill_gaps``), the first
    ``max_length`` steps kept, each series z-normalised (``normalize="series"``), resampled
    to ``length_`` steps (``resample``), then standardised by the training part's channel
    means and deviations; a convolutional front-end (``SIGNAL_CONV_CHANNELS``) and
    ``SIGNAL_HIDDEN_SIZE`` units by default. Its baselines are 1-NN with the Euclidean and
    the DTW distances (``rnnkit.models.NearestNeighbour``), DTW left out where its band search
    would take minutes."""

    kind = "features"
    settings = ("normalize", "resample", "max_length", "ngrams")
    default_hidden_size = SIGNAL_HIDDEN_SIZE
    default_conv_channels = SIGNAL_CONV_CHANNELS
    # Measured with the defaults: cosine lifts Fashion-MNIST from 89.5 to 90.6 %.
    constant_rate = False

    def fit(self, train: Examples) -> list[torch.Tensor]:
        if self.ngrams:
            raise ValueError(
                f"ngrams={self.ngrams!r} bags token n-grams, but {train.source} holds "
                "feature sequences: leave ngrams at 0"
            )
        self.length_ = None
        if self.resample == "longest":
            self.length_ = max(len(x) for x in self._prepared(train))
        elif self.resample is not None:
            self.length_ = self.resample
        self.scaler_ = ChannelScaler.fit(self._prepared(train))
        self._gaps = Gaps()  # what filling the training part's gaps did, for fit_metrics
        encoded = [torch.from_numpy(x) for x in self._series(train, self._gaps)]
        self._lengths = [len(x) for x in encoded]
        return encoded

    def encode(self, examples: Examples) -> list[torch.Tensor]:
        return [torch.from_numpy(x) for x in self._series(examples)]

    def _prepared(self, examples: Examples, gaps: Gaps | None = None) -> list[np.ndarray]:
        """Feature sequences with gaps filled (see ``fill_gaps``), cut to ``max_length``,
        z-normalised with ``normalize="series"`` and resampled to ``length_`` steps (once it
        is set); before the channel scaler."""
        prepared = []
        for i, x in enumerate(examples.inputs):
            if x.ndim != 2 or len(x) == 0:
                raise ValueError(
                    f"{examples.where(i)}: a sequence must be (steps >= 1, features); got {x.shape}"
                )
            x = fill_gaps(x, examples.where(i), gaps)[: self.max_length]
            x = z_normalise(x) if self.normalize == "series" else x
            if self.length_ and len(x) != self.length_:
                x = resample(x, self.length_).astype(np.float32)
            prepared.append(x)
        return prepared

    def _series(self, examples: Examples, gaps: Gaps | None = None) -> list[np.ndarray]:
        """What the networks and the nearest-neighbour baselines read: prepared sequences
        standardised by the channel means and deviations of the training part."""
        features = len(self.scaler_.mean)
        series = []
        for i, x in enumerate(self._prepared(examples, gaps)):
            if x.shape[1] != features:
                raise ValueError(
                    f"{examples.where(i)}: {x.shape[1]} features per step, the model reads "
                    f"{features}"
                )
            series.append(self.scaler_(x))
        return series

    def fit_metrics(self) -> dict:
        return {
            "lengths": [min(self._lengths), max(self._lengths)],
            "channels": len(self.scaler_.mean),
            "missing": self._gaps.as_dict(),
            "normalize": self.normalize,
            "resampled_to": self.length_,
        }

    def data_state(self) -> dict:
        return {"scaler": self.scaler_.to_dict(), "length": self.length_}

    def restore(self, state: dict) -> None:
        self.scaler_ = ChannelScaler.from_dict(state["scaler"])
        self.length_ = state.get("length")  # none before 0.2: series kept their lengths

    def show(self, example) -> str:
        return ""  # an array does not fit on the line

    def sizes(self) -> dict:
        return {"input_size": len(self.scaler_.mean)}

    def stream_reason(self) -> str | None:
        if self.normalize == "series":
            return "normalize='series' z-normalises each whole series (use 'channel')"
        if self.length_:
            return f"each series is resampled to {self.length_} steps (train with resample=None)"
        return None

    def export_notes(self) -> str:
        return "x: features (batch, time, features), each scaled by data_state's scaler"

    def network_options(self) -> dict:
        return {}  # fit refuses the n-gram bag

    def network_label(self) -> str:
        return ""

    def blend_partner(self) -> str | None:
        return None  # 1-NN votes; it gives no probabilities to average with

    @staticmethod
    def defaults(count: int) -> dict:
        """One rule whatever the size (``training_budget`` sizes the training): the text
        settings do not apply, and early stopping follows the accuracy."""
        return {"rule": "features", "reason": "feature sequences: no token settings; early "
                "stopping on the held-out accuracy", "embedding_dropout": 0.0, "min_freq": 1,
                "ngrams": 0, "stop_on": "accuracy", "blend": "none"}  # fmt: skip

    def fit_baselines(self, train: Examples) -> None:
        """1-NN-ED, and 1-NN-DTW where its band search fits the time limit (else
        ``skipped_`` says why)."""
        from ..models.neighbours import NearestNeighbour

        inputs = self._baseline_inputs(train)
        self.skipped_ = {}
        self.reference_series_ = inputs
        self.reference_ = {"nn_euclidean": NearestNeighbour("euclidean").fit(inputs, train.labels)}
        reason = self._too_slow("nn_dtw", 0)
        if reason:
            self.skipped_["nn_dtw"] = reason
        else:
            self.reference_["nn_dtw"] = NearestNeighbour("dtw", window="learned").fit(
                inputs, train.labels
            )

    def baseline_names(self) -> dict:
        dtw = (self.reference_ or {}).get("nn_dtw")
        band = "band learned" if dtw is None else f"band {100 * dtw.window_:.0f} % learned"
        return {"nn_euclidean": "1-NN, Euclidean distance", "nn_dtw": f"1-NN, DTW ({band})"}

    def baselines_state(self) -> dict:
        """The 1-NN baselines, as JSON; the training series they compare with are kept only
        up to ``REFERENCE_VALUES`` numbers."""
        reference = self.reference_ or {}
        state = {"skipped": dict(self.skipped_)}
        if "nn_euclidean" in reference:
            values = sum(x.size for x in self.reference_series_)
            if values > REFERENCE_VALUES:
                reason = (f"the run does not keep its {values:,} training values (more than "
                          f"{REFERENCE_VALUES:,}) that 1-NN compares with")  # fmt: skip
                state["skipped"] |= {"nn_euclidean": reason, "nn_dtw": reason}
            else:
                state["nearest"] = {
                    "series": [x.tolist() for x in self.reference_series_],
                    "labels": reference["nn_euclidean"].labels_,
                    "window": reference["nn_dtw"].window_ if "nn_dtw" in reference else None,
                }
        return state

    def restore_baselines(self, state: dict) -> None:
        from ..models.neighbours import NearestNeighbour

        self.skipped_ = state.get("skipped", {})
        self.reference_ = {}
        if "nearest" in state:
            kept = state["nearest"]
            series = [np.array(x, dtype=np.float32) for x in kept["series"]]
            self.reference_series_ = series
            self.reference_["nn_euclidean"] = NearestNeighbour("euclidean").fit(
                series, kept["labels"]
            )
            if "nn_dtw" not in self.skipped_:
                self.reference_["nn_dtw"] = NearestNeighbour("dtw", window=kept["window"]).fit(
                    series, kept["labels"]
                )

    def _baseline_inputs(self, examples: Examples) -> list:
        return self._series(examples)

    def _too_slow(self, name: str, tests: int) -> str:
        """1-NN-DTW is left out where its band search and test block exceed
        ``DTW_CELL_LIMIT``."""
        from ..models.neighbours import DTW_CELL_LIMIT, DTW_CELLS_PER_SECOND, dtw_cells

        if name in self.skipped_:
            return self.skipped_[name]
        if name != "nn_dtw":
            return ""
        nearest, dtw = self.reference_["nn_euclidean"], self.reference_.get("nn_dtw")
        window = "learned" if dtw is None else dtw.window_
        cells = dtw_cells(len(nearest.labels_), tests, nearest.length_, window)
        if cells <= DTW_CELL_LIMIT:
            return ""
        return (
            f"its {cells:.2g} dynamic-programme cells would take about "
            f"{cells / DTW_CELLS_PER_SECOND / 60:.0f} minutes (the limit is "
            f"{DTW_CELL_LIMIT / DTW_CELLS_PER_SECOND / 60:.1f} minutes)"
        )


KINDS: dict[str, type[Inputs]] = {kind.kind: kind for kind in (TextInputs, SeriesInputs)}
"""Each kind of input by the name ``Examples.kind`` and a run's data state give it."""
