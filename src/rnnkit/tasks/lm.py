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
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ..data.text import Vocabulary, WordTokenizer
from ..models.language_model import LanguageModel
from .supervised import SupervisedTask, record_evaluation

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


class LanguageModeler(SupervisedTask):
    """Trains, scores and samples a recurrent language model (scikit-learn style: the
    constructor stores settings, ``fit`` learns, fitted state ends in ``_``).

    Args:
        level: "char" (every character a token; scored in bits per character) or "word"
            (``WordTokenizer`` tokens, a line end as ``<eos>``; scored in perplexity).
        lowercase: lower-case the text first (default: False for char, True for word).
        max_vocab: most word types kept (rarer words become ``<unk>``); chars keep all.
        cell, embedding_dim, hidden_size, num_layers, dropout, embedding_dropout,
        output_dropout, tie_weights, rnn_options: the model (``LanguageModel``).
        epochs: passes over the training text; ``minutes``: a time limit of training
            (validation included). Give either or both; with neither, one pass.
        batch_size: parallel streams; ``bptt``: steps per truncated-BPTT segment.
        eval_every: optimizer steps between two scorings of the held-out text (one row of
            history.csv each; the Trainer calls them epochs).
        val: the fraction at the end of the text held out.
        optimizer, lr, weight_decay, clip_norm, schedule ("cosine" needs ``epochs``), seed,
        progress: the training loop (see ``rnnkit.training.Trainer``).
    """

    task = "lm"
    unit = "tokens"
    model_class = LanguageModel

    def __init__(
        self,
        *,
        level: str = "char",
        lowercase: bool | None = None,
        max_vocab: int = 10000,
        cell: str = "lstm",
        embedding_dim: int = 64,
        hidden_size: int = 512,
        num_layers: int = 1,
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        output_dropout: float = 0.0,
        tie_weights: bool = False,
        rnn_options: dict | None = None,
        epochs: float | None = None,
        minutes: float | None = None,
        batch_size: int = 32,
        bptt: int = 128,
        eval_every: int = 500,
        val: float = 0.05,
        optimizer: str = "adam",
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        clip_norm: float | None = 1.0,
        schedule: str | None = None,
        seed: int = 0,
        progress: str = "auto",
        diagnose_every: int | None = None,
    ):
        self.level = level
        self.lowercase = lowercase
        self.max_vocab = max_vocab
        self.cell = cell
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.output_dropout = output_dropout
        self.tie_weights = tie_weights
        self.rnn_options = dict(rnn_options or {})
        self.epochs = epochs
        self.minutes = minutes
        self.batch_size = batch_size
        self.bptt = bptt
        self.eval_every = eval_every
        self.val = val
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.schedule = schedule
        self.seed = seed
        self.progress = progress
        self.diagnose_every = diagnose_every

    # --- text and ids ------------------------------------------------------------------------

    def _check_settings(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level={self.level!r} is not one of {LEVELS}")
        for name in ("epochs", "minutes"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"{name}={value!r} must be a number > 0 or None")
        for name in ("batch_size", "bptt", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
        if not 0 < self.val < 1:
            raise ValueError(f"val={self.val!r} must be a fraction in (0, 1): the held-out part")
        super()._check_settings()

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

    def _new_model(self) -> LanguageModel:
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

    def fit(
        self, text: str, *, checkpoint_dir=None, resume: bool = False, diagnose_dir=None
    ) -> LanguageModeler:
        """Learn the vocabulary and the model from ``text`` (its last ``val`` held out)."""
        from ..data.batching import TokenStream
        from ..models.ngram import NGramModel
        from ..training import Trainer

        self._check_settings()
        train_text, held_text = self.split(text)
        self.vocabulary_ = Vocabulary(max_size=None if self.level == "char" else self.max_vocab)
        train_tokens = self._tokens(train_text)
        self.vocabulary_.fit([train_tokens])
        torch.manual_seed(self.seed)
        self.model_ = self._new_model()
        train_ids = torch.tensor(self.vocabulary_.encode(train_tokens), dtype=torch.long)
        held_ids = self.encode(held_text, warn=False)
        data = TokenStream(train_ids, self.batch_size, self.bptt, self.eval_every)
        steps_per_pass = data.segments
        started = time.perf_counter()

        def held_out(model) -> float:
            total, count = stream_loss(model, held_ids)
            return total / count

        if self.epochs is not None:
            max_steps = math.ceil(self.epochs * steps_per_pass)
        else:  # a time limit alone, or one pass when neither is given
            max_steps = None if self.minutes is not None else steps_per_pass
        trainer = Trainer(
            epochs=None,
            max_steps=max_steps,
            time_limit=self.minutes * 60 if self.minutes else None,
            batch_size=self.batch_size,
            shuffle=False,
            stateful=True,
            tbptt=self.bptt,
            loss="cross_entropy",
            optimizer=self.optimizer,
            lr=self.lr,
            weight_decay=self.weight_decay,
            clip_norm=self.clip_norm,
            schedule=self.schedule,
            val_metrics={"held_out_loss": held_out},
            monitor="held_out_loss",
            checkpoint_dir=checkpoint_dir,
            seed=self.seed,
            progress=self.progress,
            diagnose_every=self.diagnose_every,
            diagnose_dir=diagnose_dir,
        )
        trainer.fit(self.model_, data, resume=resume)
        self.model_.eval()
        self.history_ = [self._with_units(row) for row in trainer.history]
        elapsed, steps = 0.0, Counter(step["epoch"] for step in trainer.steps)
        for row in self.history_:
            elapsed += row["seconds"]
            row["elapsed_seconds"] = elapsed
            row["tokens_seen"] = (
                sum(steps[e] for e in range(row["epoch"] + 1)) * data.rows * data.steps
            )
        self.best_epoch_ = None  # the final model is kept: a language model seldom overfits here
        self.training_seconds_ = time.perf_counter() - started
        baselines = {}
        for order in (1, self._ngram_order()):
            ngram = NGramModel(order, len(self.vocabulary_)).fit(train_ids.numpy())
            baselines[f"{order}-gram"] = self._scores(ngram.cross_entropy(held_ids.numpy()))
        final = self.history_[-1]["held_out_loss"] if self.history_ else held_out(self.model_)
        self.metrics_ = {
            "validation": {
                "model": self._scores(final),
                **baselines,
                self.unit: len(held_ids) - 1,
                "characters": len(held_text),
            },
            "training_seconds": self.training_seconds_,
            "training_tokens": len(train_ids),
            "steps": len(trainer.steps),
            "passes": len(trainer.steps) / steps_per_pass,
        }
        self.metrics_ |= self.metrics_["validation"]["model"]  # the headline scores on top
        self.metrics_["scored_on"] = "validation"
        return self

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

    def score(self, text: str) -> dict:
        """The model's and the baselines' scores on ``text``: nats per token, perplexity,
        and bits per character at the char level."""
        self._check_fitted()
        ids = self.encode(text)
        total, count = stream_loss(self.model_, ids)
        return {"model": self._scores(total / count), self.unit: count}

    def generate(
        self,
        prime: str = "",
        length: int = 500,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ):
        """Yield the text that follows ``prime``, one token's text at a time, sampled from
        the model with ``temperature`` (0: greedy), ``top_k`` and ``top_p``. The prime is read
        once; each new token costs one step of the model from the carried state. With
        ``seed`` the text is reproducible."""
        from ..decoding import stream

        self._check_fitted()
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length={length!r} must be an integer >= 1")
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
        lines = [f"Held out ({self.metrics_['validation'][self.unit]:,} tokens):"]
        lines += self.table(self.metrics_["validation"])
        lines.append(
            f"\nTrained {self.metrics_['steps']:,} steps ({self.metrics_['passes']:.2f} passes "
            f"over {self.metrics_['training_tokens']:,} tokens) in "
            f"{self.metrics_['training_seconds']:.0f} s."
        )
        return "\n".join(lines)

    # --- run directories ---------------------------------------------------------------------

    def _models(self) -> dict:
        return {"model": self.model_}

    def _data_state(self) -> dict:
        return {"vocabulary": self.vocabulary_.to_dict()}

    def _restore(self, state: dict) -> None:
        self.vocabulary_ = Vocabulary.from_dict(state["vocabulary"])
        self.model_ = self._new_model()

    def _write_pictures(self, directory: Path) -> None:
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


def train_run(modeler: LanguageModeler, data, out, *, overwrite=False, resume=False) -> str:
    """Read the text file ``data``, fit, write the run directory ``out``; return the report."""
    from ..data.readers import read_text
    from .rundir import staging

    text = read_text(data)
    with staging(out, overwrite=overwrite, resume=resume) as partial:
        modeler.fit(
            text,
            checkpoint_dir=partial / "checkpoint",
            resume=resume,
            diagnose_dir=partial / "diagnostics",
        )
        modeler._write(partial)
    return f"{modeler.report()}\n\nRun directory: {out}"


def evaluate_run(run, data, *, held_out: bool = False) -> str:
    """Score the run on the text file ``data`` (with ``held_out``, only the part a run with
    the same ``val`` held out); record it in metrics.json; return what is printed."""
    from ..data.readers import read_text

    modeler = LanguageModeler.load(run)
    text = read_text(data)
    if held_out:
        text = modeler.split(text)[1]
    scores = modeler.score(text)["model"]
    source = f"{data} (held-out part)" if held_out else str(data)
    record_evaluation(run, {"data": source, **scores})
    units = [f"{scores['bpc']:.4f} bits per character"] if "bpc" in scores else []
    return f"{source}: " + ", ".join([*units, f"perplexity {scores['perplexity']:.3f}"])
