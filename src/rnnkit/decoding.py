r"""Decoding: turning a model that scores the next token into sequences.

Greedy search, sampling (with temperature, top-k and top-p / nucleus filtering) and beam search
with a length penalty, for any model that follows the *decoder protocol*. Nothing here knows
about a particular model; the models know nothing about search.

**The decoder protocol.** A decoder is any object with two methods:

``decoder.decode_step(tokens, state) -> (logits, new_state)``
    one step: ``tokens`` (LongTensor ``(N,)``) are the previous tokens of ``N`` sequences,
    ``logits`` (``(N, V)``) the unnormalised scores ``z`` of their next token,
    ``p(y_t = v | y_{<t}) = softmax(z)_v``.
``decoder.reorder_state(state, index) -> state``
    the state of rows ``index`` (LongTensor ``(M,)``) of the batch, in that order; rows may
    repeat (beam search expands ``B`` rows to ``B * K`` with
    ``index = arange(B).repeat_interleave(K)``). Only beam search calls it.

``state`` is whatever the model likes (a tensor, a tuple, a dict); only the model looks inside.
``state=None`` is passed to the first ``decode_step`` as it is, for models that read it as
"start fresh". Every search starts from ``start`` (LongTensor ``(B,)``, e.g. ``<s>``), which is
fed to the first step and is not part of the output. Steps run under the caller's grad mode
(wrap inference in ``torch.no_grad()``), except beam search, which returns plain floats.

**End of sequence.** With ``eos`` given, a row ends when it emits ``eos``: the ``eos`` is not
part of its tokens, but its log-probability is part of the sequence's. A row that has ended
keeps being fed ``eos`` (one batch, one call per step) until every row has ended or
``max_length`` steps have run; its later outputs are ignored, so its part of the final state is
not meaningful past its ``eos``. ``max_length`` counts steps, i.e. tokens including ``eos``.
To continue generating where ``greedy`` or ``sample`` stopped at ``max_length``, call it again
with ``state=decoded.state`` and ``start`` = each row's last token.

**Banned tokens.** Every search takes ``banned``, token ids it never emits (a vocabulary's
padding, and its ``<unk>`` unless the caller wants it): their scores are set to ``-inf``
before the choice, so greedy takes the best allowed token, sampling renormalises over the
allowed ones, and beam search never extends a beam with one. Reported log-probabilities stay
the model's own. Banning every token, or an id outside the vocabulary, is an error.

**Greedy** (:func:`greedy`): ``y_t = argmax_v z_t[v]`` (the first of equal maxima, as
``torch.argmax``). The most probable token at each step, not the most probable sequence.

**Sampling** (:func:`sample`, :func:`stream`): ``y_t ~ softmax(filter_logits(z_t))``, with
:func:`filter_logits` applying, in this order:

- temperature ``τ``: ``z / τ``. ``τ < 1`` sharpens the distribution, ``τ > 1`` flattens it,
  ``τ = 0`` is its limit, greedy;
- top-k: keep the ``k`` largest scores, set the rest to ``-inf``;
- top-p, nucleus sampling (Holtzman et al. 2020, "The Curious Case of Neural Text
  Degeneration"): with ``π = softmax`` of what is left, keep the smallest set of most probable
  tokens whose probability reaches ``p``, ``V_p = {v_(1), ..., v_(m)}`` with
  ``m = min{j : π(v_(1)) + ... + π(v_(j)) >= p}``, tokens sorted by decreasing ``π``.

and renormalising over what is kept. The most probable token is always kept, so no setting
leaves nothing to sample. Ties are broken towards the lower token id everywhere (top-k keeps
exactly ``k``). Reported log-probabilities are always the model's own,
``log softmax(z_t)[y_t]``, not those of the filtered distribution: a sequence's score does not
depend on how it was found.

**Beam search** (:func:`beam_search`) keeps, for each row, the ``K`` (``beam_size``) partial
sequences (beams) with the highest ``log P(y_1..y_t) = Σ_s log p(y_s | y_{<s})``. At each step
every beam is extended by every token; of the ``K * V`` candidates, the best ``2K`` are taken in
order: an ``eos`` candidate among the best ``K`` becomes a finished hypothesis (one further down
is dropped, as in fairseq and Hugging Face: so ``beam_size=1`` is exactly greedy), and the best
``K`` non-``eos`` candidates become the next beams. Hypotheses are ranked by

.. math::

    \mathrm{score}(y) = \frac{\log P(y)}{|y|^{\alpha}}

where ``|y|`` counts the ``eos`` and ``α`` is ``length_penalty`` (``α = 0``: the plain
log-probability, which favours short sequences since every token lowers it; ``α = 1``: the mean
log-probability per token; Wu et al. 2016 (GNMT) divide by ``((5 + |y|) / 6)^α`` instead, which
normalises short sequences less). A row stops once it has ``K`` finished hypotheses and no open
beam's score so far, ``log P(y_1..y_t) / t^α``, beats the worst of them. For ``α <= 0`` that is
exact (an open beam can only lose by going on); for ``α > 0`` it is the usual heuristic, since
a longer beam's score could still rise. At ``max_length`` the open beams count as hypotheses
too, with ``finished=False``. All rows run as one batch of ``B * K``; a row that has stopped
is dropped from the batch (through ``reorder_state``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch

from ._checks import check_finite, check_integer, is_integer, is_number

__all__ = [
    "Decoded",
    "Hypothesis",
    "beam_search",
    "filter_logits",
    "greedy",
    "sample",
    "stream",
]


class Decoded(NamedTuple):
    """What :func:`greedy` and :func:`sample` return, for ``B`` rows.

    ``tokens`` (LongTensor ``(B, L)``, ``L = max(lengths)``): the generated tokens, the start
    token and ``eos`` excluded, ``pad`` after each row's end. ``lengths`` (LongTensor ``(B,)``):
    tokens per row, ``eos`` not counted. ``log_probs`` (``(B,)``): ``Σ log p`` of the chosen
    tokens under the model, ``eos``'s included where emitted. ``finished`` (BoolTensor ``(B,)``):
    the row emitted ``eos`` (False: it stopped at ``max_length``). ``state``: the decoder's state
    after the last step.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    log_probs: torch.Tensor
    finished: torch.Tensor
    state: Any


