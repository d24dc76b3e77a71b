"""Sequence tagging (many-to-many, aligned): a tag for every token, as in named-entity
recognition.

``Tagger`` reads token-per-line BIO/BIOES files (CoNLL style), trains a ``SequenceTagger``
(word embeddings, a character BiRNN, a BiRNN over the words, softmax or CRF) with early
stopping on held-out entity F1, and reports entity-level precision, recall and F1 with
conlleval's rules beside the classic baseline: each word's most frequent tag in the
training data ("O" for words it never saw).

    >>> tagger = Tagger(crf=True, epochs=20).fit("train.bio")
    >>> tagger.predict([["Obama", "visited", "Paris"]])
    >>> tagger.score("test.bio")["model"]["f1"]
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import ClassVar

import torch

from .. import metrics
from ..data import readers
from ..data.batching import SequenceDataset
from ..data.text import Vocabulary
from ..models.tagger import SequenceTagger
from . import supervised
from .estimator import Estimator
from .settings import Setting, shared, training_settings
from .supervised import label_vocabulary, run_batches

MAX_WORD_CHARS = 30  # longer words (URLs) keep their first characters


def read_sentences(data, *, tagged=True) -> tuple[list[list[str]], list[list[str]] | None, str]:
    """(token lists, tag lists or None, source) from a CoNLL/BIO path, pairs of lists, or
    (``tagged=False``) raw text: a path to a plain-text file (or ``-``, standard input) or a
    list of strings, one sentence each, split into tokens at whitespace. BIO tags come back
    in IOB2 form (see ``to_iob2``)."""
    if data == "-" and not tagged:
        data = readers.read_lines("-")
    elif isinstance(data, str | Path):
        path = Path(data)
        kind = readers.detect_format(path, None)
        if kind == "conll":
            sentences = readers.read_conll(path, tags=tagged)
            tokens = [s[0] for s in sentences]
            tags = [to_iob2(s[1]) for s in sentences] if tagged else None
            return tokens, tags, str(path)
        if tagged or kind != "text":
            raise ValueError(
                f"{path}: tagging reads token-per-line BIO/CoNLL files (.bio, .conll, .iob, "
                f".bioes){'' if tagged else ' or plain text, one sentence per line (.txt)'}"
            )
        data = readers.read_lines(path)
    items = list(data)
    if not items:
        raise ValueError("data is empty: no sentences to read")
    if tagged:
        tokens, tags = [list(t) for t, _ in items], [list(g) for _, g in items]
        for i, (words, labels) in enumerate(zip(tokens, tags, strict=True)):
            if len(words) != len(labels):
                raise ValueError(f"sentence {i + 1} has {len(words)} tokens but {len(labels)} tags")
        return tokens, [to_iob2(t) for t in tags], "<memory>"
    # Tagged corpora (CoNLL, WNUT) are tokens split at whitespace: raw text is read the same
    # way, so "@user", "It's" and URLs reach the model in the shapes it was trained on.
    tokens = [s.split() if isinstance(s, str) else list(s) for s in items]
    for i, words in enumerate(tokens):
        if not words:
            raise ValueError(f"sentence {i + 1} is empty: nothing to tag")
    return tokens, None, "<memory>"


class Tagger(Estimator):
    """Train, evaluate and use a sequence tagger; see the module docstring.

    The model is ``rnnkit.models.SequenceTagger``: word embeddings and a character BiRNN
    (``chars``) feed a BiRNN over the words (``rnn_options`` go to it), decoded by a CRF or a
    softmax. Early stopping (``patience``) watches the held-out entity F1.

    Fitted: ``model_``, ``labels_`` (the tags), ``vocabulary_`` (the words),
    ``char_vocabulary_``, ``baselines_`` (``most_frequent_tag``: word -> tag), ``history_``,
    ``steps_``, ``best_epoch_``, ``metrics_``.
    """

    task = "tag"
    settings = (
        shared("cell"),
        shared("hidden_size", default=100),
        shared("num_layers"),
        shared("embedding_dim", default=100),
        Setting("chars", True, "Character-level BiRNN features.", bool),
        Setting("char_embedding_dim", 25, "Size of the character embedding."),
        Setting("char_hidden_size", 25, "Units of the character BiRNN."),
        shared("dropout", default=0.5),
        Setting("crf", True, "Decode with a CRF, or a softmax per token.", bool),
        shared("rnn_options"),
        Setting(
            "lowercase",
            True,
            "Lower-case the words the word embedding reads (the characters keep the case).",
            bool,
        ),
        shared("min_freq"),
        shared(
            "val",
            help="Fraction of the sentences held out for early stopping on entity F1, "
            "unless fit is given val_data.",
        ),
    )
    training = training_settings(epochs=30, batch_size=16, lr=2e-3, clip_norm=5.0, patience=5)
    headline = ("precision", "recall", "f1")
    unit = "sentences"
    renamed: ClassVar[dict] = {
        "tags_": "labels_",
        "words_": "vocabulary_",
        "chars_": "char_vocabulary_",
        "frequent_tag_": ("baselines_", "most_frequent_tag"),
    }

    # --- learning --------------------------------------------------------------------------

    def read(self, data) -> list[tuple[list[str], list[str]]]:
        """Tagged ``data`` (a BIO/CoNLL path, or (tokens, tags) pairs) as (tokens, tags)
        pairs."""
        tokens, tags, _ = read_sentences(data)
        return list(zip(tokens, tags, strict=True))

    def _prepare(self, train, held):
        tokens, tags = _unzip(train)
        # The tags are a closed set: those of the validation data count too.
        labelled = tags + (_unzip(held)[1] if held is not None else [])
        self.labels_ = label_vocabulary((t for s in labelled for t in s), what="tag")
        words = [[self._word(w) for w in sentence] for sentence in tokens]
        self.vocabulary_ = Vocabulary(min_freq=self.min_freq).fit(words)
        spellings = (list(w) for s in tokens for w in s)
        self.char_vocabulary_ = Vocabulary().fit(spellings) if self.chars else None
        return self._dataset(tokens, tags), self._dataset(*_unzip(held)) if held else None

    def _trainer_options(self, held, held_set) -> dict:
        options = {"compute_loss": _mean_loss}
        if held is not None:
            gold = _unzip(held)[1]

            def val_f1(model) -> float:
                return metrics.entity_scores(gold, self._tag(model, held_set))["f1"]

            # Entity F1 is 0 for a tagger's first epochs: the lower val_loss breaks the ties.
            options |= {"monitor": "val_f1", "mode": "max", "tie_break": "val_loss",
                        "val_metrics": {"val_f1": val_f1}}  # fmt: skip
        return options

    def _fit_baselines(self, train, held) -> None:
        tokens, tags = _unzip(train)
        words = [[self._word(w) for w in sentence] for sentence in tokens]
        self.baselines_ = {"most_frequent_tag": _most_frequent_tags(words, tags)}

    def _fit_metrics(self, train, held) -> dict:
        return super()._fit_metrics(train, held) | {"tags": self.labels_.tokens}

    def score(self, data) -> dict:
        """Entity-level precision, recall and F1 (conlleval rules) and token accuracy of the
        model and of the most-frequent-tag baseline on tagged ``data``:
        ``{"model": …, "most_frequent_tag": …}``."""
        self._check_fitted()
        tokens, tags, source = read_sentences(data)
        unknown = sorted({t for s in tags for t in s} - set(self.labels_.tokens))
        if unknown:
            raise ValueError(
                f"data={source!r} has tags the model never saw: {unknown[:10]}; it knows "
                f"{self.labels_.tokens}"
            )
        predictions = {
            "model": self._tag(self.model_, self._dataset(tokens)),
            "most_frequent_tag": self._baseline(tokens),
        }
        scores = {}
        for name, predicted in predictions.items():
            flat_true = [t for s in tags for t in s]
            flat_pred = [t for s in predicted for t in s]
            scores[name] = metrics.entity_scores(tags, predicted)
            scores[name]["token_accuracy"] = metrics.accuracy(flat_true, flat_pred)
        return scores

    # --- using -----------------------------------------------------------------------------

    def predict(self, data) -> list[list[tuple[str, str]]]:
        """Each sentence's (token, tag) pairs. ``data``: a list of token lists or of raw
        sentences (tokenised by the word tokenizer), a BIO/CoNLL file (tags ignored) or a
        plain-text file with one sentence per line."""
        self._check_fitted()
        tokens, _, _ = read_sentences(data, tagged=False)
        tags = self._tag(self.model_, self._dataset(tokens))
        return [list(zip(s, t, strict=True)) for s, t in zip(tokens, tags, strict=True)]

    def table(self, scores: dict) -> list[str]:
        decoder = "CRF" if self.crf else "softmax"
        names = {
            "model": f"Bi{self.cell.upper()}-{decoder}",
            "most_frequent_tag": "most frequent tag",
        }
        columns = {"precision": "entity P", "recall": "entity R", "f1": "entity F1"}
        return supervised.score_table(scores, columns, names)

    # --- internals -------------------------------------------------------------------------

    def _check_settings(self) -> None:
        supervised.check_rnn_options(self, SequenceTagger)

    def _word(self, word: str) -> str:
        return word.lower() if self.lowercase else word

    def _dataset(self, tokens, tags=None) -> SequenceDataset:
        words = [torch.tensor(self.vocabulary_.encode([self._word(w) for w in s])) for s in tokens]
        inputs = words
        if self.char_vocabulary_ is not None:
            chars = self.char_vocabulary_
            spellings = [
                _spellings([chars.encode(list(w[:MAX_WORD_CHARS])) for w in s]) for s in tokens
            ]
            inputs = (words, spellings)
        target = None if tags is None else [torch.tensor(self.labels_.encode(s)) for s in tags]
        return SequenceDataset(inputs, target)

    def _build_model(self) -> SequenceTagger:
        return SequenceTagger(
            len(self.vocabulary_), len(self.labels_), embedding_dim=self.embedding_dim,
            char_vocab_size=len(self.char_vocabulary_) if self.chars else None,
            char_embedding_dim=self.char_embedding_dim, char_hidden_size=self.char_hidden_size,
            cell=self.cell, hidden_size=self.hidden_size, num_layers=self.num_layers,
            dropout=self.dropout, crf=self.crf, tags=self.labels_.tokens,
            rnn_options=self.rnn_options,
        )  # fmt: skip

    def _tag(self, model, dataset) -> list[list[str]]:
        model.eval()
        rows = run_batches(dataset, lambda *x, lengths: model.decode(*x, lengths=lengths), model)
        lengths = dataset.lengths.tolist()
        return [self.labels_.decode(row[:n].tolist()) for row, n in zip(rows, lengths, strict=True)]

    def _baseline(self, tokens) -> list[list[str]]:
        frequent = self.baselines_["most_frequent_tag"]
        return [[frequent.get(self._word(w), "O") for w in s] for s in tokens]

    def _export_graphs(self) -> list:
        from ..export import Graph, Positional, random_lengths

        words, chars = len(self.vocabulary_), self.char_vocabulary_

        def sample(batch: int, steps: int) -> dict:
            inputs = {"words": torch.randint(1, words, (batch, steps))}
            if chars is not None:
                inputs["chars"] = torch.randint(1, len(chars), (batch, steps, 6))
            return inputs | {"lengths": random_lengths(batch, steps)}

        dynamic = {"words": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
        if chars is not None:
            dynamic["chars"] = {0: "batch", 1: "time", 2: "letters"}

        def emissions(words, lengths, chars=None):
            return self.model_(words, chars, lengths=lengths)

        names = ["words", "lengths"] if chars is None else ["words", "chars", "lengths"]
        graph = Positional(self.model_, names, emissions)
        return [Graph("emissions", graph, sample(2, 5), ["emissions"], dynamic, sample)]

    def _export_notes(self) -> str:
        crf = self.model_.crf
        decode = (
            "Viterbi decoding over the emissions with the CRF's transitions, start and end "
            "scores (in export.json's crf; a disallowed move scores -10000) is outside the "
            "graph"
            if crf is not None
            else "each word's tag is the emissions' argmax"
        )
        return (
            "words: ids of data_state's vocabulary (lower-cased where the settings say; 0 "
            "pads, 1 is <unk>); chars: each word's first letters as ids of char_vocabulary "
            f"(0 pads); emissions (batch, time, tags) in the order of labels; {decode}"
        )

    def _export_extra(self) -> dict:
        crf = self.model_.crf
        if crf is None:
            return {}
        transitions, start, end = (scores.tolist() for scores in crf._effective())
        return {"crf": {"transitions": transitions, "start": start, "end": end}}

    def _data_state(self) -> dict:
        chars = self.char_vocabulary_
        return {
            "labels": self.labels_.to_dict(),
            "vocabulary": self.vocabulary_.to_dict(),
            "char_vocabulary": chars.to_dict() if chars is not None else None,
            "most_frequent_tag": self.baselines_["most_frequent_tag"],
        }

    def _restore(self, state: dict) -> None:
        self.labels_ = Vocabulary.from_dict(self._entry(state, "labels", "tags"))
        self.vocabulary_ = Vocabulary.from_dict(self._entry(state, "vocabulary", "words"))
        chars = self._entry(state, "char_vocabulary", "chars")
        self.char_vocabulary_ = Vocabulary.from_dict(chars) if chars else None
        self.baselines_ = {"most_frequent_tag": state["most_frequent_tag"]}
        self.model_ = self._build_model()


def _unzip(pairs) -> tuple[list[list[str]], list[list[str]]]:
    """(token lists, tag lists) of (tokens, tags) pairs."""
    return [list(t) for t, _ in pairs], [list(g) for _, g in pairs]


def _spellings(ids: list[list[int]]) -> torch.Tensor:
    """A sentence's spellings (one id list per word) as (words, longest) with 0 padding."""
    longest = max(len(w) for w in ids)
    out = torch.zeros(len(ids), max(longest, 1), dtype=torch.long)
    for row, word in enumerate(ids):
        out[row, : len(word)] = torch.tensor(word, dtype=torch.long)
    return out


