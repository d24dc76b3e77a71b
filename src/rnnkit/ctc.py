r"""Connectionist temporal classification (Graves et al. 2006): decoding and error rates.

A CTC model emits, at every frame ``t`` of its input, log-probabilities ``log y_t(k)`` over the
labels and one extra *blank*. A *path* is one symbol per frame; it reads as the label sequence
left after merging repeated symbols and then dropping blanks (``B(a a - b b - b) = a b b``),
and the probability of a label sequence is the sum over every path that reads as it. Training
uses ``torch.nn.functional.ctc_loss``; this module turns the frames back into labels:

- ``greedy_decode``: the best path (the most likely symbol of each frame), collapsed. Fast,
  and not always the most likely label sequence.
- ``prefix_beam_search``: the label prefixes whose total probability (over all the paths that
  reach them) is highest, extended frame by frame and pruned to ``beam`` (Hannun et al. 2014);
  with ``beam`` large enough it is the exact most likely label sequence. An optional language
  model over labels joins the score as ``lm_weight · log p_LM(label | prefix)`` with an
  ``insertion_bonus`` per label (shallow fusion), the two settings that trade the acoustic
  model against the language model and against short outputs; ``ngram_scorer`` makes that
  language model from rnnkit's character n-gram model.
- ``edit_distance``, ``cer``, ``wer``: Levenshtein distance, and the character and word error
  rates (total edits over total reference length).

Log-probabilities are a (T, V) tensor or array of one utterance, natural log, with ``blank``
the index of the blank (0 by default, as ``ctc_loss``'s).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import torch

NEG_INF = -math.inf


def _frames(log_probs, blank: int) -> np.ndarray:
    """``log_probs`` as a float64 (T, V) array, checked."""
    if isinstance(log_probs, torch.Tensor):
        log_probs = log_probs.detach().cpu().double().numpy()
    frames = np.asarray(log_probs, dtype=np.float64)
    if frames.ndim != 2:
        raise ValueError(
            f"log_probs must be (frames, symbols) for one utterance, got shape {frames.shape}"
        )
    if not 0 <= blank < frames.shape[1]:
        raise ValueError(f"blank={blank} is not a symbol index of {frames.shape[1]} symbols")
    return frames


def collapse(path: Sequence[int], blank: int = 0) -> list[int]:
    """The label sequence a path reads as: repeats merged, then blanks dropped."""
    labels, previous = [], None
    for symbol in path:
        if symbol != previous and symbol != blank:
            labels.append(int(symbol))
        previous = symbol
    return labels


def greedy_decode(log_probs, blank: int = 0) -> list[int]:
    """The best path's labels: the most likely symbol at each frame, collapsed."""
    return collapse(_frames(log_probs, blank).argmax(1).tolist(), blank)


def _add(a: float, b: float) -> float:
    """log(e^a + e^b)."""
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    high, low = (a, b) if a > b else (b, a)
    return high + math.log1p(math.exp(low - high))


LanguageModel = Callable[[tuple[int, ...], int], float]