class Hypothesis(NamedTuple):
    """One sequence found by :func:`beam_search`.

    ``tokens``: the token ids, ``eos`` excluded. ``log_prob``: ``log P`` of the tokens (and of
    the ``eos`` if finished) under the model. ``score``: ``log_prob / length ** length_penalty``
    with ``length = len(tokens) + finished``. ``finished``: it ended with ``eos`` (False: cut at
    ``max_length``).
    """

    tokens: list[int]
    log_prob: float
    score: float
    finished: bool


# --- argument checks ---------------------------------------------------------------------


def _check_int(name: str, value, minimum: int | None = None) -> int:
    if not is_integer(value, numpy=True):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if minimum is not None:
        check_integer(name, value, minimum, numpy=True, what=f"an int >= {minimum}", got=True)
    return int(value)


def _check_real(name: str, value) -> float:
    if not is_number(value, numpy=True):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    return float(check_finite(name, value, numpy=True, got=True))


def _check_filters(temperature, top_k, top_p) -> None:
    if _check_real("temperature", temperature) < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature!r}")
    if top_k is not None:
        _check_int("top_k", top_k, minimum=1)
    if top_p is not None:
        value = _check_real("top_p", top_p)
        if not 0 < value <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")


def _check_decoder(decoder, *methods: str) -> None:
    for method in methods:
        if not callable(getattr(decoder, method, None)):
            raise TypeError(
                f"decoder must have a method {method}() (the decoder protocol in "
                f"rnnkit.decoding), got a {type(decoder).__name__} without one"
            )


def _check_start(start) -> torch.Tensor:
    if not isinstance(start, torch.Tensor):
        raise TypeError(f"start must be a LongTensor of shape (B,), got {type(start).__name__}")
    if start.dim() != 1 or start.shape[0] == 0:
        raise ValueError(
            f"start must have shape (B,) with B >= 1, one start token per row; got shape "
            f"{tuple(start.shape)}"
        )
    if start.is_floating_point() or start.is_complex() or start.dtype == torch.bool:
        raise TypeError(f"start must hold integer token ids, got dtype {start.dtype}")
    return start.long()


def _check_eos(eos) -> int | None:
    return None if eos is None else _check_int("eos", eos, minimum=0)


