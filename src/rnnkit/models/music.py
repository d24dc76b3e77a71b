"""Polyphonic music over piano-roll frames: a recurrent model of which pitches sound in each
frame, and which of the held ones are struck again.

A frame ``t`` is two binary vectors over ``P`` pitches: ``s_t`` (sounding) and ``o_t``
(onset). ``o_tp`` is implied except where the pitch sounded in the frame before as well:
a pitch that starts sounding is struck, one that is silent is not. What is left to model is
``s_t``, and for the pitches held over, ``c_t = s_t * s_{t-1}``, whether each is
re-struck. So

.. math::

    x_t = [s_{t-1}; o_{t-1}], \\qquad h_t = \\mathrm{RNN}(x_t, h_{t-1}), \\qquad
    p(s_t, o_t \\mid s_{<t}, o_{<t}) = p(s_t \\mid h_t)
        \\prod_{p:\\, c_{tp} = 1} p(o_{tp} \\mid h_t, s_t)

and the negative log-likelihood per frame splits into the sounding part (what the
polyphonic-music literature reports, e.g. Boulanger-Lewandowski et al. 2012 on JSB
Chorales) and the articulation part.

``p(s_t | h_t)`` is either independent Bernoulli per pitch (the literature's RNN baseline)
or NADE over the pitches from low to high (Larochelle & Murray 2011; the RNN-NADE of
Boulanger-Lewandowski et al. 2012), whose chords are coherent because each pitch is drawn
knowing those below it:

.. math::

    a_1 = c + C h_t, \\quad a_{p+1} = a_p + W_{:,p}\\, s_{tp}, \\quad
    p(s_{tp} = 1 \\mid s_{t,<p}, h_t) = \\sigma(b_p + D_p h_t + V_p \\cdot \\sigma(a_p))

The articulation is ``σ(U h_t + E s_t + e)`` for every held pitch, given the whole chord.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_integer
from ..registry import recurrent_layer
from .language_model import select_rows

OUTPUTS = ("bernoulli", "nade")


def bernoulli_log_prob(logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """log p of binary ``values`` under independent Bernoulli ``logits``, summed over the
    last axis."""
    return -F.binary_cross_entropy_with_logits(logits, values, reduction="none").sum(-1)


class FrameModel(nn.Module):
    """The recurrent frame model of the module docstring.

    Args:
        pitches: P, the width of a frame.
        hidden_size, num_layers, cell, dropout, rnn_options: the recurrent stack.
        output: "bernoulli" (independent pitches) or "nade" (pitches low to high).
        nade_size: NADE's hidden units.

    Shapes: ``forward(sounding (B, T, P), onset (B, T, P), state=None, lengths=None) ->
    (hidden (B, T, H), state)``: ``hidden[:, t]`` has read the frames before ``t`` and
    predicts frame ``t`` (the first from a silent frame).
    """

    def __init__(
        self,
        pitches: int,
        *,
        hidden_size: int = 256,
        num_layers: int = 2,
        cell: str = "lstm",
        dropout: float = 0.0,
        output: str = "nade",
        nade_size: int = 64,
        rnn_options: dict | None = None,
    ):
        super().__init__()
        self.pitches = check_integer("pitches", pitches, 1)
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r} is not one of {OUTPUTS}")
        self.output = output
        self.rnn = recurrent_layer(
            cell, 2 * pitches, hidden_size, num_layers, user=rnn_options,
            dropout=dropout if num_layers > 1 else 0.0,  # between layers; one has none
        )  # fmt: skip
        size = self.rnn.output_size
        self.dropout = nn.Dropout(dropout)
        self.sounding = nn.Linear(size, pitches)  # b + D h
        if output == "nade":
            check_integer("nade_size", nade_size, 1)
            self.nade_bias = nn.Linear(size, nade_size)  # c + C h
            self.nade_in = nn.Parameter(torch.randn(nade_size, pitches) * 0.01)  # W
            self.nade_out = nn.Parameter(torch.randn(pitches, nade_size) * 0.01)  # V
        self.articulation = nn.Linear(size, pitches)  # e + U h
        self.articulation_chord = nn.Linear(pitches, pitches, bias=False)  # E

    def forward(self, sounding, onset, state=None, lengths=None):
        previous = torch.cat([sounding, onset], -1)
        previous = torch.cat([previous.new_zeros(previous[:, :1].shape), previous[:, :-1]], 1)
        if state is not None:  # a continued stream: the first input is the last frame read
            previous = previous[:, 1:]
        hidden, state = self.rnn(previous, state=state, lengths=lengths)
        return self.dropout(hidden), state

    def step(self, sounding, onset, state):
        """One frame in (``(N, P)`` each, the frame just made), the hidden output that
        predicts the next and the state after it."""
        hidden, state = self.rnn(torch.cat([sounding, onset], -1)[:, None], state=state)
        return hidden[:, 0], state

    def initial(self, rows: int):
        """The hidden output that predicts the first frame of ``rows`` pieces, and its state."""
        zeros = self.sounding.weight.new_zeros(rows, self.pitches)
        return self.step(zeros, zeros, None)

    def sounding_logits(self, hidden, sounding):
        """Logits of ``p(s_tp = 1 | s_{t,<p}, h_t)`` for every pitch, teacher-forced by
        ``sounding`` (the chord below each pitch); shape of ``sounding``."""
        logits = self.sounding(hidden)
        if self.output == "bernoulli":
            return logits
        contributions = sounding.unsqueeze(-1) * self.nade_in.t()  # (..., P, K)
        below = torch.cumsum(contributions, -2) - contributions  # W s over the pitches below
        units = torch.sigmoid(self.nade_bias(hidden).unsqueeze(-2) + below)
        return logits + (units * self.nade_out).sum(-1)

    def articulation_logits(self, hidden, sounding):
        return self.articulation(hidden) + self.articulation_chord(sounding)

    def log_prob(self, hidden, sounding, onset, previous):
        """(log p of the sounding chords, log p of the re-strikes), each summed over the
        pitches, one per frame; ``previous`` is the sounding frame before each."""
        sounding_part = bernoulli_log_prob(self.sounding_logits(hidden, sounding), sounding)
        held = sounding * previous
        logits = self.articulation_logits(hidden, sounding)
        articulation = -F.binary_cross_entropy_with_logits(logits, onset, reduction="none")
        return sounding_part, (articulation * held).sum(-1)

    def sample(self, hidden, previous, *, temperature=1.0, top_p=None, generator=None):
        """A frame ``(sounding, onset)`` (N, P) drawn given ``hidden`` (N, H) and the sounding
        frame before it; each binary choice through ``rnnkit.decoding.filter_logits``."""
        rows = hidden.shape[0]
        sounding = hidden.new_zeros(rows, self.pitches)
        if self.output == "bernoulli":
            sounding = _draw(self.sounding(hidden), temperature, top_p, generator)
        else:
            bias, direct = self.nade_bias(hidden), self.sounding(hidden)
            for p in range(self.pitches):  # each pitch knowing the chord below it
                logit = direct[:, p] + torch.sigmoid(bias) @ self.nade_out[p]
                sounding[:, p] = _draw(logit, temperature, top_p, generator)
                bias = bias + self.nade_in[:, p] * sounding[:, p : p + 1]
        strikes = _draw(self.articulation_logits(hidden, sounding), temperature, top_p, generator)
        onset = torch.where(previous.bool(), strikes, torch.ones_like(strikes)) * sounding
        return sounding, onset

    def reorder_state(self, state, index):
        return select_rows(state, index)


def _draw(logits, temperature, top_p, generator):
    """Binary draws from the Bernoulli ``logits``: the two outcomes' logits ``[0, l]``
    filtered as any token's are (temperature 0: the likelier outcome)."""
    from ..decoding import filter_logits

    pair = torch.stack([torch.zeros_like(logits), logits], -1)
    probs = torch.softmax(filter_logits(pair, temperature, top_p=top_p), -1)
    flat = probs.reshape(-1, 2)
    return torch.multinomial(flat, 1, generator=generator).reshape(logits.shape).to(logits.dtype)


