"""Scores: point-forecast accuracy measures, and (further down) classification and
entity-level tagging scores. Numpy in, Python floats out.

Every function takes array-likes (lists, numpy arrays, CPU tensors) of any shape, as long as
``actual`` and ``predicted`` have the *same* shape; both are flattened, so a (N, horizon, k) block
of forecasts is scored as N·horizon·k points. Shapes are never broadcast against each other: a
(N,) against (N, 1) mix-up is an error, not a silently wrong N×N average. NaN in the inputs gives
NaN, so a broken forecast is not hidden by a good-looking number.

Which measure to read:

- ``rmse`` / ``mae``: in the series' own units; the numbers to compare a model with a baseline on
  the same test windows.
- ``mape`` / ``smape``: unit-free percentages, comparable across series, undefined or unstable
  near zero (prices are fine, returns are not).
- ``mase``: MAE divided by the in-sample MAE of the naive forecast; below 1 beats the naive
  forecast on the *training* data's scale (Hyndman & Koehler 2006), the measure of choice when
  series differ in scale.
- ``directional_accuracy``: how often the forecast moves the right way from the last observed
  value; 0.5 is a coin flip for a series that always moves.
"""

from collections import Counter
from typing import Any

import numpy as np

from ._checks import check_integer

ArrayLike = Any  # anything np.asarray turns into a float array: list, ndarray, CPU tensor

METRIC_NAMES = ("rmse", "mae", "mape", "smape", "mase", "directional_accuracy")


