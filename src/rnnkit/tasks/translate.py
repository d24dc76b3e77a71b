"""Translation: an attention encoder-decoder trained on sentence pairs, scored with BLEU and chrF
(sacrebleu) against copying the source, decoded greedily or by beam search.

Pairs are read from a TSV file, ``source<TAB>target`` per line. Each side has its own
tokenizer (BPE subwords by default, or words) and vocabulary, with ``<s>`` and ``</s>`` around
every target. Training is teacher forcing (optionally with scheduled sampling) on
length-bucketed batches; the model with the lowest validation loss is kept.

Over-long inputs: pairs with more than ``max_length`` tokens on either side are left out of
training (counted in the report); a source longer than that given to ``translate`` is cut to
``max_length`` tokens with a warning, since the model never learnt to read further.
Tokens outside the vocabulary read as ``<unk>`` and are counted.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..data.text import Vocabulary, attach_punctuation, make_tokenizer, tokenizer_from_dict
from ..models.seq2seq import EncoderDecoder
from . import supervised
from .estimator import Estimator
from .settings import Setting, finite, probability, shared, training_settings
from .supervised import stratified_split

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
BOS, EOS = 2, 3  # the ids of <s> and </s> in SPECIALS
ATTENTIONS = ("additive", "dot", "general", "none")
DECODE_BATCH = 64


def read_pairs(path) -> list[tuple[str, str]]:
    """``(source, target)`` from a TSV file of ``source<TAB>target`` lines (``.gz`` too, or
    ``-`` for standard input); blank lines at the end are dropped, and a line without exactly
    one tab, or with an empty side, is an error naming it."""
    from ..data.readers import read_lines

    pairs = []
    for number, line in enumerate(read_lines(path), start=1):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(
                f"{path}:{number}: expected 'source<TAB>target' with text on both sides, "
                f"got {len(parts)} field(s): {line[:80]!r}"
            )
        pairs.append((parts[0].strip(), parts[1].strip()))
    return pairs


def bleu_chrf(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU and chrF (sacrebleu's defaults: 13a tokenization, chrF with n=6, beta=2)."""
    try:
        import sacrebleu
    except ImportError:
        raise ImportError(
            "BLEU and chrF come from sacrebleu: pip install 'rnnkit[text]' (or sacrebleu)"
        ) from None
    return {
        "bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
        "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
    }


class _PairDataset:
    """Sentence pairs batched by source length: ``(source, (target_in, target_out),
    source_lengths)``, ``target_in`` = ``<s>`` + target (padded with ``<pad>``) and
    ``target_out`` = target + ``</s>`` (padded with -100, which the loss ignores)."""

    def __init__(self, sources, targets: list[list[int]]):
        self.sources, self.targets = sources, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.batch(torch.tensor([i]))

    def epoch_batches(self, batch_size: int, seed: int, epoch: int, shuffle: bool) -> list:
        return self.sources.epoch_batches(batch_size, seed, epoch, shuffle)

    def batch(self, indices: torch.Tensor):
        from ..data.batching import pad

        source, _, lengths = self.sources.batch(indices)
        targets = [self.targets[i] for i in indices.tolist()]
        target_in = pad([torch.tensor([BOS, *t]) for t in targets], 0)
        target_out = pad([torch.tensor([*t, EOS]) for t in targets], -100)
        return source, (target_in, target_out), lengths