def _check_logits(logits, rows: int, vocab_size: int | None, eos: int | None) -> int:
    """Checks what decode_step returned; returns V."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != rows:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"decoder.decode_step must return logits of shape (N, V) with N={rows} (one row per "
            f"token fed), got {shape}"
        )
    if bool(torch.isnan(logits).any()):
        # Caught here: downstream, top-k, multinomial and beam search fail in obscure ways.
        raise ValueError("decoder.decode_step returned NaN logits")
    if vocab_size is None:
        vocab_size = logits.shape[1]
        if eos is not None and eos >= vocab_size:
            raise ValueError(
                f"eos={eos} is not a token of the decoder's vocabulary: its logits have "
                f"V={vocab_size} columns, so eos must be in [0, {vocab_size})"
            )
    elif logits.shape[1] != vocab_size:
        raise ValueError(
            f"decoder.decode_step returned {logits.shape[1]} columns of logits after "
            f"{vocab_size} at the first step; V must stay the same"
        )
    return vocab_size


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    # Half-precision logits are normalised and summed in float32: log-probabilities of long
    # sequences lose too much in 16 bits.
    return torch.log_softmax(logits, dim=-1, dtype=torch.promote_types(logits.dtype, torch.float32))


# --- filtering ---------------------------------------------------------------------------


def _top(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest entries along the last dimension, best first, ties to the lower index.

    ``torch.topk`` leaves the choice and order among equal values unspecified, while
    ``torch.argmax`` (greedy) takes the first: settling ties by index here is what makes
    top_k=1 sampling and beam_size=1 pick exactly greedy's token, even on tied scores.
    """
    kth = values.topk(k, dim=-1).values[..., -1:]
    above = values > kth
    level = values == kth
    room = k - above.sum(-1, keepdim=True)
    chosen = above | (level & (level.cumsum(-1) <= room))  # exactly k per row
    index = chosen.nonzero()[:, -1].view(*values.shape[:-1], k)  # ascending ids
    picked = values.gather(-1, index)
    order = picked.sort(dim=-1, descending=True, stable=True).indices
    return picked.gather(-1, order), index.gather(-1, order)


def filter_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """Logits ``(..., V)`` divided by ``temperature``, with ``-inf`` on the tokens filtered out.

    In order: ``logits / temperature``; keep the ``top_k`` largest (exactly ``top_k``: among
    equal scores the lower ids); of the distribution ``π = softmax`` of what is left, keep the
    smallest set of most probable tokens whose probability reaches ``top_p`` (nucleus; among
    equal probabilities the lower ids first). The most probable token is always kept.
    ``temperature=0`` is the limit ``τ -> 0``: only the most probable token is kept (at its
    unscaled logit), i.e. greedy. ``top_k=None`` / ``top_p=None`` (or ``top_k >= V``,
    ``top_p=1``) keep everything. ``softmax`` of the result is the distribution
    :func:`sample` draws from.

    >>> filter_logits(torch.tensor([2.0, 1.0, 0.0, -1.0]), top_k=2)
    tensor([2., 1., -inf, -inf])
    """
    _check_filters(temperature, top_k, top_p)
    if not isinstance(logits, torch.Tensor) or logits.dim() == 0 or logits.shape[-1] == 0:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a tensor of shape (..., V) with V >= 1, got {shape}")
    minus_inf = torch.full_like(logits, float("-inf"))
    if temperature == 0:
        best = logits.argmax(-1, keepdim=True)
        return minus_inf.scatter(-1, best, logits.gather(-1, best))
    scaled = logits / temperature
    vocab_size = logits.shape[-1]
    if top_k is not None and top_k < vocab_size:
        _, kept = _top(scaled, top_k)
        scaled = minus_inf.scatter(-1, kept, scaled.gather(-1, kept))
    if top_p is not None and top_p < 1:
        probs = torch.softmax(
            scaled, dim=-1, dtype=torch.promote_types(scaled.dtype, torch.float32)
        )
        sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
        cumulative = sorted_probs.cumsum(-1)
        # Mass of the tokens before each one: a token is kept while that is still < top_p,
        # which keeps the first (0 < top_p) and stops right after the sum reaches top_p.
        before = torch.cat([torch.zeros_like(cumulative[..., :1]), cumulative[..., :-1]], -1)
        drop_sorted = before >= top_p
        drop = torch.empty_like(drop_sorted).scatter_(-1, order, drop_sorted)
        scaled = scaled.masked_fill(drop, float("-inf"))
    return scaled