def _as_float_array(values: ArrayLike) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _paired(actual: ArrayLike, predicted: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays, checked to have one shape and at least one point (not yet flattened)."""
    actual_array, predicted_array = _as_float_array(actual), _as_float_array(predicted)
    if actual_array.shape != predicted_array.shape:
        raise ValueError(
            f"actual and predicted must have the same shape, got actual {actual_array.shape} "
            f"and predicted {predicted_array.shape}"
        )
    if actual_array.size == 0:
        raise ValueError(
            f"actual and predicted are empty (shape {actual_array.shape}); "
            "a metric needs at least one point"
        )
    return actual_array, predicted_array


def rmse(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Root mean squared error, sqrt(mean((p − a)²)), in the units of the series."""
    actual_array, predicted_array = _paired(actual, predicted)
    return float(np.sqrt(np.mean((predicted_array - actual_array) ** 2)))


def mae(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean absolute error, mean(|p − a|), in the units of the series."""
    actual_array, predicted_array = _paired(actual, predicted)
    return float(np.mean(np.abs(predicted_array - actual_array)))


def mape(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean absolute percentage error, 100 · mean(|p − a| / |a|), in percent.

    Points where ``actual == 0`` have no percentage error and are left out of the mean (rather
    than making the result infinite); when every actual value is zero the result is NaN. MAPE
    punishes over-forecasts more than under-forecasts and explodes near zero: use it for
    positive series far from zero (prices, demand levels), never for returns or differences.
    """
    actual_array, predicted_array = _paired(actual, predicted)
    nonzero = actual_array != 0
    if not nonzero.any():
        return float("nan")
    relative_errors = np.abs(predicted_array[nonzero] - actual_array[nonzero]) / np.abs(
        actual_array[nonzero]
    )
    return float(100.0 * np.mean(relative_errors))


def smape(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Symmetric MAPE, mean(200 · |p − a| / (|a| + |p|)), in percent, between 0 and 200.

    This is the form of Makridakis (1993, "Accuracy measures: theoretical and practical concerns",
    IJF 9(4)) used in the M3 and M4 competitions and by ``pmdarima``, so the numbers compare with
    the published stock benchmarks. A point where both ``a`` and ``p`` are 0 is a perfect
    forecast and counts as 0 (the formula alone would give 0/0).
    """
    actual_array, predicted_array = _paired(actual, predicted)
    denominator = np.abs(actual_array) + np.abs(predicted_array)
    ratios = np.divide(
        np.abs(predicted_array - actual_array),
        denominator,
        out=np.zeros_like(denominator),
        where=denominator != 0,
    )
    return float(200.0 * np.mean(ratios))


def mase_scale(train_series: ArrayLike, season: int = 1) -> float:
    """The MASE denominator: mean |y_t − y_{t−season}| over the training series.

    This is the in-sample mean absolute error of the (seasonal) naive forecast, the scale of
    Hyndman & Koehler (2006, "Another look at measures of forecast accuracy", IJF 22(4)). Compute
    it once on the training part only, so the test data never informs its own yardstick.

    Args:
        train_series: the training values in time order, shape (T,) or (T, k) with time along
            axis 0; with k columns the differences of all columns are averaged together, so
            give one column at a time when the targets differ in scale.
        season: the lag m of the naive forecast: 1 for "tomorrow = today", 5 for a trading
            week, 7 for a calendar week of daily data, 12 for monthly data.

    Raises:
        ValueError: when the series has no more than ``season`` values, or the scale is 0
            (a series constant at that lag; MASE would divide by zero) or not finite.
    """
    check_integer("season", season, 1, numpy=True, got=True)
    series = _as_float_array(train_series)
    if series.ndim not in (1, 2):
        raise ValueError(
            f"train_series must be 1-D (T,) or 2-D (T, k) with time along axis 0, "
            f"got shape {series.shape}"
        )
    if series.shape[0] <= season:
        raise ValueError(
            f"train_series has {series.shape[0]} values along time; a scale at season={season} "
            f"needs at least {season + 1}"
        )
    scale = float(np.mean(np.abs(series[season:] - series[:-season])))
    if not np.isfinite(scale) or scale == 0:
        raise ValueError(
            f"the MASE scale of train_series at season={season} is {scale}; it must be finite "
            "and > 0 (a series constant at that lag, or one holding NaN, has no naive error)"
        )
    return scale


def mase(actual: ArrayLike, predicted: ArrayLike, scale: float) -> float:
    """Mean absolute scaled error: ``mae(actual, predicted) / scale`` (Hyndman & Koehler 2006).

    ``scale`` comes from :func:`mase_scale` on the training series. Below 1, the forecast's
    errors are smaller than the naive forecast's in-sample errors; note that this is *not* the
    same as beating persistence on the test period, which is what the baselines measure.
    """
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be finite and > 0 (see mase_scale), got {scale}")
    return mae(actual, predicted) / scale


def directional_accuracy(
    actual: ArrayLike, predicted: ArrayLike, last_observed: ArrayLike
) -> float:
    """Fraction (0 to 1) of points where the forecast moves the same way as the truth.

    A point agrees when ``sign(actual − last) == sign(predicted − last)``, where ``last`` is the
    last observed value before the forecast. ``last_observed`` broadcasts against ``actual``:
    a (N, 1, k) block of last values serves a (N, horizon, k) block of forecasts.

    Zero moves follow the signs literally: a flat forecast agrees only with a flat truth, and
    a flat truth agrees only with a flat forecast. Persistence therefore scores the fraction of
    unchanged points (near 0 on prices), which is right: it makes no directional call. Returns
    NaN when any of the three inputs holds NaN.
    """
    actual_array, predicted_array = _paired(actual, predicted)
    last_array = _as_float_array(last_observed)
    try:
        last_array = np.broadcast_to(last_array, actual_array.shape)
    except ValueError:
        raise ValueError(
            f"last_observed of shape {last_array.shape} does not broadcast against actual "
            f"of shape {actual_array.shape}; for (N, horizon, k) forecasts give (N, 1, k)"
        ) from None
    actual_move = actual_array - last_array
    predicted_move = predicted_array - last_array
    if np.isnan(actual_move).any() or np.isnan(predicted_move).any():
        return float("nan")
    return float(np.mean(np.sign(actual_move) == np.sign(predicted_move)))


def forecast_metrics(
    actual: ArrayLike, predicted: ArrayLike, last_observed: ArrayLike, scale: float
) -> dict[str, float]:
    """All the measures above on one set of forecasts, keyed by :data:`METRIC_NAMES`.

    Args:
        actual: the true future values, e.g. (N, horizon, k).
        predicted: the forecasts, same shape.
        last_observed: the last value of each history window, broadcasting against
            ``actual``, e.g. (N, 1, k).
        scale: the MASE denominator from :func:`mase_scale` on the training series.

    Returns:
        ``{"rmse", "mae", "mape", "smape", "mase", "directional_accuracy"}`` as floats.
    """
    return {
        "rmse": rmse(actual, predicted),
        "mae": mae(actual, predicted),
        "mape": mape(actual, predicted),
        "smape": smape(actual, predicted),
        "mase": mase(actual, predicted, scale),
        "directional_accuracy": directional_accuracy(actual, predicted, last_observed),
    }


def residual_interval(residuals: ArrayLike, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds to add to a forecast so that about ``level`` of future values fall inside.

    Split conformal prediction (Vovk et al. 2005; Lei et al. 2018): the quantiles of errors
    ``actual - forecast`` on data the model did not train on (the validation part), taken
    over axis 0 and widened by the finite-sample factor ``(n + 1) / n``. If the future errors
    are exchangeable with those, coverage is at least ``level``; a test period calmer or wilder
    than validation shows up as coverage off target, which is why it is reported.

    Returns ``(low, high)`` with the shape of one residual, ``low <= 0 <= high`` typically.
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must be in (0, 1), e.g. 0.9")
    errors = _as_float_array(residuals)
    if errors.shape[0] < 2:
        raise ValueError(f"residuals has {errors.shape[0]} rows; an interval needs at least 2")
    n = errors.shape[0]
    upper = min(1.0, (1 - (1 - level) / 2) * (n + 1) / n)
    low = np.quantile(errors, 1 - upper, axis=0, method="lower")
    high = np.quantile(errors, upper, axis=0, method="higher")
    return low, high


def interval_coverage(actual: ArrayLike, low: ArrayLike, high: ArrayLike) -> float:
    """Fraction (0..1) of actual values inside ``[low, high]``."""
    actual_values, low_values = _paired(actual, low)
    _, high_values = _paired(actual, high)
    return float(np.mean((low_values <= actual_values) & (actual_values <= high_values)))


# -- Labels: classification and sequence tagging -------------------------------------------------
#
# Labels are any hashable values (strings, ints); array-likes (lists, numpy arrays, CPU tensors)
# are read as flat lists. Fractions are 0..1. A quantity with nothing to count (precision of a
# class never predicted, recall of a class never present) is 0, not NaN, so reports stay valid
# JSON; the macro average leaves out classes that are neither present nor predicted.


def _label_list(name: str, values: ArrayLike) -> list:
    """``values`` as a flat Python list of labels (tolist() for numpy arrays and tensors)."""
    if isinstance(values, str):
        raise ValueError(f"{name} must be a sequence of labels, got the string {values!r}")
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    for index, item in enumerate(items):
        if isinstance(item, list | tuple | np.ndarray):
            raise ValueError(
                f"{name} must be a flat sequence of labels, but {name}[{index}] is a "
                f"{type(item).__name__}; flatten it first (per-token tags: concatenate them)"
            )
    return items


def _paired_labels(actual: ArrayLike, predicted: ArrayLike, empty_ok: bool = False):
    actual_list, predicted_list = _label_list("actual", actual), _label_list("predicted", predicted)
    if len(actual_list) != len(predicted_list):
        raise ValueError(
            f"actual and predicted must have the same length, got {len(actual_list)} "
            f"and {len(predicted_list)}"
        )
    if not actual_list and not empty_ok:
        raise ValueError("actual and predicted are empty; a metric needs at least one label")
    return actual_list, predicted_list


def _sorted_labels(*label_lists: list) -> list:
    """The union of the labels, sorted (by first appearance when they do not compare)."""
    union = list(dict.fromkeys(label for labels in label_lists for label in labels))
    try:
        return sorted(union)
    except TypeError:
        return union


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def accuracy(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Fraction (0..1) of positions where ``predicted`` equals ``actual``."""
    actual_list, predicted_list = _paired_labels(actual, predicted)
    return sum(a == p for a, p in zip(actual_list, predicted_list, strict=True)) / len(actual_list)


def confusion_matrix(actual: ArrayLike, predicted: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Counts ``(n, n)`` int64: entry ``[i, j]`` counts items of class ``labels[i]`` (actual,
    rows) predicted as ``labels[j]`` (columns). Empty inputs give a matrix of zeros.

    Raises:
        ValueError: when ``labels`` has duplicates, or a value of ``actual`` or ``predicted``
            is not in ``labels``.
    """
    actual_list, predicted_list = _paired_labels(actual, predicted, empty_ok=True)
    label_list = _label_list("labels", labels)
    index = {label: i for i, label in enumerate(label_list)}
    if len(index) != len(label_list):
        duplicates = sorted({str(x) for x in label_list if label_list.count(x) > 1})
        raise ValueError(f"labels must be distinct, got duplicates {duplicates}")
    positions = []
    for name, values in (("actual", actual_list), ("predicted", predicted_list)):
        for position, value in enumerate(values):
            if value not in index:
                shown = ", ".join(repr(label) for label in label_list[:10])
                more = f", … ({len(label_list)} in all)" if len(label_list) > 10 else ""
                raise ValueError(
                    f"{name}[{position}] = {value!r} is not one of the labels [{shown}{more}]"
                )
        positions.append(np.fromiter((index[v] for v in values), np.int64, len(values)))
    matrix = np.zeros((len(label_list), len(label_list)), dtype=np.int64)
    np.add.at(matrix, (positions[0], positions[1]), 1)
    return matrix


def classification_report(
    actual: ArrayLike, predicted: ArrayLike, labels: ArrayLike | None = None
) -> dict:
    """Accuracy, macro-F1 and per-class precision, recall, F1 and support.

    Precision of class c = (items predicted c that are c) / (items predicted c), 0 when nothing
    is predicted c; recall = (same) / (items that are c), 0 when none are; F1 their harmonic
    mean (0 when both are 0); support = items that are c. Macro-F1 is the plain mean of the
    per-class F1 over the classes of ``labels`` that occur in ``actual`` or ``predicted``: a
    class with no items and no predictions has no F1 and is left out, one that is predicted
    but never present counts with F1 = 0.

    Args:
        actual: true labels, flat.
        predicted: predicted labels, same length.
        labels: the classes, in report order (e.g. the label vocabulary); default: the sorted
            union of ``actual`` and ``predicted``. Every value must be one of them.

    Returns:
        ``{"accuracy", "macro_f1", "per_class": {label: {"precision", "recall", "f1",
        "support"}}}``, floats except ``support`` (int).
    """
    actual_list, predicted_list = _paired_labels(actual, predicted)
    label_list = (
        _sorted_labels(actual_list, predicted_list)
        if labels is None
        else _label_list("labels", labels)
    )
    matrix = confusion_matrix(actual_list, predicted_list, label_list)
    correct = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted_counts = matrix.sum(axis=0)
    per_class = {}
    scored = []
    for i, label in enumerate(label_list):
        precision = _ratio(correct[i], predicted_counts[i])
        recall = _ratio(correct[i], support[i])
        f1 = _f1(precision, recall)
        per_class[label] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": int(support[i]),
        }
        if support[i] or predicted_counts[i]:
            scored.append(f1)
    return {
        "accuracy": float(correct.sum() / len(actual_list)),
        "macro_f1": float(np.mean(scored)),
        "per_class": per_class,
    }


def macro_f1(actual: ArrayLike, predicted: ArrayLike, labels: ArrayLike | None = None) -> float:
    """Mean per-class F1 over the classes present or predicted; see
    :func:`classification_report` (``labels`` default: the sorted union of both)."""
    return classification_report(actual, predicted, labels)["macro_f1"]


def _split_tag(tag: Any, position: int) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``, ``"O"`` -> ``("O", "")``, else a ValueError."""
    if tag == "O":
        return "O", ""
    if isinstance(tag, str) and len(tag) > 2 and tag[0] in "BIES" and tag[1] == "-":
        return tag[0], tag[2:]
    raise ValueError(
        f"tag {tag!r} at position {position} is not a BIO/BIOES tag; expected 'O' or "
        "'B-TYPE', 'I-TYPE', 'E-TYPE', 'S-TYPE'"
    )


def _chunk_ends(previous: str, previous_type: str, prefix: str, type_: str) -> bool:
    """conlleval's endOfChunk: does an entity end between the previous tag and this one?"""
    return (
        previous in "ES"
        or (previous in "BI" and prefix in "BSO")
        or (previous != "O" and previous_type != type_)
    )


def _chunk_starts(previous: str, previous_type: str, prefix: str, type_: str) -> bool:
    """conlleval's startOfChunk: does an entity start at this tag?"""
    return (
        prefix in "BS"
        or (previous in "ESO" and prefix in "IE")
        or (prefix != "O" and previous_type != type_)
    )


def entity_spans(tags: ArrayLike) -> list[tuple[str, int, int]]:
    """The entities of one tagged sentence as ``(type, start, end)``, ``end`` exclusive.

    Follows conlleval (the CoNLL-2000 scorer) exactly, for BIO, IOB1, BIOES or a mix:

    - an entity starts at ``B-``/``S-``; at ``I-``/``E-`` after ``O``, ``E-`` or ``S-``; and at
      any tag whose type differs from the previous tag's (so ``O I-PER`` and ``B-PER I-LOC``
      start entities rather than being dropped);
    - it ends before ``O``, ``B-``, ``S-`` or a type change, and after ``E-``/``S-``.

    Example: ``["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "B-LOC"]`` gives
    ``[("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5), ("LOC", 5, 6)]``.
    """
    tag_list = _label_list("tags", tags)
    spans: list[tuple[str, int, int]] = []
    previous, previous_type, start = "O", "", None
    for position, tag in enumerate(tag_list):
        prefix, type_ = _split_tag(tag, position)
        if start is not None and _chunk_ends(previous, previous_type, prefix, type_):
            spans.append((previous_type, start, position))
            start = None
        if _chunk_starts(previous, previous_type, prefix, type_):
            start = position
        previous, previous_type = prefix, type_
    if start is not None:
        spans.append((previous_type, start, len(tag_list)))
    return spans


def entity_scores(actual: ArrayLike, predicted: ArrayLike) -> dict:
    """Entity-level precision, recall and F1 over sentences, as conlleval computes them.

    Entities come from :func:`entity_spans`; a predicted entity is correct when an actual one
    has the same type, start and end. Precision = correct / predicted entities, recall =
    correct / actual entities, each 0 when its denominator is; F1 their harmonic mean.

    Args:
        actual: the true tags, one list per sentence.
        predicted: the predicted tags, one list per sentence, each as long as its ``actual``.

    Returns:
        ``{"precision", "recall", "f1", "true_entities", "predicted_entities", "correct",
        "per_type": {type: {"precision", "recall", "f1", "support"}}}``; ``per_type`` covers
        every type present or predicted, sorted; ``support`` counts its actual entities.

    Raises:
        ValueError: when the sentence counts or a pair of sentence lengths differ (naming the
            sentence), or a tag is not BIO/BIOES.
    """
    actual_sentences = _sentences("actual", actual)
    predicted_sentences = _sentences("predicted", predicted)
    if len(actual_sentences) != len(predicted_sentences):
        raise ValueError(
            f"actual has {len(actual_sentences)} sentences but predicted has "
            f"{len(predicted_sentences)}; they must match one to one"
        )
    true_entities: set[tuple[int, str, int, int]] = set()
    predicted_entities: set[tuple[int, str, int, int]] = set()
    for index, (truth, guess) in enumerate(zip(actual_sentences, predicted_sentences, strict=True)):
        if len(truth) != len(guess):
            raise ValueError(
                f"sentence {index} has {len(truth)} actual tags but {len(guess)} predicted "
                "tags; each pair must have the same length"
            )
        true_entities.update((index, *span) for span in entity_spans(truth))
        predicted_entities.update((index, *span) for span in entity_spans(guess))
    correct = true_entities & predicted_entities

    def scores(truth: set, guess: set, hits: set) -> dict:
        precision, recall = _ratio(len(hits), len(guess)), _ratio(len(hits), len(truth))
        return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}

    per_type = {}
    for type_ in sorted({entity[1] for entity in true_entities | predicted_entities}):
        truth_of_type = {entity for entity in true_entities if entity[1] == type_}
        guess_of_type = {entity for entity in predicted_entities if entity[1] == type_}
        per_type[type_] = {
            **scores(truth_of_type, guess_of_type, truth_of_type & guess_of_type),
            "support": len(truth_of_type),
        }
    return {
        **scores(true_entities, predicted_entities, correct),
        "true_entities": len(true_entities),
        "predicted_entities": len(predicted_entities),
        "correct": len(correct),
        "per_type": per_type,
    }


def _sentences(name: str, sentences: ArrayLike) -> list[list]:
    """A list of sentences, each a flat list of tags; a flat list of tags is refused."""
    if isinstance(sentences, str):
        raise ValueError(f"{name} must be a list of sentences (lists of tags), got a string")
    result = []
    for index, sentence in enumerate(sentences):
        if isinstance(sentence, str):
            raise ValueError(
                f"{name} must be a list of sentences (lists of tags), but {name}[{index}] is "
                f"the string {sentence!r}; wrap a single sentence in a list"
            )
        result.append(_label_list(f"{name}[{index}]", sentence))
    return result


# --- music: what generated pieces are like, beside real ones ------------------------------------
#
# A piece is a note table, rows (voice, pitch, start, end) in frames (rnnkit.data.music.Piece).

# Krumhansl & Kessler (1982) key profiles, from the tonic up.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor and the raised leading note


def pitch_class_histogram(notes: ArrayLike) -> np.ndarray:
    """How long each pitch class sounds, as shares (12,) summing to 1 (zeros for no notes)."""
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 4)
    weights = np.bincount(notes[:, 1] % 12, weights=notes[:, 3] - notes[:, 2], minlength=12)
    total = weights.sum()
    return weights / total if total else weights


def estimate_key(notes: ArrayLike) -> tuple[int, str]:
    """(tonic pitch class, "major" or "minor"): the key profile that correlates best with the
    duration-weighted pitch-class histogram (the Krumhansl–Schmuckler algorithm)."""
    histogram = pitch_class_histogram(notes)
    best = (-2.0, 0, "major")
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            r = np.corrcoef(histogram, np.roll(profile, tonic))[0, 1]
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def music_statistics(notes: ArrayLike) -> dict:
    """One piece's statistics: ``in_key`` (share of notes in the scale of its estimated key),
    ``polyphony`` (notes sounding per frame with any), ``note_length`` (mean, in frames),
    ``parallels`` (share of voice-pair motions that move in parallel fifths or octaves,
    voices by height in frames with four notes, as a chorale's are)."""
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 4)
    if not len(notes):
        raise ValueError("the piece has no notes")
    tonic, mode = estimate_key(notes)
    scale = {(tonic + step) % 12 for step in (MAJOR_SCALE if mode == "major" else MINOR_SCALE)}
    frames = int(notes[:, 3].max())
    count = np.zeros(frames, dtype=np.int64)
    for start, end in notes[:, 2:]:
        count[start:end] += 1
    return {
        "in_key": float(np.isin(notes[:, 1] % 12, list(scale)).mean()),
        "polyphony": float(count[count > 0].mean()),
        "note_length": float((notes[:, 3] - notes[:, 2]).mean()),
        "parallels": parallel_motion_rate(notes),
    }


def parallel_motion_rate(notes: ArrayLike, voices: int = 4) -> float:
    """Of the moves from one chord to the next where two voices both move the same way, the
    share that keeps a perfect fifth or an octave (or unison) between them: the motion
    counterpoint forbids. Voices are the notes of a chord by height, in frames where exactly
    ``voices`` notes sound; NaN where no two voices move together."""
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 4)
    frames = int(notes[:, 3].max()) if len(notes) else 0
    chords: list = [[] for _ in range(frames)]
    for _, pitch, start, end in notes:
        for t in range(start, end):
            chords[t].append(int(pitch))
    full = [sorted(c) if len(c) == voices else None for c in chords]
    moves = parallel = 0
    previous = None
    for chord in full:
        if chord == previous:  # held: no motion
            continue
        if chord is not None and previous is not None:
            for i in range(voices):
                for j in range(i + 1, voices):
                    a, b = chord[i] - previous[i], chord[j] - previous[j]
                    if a == 0 or b == 0 or (a > 0) != (b > 0):
                        continue
                    moves += 1
                    before, after = previous[j] - previous[i], chord[j] - chord[i]
                    parallel += before % 12 in (0, 7) and before == after
        previous = chord
    return parallel / moves if moves else float("nan")