class Translator(Estimator):
    """Trains and uses an attention encoder-decoder (see ``rnnkit.tasks.estimator`` for the
    contract).

    The model is ``rnnkit.models.EncoderDecoder``; early stopping (``patience``) watches the
    validation loss, and ``score`` reports greedy search beside a beam of ``beam_size``.

    Fitted: ``tokenizer_`` and ``vocabulary_`` (the source side), ``target_tokenizer_`` and
    ``target_vocabulary_``, ``model_``, ``history_``, ``steps_``, ``best_epoch_``,
    ``metrics_``.
    """

    task = "translate"
    training = training_settings(epochs=10, batch_size=64, lr=2e-3, clip_norm=1.0, patience=3)
    headline = ("bleu", "chrf")
    unit = "pairs"
    settings = (
        Setting(
            "tokenizer",
            "bpe",
            "Tokens per side: bpe subwords (needs rnnkit[text]) or words; case is kept.",
            str,
            ("bpe", "word"),
        ),
        Setting("vocab_size", 8000, "BPE subwords per side."),
        shared("min_freq", default=2, help="Rarer words become <unk> (word tokenizer)."),
        Setting(
            "max_length",
            80,
            "Longest side in tokens kept for training; translate cuts longer sources.",
        ),
        shared("cell"),
        shared("embedding_dim"),
        shared("hidden_size", default=256),
        shared("num_layers"),
        Setting("attention", "additive", "Attention of the decoder.", str, ATTENTIONS),
        Setting("input_feeding", True, "Feed the attention output to the next step.", bool),
        Setting("bridge", "linear", "Decoder's first state.", str, ("linear", "zeros")),
        shared("dropout", default=0.2),
        shared("rnn_options"),
        Setting(
            "sampling",
            0.0,
            "Scheduled-sampling probability (Bengio et al. 2015): feed "
            "the model's own prediction instead of the reference's in training.",
            float,
            rule=probability,
        ),
        Setting("beam_size", 5, "Beam reported beside greedy."),
        Setting("length_penalty", 1.0, "Beam score = log p / length^this.", float, rule=finite),
        shared(
            "val",
            default=0.05,
            fraction="(0, 1)",
            help="Fraction of the pairs held out for early stopping and validation scores.",
        ),
        Setting(
            "test",
            0.05,
            "Fraction held out for the test without --test (a fixed random "
            "choice whatever the seed).",
            float,
            fraction="(0, 1)",
            flags=("--test-fraction",),
        ),
    )

    # --- text and ids ------------------------------------------------------------------------

    def _check_settings(self) -> None:
        supervised.check_rnn_options(self, EncoderDecoder)

    def _new_tokenizer(self):
        if self.tokenizer == "bpe":
            return make_tokenizer("bpe", vocab_size=self.vocab_size, lowercase=False)
        return make_tokenizer("word", lowercase=False)

    def _detokenize(self, tokens: list[str]) -> str:
        """Target tokens as text: words joined, punctuation attached as it is written."""
        tokenizer = self.target_tokenizer_
        text = (
            tokenizer.detokenize(tokens) if hasattr(tokenizer, "detokenize") else " ".join(tokens)
        )
        return attach_punctuation(text)

    def _encode(self, side: int, texts: list[str]) -> tuple[list[list[int]], int, int]:
        """(ids per text, tokens in all, of which unknown) for one side."""
        tokenizer, vocabulary = self._sides()[side]
        ids = [vocabulary.encode(tokenizer(text)) for text in texts]
        # BPE turns an unseen character into "<unk>" itself: count ids, not tokens.
        unknown = sum(row.count(vocabulary.unk_id) for row in ids)
        return ids, sum(map(len, ids)), unknown

    def _dataset(self, pairs):
        """The pairs as a SequenceDataset ((source, target in), target out), and how many
        pairs were too long to keep."""
        from ..data.batching import SequenceDataset

        sources, _, _ = self._encode(0, [s for s, _ in pairs])
        targets, _, _ = self._encode(1, [t for _, t in pairs])
        keep = [
            i
            for i, (s, t) in enumerate(zip(sources, targets, strict=True))
            if 0 < len(s) <= self.max_length and len(t) <= self.max_length
        ]
        if not keep:
            raise ValueError(f"no pair has both sides within max_length={self.max_length}")
        source = [torch.tensor(sources[i]) for i in keep]
        target = [targets[i] for i in keep]
        data = _PairDataset(SequenceDataset(source), target)
        return data, len(pairs) - len(keep)

    # --- training ----------------------------------------------------------------------------

    def _build_model(self) -> EncoderDecoder:
        return EncoderDecoder(
            len(self.vocabulary_),
            len(self.target_vocabulary_),
            embedding_dim=self.embedding_dim,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            cell=self.cell,
            attention=None if self.attention == "none" else self.attention,
            input_feeding=self.input_feeding,
            bridge=self.bridge,
            dropout=self.dropout,
            rnn_options=self.rnn_options,
        )

    def _loss(self, model, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(Sum of the cross-entropy over the target tokens, their count), teacher-forced
        (scheduled sampling in training mode): the Trainer divides, so that the mean is
        over tokens even when torchrun splits a batch into shares of unequal token counts."""
        source, (target_in, target_out), lengths = batch
        logits = model(source, lengths, target_in, sampling=self.sampling)
        loss = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), target_out.flatten(), ignore_index=-100, reduction="sum"
        )
        return loss, (target_out != -100).sum()

    def read(self, data) -> list[tuple[str, str]]:
        """``(source, target)`` pairs: from a TSV file (``read_pairs``), or as given."""
        if isinstance(data, str | Path):
            return read_pairs(data)
        pairs = [tuple(pair) for pair in data]
        if not pairs or any(len(pair) != 2 for pair in pairs):
            raise ValueError("data must be a non-empty list of (source, target) pairs")
        return pairs

    def _hold_out_test(self, data, test):
        """Without test pairs, a fixed random ``test`` fraction of ``data``: a seed of its
        own, so the test pairs stay the same whatever the model's seed."""
        if test is not None:
            return data, test
        keep, hold = stratified_split(np.zeros(len(data)), self.test, 1234)
        if len(hold) == 0:
            raise ValueError(
                f"test={self.test} of {len(data)} pairs holds out none for the test: give "
                "more pairs, a larger fraction, or test pairs (--test)"
            )
        return [data[i] for i in keep], [data[i] for i in hold]

    def _prepare(self, train, held):
        sides = []
        for side in (0, 1):
            texts = [pair[side] for pair in train]
            tokenizer = self._new_tokenizer().fit(texts)
            min_freq = 1 if self.tokenizer == "bpe" else self.min_freq
            vocabulary = Vocabulary(min_freq=min_freq, specials=SPECIALS)
            vocabulary.fit(tokenizer(text) for text in texts)
            sides.append((tokenizer, vocabulary))
        (self.tokenizer_, self.vocabulary_), (self.target_tokenizer_, self.target_vocabulary_) = (
            sides
        )
        train_set, self.too_long_ = self._dataset(train)
        return train_set, self._dataset(held)[0]

    def _trainer_options(self, held, held_set) -> dict:
        return {"compute_loss": self._loss}

    def _fit_metrics(self, train, held) -> dict:
        dropped = self.too_long_
        fitted = {
            "data": {"train": len(train) - dropped, "too_long": dropped, "validation": len(held)},
            "training_seconds": self.training_seconds_,
            "validation": self.score(held, warn=False),  # unseen words are expected here
        }
        shown = self._source_ids([s for s, _ in held[:5]], warn=False)
        greedy = [self._text(row) for row in self._search(shown, 1, None)]
        fitted["examples"] = [
            {"source": s, "reference": r, "greedy": g}
            for (s, r), g in zip(held[:5], greedy, strict=True)
        ]
        return fitted

    @property
    def tokenizers_(self) -> list:
        """The old name of ``[tokenizer_, target_tokenizer_]``, kept for this release."""
        _renamed("tokenizers_", "tokenizer_ and target_tokenizer_")
        return [self.tokenizer_, self.target_tokenizer_]

    @property
    def vocabularies_(self) -> list:
        """The old name of ``[vocabulary_, target_vocabulary_]``, kept for this release."""
        _renamed("vocabularies_", "vocabulary_ and target_vocabulary_")
        return [self.vocabulary_, self.target_vocabulary_]

    def _sides(self):
        """((tokenizer, vocabulary) of the source, the same of the target)."""
        return (
            (self.tokenizer_, self.vocabulary_),
            (self.target_tokenizer_, self.target_vocabulary_),
        )

    # --- using it ----------------------------------------------------------------------------

    def _source_ids(self, sentences: list[str], *, warn: bool = True) -> list[list[int]]:
        """Source ids, cut to ``max_length`` and never empty; with ``warn``, a warning counts
        the tokens outside the vocabulary (read as ``<unk>``) and the sentences cut."""
        ids, total, unknown = self._encode(0, sentences)
        if unknown and warn:
            warnings.warn(
                f"{unknown} of {total} source tokens are not in the vocabulary and read as <unk>",
                stacklevel=3,
            )
        empty = [i for i, row in enumerate(ids) if not row]
        if empty:
            raise ValueError(f"sentence {empty[0]} has no tokens: {sentences[empty[0]]!r}")
        long = sum(len(row) > self.max_length for row in ids)
        if long and warn:
            warnings.warn(
                f"{long} source sentence(s) have more than max_length={self.max_length} "
                "tokens and are cut to it",
                stacklevel=3,
            )
        return [row[: self.max_length] for row in ids]

    def translate(self, sentences, *, beam_size: int | None = None, max_length=None,
                  allow_unk: bool = False) -> list:  # fmt: skip
        """Translations of ``sentences`` (strings): greedy with ``beam_size=1``, else beam
        search (default: the ``beam_size`` setting). Outputs stop at ``</s>`` or at
        ``max_length`` tokens (default: twice the source's, plus 10). They never hold
        padding or ``<s>``, nor ``<unk>`` unless ``allow_unk``."""
        ids = self.translate_ids(
            sentences, beam_size=beam_size, max_length=max_length, allow_unk=allow_unk
        )
        return [self._text(row) for row in ids]

    def predict(self, sentences) -> list[str]:
        """The translation of each sentence, as ``translate`` writes it (the estimator
        contract's name)."""
        return self.translate(sentences)

    def translate_ids(self, sentences, *, beam_size=None, max_length=None,
                      allow_unk: bool = False) -> list[list[int]]:  # fmt: skip
        """The target ids ``translate`` writes out (``</s>`` left out)."""
        self._check_fitted()
        if isinstance(sentences, str):
            raise TypeError("sentences must be a list of strings, got one string")
        sentences = list(sentences)
        ids = self._source_ids(sentences) if sentences else []
        beam = self.beam_size if beam_size is None else beam_size
        return self._search(ids, beam, max_length, allow_unk)

    def _text(self, ids: list[int]) -> str:
        return self._detokenize(self.target_vocabulary_.decode(ids))

    def _search(self, ids: list[list[int]], beam: int, max_length, allow_unk=False) -> list:
        """Greedy (``beam`` 1) or beam search from source ids, in batches of similar length,
        never emitting padding or ``<s>``, nor ``<unk>`` unless ``allow_unk``."""
        from ..decoding import beam_search, greedy

        banned = [*self.target_vocabulary_.unwanted_ids(allow_unk), BOS]
        outputs = [None] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with torch.no_grad():
            for start in range(0, len(order), DECODE_BATCH):
                rows = order[start : start + DECODE_BATCH]
                lengths = torch.tensor([len(ids[i]) for i in rows])
                source = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
                for r, i in enumerate(rows):
                    source[r, : lengths[r]] = torch.tensor(ids[i])
                state = self.model_.encode(source, lengths)
                first = torch.full((len(rows),), BOS)
                limit = max_length or int(lengths.max()) * 2 + 10
                if beam == 1:
                    decoded = greedy(self.model_, state, first, limit, EOS, banned=banned)
                    found = [row[:n].tolist() for row, n in zip(*decoded[:2], strict=True)]
                else:
                    hypotheses = beam_search(
                        self.model_, state, first, limit, EOS,
                        beam_size=beam, length_penalty=self.length_penalty, banned=banned,
                    )  # fmt: skip
                    found = [best[0].tokens for best in hypotheses]
                for i, tokens in zip(rows, found, strict=True):
                    outputs[i] = tokens
        return outputs

    def score(self, pairs, *, beam_size: int | None = None, warn: bool = True) -> dict:
        """BLEU and chrF on ``pairs`` of the model decoding greedily (``model``) and by beam
        search (``model_beam5`` for ``beam_size`` 5; default the setting, 1 for greedy
        only), and of copying the source (``copy``), the baseline. ``warn``: say how many
        source tokens were outside the vocabulary and how many sentences were cut."""
        self._check_fitted()
        pairs = self.read(pairs)
        sources = [s for s, _ in pairs]
        references = [t for _, t in pairs]
        beam = self.beam_size if beam_size is None else beam_size
        ids = self._source_ids(sources, warn=warn)  # read once for both searches
        greedy_out = [self._text(row) for row in self._search(ids, 1, None)]
        scores = {"model": bleu_chrf(greedy_out, references)}
        if beam > 1:
            beam_out = [self._text(row) for row in self._search(ids, beam, None)]
            scores[f"model_beam{beam}"] = bleu_chrf(beam_out, references)
        scores["copy"] = bleu_chrf(sources, references)
        return scores

    def _headline(self, scores: dict) -> dict:
        """The headline is the beam search's that ``scores`` holds (``translate`` decodes
        with the ``beam_size`` setting's; an evaluation may choose another), else greedy's."""
        beams = [name for name in scores if name.startswith("model_beam")]
        return scores[beams[0]] if beams else scores["model"]

    def attention_map(self, source: str, target_ids: list[int] | None = None):
        """(source tokens, output tokens, weights (T, S)): where the model looks at each step
        while it writes ``target_ids`` (default: its own greedy translation) and ``</s>``."""
        self._check_fitted()
        if self.model_.attention is None:
            raise ValueError("this model has no attention (attention='none')")
        if target_ids is None:
            target_ids = self.translate_ids([source], beam_size=1)[0]
        ids = self._source_ids([source])
        with torch.no_grad():
            _, weights = self.model_(
                torch.tensor(ids),
                torch.tensor([len(ids[0])]),
                torch.tensor([[BOS, *target_ids]]),
                return_attention=True,
            )
        source_tokens = self.vocabulary_.decode(ids[0])
        target_tokens = [*self.target_vocabulary_.decode(target_ids), "</s>"]
        return source_tokens, target_tokens, weights[0].numpy()

    def table(self, scores: dict) -> list[str]:
        names = [key for key in scores if isinstance(scores[key], dict) and "bleu" in scores[key]]
        width = max(map(len, names))
        lines = [" " * width + f"{'BLEU':>9}{'chrF':>9}"]
        for name in names:
            lines.append(f"{name:<{width}}{scores[name]['bleu']:>9.2f}{scores[name]['chrf']:>9.2f}")
        return lines

    def report(self) -> str:
        text = super().report()
        m = self.metrics_
        return (
            f"{text}\nTraining took {m['training_seconds'] / 60:.1f} min on "
            f"{m['data']['train']:,} pairs ({m['data']['too_long']:,} longer than "
            f"max_length={self.max_length} tokens left out)."
        )

    # --- run directories ---------------------------------------------------------------------

    def _export_graphs(self) -> list:
        return seq2seq_graphs(self.model_)

    def _export_notes(self) -> str:
        return (
            "source: ids of data_state's source vocabulary (batch, time), the tokenizer's "
            "tokens then <eos>; the encoder's outputs are the decoder step's state inputs of "
            "the same names; each step takes the previous target token (<bos> first), returns "
            "the next token's logits and the state to pass on (the *_out outputs replace the "
            "inputs of their names; keys, prepared and mask stay); stop at <eos>; greedy "
            "takes the argmax, beam search is outside the graph"
        )

    def _data_state(self) -> dict:
        return {
            "tokenizers": [t.to_dict() for t in (self.tokenizer_, self.target_tokenizer_)],
            "vocabularies": [v.to_dict() for v in (self.vocabulary_, self.target_vocabulary_)],
        }

    def _restore(self, state: dict) -> None:
        self.tokenizer_, self.target_tokenizer_ = map(tokenizer_from_dict, state["tokenizers"])
        self.vocabulary_, self.target_vocabulary_ = map(Vocabulary.from_dict, state["vocabularies"])
        self.model_ = self._build_model()

    def _write_extra(self, directory: Path) -> None:
        from .. import plots

        if self.model_.attention is not None:
            example = self.metrics_["examples"][0]
            source, target, weights = self.attention_map(example["source"])
            plots.plot_attention(directory / "attention.png", source, target, weights)


def _renamed(old: str, new: str) -> None:
    warnings.warn(
        f"Translator.{old} is now {new}; the old name goes in the next release",
        DeprecationWarning,
        stacklevel=3,
    )


def predict_lines(run, source, *, beam_size: int | None = None, attention_png=None) -> str:
    """Translations of the lines of ``source`` (a file or ``-``), one per line; with
    ``attention_png``, the attention map of the first line is written there."""
    from .. import plots
    from ..data.readers import read_lines

    translator = Translator.load(run)
    sentences = read_lines(source)
    ids = translator.translate_ids(sentences, beam_size=beam_size)
    if attention_png:
        plots.plot_attention(attention_png, *translator.attention_map(sentences[0], ids[0]))
    return "\n".join(translator._text(row) for row in ids)


def seq2seq_graphs(model) -> list:
    """The graphs of an encoder-decoder: ``encoder`` (source ids and lengths in, the
    decoding state out) and ``decoder_step`` (the previous token and the state in, the next
    token's logits and the state to pass on out)."""
    from ..export import Graph, Positional, random_lengths

    model = model.eval()
    sources, targets = model.source_vocab_size, model.target_vocab_size

    def source(batch: int, steps: int) -> dict:
        return {"source": torch.randint(1, sources, (batch, steps)),
                "source_lengths": random_lengths(batch, steps)}  # fmt: skip

    example = source(2, 5)
    with torch.no_grad():
        fields = list(_state_tensors(model._encode(*example.values())))
    carried = [name for name in fields if name in ("h", "c", "feed")]

    def encode(source, source_lengths):
        return tuple(_state_tensors(model._encode(source, source_lengths)).values())

    def step_inputs(batch: int, steps: int) -> dict:
        with torch.no_grad():
            state = model._encode(*source(batch, steps).values())
        tokens = {"tokens": torch.randint(1, targets, (batch,))}
        return tokens | _state_tensors(state)

    def step(tokens, **state):
        logits, after = model._step(model.target_embedding(tokens), _state_of(state))
        return (logits, *(_state_tensors(after)[name] for name in carried))

    free = {"h": {1: "batch"}, "c": {1: "batch"}, "feed": {0: "batch"},
            "keys": {0: "batch", 1: "source_time"}, "prepared": {0: "batch", 1: "source_time"},
            "mask": {0: "batch", 1: "source_time"}}  # fmt: skip
    source_axes = {"source": {0: "batch", 1: "source_time"}, "source_lengths": {0: "batch"}}
    step_axes = {"tokens": {0: "batch"}} | {name: free[name] for name in fields}
    return [
        Graph("encoder", Positional(model, example, encode), example, fields, source_axes,
              source),
        Graph("decoder_step", Positional(model, ["tokens", *fields], step),
              step_inputs(2, 5), ["logits", *(f"{name}_out" for name in carried)],
              step_axes, step_inputs),
    ]  # fmt: skip


def _state_tensors(state) -> dict:
    """A decoding state's tensors by name, in the order the graphs take them: the decoder's
    h (and c), then input feeding's feed, attention's keys, prepared keys (where they are
    not the keys) and mask, those the model has."""
    parts = state.rnn if isinstance(state.rnn, tuple) else (state.rnn,)
    named = dict(zip(("h", "c"), parts, strict=False))
    named |= {"feed": state.feed, "keys": state.keys, "mask": state.mask}
    if state.prepared is not state.keys:
        named["prepared"] = state.prepared
    order = ("h", "c", "feed", "keys", "prepared", "mask")
    return {name: named[name] for name in order if named.get(name) is not None}


def _state_of(named: dict):
    """The decoding state of the tensors ``_state_tensors`` names."""
    from ..models.seq2seq import Seq2SeqState

    rnn = (named["h"], named["c"]) if "c" in named else named["h"]
    keys = named.get("keys")
    prepared = named.get("prepared", keys)
    return Seq2SeqState(rnn, named.get("feed"), keys, prepared, named.get("mask"), None)