# --- greedy and sampling: one step loop ----------------------------------------------------


def _ban(logits: torch.Tensor, banned: tuple[int, ...]) -> torch.Tensor:
    """``logits`` with the ``banned`` ids at ``-inf`` (checked against the vocabulary)."""
    if not banned:
        return logits
    V = logits.shape[-1]
    outside = [b for b in banned if not 0 <= b < V]
    if outside:
        raise ValueError(f"banned holds ids {outside} outside the vocabulary of {V} tokens")
    if len(set(banned)) >= V:
        raise ValueError(f"banned holds every one of the {V} tokens: nothing is left to emit")
    index = torch.tensor(banned, device=logits.device)
    return logits.index_fill(-1, index, float("-inf"))


def _check_banned(banned) -> tuple[int, ...]:
    try:
        ids = tuple(banned)
    except TypeError:
        raise TypeError(f"banned must be a sequence of token ids, got {banned!r}") from None
    if not all(is_integer(b, numpy=True) for b in ids):
        raise TypeError(f"banned must be a sequence of token ids (integers), got {banned!r}")
    return tuple(int(b) for b in ids)


def _steps(decoder, state, start, max_length, eos, temperature, top_k, top_p, generator,
           banned=()):  # fmt: skip
    """The step loop shared by greedy, sample and stream (arguments already checked).

    Yields per step ``(tokens (B,), log p of them (B,), state)``; rows that have ended yield
    ``eos`` with log p 0. Stops after the step where every row has ended, or at max_length.
    """
    tokens = start
    ended = torch.zeros_like(start, dtype=torch.bool)
    vocab_size = None
    for _ in range(max_length):
        logits, state = decoder.decode_step(tokens, state)
        vocab_size = _check_logits(logits, start.shape[0], vocab_size, eos)
        allowed = _ban(logits, banned)
        if temperature == 0:
            tokens = allowed.argmax(-1)
        else:
            filtered = filter_logits(allowed, temperature, top_k, top_p)
            probs = torch.softmax(
                filtered, -1, dtype=torch.promote_types(logits.dtype, torch.float32)
            )
            tokens = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        log_p = _log_softmax(logits).gather(1, tokens[:, None]).squeeze(1)
        if eos is not None:
            tokens = tokens.masked_fill(ended, eos)
            log_p = log_p.masked_fill(ended, 0.0)
            ended = ended | (tokens == eos)
        yield tokens, log_p, state
        if bool(ended.all()):
            return


def _checked_steps(decoder, state, start, max_length, eos, temperature, top_k, top_p, generator,
                   banned=()):  # fmt: skip
    """``_steps`` after checking every argument, so a bad one fails at the call."""
    _check_decoder(decoder, "decode_step")
    start = _check_start(start)
    max_length = _check_int("max_length", max_length, minimum=1)
    eos = _check_eos(eos)
    _check_filters(temperature, top_k, top_p)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {generator!r}")
    banned = _check_banned(banned)
    return _steps(decoder, state, start, max_length, eos, temperature, top_k, top_p, generator,
                  banned)  # fmt: skip


def _decode(decoder, state, start, max_length, eos, pad, temperature, top_k, top_p, generator,
            banned=()):  # fmt: skip
    pad = _check_int("pad", pad)
    chosen, log_ps = [], []
    for tokens, log_p, step_state in _checked_steps(
        decoder, state, start, max_length, eos, temperature, top_k, top_p, generator, banned
    ):
        chosen.append(tokens)
        log_ps.append(log_p)
        final_state = step_state  # max_length >= 1: there is at least one step
    chosen = torch.stack(chosen, 1)  # (B, steps)
    if eos is None:
        ended = torch.zeros_like(chosen, dtype=torch.bool)
    else:
        ended = (chosen == eos).cumsum(1) > 0  # at and after each row's eos
    lengths = (~ended).sum(1)
    return Decoded(
        tokens=chosen.masked_fill(ended, pad)[:, : int(lengths.max())],
        lengths=lengths,
        log_probs=torch.stack(log_ps, 1).sum(1),
        finished=ended[:, -1],
        state=final_state,
    )


