"""Language modelling: train a character- or word-level model on a text, measure it in bits per
character or perplexity against n-gram baselines, and generate text from it.

The last ``val`` fraction of the text is held out. Training reads the rest as parallel
streams by stateful truncated BPTT (``rnnkit.data.batching.TokenStream``): one optimizer step
per segment of ``bptt`` tokens, the state carried to the next segment of the same stream.
Every ``eval_every`` steps the whole held-out text is scored, which gives the curve of
held-out bits per character against training time that the run directory plots.

Generation streams one token at a time from the carried state: the prime is read once, then
each new token is one step of the model (``rnnkit.decoding.stream``).
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from .._checks import check_integer
from ..data.text import Vocabulary, WordTokenizer
from ..models.language_model import LanguageModel
from ..models.ngram import NGramModel
from . import supervised
from .estimator import Estimator
from .settings import Setting, shared, training_settings

LEVELS = ("char", "word")
END_OF_LINE = "<eos>"  # a word-level model's token for a line end (the PTB convention)
NGRAM_ORDERS = {"char": 5, "word": 3}  # the n-gram baseline's order per level
EVAL_ROWS = 32  # streams the held-out text is scored in, each from a fresh state


def stream_loss(model: LanguageModel, ids: torch.Tensor, steps: int = 256) -> tuple[float, int]:
    """(sum of -log p in nats, tokens predicted) of the model reading ``ids`` (1-d).

    Every token but the first is predicted from all the tokens before it in its stream: the
    ids are cut into up to ``EVAL_ROWS`` streams that overlap by one token, read in chunks of
    ``steps`` with the state carried, the last chunk masked by lengths, so none is dropped.
    """
    predicted = len(ids) - 1
    if predicted < 1:
        raise ValueError("the text to score has fewer than 2 tokens")
    rows = max(1, min(EVAL_ROWS, predicted // steps))
    bounds = np.linspace(0, predicted, rows + 1).round().astype(int)
    width = int(np.diff(bounds).max())
    inputs = torch.zeros(rows, width, dtype=torch.long)
    targets = torch.zeros(rows, width, dtype=torch.long)
    lengths = torch.tensor(np.diff(bounds))
    for r, (a, b) in enumerate(itertools.pairwise(bounds)):
        inputs[r, : b - a], targets[r, : b - a] = ids[a:b], ids[a + 1 : b + 1]
    device = next(model.parameters()).device
    total, state = 0.0, None
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, width, steps):
            length = (lengths - start).clamp(0, steps)
            active = length > 0  # rows that have ended are left out of the chunk
            chunk = slice(start, start + steps)
            x = inputs[active, chunk].to(device)
            if state is not None:
                state = model.reorder_state(state, torch.nonzero(active).flatten().to(device))
            logits, state = model(x, state=state, lengths=length[active].to(device))
            nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), targets[active, chunk].to(device), reduction="none"
            )
            valid = torch.arange(x.shape[1]) < length[active][:, None]
            total += float(nll[valid.to(device)].sum())
            inputs, targets, lengths = inputs[active], targets[active], lengths[active]
    model.train(was_training)
    return total, predicted


class LanguageModeler(Estimator):
    """Trains, scores and samples a recurrent language model (see
    ``rnnkit.tasks.estimator`` for the contract).

    The model is ``LanguageModel``. Its budget counts passes over the training text:
    ``epochs`` (a fraction allowed), ``steps`` or ``minutes``, one pass when none is given;
    ``batch_size`` is the number of parallel streams, and a ``cosine`` schedule needs
    ``epochs`` or ``steps``. There is no early stopping: the final model is kept.

    Fitted: ``vocabulary_``, ``model_``, ``baselines_`` (the n-gram models; after ``load``
    the unigram model only, the higher orders' counts are not saved), ``history_``,
    ``steps_``, ``metrics_``.
    """

    task = "lm"
    settings = (
        Setting(
            "level",
            "char",
            "Tokens: characters (scored in bits per character) or words "
            "(a line end as <eos>; scored in perplexity).",
            str,
            LEVELS,
        ),
        Setting(
            "lowercase",
            None,
            "Lower-case the text (none: for words only).",
            bool,
            optional=True,
            flags=("--lowercase/--keep-case",),
        ),
        Setting("max_vocab", 10000, "Word types kept (word level; rarer ones become <unk>)."),
        shared("cell"),
        shared("embedding_dim", default=64),
        shared("hidden_size", default=512),
        shared("num_layers"),
        shared("dropout"),
        shared("embedding_dropout"),
        shared("output_dropout"),
        Setting("tie_weights", False, "Output layer = embedding.", bool),
        shared("rnn_options"),
        Setting("bptt", 128, "Steps per truncated-BPTT segment."),
        Setting(
            "eval_every",
            500,
            "Steps between scorings of the held-out text (a row of history.csv each).",
        ),
        shared(
            "val", default=0.05, fraction="(0, 1)", help="Fraction at the end of the text held out."
        ),
    )
    unit = "tokens"
    fractional = ("epochs",)  # passes over the text: half of a long text is a budget
    training = training_settings(
        epochs=None, batch_size=32, lr=2e-3, clip_norm=1.0, exclude=("patience",)
    )

    # --- text and ids ------------------------------------------------------------------------

    def _check_settings(self) -> None:
        supervised.check_rnn_options(self, LanguageModel)

    def _tokens(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        lower = self.lowercase if self.lowercase is not None else self.level == "word"
        if self.level == "char":
            return list(text.lower() if lower else text)
        tokenizer = WordTokenizer(lowercase=lower)
        tokens = [token for line in text.splitlines() for token in (*tokenizer(line), END_OF_LINE)]
        # A text that stops mid-line (a prime) has not ended its line.
        return tokens if text.endswith("\n") or not tokens else tokens[:-1]

    def encode(self, text: str, *, warn: bool = True) -> torch.Tensor:
        """The ids of ``text``; tokens outside the vocabulary become ``<unk>`` (counted, and
        a warning says how many)."""
        self._check_fitted()
        tokens = self._tokens(text)
        unknown = self.vocabulary_.count_unknown(tokens)
        if unknown and warn:
            warnings.warn(
                f"{unknown} of {len(tokens)} tokens are not in the vocabulary and read as <unk>",
                stacklevel=2,
            )
        return torch.tensor(self.vocabulary_.encode(tokens), dtype=torch.long)

    def decode(self, ids) -> str:
        """Text from ids: characters joined, or words joined by spaces with ``<eos>`` as a
        line end."""
        tokens = self.vocabulary_.decode(ids)
        if self.level == "char":
            return "".join(tokens)
        return " ".join(tokens).replace(f" {END_OF_LINE} ", "\n").replace(END_OF_LINE, "\n")

    def split(self, text: str) -> tuple[str, str]:
        """(training text, held-out text): the held-out part is the last ``val`` fraction,
        cut at a line end so no line is split."""
        cut = int(len(text) * (1 - self.val))
        line_end = text.rfind("\n", 0, cut)
        cut = line_end + 1 if line_end > 0 else cut
        if not text[:cut].strip() or not text[cut:].strip():
            raise ValueError(
                f"the text ({len(text)} characters) is too short to hold out val={self.val}"
            )
        return text[:cut], text[cut:]

    # --- training ----------------------------------------------------------------------------

    def _build_model(self) -> LanguageModel:
        return LanguageModel(
            len(self.vocabulary_),
            embedding_dim=self.embedding_dim,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            cell=self.cell,
            dropout=self.dropout,
            embedding_dropout=self.embedding_dropout,
            output_dropout=self.output_dropout,
            tie_weights=self.tie_weights,
            rnn_options=self.rnn_options,
        )

    def read(self, data) -> str:
        """The text of ``data``: a path (a text file, gzipped or not), or the text itself."""
        from ..data.readers import read_text

        if isinstance(data, os.PathLike) or (isinstance(data, str) and _is_file(data)):
            return read_text(data)
        if not isinstance(data, str):
            raise TypeError(f"data must be a text or a path to one, got {type(data).__name__}")
        return data

    def _split(self, text: str, val_data):
        """The text's last ``val`` held out, unless ``val_data`` (another text) is given."""
        return (text, self.read(val_data)) if val_data is not None else self.split(text)

    def _prepare(self, train_text: str, held_text: str):
        from ..data.batching import TokenStream

        self.vocabulary_ = Vocabulary(max_size=None if self.level == "char" else self.max_vocab)
        train_tokens = self._tokens(train_text)
        self.vocabulary_.fit([train_tokens])
        self._ids = {
            "train": torch.tensor(self.vocabulary_.encode(train_tokens), dtype=torch.long),
            "held": torch.tensor(
                self.vocabulary_.encode(self._tokens(held_text)), dtype=torch.long
            ),
        }
        self._stream = TokenStream(self._ids["train"], self.batch_size, self.bptt, self.eval_every)
        # The held-out text is scored as one stream by val_metrics, not batched as a dataset.
        return self._stream, None

    def _held_out_loss(self, model) -> float:
        total, count = stream_loss(model, self._ids["held"])
        return total / count

    def _trainer_options(self, held, held_set) -> dict:
        # Passes, not epochs, count here: a Trainer epoch is eval_every steps.
        passes = self._stream.segments
        limits = [math.ceil(self.epochs * passes)] if self.epochs is not None else []
        limits += [self.steps] if self.steps is not None else []
        if not limits and self.minutes is None:
            limits = [passes]  # one pass when no limit is given
        return {"monitor": "held_out_loss", "epochs": None, "steps": min(limits, default=None),
                "shuffle": False, "stateful": True, "tbptt": self.bptt, "loss": "cross_entropy",
                "val_metrics": {"held_out_loss": self._held_out_loss}}  # fmt: skip

    def _keep(self, trainer) -> None:
        """History rows in the level's units, with the time and tokens up to each."""
        super()._keep(trainer)
        self.history_ = [self._with_units(row) for row in trainer.history]
        stream_tokens = self._stream.rows * self._stream.steps  # what one step reads
        elapsed, steps = 0.0, Counter(step["epoch"] for step in trainer.steps)
        for row in self.history_:
            elapsed += row["seconds"]
            row["elapsed_seconds"] = elapsed
            row["tokens_seen"] = sum(steps[e] for e in range(row["epoch"] + 1)) * stream_tokens

    def _fit_baselines(self, train, held) -> None:
        train_ids = self._ids["train"].numpy()
        self.baselines_ = {
            f"{order}-gram": NGramModel(order, len(self.vocabulary_)).fit(train_ids)
            for order in (1, self._ngram_order())
        }

    def _fit_metrics(self, train_text, held_text) -> dict:
        held_ids = self._ids["held"]
        history = self.history_
        final = history[-1]["held_out_loss"] if history else self._held_out_loss(self.model_)
        validation = {"model": self._scores(final)}
        for name, ngram in self.baselines_.items():
            validation[name] = self._scores(ngram.cross_entropy(held_ids.numpy()))
        steps = len(self.steps_)
        return {
            "data": {"train": len(self._ids["train"]), "validation": len(held_ids) - 1,
                     "validation_characters": len(held_text)},
            "validation": validation,
            "training_seconds": self.training_seconds_,
            "steps": steps,
            "passes": steps / self._stream.segments,
        }  # fmt: skip

    @property
    def headline(self) -> tuple[str, ...]:
        """The scores at the top of metrics.json: bits per character, or perplexity."""
        return ("bpc", "perplexity") if self.level == "char" else ("perplexity",)

    def _ngram_order(self) -> int:
        """The n-gram baseline's order: the level's, lowered until its keys fit in 64 bits
        (a text of thousands of distinct characters)."""
        order = NGRAM_ORDERS[self.level]
        while order > 1 and len(self.vocabulary_) ** order >= 2**62:
            order -= 1
        return order

    def _scores(self, nats_per_token: float) -> dict:
        """Cross-entropy per token as bits per character (char level) and perplexity."""
        scores = {"nats": nats_per_token, "perplexity": math.exp(nats_per_token)}
        if self.level == "char":
            scores["bpc"] = nats_per_token / math.log(2)
        return scores

    def _with_units(self, row: dict) -> dict:
        return row | {f"held_out_{k}": v for k, v in self._scores(row["held_out_loss"]).items()}

    # --- using it ----------------------------------------------------------------------------

    def score(self, text: str, *, held_out: bool = False) -> dict:
        """The model's and the n-gram baselines' scores on ``text``: nats per token,
        perplexity, and bits per character at the char level. With ``held_out``, only the
        part of ``text`` that a run with this ``val`` holds out is scored."""
        self._check_fitted()
        if held_out:
            text = self.split(text)[1]
        ids = self.encode(text)
        total, count = stream_loss(self.model_, ids)
        scores = {"model": self._scores(total / count)}
        for name, ngram in self.baselines_.items():
            scores[name] = self._scores(ngram.cross_entropy(ids.numpy()))
        return scores

    def predict(self, text: str) -> np.ndarray:
        """The model's distribution of the token after ``text``: probabilities (V,), in the
        order of ``vocabulary_.tokens``."""
        self._check_fitted()
        ids = self.encode(text)
        with torch.no_grad():
            logits, _ = self.model_(ids[None])
        return torch.softmax(logits[0, -1].double(), -1).numpy()

    def stream(self):
        """A text read as it arrives: ``feed(text)`` returns the next token's probabilities
        after each of its tokens ((tokens, V), in the order of ``vocabulary_.tokens``), read
        after everything fed before; equal at every step to ``predict`` on the whole text
        so far. Word-level models split each piece into words, so feed whole words or lines.
        See ``rnnkit.tasks.streaming``."""
        from .streaming import Stream

        self._check_fitted()
        model = self.model_.eval()

        def step(text: str, state):
            ids = self.encode(text)
            if len(ids) == 0:
                raise ValueError(f"text={text!r} holds no token to read")
            with torch.no_grad():
                logits, state = model(ids[None], state=state)
            return torch.softmax(logits[0].double(), -1).numpy(), state

        return Stream(step)

    def generate(
        self,
        prime: str = "",
        length: int = 500,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        allow_unk: bool = False,
    ):
        """Yield the text that follows ``prime``, one token's text at a time, sampled from
        the model with ``temperature`` (0: greedy), ``top_k`` and ``top_p``. The prime is read
        once; each new token costs one step of the model from the carried state. With
        ``seed`` the text is reproducible. Padding is never generated, nor ``<unk>`` unless
        ``allow_unk``: the model's choice among the other tokens, renormalised."""
        from ..decoding import stream

        self._check_fitted()
        check_integer("length", length, 1)
        start = "\n" if self.level == "char" else END_OF_LINE
        ids = self.encode(prime) if prime else torch.tensor(self.vocabulary_.encode([start]))
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        with torch.no_grad():
            state = None
            if len(ids) > 1:  # the prime but its last token, whose step makes the first sample
                _, state = self.model_(ids[None, :-1])
            steps = stream(
                self.model_,
                state,
                ids[-1:],
                length,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                generator=generator,
                banned=self.vocabulary_.unwanted_ids(allow_unk),
            )
            for tokens, _ in steps:
                text = self.decode(tokens.tolist())
                yield text if self.level == "char" or text == "\n" else text + " "

    def table(self, scores: dict) -> list[str]:
        columns = ["bpc", "perplexity"] if self.level == "char" else ["perplexity"]
        names = {"model": f"{self.cell.upper()} {self.hidden_size}x{self.num_layers}"}
        names |= {key: key for key in scores if key.endswith("-gram")}
        width = max(len(n) for n in names.values())
        lines = [" " * width + "".join(f"{c:>12}" for c in columns)]
        for key, label in names.items():
            values = "".join(f"{scores[key][c]:>12.3f}" for c in columns)
            lines.append(f"{label:<{width}}{values}")
        return lines

    def report(self) -> str:
        counts = self.metrics_["data"]
        lines = [f"Held out ({counts['validation']:,} tokens):"]
        lines += self.table(self.metrics_["validation"])
        lines.append(
            f"\nTrained {self.metrics_['steps']:,} steps ({self.metrics_['passes']:.2f} passes "
            f"over {counts['train']:,} tokens) in {self.metrics_['training_seconds']:.0f} s."
        )
        return "\n".join(lines)

    # --- run directories ---------------------------------------------------------------------

    def _export_graphs(self) -> list:
        from ..export import Graph, Positional, as_state, state_inputs, state_names, state_outputs

        rnn = self.model_.rnn
        names = state_names(rnn)
        vocabulary = len(self.vocabulary_)

        def sample(batch: int, steps: int) -> dict:
            tokens = {"tokens": torch.randint(0, vocabulary, (batch, steps))}
            return tokens | state_inputs(rnn, batch)

        def step(tokens, **state):
            logits, after = self.model_(tokens, state=as_state(state))
            return (logits, *state_outputs(after))

        dynamic = {"tokens": {0: "batch", 1: "time"}} | {name: {1: "batch"} for name in names}
        outputs = ["logits", *(f"{name}_out" for name in names)]
        graph = Positional(self.model_, ["tokens", *names], step)
        return [Graph("step", graph, sample(2, 4), outputs, dynamic, sample)]

    def _export_notes(self) -> str:
        return (
            "tokens: ids of data_state's vocabulary (batch, time), one token a step for "
            "generation or a whole chunk; h (and c for an LSTM): the state, (layers, batch, "
            "size), zeros to start a text, then the *_out of the call before; logits (batch, "
            "time, vocabulary): the next token's scores after each step (softmax them; sample "
            "with a temperature as rnnkit lm generate does)"
        )

    def _data_state(self) -> dict:
        return {
            "vocabulary": self.vocabulary_.to_dict(),
            "unigram_counts": self.baselines_["1-gram"].unigram_.tolist(),
        }

    def _restore(self, state: dict) -> None:
        self.vocabulary_ = Vocabulary.from_dict(state["vocabulary"])
        self.baselines_ = {}
        if "unigram_counts" in state:  # a run of the last release kept no baseline
            unigram = NGramModel(1, len(self.vocabulary_))
            unigram.unigram_ = np.asarray(state["unigram_counts"], dtype=np.float64)
            unigram.tables_ = []
            self.baselines_["1-gram"] = unigram
        self.model_ = self._build_model()

    def _write_extra(self, directory: Path) -> None:
        from .. import plots

        if self.history_:
            plots.plot_held_out_curve(
                directory / "held_out_curve.png",
                self.history_,
                "bpc" if self.level == "char" else "perplexity",
                {k: v for k, v in self.metrics_["validation"].items() if k.endswith("-gram")},
            )
        sample = "".join(self.generate(length=600 if self.level == "char" else 150, seed=0))
        (directory / "sample.txt").write_text(sample)


def _is_file(text: str) -> bool:
    """Whether ``text`` names a file (and is not a text with a line break in it)."""
    try:
        return "\n" not in text and Path(text).is_file()
    except OSError:  # a text too long to be a path
        return False
