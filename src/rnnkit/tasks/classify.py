"""Sequence classification (many-to-one): sentiment of a sentence, the speaker of a signal,
the class of an image read row by row.

``Classifier`` reads text (tokenised, then embedded) or sequences of feature vectors, trains
a ``SequenceClassifier`` with early stopping on held-out accuracy, and always reports it
beside two baselines on the same data: the majority class, and the one-to-one network with
the same input and head but no recurrence (``BagClassifier``), so the run shows what reading
the sequence in order adds.

    >>> classifier = Classifier(cell="gru", epochs=5).fit("reviews.csv")
    >>> classifier.predict(["a gorgeous, witty film", "tedious and overlong"])
    >>> classifier.score("test.csv")["model"]["accuracy"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from .. import metrics
from ..data import readers
from ..data.batching import SequenceDataset
from ..data.text import Vocabulary, make_tokenizer, tokenizer_from_dict
from ..models.classifier import BagClassifier, SequenceClassifier
from . import supervised
from .estimator import Estimator
from .settings import training_settings
from .supervised import label_vocabulary, run_batches


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
    Text:
        tokenizer: "word", "char" or "bpe" (subwords; needs the ``tokenizers`` library);
        lowercase; bpe_vocab_size; min_freq and max_vocab for the vocabulary;
        max_length: keep the first this many tokens (steps) of a longer sequence.
    Training (``rnnkit.tasks.settings.TRAINING``): epochs, steps, minutes, batch_size,
        optimizer, lr, weight_decay, clip_norm, schedule, patience (early stopping on the
        held-out accuracy), seed, progress, diagnose_every.
        val: the fraction of the training data held out (per class) for early stopping,
            unless ``fit`` is given ``val_data``.
        ensemble: train this many models, from seeds ``seed``, ``seed + 1``, …, and average
            their class probabilities. On a few thousand sentences one model's accuracy moves
            by a point or two with its seed; the average of a few moves much less.
        baseline: also train the one-to-one baseline.

    Fitted: ``members_`` (the ensemble's models; ``model_`` is the first), ``baseline_``,
    ``labels_``, ``vocabulary_`` and ``tokenizer_`` (text) or ``scaler_`` (features),
    ``history_``, ``steps_`` and ``best_epoch_`` (of the first model), ``metrics_``.
    """

    task = "classify"
    training = training_settings(epochs=10, lr=2e-3, clip_norm=5.0, patience=3)
    headline = ("accuracy", "macro_f1")
    renamed: ClassVar[dict] = {"vocab_": "vocabulary_"}

    def __init__(
        self,
        *,
        cell: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        pooling: str = "attention",
        embedding_dim: int = 128,
        head_hidden: int = 0,
        dropout: float = 0.5,
        embedding_dropout: float = 0.0,
        rnn_options: dict | None = None,
        tokenizer: str = "word",
        lowercase: bool = True,
        bpe_vocab_size: int = 8000,
        min_freq: int = 1,
        max_vocab: int | None = None,
        max_length: int | None = 400,
        val: float = 0.1,
        ensemble: int = 1,
        baseline: bool = True,
        **training,
    ):
        self._store(locals())

    # --- learning --------------------------------------------------------------------------

    def read(self, data, **options) -> Examples:
        """``data`` as ``Examples`` (see ``read_examples`` for ``options``)."""
        return read_examples(data, **options)

    def fit(self, data, labels=None, *, val_data=None, **places) -> Classifier:
        """Learn from ``data`` (see ``read_examples``; ``labels`` beside a list of texts or
        arrays); hold out ``val`` of it for early stopping unless ``val_data`` is given.
        Scores go to ``metrics_["validation"]``. ``places``: ``checkpoint_dir``, ``resume``
        and ``diagnose_dir``, which a run directory gives (``rnnkit.tasks.rundir``)."""
        from ..training import set_seed

        self._start_fit(**places)
        examples = read_examples(data, labels)
        if val_data is not None:
            train, held = examples, read_examples(val_data)
        elif self.val:
            keep, hold = supervised.hold_out(
                len(examples), self.val, self.seed, self.unit, examples.labels
            )
            train, held = _subset(examples, keep), _subset(examples, hold)
        else:
            train, held = examples, None
        self.kind_ = train.kind
        # The classes are a closed set: those of the validation data count too.
        self.labels_ = label_vocabulary(train.labels + (held.labels if held is not None else []))
        if self.kind_ == "text":
            self.tokenizer_ = make_tokenizer(self.tokenizer, **self._tokenizer_options())
            self.tokenizer_.fit(train.inputs)
            tokens = [self._tokens(text, train.where(i)) for i, text in enumerate(train.inputs)]
            self.vocabulary_ = Vocabulary(min_freq=self.min_freq, max_size=self.max_vocab)
            self.vocabulary_.fit(tokens)
        else:
            steps = np.concatenate(
                [self._check_features(x, train, i) for i, x in enumerate(train.inputs)]
            )
            std = steps.std(0)
            self.scaler_ = {"mean": steps.mean(0), "std": np.where(std > 0, std, 1.0)}
        train_set = self._dataset(train)
        held_set = self._dataset(held) if held is not None else None
        # Images have one size by nature: the one-to-one baseline reads them whole.
        self.fixed_length_ = int(train_set.lengths[0]) if train.fixed_length else None

        def val_accuracy(model) -> float:
            return metrics.accuracy(held_set.target.numpy(), self._classes(model, held_set))

        # Accuracy ties often on small validation sets: the lower val_loss decides, so
        # patience measures real stagnation.
        training = {"validation": held is not None, "monitor": "val_accuracy", "mode": "max",
                    "tie_break": "val_loss" if held is not None else None,
                    "val_metrics": {"val_accuracy": val_accuracy} if held is not None else None,
                    "loss": "cross_entropy"}  # fmt: skip
        self.members_ = []
        for member in range(self.ensemble):
            seed = self.seed + member
            set_seed(seed)
            model = self._build_model()
            folder = f"member-{member}" if self.ensemble > 1 else ""
            trainer = self._trainer(**training, seed=seed, record=member == 0, checkpoint=folder)
            self.members_.append(self._train(trainer, model, train_set, held_set))
            if member == 0:
                self._keep(trainer)
        self.model_ = self.members_[0]
        self.baseline_ = self._build_baseline()
        if self.baseline_ is not None:
            set_seed(self.seed)
            trainer = self._trainer(
                **training, record=False, checkpoint="one_to_one", progress="none"
            )
            self._train(trainer, self.baseline_, train_set, held_set)
        self.majority_ = self.labels_.tokens[int(np.bincount(train_set.target.numpy()).argmax())]
        self.metrics_ = {
            "data": {"train": len(train), "validation": len(held) if held is not None else 0},
            "labels": self.labels_.tokens,
        }
        if held is not None:
            self.metrics_["validation"] = self.score(held)
        return self

    def score(self, data, labels=None) -> dict:
        """Accuracy, macro-F1 and per-class scores of the model and the baselines on
        labelled ``data``: ``{"model": …, "one_to_one": …, "majority": …}``. The model's also
        hold its ``confusion_matrix`` (rows: actual, columns: predicted, in the order of
        ``labels_.tokens``) and, for an ensemble, each member's accuracy (``members``)."""
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
        predictions = {"model": self._decode(np.mean(probabilities, 0).argmax(1))}
        if self.baseline_ is not None:
            predictions["one_to_one"] = self._decode(self._classes(self.baseline_, dataset))
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
        return scores

    # --- using -----------------------------------------------------------------------------

    def predict(self, data, **read) -> list[str]:
        """The predicted label of each example in ``data`` (texts, arrays, or a path)."""
        return self._decode(self.predict_proba(data, **read).argmax(1))

    def predict_proba(self, data, **read) -> np.ndarray:
        """Class probabilities (N, classes), columns in the order of ``labels_.tokens``."""
        self._check_fitted()
        dataset = self._dataset(read_examples(data, need_labels=False, **read))
        return self._probabilities(self.members_, dataset)

    def explain(self, texts) -> list[list[tuple[str, float]]]:
        """Each text's tokens with the attention weight the model gave each (they sum to 1)."""
        self._check_fitted()
        if self.pooling != "attention" or self.kind_ != "text":
            raise ValueError(
                "explain() shows attention weights: it needs a text classifier with "
                f"pooling='attention'; this one reads {self.kind_} with pooling={self.pooling!r}"
            )
        examples = read_examples(texts, need_labels=False)
        dataset = self._dataset(examples)

        def attention(x, lengths):  # the ensemble's mean weights (each model's sum to 1)
            return torch.stack(
                [m.eval()(x, lengths=lengths, return_attention=True)[1] for m in self.members_]
            ).mean(0)

        weights = run_batches(dataset, attention, self.model_)
        explained = []
        for i, text in enumerate(examples.inputs):
            tokens = self._tokens(text, examples.where(i))
            explained.append(
                [(t, float(w)) for t, w in zip(tokens, weights[i].tolist(), strict=False)]
            )
        return explained

    def table(self, scores: dict) -> list[str]:
        names = {
            "model": f"{self.cell.upper()} ({self.pooling} pooling)",
            "one_to_one": "one-to-one (no recurrence)",
            "majority": "majority class",
        }
        columns = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
        return supervised.score_table(scores, columns, names)

    # --- internals -------------------------------------------------------------------------

    def _check_settings(self) -> None:
        supervised.check_fraction("val", self.val)
        supervised.check_rnn_options(self, SequenceClassifier)
        if (
            isinstance(self.ensemble, bool)
            or not isinstance(self.ensemble, int)
            or self.ensemble < 1
        ):
            raise ValueError(f"ensemble={self.ensemble!r} must be an integer >= 1")
        if self.max_length is not None and (
            not isinstance(self.max_length, int) or self.max_length < 1
        ):
            raise ValueError(f"max_length={self.max_length!r} must be an integer >= 1 or None")

    def _tokenizer_options(self) -> dict:
        if self.tokenizer == "bpe":
            return {"lowercase": self.lowercase, "vocab_size": self.bpe_vocab_size}
        return {"lowercase": self.lowercase}

    def _tokens(self, text: str, where: str) -> list[str]:
        tokens = self.tokenizer_(text)
        if not tokens:
            raise ValueError(f"{where}: the text {text!r} has no tokens")
        return tokens[: self.max_length]

    def _check_features(self, x: np.ndarray, examples: Examples, i: int) -> np.ndarray:
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(
                f"{examples.where(i)}: a sequence must be (steps >= 1, features); got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError(f"{examples.where(i)}: the sequence has missing or infinite values")
        return x

    def _dataset(self, examples: Examples) -> SequenceDataset:
        if examples.kind != self.kind_:
            raise ValueError(
                f"data={examples.source!r} holds {examples.kind}, but this classifier reads "
                f"{self.kind_}"
            )
        if self.kind_ == "text":
            inputs = [
                torch.tensor(self.vocabulary_.encode(self._tokens(text, examples.where(i))))
                for i, text in enumerate(examples.inputs)
            ]
        else:
            features = len(self.scaler_["mean"])
            inputs = []
            for i, x in enumerate(examples.inputs):
                self._check_features(x, examples, i)
                if x.shape[1] != features:
                    raise ValueError(
                        f"{examples.where(i)}: {x.shape[1]} features per step, the model reads "
                        f"{features}"
                    )
                scaled = (x[: self.max_length] - self.scaler_["mean"]) / self.scaler_["std"]
                inputs.append(torch.from_numpy(scaled.astype(np.float32)))
        target = None
        if examples.labels is not None:
            target = torch.tensor(self.labels_.encode(examples.labels))
        return SequenceDataset(inputs, target)

    def _shared(self) -> dict:
        """What the classifier and its baseline have in common: input, embedding, head."""
        size = (
            {"vocab_size": len(self.vocabulary_)}
            if self.kind_ == "text"
            else {"input_size": len(self.scaler_["mean"])}
        )
        return {
            **size,
            "embedding_dim": self.embedding_dim,
            "head_hidden": self.head_hidden,
            "dropout": self.dropout,
            "embedding_dropout": self.embedding_dropout,
        }

    def _build_model(self) -> SequenceClassifier:
        return SequenceClassifier(
            len(self.labels_), cell=self.cell, hidden_size=self.hidden_size,
            num_layers=self.num_layers, bidirectional=self.bidirectional, pooling=self.pooling,
            rnn_options=self.rnn_options, **self._shared(),
        )  # fmt: skip

    def _build_baseline(self) -> BagClassifier | None:
        if not self.baseline:
            return None
        width = self.model_.rnn.output_size  # as wide as what the classifier's head reads
        return BagClassifier(
            len(self.labels_), hidden_size=width, steps=self.fixed_length_, **self._shared()
        )

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

    def _data_state(self) -> dict:
        state = {
            "kind": self.kind_,
            "labels": self.labels_.to_dict(),
            "majority": self.majority_,
            "fixed_length": self.fixed_length_,
        }
        if self.kind_ == "text":
            state |= {
                "tokenizer": self.tokenizer_.to_dict(),
                "vocabulary": self.vocabulary_.to_dict(),
            }
        else:
            state["scaler"] = {k: v.tolist() for k, v in self.scaler_.items()}
        return state

    def _restore(self, state: dict) -> None:
        self.kind_ = state["kind"]
        self.labels_ = Vocabulary.from_dict(state["labels"])
        self.majority_ = state["majority"]
        self.fixed_length_ = self._entry(state, "fixed_length", "steps")
        if self.kind_ == "text":
            self.tokenizer_ = tokenizer_from_dict(state["tokenizer"])
            self.vocabulary_ = Vocabulary.from_dict(self._entry(state, "vocabulary", "vocab"))
        else:
            self.scaler_ = {k: np.array(v, dtype=np.float32) for k, v in state["scaler"].items()}
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
        shown = f"\t{examples.inputs[i]}" if classifier.kind_ == "text" else ""
        lines.append(f"{label}\t{p:.3f}{shown}")
        if explained:
            lines.append("  " + " ".join(f"{t}({w:.2f})" for t, w in explained[i]))
    return "\n".join(lines)