def greedy(
    decoder,
    state,
    start: torch.Tensor,
    max_length: int,
    eos: int | None = None,
    pad: int = 0,
    *,
    banned=(),
) -> Decoded:
    """Greedy decoding: the most probable token at every step, ``argmax_v z_t[v]``.

    Args:
        decoder: follows the decoder protocol (only ``decode_step`` is used).
        state: the decoder state for the ``B`` rows before the first step.
        start: LongTensor ``(B,)``, the token each row starts from (fed, not output).
        max_length: steps at most (tokens including ``eos``), >= 1.
        eos: the end-of-sequence token, or None to always run ``max_length`` steps.
        pad: what fills ``tokens`` after each row's end.
        banned: token ids never emitted (see the module docstring).

    Returns:
        :class:`Decoded`.

    >>> out = greedy(model, model.start(condition), torch.full((B,), bos), 50, eos=eos)
    >>> out.tokens[b, : out.lengths[b]]  # row b's tokens
    """
    return _decode(decoder, state, start, max_length, eos, pad, 0, None, None, None, banned)


def sample(
    decoder,
    state,
    start: torch.Tensor,
    max_length: int,
    eos: int | None = None,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    pad: int = 0,
    banned=(),
) -> Decoded:
    """Ancestral sampling: ``y_t ~ softmax(filter_logits(z_t, temperature, top_k, top_p))``.

    Arguments as :func:`greedy`, and the filters of :func:`filter_logits` (``temperature=0``
    means greedy, ``top_k=1`` too). ``generator``: a ``torch.Generator`` on the logits' device
    for reproducible draws (None: torch's global one). ``log_probs`` are under the model's
    unfiltered distribution.
    """
    return _decode(
        decoder, state, start, max_length, eos, pad, temperature, top_k, top_p, generator, banned
    )


def stream(
    decoder,
    state,
    start: torch.Tensor,
    max_length: int,
    eos: int | None = None,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    banned=(),
) -> Iterator[tuple[torch.Tensor, Any]]:
    """Yields each step's tokens ``(B,)`` and the decoder state after them, as they are made.

    The same draws as :func:`sample` with the same arguments and generator (``temperature=0``:
    greedy). A row that has ended yields ``eos`` at every later step; the iteration stops after
    the step where every row has emitted ``eos``, or after ``max_length`` steps. The state is
    what ``decode_step`` returned at that step, so ``decode_step(tokens, state)`` goes on.
    Arguments are checked when this is called, not at the first ``next``.

    >>> for tokens, _ in stream(model, state, torch.tensor([bos]), 200, eos, top_p=0.9):
    ...     print(vocabulary.decode(tokens.tolist()), end="", flush=True)
    """
    steps = _checked_steps(
        decoder, state, start, max_length, eos, temperature, top_k, top_p, generator, banned
    )
    return ((tokens, new_state) for tokens, _, new_state in steps)


# --- beam search ---------------------------------------------------------------------------


def beam_search(
    decoder,
    state,
    start: torch.Tensor,
    max_length: int,
    eos: int | None,
    *,
    beam_size: int = 5,
    length_penalty: float = 1.0,
    n_best: int = 1,
    banned=(),
) -> list[list[Hypothesis]]:
    """Beam search (see the module docstring), ``B`` rows times ``beam_size`` beams in one batch.

    Args:
        decoder: follows the decoder protocol (``decode_step`` and ``reorder_state``).
        state: the decoder state for the ``B`` rows; it is expanded to ``B * beam_size`` rows
            with ``reorder_state(state, arange(B).repeat_interleave(beam_size))``.
        start: LongTensor ``(B,)``, the token each row starts from.
        max_length: steps at most (tokens including ``eos``), >= 1.
        eos: the end-of-sequence token, or None (every hypothesis then runs to ``max_length``).
        beam_size: ``K``, beams kept per row; 1 is greedy.
        length_penalty: ``α`` in ``score = log P(y) / |y|^α``; 0: no normalisation; > 0
            favours longer sequences, < 0 shorter ones.
        n_best: hypotheses returned per row, 1 to ``beam_size``.
        banned: token ids never emitted (see the module docstring).

    Returns:
        for each row, its ``n_best`` best :class:`Hypothesis` by score, best first (fewer if
        fewer sequences exist, e.g. ``V ** max_length < n_best``).
    """
    _check_decoder(decoder, "decode_step", "reorder_state")
    start = _check_start(start)
    max_length = _check_int("max_length", max_length, minimum=1)
    eos = _check_eos(eos)
    beam_size = _check_int("beam_size", beam_size, minimum=1)
    alpha = _check_real("length_penalty", length_penalty)
    n_best = _check_int("n_best", n_best, minimum=1)
    if n_best > beam_size:
        raise ValueError(
            f"n_best must be in [1, beam_size={beam_size}] (a row keeps beam_size "
            f"hypotheses), got {n_best}"
        )
    banned = _check_banned(banned)
    with torch.no_grad():
        pools = _beam_search(decoder, state, start, max_length, eos, beam_size, alpha, banned)
    return [pool[:n_best] for pool in pools]