def length_histogram(notes: ArrayLike, longest: int = 32) -> np.ndarray:
    """Shares of note lengths 1..``longest`` frames (longer ones in the last bin)."""
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 4)
    lengths = np.clip(notes[:, 3] - notes[:, 2], 1, longest)
    counts = np.bincount(lengths - 1, minlength=longest).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def total_variation(p: ArrayLike, q: ArrayLike) -> float:
    """Half the L1 distance between two distributions: 0 equal, 1 disjoint."""
    return float(0.5 * np.abs(np.asarray(p, float) - np.asarray(q, float)).sum())


def compare_pieces(pieces: list, reference: list) -> dict:
    """The mean statistics of ``pieces`` (note tables) and their distances to ``reference``:
    the pitch-class histogram (each piece moved to C by its estimated key) and the
    note-length distribution, as total variation."""

    def pooled(tables, histogram):
        return np.mean([histogram(t) for t in tables], axis=0)

    def in_c(table):
        tonic, _ = estimate_key(table)
        moved = np.array(table, dtype=np.int64).reshape(-1, 4).copy()
        moved[:, 1] -= tonic
        return pitch_class_histogram(moved)

    rows = [music_statistics(t) for t in pieces]
    means = {}
    for key in rows[0]:  # a piece without two voices moving together has no parallels rate
        values = [r[key] for r in rows if not np.isnan(r[key])]
        means[key] = float(np.mean(values)) if values else float("nan")
    means["pitch_class_distance"] = total_variation(pooled(pieces, in_c), pooled(reference, in_c))
    means["length_distance"] = total_variation(
        pooled(pieces, length_histogram), pooled(reference, length_histogram)
    )
    return means