# --- baselines: what a frame model has to beat, on the sounding frames ----------------------------


class PitchFrequency:
    """Each pitch sounds independently with its training frequency (add-one smoothed): the
    frame distribution with no memory and no harmony."""

    def fit(self, rolls) -> PitchFrequency:
        frames = sum(len(roll) for roll in rolls)
        counts = sum(roll.sum(0) for roll in rolls)
        self.probability_ = (counts + 1.0) / (frames + 2.0)
        return self

    def log_prob(self, roll):
        """log p of each frame of ``roll`` (T, P) bool: (T,)."""
        p = self.probability_
        return np.where(roll, np.log(p), np.log1p(-p)).sum(1)

    def sample(self, frames: int, rng: np.random.Generator):
        """``frames`` frames (T, P) bool drawn from the distribution."""
        return rng.random((frames, len(self.probability_))) < self.probability_


class RepeatPrevious:
    """Each pitch keeps what it did in the frame before, and flips with the training rate of
    flips (add-one smoothed, so a change costs a finite NLL); the first frame of a piece is
    ``PitchFrequency``'s."""

    def fit(self, rolls) -> RepeatPrevious:
        flips = sum(int((roll[1:] != roll[:-1]).sum()) for roll in rolls)
        pairs = sum((len(roll) - 1) * roll.shape[1] for roll in rolls)
        self.flip_ = (flips + 1.0) / (pairs + 2.0)
        self.first_ = PitchFrequency().fit(rolls)
        return self

    def log_prob(self, roll):
        changed = (roll[1:] != roll[:-1]).sum(1)
        kept = roll.shape[1] - changed
        rest = changed * np.log(self.flip_) + kept * np.log1p(-self.flip_)
        return np.concatenate([self.first_.log_prob(roll[:1]), rest])

    def sample(self, frames: int, rng: np.random.Generator):
        roll = self.first_.sample(frames, rng)  # row 0 is the first frame; the rest flips
        flips = rng.random(roll.shape) < self.flip_
        for t in range(1, frames):
            roll[t] = roll[t - 1] ^ flips[t]
        return roll