def to_iob2(tags: list[str]) -> list[str]:
    """BIO tags with every entity opened by ``B-``: an ``I-X`` that starts an entity (after
    ``O`` or another type, as IOB1 writes it) becomes ``B-X``. conlleval reads the same
    entities from both, and the CRF's constraints accept only this form. BIOES tags pass."""
    if any(t[:2] in ("E-", "S-") for t in tags):
        return list(tags)
    out, previous = [], "O"
    for t in tags:
        if t.startswith("I-") and previous[2:] != t[2:]:
            t = "B-" + t[2:]
        out.append(t)
        previous = t
    return out


def _mean_loss(model, batch) -> torch.Tensor:
    inputs, tags, lengths = batch
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    return model(*inputs, lengths=lengths, tags=tags).mean()


def _most_frequent_tags(tokens, tags) -> dict[str, str]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for words, labels in zip(tokens, tags, strict=True):
        for word, label in zip(words, labels, strict=True):
            counts[word][label] += 1
    return {word: c.most_common(1)[0][0] for word, c in counts.items()}


# --- what the command line runs and prints ----------------------------------------------------


def predict_lines(run, source: str) -> str:
    """What ``tag predict`` prints: ``token<TAB>tag`` lines, a blank line between sentences.
    ``source``: raw text, one sentence per line (a .txt file, or ``-`` for standard input),
    or a token-per-line BIO/CoNLL file."""
    sentences = Tagger.load(run).predict(source)
    return "\n\n".join("\n".join(f"{t}\t{g}" for t, g in s) for s in sentences)
