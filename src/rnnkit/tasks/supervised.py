"""What the tasks with labelled examples share: checks of their settings, held-out parts,
label vocabularies, batched inference and score tables."""

from __future__ import annotations

import inspect

import numpy as np
import torch

from ..data.text import Vocabulary
from ..registry import layer_options

EVAL_BATCH = 256


def check_rnn_options(estimator, model_class) -> None:
    """Refuse ``rnn_options`` that no layer of the estimator's cell takes, or that are
    settings of the model itself (``hidden_size``, ``bidirectional``): they have a setting of
    their own, which the run records. Their values are the layer's to check, when it is
    built."""
    options = estimator.rnn_options or {}
    known = layer_options(estimator.cell)
    unknown = sorted(set(options) - set(known) - set(inspect.signature(model_class).parameters))
    if unknown:
        raise ValueError(
            f"rnn_options={options!r}: {unknown} are not options of the {estimator.cell} "
            f"layer; it takes {known}"
        )
    own = set(inspect.signature(model_class).parameters) - {"rnn_options"}
    clash = sorted(set(options) & own)
    if clash:
        raise ValueError(
            f"rnn_options {clash} are settings of {model_class.__name__} itself; set them as "
            f"{type(estimator).__name__}'s own settings (on the command line, --"
            f"{clash[0].replace('_', '-')} where there is such an option)"
        )


def hold_out(count: int, fraction: float, seed: int, unit: str, labels=None):
    """(train rows, validation rows): ``fraction`` of ``count`` held out at random,
    stratified by ``labels`` if given; a clear error when it would hold out nothing."""
    labels = np.zeros(count) if labels is None else np.asarray(labels)
    keep, hold = stratified_split(labels, fraction, seed)
    if len(keep) == 0:
        raise ValueError(
            f"val={fraction} holds out all {count} {unit}, leaving none to train on; use a "
            "smaller val, or more data"
        )
    if len(hold) == 0:
        raise ValueError(
            f"val={fraction} holds out nothing from {count} {unit} (the fraction of each "
            "class is rounded); use val=0 to train without validation, or more data"
        )
    return keep, hold


def run_batches(dataset, function, model, batch_size: int = EVAL_BATCH) -> list:
    """``function(inputs, lengths)`` over ``dataset`` in batches of similar length, with
    gradients off, the inputs on ``model``'s device (a GPU while torchrun trains there);
    returns the per-sequence results (rows of what it returns, on the CPU) in the dataset's
    order."""
    device = next(model.parameters()).device
    results = [None] * len(dataset)
    with torch.no_grad():
        for indices in dataset.epoch_batches(batch_size, 0, 0, shuffle=False):
            inputs, _, lengths = dataset.batch(indices)
            inputs = inputs if isinstance(inputs, tuple) else (inputs,)
            inputs = [x.to(device) if torch.is_tensor(x) else x for x in inputs]
            out = function(*inputs, lengths=lengths.to(device)).cpu()
            for row, index in enumerate(indices.tolist()):
                results[index] = out[row]
    return results


def label_vocabulary(labels, what: str = "class", source: str = "the training data") -> Vocabulary:
    """The distinct labels as a vocabulary without pad/unk, in sorted order (numerically when
    they all are numbers: "2" before "10"), so class ids do not depend on the data's order.
    Fewer than two are refused in the user's words (``what``: "class", "tag"; ``source``:
    where they came from), not in a model's (``num_classes=1``)."""
    distinct = set(labels)
    if len(distinct) < 2:
        found = f"a single {what} {next(iter(distinct))!r}" if distinct else f"no {what}"
        raise ValueError(
            f"{source} has {found}: there is nothing to tell apart; a model needs examples "
            f"of at least two {what}{'es' if what.endswith('s') else 's'}"
        )
    try:  # ("1", "1.0") are equal as numbers: the text decides, not the set's order
        ordered = sorted(distinct, key=lambda label: (float(label), label))
    except ValueError:
        ordered = sorted(distinct)
    return Vocabulary.from_dict(
        {"min_freq": 1, "max_size": None, "specials": [], "tokens": ordered}
    )


def stratified_split(labels: np.ndarray, fraction: float, seed: int):
    """(train indices, validation indices): ``fraction`` of each class held out at random."""
    generator = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        generator.shuffle(rows)
        held.append(rows[: round(fraction * len(rows))])
    held = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(labels)), held), held


def score_table(scores: dict, columns: dict[str, str], names: dict[str, str]) -> list[str]:
    """Lines of a table: one row per scored model (``names``: key -> row label), one column
    per metric (``columns``: key -> heading), values as percentages."""
    width = max(len(label) for label in names.values())
    lines = [" " * width + "".join(f"{heading:>11}" for heading in columns.values())]
    for key, label in names.items():
        if key in scores:
            values = "".join(f"{100 * scores[key][c]:>10.1f}%" for c in columns)
            lines.append(f"{label:<{width}}{values}")
    return lines