# --- captions: consensus with several references ----------------------------------------------

CIDER_SIGMA = 6.0  # the length penalty's width, in tokens (Vedantam et al. 2015, CIDEr-D)


def _ngram_counts(tokens: list[str], order: int) -> list[dict]:
    """For n = 1..order, {n-gram: count} of ``tokens``."""
    return [
        dict(Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)))
        for n in range(1, order + 1)
    ]


def cider_d(hypotheses: list[str], references: list[list[str]], *, order: int = 4) -> float:
    """CIDEr-D (Vedantam et al. 2015) of the captions ``hypotheses``, one per image, against
    the captions ``references`` of each image, as the COCO caption evaluation computes it.

    Captions are lowercased and split on spaces. Each caption becomes, for every n = 1..4,
    a vector of its n-grams weighted by TF-IDF, the document frequency of an n-gram being
    the number of images whose references hold it, and the IDF ``log(images / max(1,
    df))``. An image's score is the mean over its references and over n of the cosine of
    the hypothesis's vector with the reference's, each hypothesis weight clipped at the
    reference's, times ``exp(-(l_h - l_r)^2 / (2 sigma^2))`` (the lengths being the COCO
    code's: the number of bigrams), times 10; the result is the mean over images.
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses for {len(references)} reference sets: give one each"
        )
    if not hypotheses:
        raise ValueError("no captions to score")
    if any(not refs for refs in references):
        raise ValueError("every image needs at least one reference caption")
    grams = [[_ngram_counts(r.lower().split(), order) for r in refs] for refs in references]
    frequency: Counter = Counter()
    for image in grams:
        frequency.update({g for ref in image for counts in ref for g in counts})
    log_images = np.log(float(len(references)))

    def vector(counts: list[dict]) -> tuple[list[dict], np.ndarray, int]:
        weights = [
            {g: tf * (log_images - np.log(max(1.0, frequency[g]))) for g, tf in per_n.items()}
            for per_n in counts
        ]
        norms = np.array([np.sqrt(sum(w * w for w in per_n.values())) for per_n in weights])
        return weights, norms, sum(counts[1].values()) if order > 1 else 0

    scores = []
    for hypothesis, image in zip(hypotheses, grams, strict=True):
        hyp, hyp_norm, hyp_length = vector(_ngram_counts(hypothesis.lower().split(), order))
        total = np.zeros(order)
        for ref_counts in image:
            ref, ref_norm, ref_length = vector(ref_counts)
            penalty = np.exp(-((hyp_length - ref_length) ** 2) / (2 * CIDER_SIGMA**2))
            for n in range(order):
                common = [(w, ref[n][g]) for g, w in hyp[n].items() if g in ref[n]]
                shared = sum(min(w, r) * r for w, r in common)  # clipped at the reference
                if hyp_norm[n] and ref_norm[n]:
                    shared /= hyp_norm[n] * ref_norm[n]
                total[n] += shared * penalty
        scores.append(10.0 * total.mean() / len(image))
    return float(np.mean(scores))