def _beam_search(decoder, state, start, max_length, eos, K, alpha, banned=()):
    B, device = start.shape[0], start.device
    if state is not None:
        state = decoder.reorder_state(state, torch.arange(B, device=device).repeat_interleave(K))
    pools: list[list[Hypothesis]] = [[] for _ in range(B)]  # finished, best first, <= K each
    rows = list(range(B))  # the original row of each row still searching
    tokens = start.repeat_interleave(K)  # (A*K,), A = len(rows)
    history = start.new_empty(B * K, 0)  # each beam's tokens so far
    beam_lp = None  # (A, K) log P of each beam, best first

    def add(row: int, hypotheses: list[Hypothesis]) -> None:
        pool = pools[row] + hypotheses
        pool.sort(key=lambda h: -h.score)  # stable: earlier (shorter) first on equal scores
        pools[row] = pool[:K]

    vocab_size = None
    for t in range(1, max_length + 1):
        A = len(rows)
        logits, state = decoder.decode_step(tokens, state)
        vocab_size = V = _check_logits(logits, A * K, vocab_size, eos)
        log_p = _ban(_log_softmax(logits), banned).view(A, K, V)
        if beam_lp is None:
            # Only beam 0 of each row is live at first: K copies of one start would otherwise
            # fill the beam with K copies of the same sequence.
            beam_lp = log_p.new_full((A, K), float("-inf"))
            beam_lp[:, 0] = 0
        candidates = (beam_lp[:, :, None] + log_p).view(A, K * V)
        top_lp, top_flat = _top(candidates, min(2 * K, K * V))  # (A, n), best first
        top_beam, top_token = top_flat // V, top_flat % V
        open_lp = top_lp
        if eos is not None:
            is_eos = top_token == eos
            rank = torch.arange(top_lp.shape[1], device=top_lp.device)
            # An eos ranked below K is dropped: with it, beam_size=1 would not be greedy.
            done_now = is_eos & (rank < K) & torch.isfinite(top_lp)
            if bool(done_now.any()):
                found: dict[int, list[Hypothesis]] = {}
                for a, j in done_now.nonzero().tolist():
                    lp = float(top_lp[a, j])
                    prefix = history[a * K + int(top_beam[a, j])].tolist()
                    found.setdefault(rows[a], []).append(
                        Hypothesis(prefix, lp, lp / t**alpha, True)
                    )
                for row, hypotheses in found.items():
                    add(row, hypotheses)
            open_lp = top_lp.masked_fill(is_eos, float("-inf"))
        beam_lp, pick = _top(open_lp, K)
        source = (torch.arange(A, device=device)[:, None] * K + top_beam.gather(1, pick)).view(-1)
        tokens = top_token.gather(1, pick).view(-1)
        history = torch.cat([history[source], tokens[:, None]], 1)

        if t == max_length:
            for a, row in enumerate(rows):
                add(
                    row,
                    [
                        Hypothesis(history[a * K + k].tolist(), lp, lp / t**alpha, False)
                        for k, lp in enumerate(beam_lp[a].tolist())
                        if math.isfinite(lp)
                    ],
                )
            break
        best_open = (beam_lp[:, 0] / t**alpha).tolist()
        keep = [
            a
            for a, row in enumerate(rows)
            if math.isfinite(best_open[a])
            and not (len(pools[row]) == K and best_open[a] <= pools[row][-1].score)
        ]
        if not keep:
            break
        if len(keep) < A:
            kept = torch.tensor(keep, device=device)
            rows = [rows[a] for a in keep]
            beam_lp = beam_lp[kept]
            source = source.view(A, K)[kept].view(-1)
            tokens = tokens.view(A, K)[kept].view(-1)
            history = history.view(A, K, t)[kept].view(len(keep) * K, t)
        state = decoder.reorder_state(state, source)
    return pools