class ChordNGram:
    r"""An n-gram over whole frames (each chord one symbol) with interpolated absolute
    discounting, backed off to ``PitchFrequency`` so that a chord never seen in training
    still has its probability and the distribution sums to 1 over all :math:`2^P` chords:

    .. math::

        p_0(c) = \prod_p q_p^{c_p} (1 - q_p)^{1 - c_p}, \qquad
        p_k(c \mid h) = \frac{\max(n(h c) - D, 0)}{n(h)}
                      + \frac{D\, u(h)}{n(h)}\, p_{k-1}(c \mid h')

    ``h`` the ``k - 1`` frames before, ``h'`` the ``k - 2``; ``n`` counts, ``u(h)`` the
    distinct chords seen after ``h``; a history never seen falls back to ``p_{k-1}``. The
    first frames of a piece use the histories they have.
    """

    def __init__(self, order: int = 3, discount: float = 0.75):
        check_integer("order", order, 1)
        if not 0 < discount < 1:
            raise ValueError(f"discount={discount!r} must be in (0, 1)")
        self.order, self.discount = order, discount

    def _ids(self, roll, *, add: bool = False) -> list[int]:
        """Each frame's chord id (-1 for a chord training never saw)."""
        ids = []
        for row in np.packbits(roll, axis=1):
            key = row.tobytes().hex()
            if add and key not in self.chords_:
                self.chords_[key] = len(self.chords_)
            ids.append(self.chords_.get(key, -1))
        return ids

    def fit(self, rolls) -> ChordNGram:
        self.base_ = PitchFrequency().fit(rolls)
        self.chords_: dict[str, int] = {}
        counts = Counter()
        for roll in rolls:
            ids = self._ids(roll, add=True)
            for t in range(len(ids)):
                for k in range(1, min(self.order, t + 1) + 1):
                    counts[tuple(ids[t - k + 1 : t + 1])] += 1
        self._index(counts)
        return self

    def _index(self, counts: Counter) -> None:
        """n(h c), and per history n(h) and u(h)."""
        self.counts_ = counts
        self.seen_, self.types_ = Counter(), Counter()
        for gram, count in counts.items():
            self.seen_[gram[:-1]] += count
            self.types_[gram[:-1]] += 1

    def log_prob(self, roll):
        base = np.exp(self.base_.log_prob(roll))
        ids = self._ids(roll)
        out = np.empty(len(ids))
        for t in range(len(ids)):
            p = base[t]
            for k in range(1, min(self.order, t + 1) + 1):
                gram = tuple(ids[t - k + 1 : t + 1])
                seen = self.seen_[gram[:-1]]
                if seen == 0 or -1 in gram[:-1]:
                    break  # this history and the longer ones were never seen
                count = self.counts_[gram] if gram[-1] >= 0 else 0
                backoff = self.discount * self.types_[gram[:-1]] / seen
                p = max(count - self.discount, 0) / seen + backoff * p
            out[t] = math.log(p)
        return out

    def sample(self, frames: int, rng: np.random.Generator):
        """``frames`` frames drawn from the model: at each history, a chord seen after it
        with probability ``(n(h c) - D) / n(h)``, else (the remaining ``D u(h) / n(h)``) a
        draw at the shorter history, down to ``PitchFrequency``, which is how the
        interpolated sum above is made."""
        following: dict[tuple, list] = {}
        for gram, count in self.counts_.items():
            following.setdefault(gram[:-1], []).append((gram[-1], count))
        chords = np.unpackbits(
            np.array([np.frombuffer(bytes.fromhex(key), np.uint8) for key in self.chords_]),
            axis=1,
        )[:, : len(self.base_.probability_)].astype(bool)
        ids: list[int] = []
        roll = self.base_.sample(frames, rng)  # the rows a draw backs off to
        for t in range(frames):
            drawn = -1
            for k in range(min(self.order, t + 1), 0, -1):  # longest history first
                history = tuple(ids[t - k + 1 : t])
                seen = self.seen_[history]
                if seen == 0 or -1 in history:
                    continue
                if rng.random() < 1 - self.discount * self.types_[history] / seen:
                    options = following[history]
                    weights = np.array([count - self.discount for _, count in options])
                    drawn = options[rng.choice(len(options), p=weights / weights.sum())][0]
                    break
            if drawn >= 0:
                roll[t] = chords[drawn]
            ids.append(drawn if drawn >= 0 else self._ids(roll[t : t + 1])[0])
        return roll

    def to_dict(self) -> dict:
        """The counts as JSON: the chords (packed bits as hex) and each k-gram's ids and count."""
        return {"order": self.order, "discount": self.discount,
                "frequency": self.base_.probability_.tolist(), "chords": list(self.chords_),
                "grams": [[*gram, count] for gram, count in self.counts_.items()]}  # fmt: skip

    @classmethod
    def from_dict(cls, state: dict) -> ChordNGram:
        ngram = cls(state["order"], state["discount"])
        ngram.base_ = PitchFrequency()
        ngram.base_.probability_ = np.asarray(state["frequency"])
        ngram.chords_ = {key: i for i, key in enumerate(state["chords"])}
        ngram._index(Counter({tuple(row[:-1]): row[-1] for row in state["grams"]}))
        return ngram