def prefix_beam_search(
    log_probs,
    beam: int = 16,
    blank: int = 0,
    lm: LanguageModel | None = None,
    lm_weight: float = 0.0,
    insertion_bonus: float = 0.0,
) -> list[tuple[list[int], float]]:
    """The ``beam`` best label sequences, best first, each with its score.

    A prefix carries two log-probabilities: of the paths that reach it ending in a blank, and
    ending in its last label; a frame extends it by a blank, by its last label again (the same
    prefix, unless a blank came between), or by a new label. Without a language model the
    score is log p(prefix | frames), summed over all its paths; with one, each label adds
    ``lm_weight · lm(prefix, label) + insertion_bonus``, where ``lm(prefix, label)`` is the
    language model's log-probability of ``label`` after the labels ``prefix`` (a tuple).
    """
    frames = _frames(log_probs, blank)
    if int(beam) != beam or beam < 1:
        raise ValueError(f"beam must be an integer >= 1, got {beam!r}")
    if lm is None and (lm_weight or insertion_bonus):
        raise ValueError("lm_weight and insertion_bonus need a language model (lm=...)")
    fusion: dict[tuple[tuple[int, ...], int], float] = {}

    def bonus(prefix: tuple[int, ...], label: int) -> float:
        if lm is None:
            return 0.0
        key = (prefix, label)
        if key not in fusion:
            fusion[key] = lm_weight * float(lm(prefix, label)) + insertion_bonus
        return fusion[key]

    # prefix -> [log p(paths ending in blank), log p(paths ending in the last label)], and the
    # language model's part of the prefix's score (the sum of its labels' bonuses).
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, NEG_INF]}
    lm_part: dict[tuple[int, ...], float] = {(): 0.0}
    symbols = range(frames.shape[1])

    def score(item) -> float:
        prefix, (ends_blank, ends_label) = item
        return _add(ends_blank, ends_label) + lm_part[prefix]

    for frame in frames:
        following: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (ends_blank, ends_label) in beams.items():
            total = _add(ends_blank, ends_label)
            last = prefix[-1] if prefix else None
            for symbol in symbols:
                p = frame[symbol]
                if symbol == blank:
                    entry = following[prefix]
                    entry[0] = _add(entry[0], total + p)
                elif symbol == last:
                    # Repeating the last label stays on the prefix; after a blank it is new.
                    same = following[prefix]
                    same[1] = _add(same[1], ends_label + p)
                    longer = (*prefix, symbol)
                    lm_part.setdefault(longer, lm_part[prefix] + bonus(prefix, symbol))
                    entry = following[longer]
                    entry[1] = _add(entry[1], ends_blank + p)
                else:
                    longer = (*prefix, symbol)
                    lm_part.setdefault(longer, lm_part[prefix] + bonus(prefix, symbol))
                    entry = following[longer]
                    entry[1] = _add(entry[1], total + p)

        # A prefix no path reaches yet (a repeat that needs a blank between) is dropped: it
        # comes back from its parent once a path can reach it.
        reachable = [item for item in following.items() if max(item[1]) > NEG_INF]
        beams = dict(sorted(reachable, key=score, reverse=True)[: int(beam)])
    ranked = sorted(
        ((list(prefix), _add(*paths) + lm_part[prefix]) for prefix, paths in beams.items()),
        key=lambda item: item[1],
        reverse=True,
    )
    return ranked


def ngram_scorer(model, start: int) -> LanguageModel:
    """A label language model for ``prefix_beam_search`` from a fitted n-gram model over the
    labels (``rnnkit.models.NGramModel``, or anything with ``order`` and
    ``next_log_probs(history)``): ``log p(label | start, prefix)``, where ``start`` is the id
    the model saw before each transcript (a sentence boundary, e.g. a newline's id). Only the
    last ``order - 1`` ids of the history matter: each such history is scored once, for
    every label at a time."""
    history = max(int(model.order) - 1, 1)
    scored: dict[tuple[int, ...], np.ndarray] = {}

    def score(prefix: tuple[int, ...], label: int) -> float:
        ids = (start, *prefix)[-history:]
        if ids not in scored:
            scored[ids] = model.next_log_probs(ids)
        return float(scored[ids][label])

    return score


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions that turn
    ``hypothesis`` into ``reference`` (of any items: characters, words, label ids)."""
    previous = list(range(len(hypothesis) + 1))
    for i, wanted in enumerate(reference, 1):
        current = [i]
        for j, got in enumerate(hypothesis, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (wanted != got))
            )
        previous = current
    return previous[-1]


def _error_rate(references: Sequence, hypotheses: Sequence, split: Callable) -> float:
    if isinstance(references, str) or isinstance(hypotheses, str):
        raise TypeError("references and hypotheses must be sequences of strings, not a string")
    if len(references) != len(hypotheses):
        raise ValueError(
            f"{len(references)} references but {len(hypotheses)} hypotheses; they must pair up"
        )
    pairs = zip(references, hypotheses, strict=True)
    edits = sum(edit_distance(split(r), split(h)) for r, h in pairs)
    length = sum(len(split(r)) for r in references)
    if length == 0:
        raise ValueError("the references are all empty: an error rate needs reference text")
    return edits / length


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character error rate: character edits over reference characters, over all pairs."""
    return _error_rate(references, hypotheses, list)


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate: word edits over reference words (split on whitespace), over all
    pairs."""
    return _error_rate(references, hypotheses, str.split)
