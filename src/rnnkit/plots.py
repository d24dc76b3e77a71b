"""The pictures a run writes, as PNG files: forecast vs actual, learning curves, backtest error,
attention, and the diagnostics (gradient flow through time, gates, states, memory benchmarks).

Each function takes plain arrays and lists (no rnnkit objects), writes one PNG, creates missing
parent folders, and returns the path. Figures are drawn on a ``matplotlib.figure.Figure`` with
the Agg canvas directly, never through ``pyplot``: no window opens, no global figure state is
touched, nothing leaks between calls, and it works on a headless server whatever backend the
user configured. matplotlib is imported inside the functions so ``import rnnkit.plots`` stays
cheap.

The x values (``dates``) may be numpy ``datetime64``, a pandas ``DatetimeIndex`` or Series,
date strings, or plain numbers (window or step indices).
"""

from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._checks import check_integer
from .metrics import rmse

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ArrayLike = Any  # anything np.asarray turns into an array: list, ndarray, pandas, CPU tensor

_DPI = 120


def _new_figure(rows: int = 1, height_ratios: Sequence[float] | None = None):
    """A Figure on an Agg canvas and its axes, without pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.2 + 2.3 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(
        rows, 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": height_ratios}
    )[:, 0]
    return figure, axes


def _save(figure: "Figure", path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=_DPI)
    return path


def _x_values(name: str, dates: ArrayLike) -> np.ndarray:
    """1-D x values; text is parsed as dates so strings from a CSV plot on a time axis."""
    import pandas as pd

    values = dates.to_numpy() if isinstance(dates, pd.Index | pd.Series) else np.asarray(dates)
    if values.dtype.kind in "OUS":
        values = pd.to_datetime(values).to_numpy()
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {values.shape}")
    if values.size == 0:
        raise ValueError(f"{name} is empty; there is nothing to plot")
    return values


def _series(name: str, values: ArrayLike, length: int, against: str) -> np.ndarray:
    """A 1-D float series of ``length`` values; (T, 1) columns are accepted as (T,)."""
    series = np.asarray(values, dtype=np.float64)
    if series.ndim == 2 and series.shape[1] == 1:
        series = series[:, 0]
    if series.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one target; plot each target separately), "
            f"got shape {series.shape}"
        )
    if series.shape[0] != length:
        raise ValueError(
            f"{name} has {series.shape[0]} values but {against} has {length}; "
            "they must match one to one"
        )
    return series


def plot_forecast(
    path: str | Path,
    dates: ArrayLike,
    actual: ArrayLike,
    predicted: ArrayLike,
    baselines: Mapping[str, ArrayLike] | None = None,
    title: str | None = None,
    train: tuple[ArrayLike, ArrayLike] | None = None,
    ylabel: str | None = None,
    band: tuple[ArrayLike, ArrayLike, str] | None = None,
) -> Path:
    """Actual vs predicted over the test period, with every baseline drawn beside them.

    The picture the forecasting tutorials end with, made honest: each baseline (persistence at
    least) is always visible as a thin dashed line, and each legend entry carries its RMSE, so
    a model that looks good on its own but loses to "tomorrow = today" is seen to lose.

    Args:
        path: the PNG to write.
        dates: x value of each test point, shape (T,).
        actual: the true values, (T,).
        predicted: the model's forecasts, (T,).
        baselines: ``{name: forecasts (T,)}`` drawn dashed.
        title: figure title.
        train: ``(dates, values)`` of the end of the training series, drawn in grey for
            context (pass a tail: a decade of history squashes the test period).
        ylabel: y-axis label, e.g. "Close (USD)".
        band: ``(low, high, label)``, a prediction interval shaded around the forecast.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    x = _x_values("dates", dates)
    actual_values = _series("actual", actual, len(x), "dates")
    predicted_values = _series("predicted", predicted, len(x), "dates")
    baseline_values = {
        name: _series(f"baselines[{name!r}]", values, len(x), "dates")
        for name, values in (baselines or {}).items()
    }

    figure, (axes,) = _new_figure()
    if train is not None:
        if len(train) != 2:
            raise ValueError("train must be a pair (dates, values)")
        train_x = _x_values("train dates", train[0])
        train_values = _series("train values", train[1], len(train_x), "train dates")
        axes.plot(train_x, train_values, color="0.6", linewidth=1.0, label="train")
    if band is not None:
        low = _series("band low", band[0], len(x), "dates")
        high = _series("band high", band[1], len(x), "dates")
        axes.fill_between(x, low, high, color="tab:red", alpha=0.15, linewidth=0, label=band[2])
    axes.plot(x, actual_values, color="black", linewidth=1.6, label="actual")
    axes.plot(
        x,
        predicted_values,
        color="tab:red",
        linewidth=1.4,
        label=f"predicted (RMSE {rmse(actual_values, predicted_values):.4g})",
    )
    for name, values in baseline_values.items():
        axes.plot(
            x,
            values,
            linestyle="--",
            linewidth=0.9,
            label=f"{name} (RMSE {rmse(actual_values, values):.4g})",
        )
    axes.set_title(title or "forecast vs actual")
    if ylabel:
        axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


def _column(history: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """One key over all epochs; an epoch without it (e.g. no validation that epoch) is NaN."""
    return np.array(
        [float(row[key]) if row.get(key) is not None else np.nan for row in history],
        dtype=np.float64,
    )


def _all_positive(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return finite.size > 0 and bool((finite > 0).all())


def plot_learning_curves(path: str | Path, history: Sequence[Mapping[str, Any]]) -> Path:
    """Training and validation loss per epoch, then other validation metrics and the rate.

    Panels, top to bottom: ``loss`` and ``val_loss`` together (log scale when all positive, so
    the late epochs are not a flat line); any other numeric ``val_*`` keys, if present; ``lr``,
    if present (log scale), so a plateau can be matched with a schedule step.

    Args:
        path: the PNG to write.
        history: one dict per epoch, e.g. ``{"epoch": 3, "loss": 0.12, "val_loss": 0.15,
            "lr": 1e-3, "val_rmse": 4.2}``; ``epoch`` defaults to 1, 2, …; a key missing in
            some epochs leaves a gap.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    history = list(history)
    if not history:
        raise ValueError("history is empty; it needs one dict per epoch")
    if not all(isinstance(row, Mapping) for row in history):
        raise ValueError("history must be a list of dicts, one per epoch")
    keys = list(dict.fromkeys(key for row in history for key in row))
    loss_keys = [key for key in ("loss", "val_loss") if key in keys]
    if not loss_keys:
        raise ValueError(f"history has neither 'loss' nor 'val_loss'; its keys are {keys}")
    metric_keys = [
        key
        for key in keys
        if key.startswith("val_")
        and key != "val_loss"
        and all(row.get(key) is None or isinstance(row[key], Real) for row in history)
    ]
    has_lr = "lr" in keys

    epochs = _column(history, "epoch") if "epoch" in keys else np.arange(1, len(history) + 1)
    rows = 1 + bool(metric_keys) + has_lr
    height_ratios = [2.0] + [1.0] * (rows - 1)
    figure, panels = _new_figure(rows, height_ratios)

    loss_axes = panels[0]
    loss_values = {key: _column(history, key) for key in loss_keys}
    for key, values in loss_values.items():
        loss_axes.plot(epochs, values, marker="." if len(history) < 50 else None, label=key)
    if all(_all_positive(values) for values in loss_values.values()):
        loss_axes.set_yscale("log")
    loss_axes.set_ylabel("loss")
    loss_axes.set_title("learning curves")
    loss_axes.legend(fontsize="small")

    next_panel = 1
    if metric_keys:
        metric_axes = panels[next_panel]
        for key in metric_keys:
            metric_axes.plot(epochs, _column(history, key), label=key)
        metric_axes.set_ylabel("validation")
        metric_axes.legend(fontsize="small")
        next_panel += 1
    if has_lr:
        lr_axes = panels[next_panel]
        learning_rates = _column(history, "lr")
        lr_axes.plot(epochs, learning_rates, color="tab:green")
        if _all_positive(learning_rates):
            lr_axes.set_yscale("log")
        lr_axes.set_ylabel("learning rate")

    for axes in panels:
        axes.grid(alpha=0.3)
    panels[-1].set_xlabel("epoch")
    return _save(figure, path)


def plot_backtest_error(
    path: str | Path,
    dates: ArrayLike,
    errors: Mapping[str, ArrayLike],
    window: int = 20,
) -> Path:
    """Rolling mean absolute error over time of the model and each baseline.

    One number per method hides *when* a model loses; this shows it: a trailing mean of the
    absolute error over ``window`` forecast origins, one line per method, so a model that wins
    in calm months and loses badly after a jump (or above its training range) is visible. The
    legend gives each method's overall MAE.

    Args:
        path: the PNG to write.
        dates: the forecast origins, shape (T,).
        errors: ``{name: absolute error per origin (T,)}``, the model and the baselines;
            signed errors are made absolute.
        window: origins per rolling mean; the first ``window − 1`` origins have no full window
            and are left blank (the whole series is one window when it is shorter).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    import pandas as pd

    check_integer("window", window, 1, numpy=True, got=True)
    if not errors:
        raise ValueError("errors is empty; give {name: absolute error per origin}")
    x = _x_values("dates", dates)
    absolute_errors = {
        name: np.abs(_series(f"errors[{name!r}]", values, len(x), "dates"))
        for name, values in errors.items()
    }
    window = min(int(window), len(x))

    figure, (axes,) = _new_figure()
    for name, values in absolute_errors.items():
        rolling = pd.Series(values).rolling(window, min_periods=window).mean().to_numpy()
        axes.plot(x, rolling, linewidth=1.3, label=f"{name} (MAE {np.mean(values):.4g})")
    axes.set_title(f"rolling mean absolute error ({window} origins)")
    axes.set_ylabel("absolute error")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


def plot_confusion_matrix(
    path: str | Path,
    matrix: ArrayLike,
    labels: Sequence[Any],
    title: str | None = None,
) -> Path:
    """A confusion matrix as a heat map: counts in the cells, colour the fraction of the row.

    Rows are the actual classes, columns the predicted ones (as
    :func:`rnnkit.metrics.confusion_matrix` returns them). Each cell is coloured by its share
    of its row, i.e. the recall of the diagonal and the confusions of each class, so a rare
    class reads as clearly as a frequent one; the count itself is written in the cell. Tick
    labels are rotated, and cell text shrinks with the number of classes, so it stays
    readable up to about 20 classes (beyond about 40 the counts are left out).

    Args:
        path: the PNG to write.
        matrix: ``(n, n)`` non-negative counts.
        labels: the ``n`` class names, in row (and column) order.
        title: figure title; default "confusion matrix (N items)".

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    names = [str(label) for label in labels]
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"matrix must be square (n, n), got shape {counts.shape}")
    if counts.shape[0] == 0:
        raise ValueError("matrix is empty (0 classes); there is nothing to plot")
    if len(names) != counts.shape[0]:
        raise ValueError(
            f"labels has {len(names)} names but matrix is {counts.shape}; "
            "give one name per row (and column)"
        )
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError("matrix must hold finite, non-negative counts")

    n = counts.shape[0]
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)

    figure, (axes,) = _new_figure()
    side = min(14.0, 4.0 + 0.45 * n)
    figure.set_size_inches(side + 1.5, side)
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="equal")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the actual row")

    if n <= 40:
        integral = bool(np.all(counts == np.round(counts)))
        font_size = max(5.0, min(10.0, 160.0 / n))
        for i in range(n):
            for j in range(n):
                text = f"{int(counts[i, j])}" if integral else f"{counts[i, j]:.3g}"
                axes.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=font_size,
                    color="white" if shares[i, j] > 0.5 else "black",
                )

    ticks = np.arange(n)
    axes.set_xticks(
        ticks, names, rotation=45 if n <= 10 else 90, ha="right" if n <= 10 else "center"
    )
    axes.set_yticks(ticks, names)
    axes.tick_params(labelsize=max(6.0, min(10.0, 200.0 / n)))
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(title or f"confusion matrix ({int(counts.sum())} items)")
    return _save(figure, path)


def plot_held_out_curve(
    path: str | Path,
    history: Sequence[Mapping[str, Any]],
    unit: str,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """A language model's held-out score against training time, with its baselines.

    Args:
        path: the PNG to write.
        history: rows with ``elapsed_seconds`` (training time so far, validation included)
            and ``held_out_<unit>``.
        unit: "bpc" or "perplexity": the score to plot.
        baselines: name -> scores with ``unit``, drawn as dashed horizontal lines (the n-gram
            models a recurrent model has to beat).
    """
    history = list(history)
    key = f"held_out_{unit}"
    if not history or any(key not in row or "elapsed_seconds" not in row for row in history):
        raise ValueError(f"history needs rows with 'elapsed_seconds' and {key!r}")
    figure, (axes,) = _new_figure()
    minutes = _column(history, "elapsed_seconds") / 60
    values = _column(history, key)
    axes.plot(minutes, values, marker=".", label="model")
    levels = {name: scores[unit] for name, scores in (baselines or {}).items()}
    # A baseline far above the model (the unigram) would flatten the curve: the axis stops
    # a little above the model's worst point or the closest baseline, and says so.
    top = max(np.nanmax(values), min(levels.values(), default=-np.inf)) * 1.05
    bottom = min(np.nanmin(values), *levels.values()) * 0.97
    for (name, level), style in zip(levels.items(), ("--", ":", "-."), strict=False):
        shown = f"{name} {level:.3g}" + (" (above the axis)" if level > top else "")
        axes.axhline(level, linestyle=style, color="grey", label=shown)
    axes.set_ylim(bottom, top)
    axes.set_xlabel("training time (minutes, validation included)")
    axes.set_ylabel(f"held-out {unit}")
    axes.set_title(f"held-out {unit} against training time")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


def plot_attention(
    path: str | Path, source: Sequence[str], target: Sequence[str], weights: ArrayLike
) -> Path:
    """A heat map of attention: one row per output token, one column per source token.

    Args:
        path: the PNG to write.
        source: the S source tokens (columns).
        target: the T output tokens (rows), in the order they were written.
        weights: (T, S), each row the attention weights of one output step.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (len(target), len(source)):
        raise ValueError(
            f"weights has shape {weights.shape}, expected (len(target), len(source)) = "
            f"({len(target)}, {len(source)})"
        )
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    size = (min(2 + 0.32 * len(source), 24), min(1.5 + 0.3 * len(target), 24))
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    image = axes.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    axes.set_xticks(range(len(source)), source, rotation=90, fontsize="small")
    axes.set_yticks(range(len(target)), target, fontsize="small")
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    figure.colorbar(image, ax=axes, fraction=0.03, label="attention weight")
    return _save(figure, path)


def plot_ctc_alignment(
    path: str | Path,
    features: ArrayLike,
    probabilities: ArrayLike,
    labels: Sequence[str],
    stack: int = 1,
    title: str | None = None,
) -> Path:
    """Where a CTC model emits its characters: the input (frames × features) above, and
    below it each character's probability at every output frame, drawn over the input frames
    that output frame reads. CTC's outputs are spikes: a character's probability jumps near 1
    for a frame or two and the blank holds the rest; each spike of the best path is marked
    with its character.

    Args:
        path: the PNG to write.
        features: (T, F) the frames the model read (log-mel bands, image rows).
        probabilities: (T', 1 + C) per output frame: the blank's (column 0), then each label's.
        labels: the C characters of columns 1..C.
        stack: input frames per output frame (T' = ⌈T / stack⌉).
    """
    features = np.asarray(features, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    check_integer("stack", stack, 1)
    expected = -(-len(features) // stack)
    if probabilities.ndim != 2 or probabilities.shape != (expected, len(labels) + 1):
        raise ValueError(
            f"probabilities has shape {probabilities.shape}, expected (⌈{len(features)} / "
            f"{stack}⌉, 1 + len(labels)) = ({expected}, {len(labels) + 1})"
        )
    figure, (top, bottom) = _new_figure(2, height_ratios=[1, 1])
    top.imshow(features.T, origin="lower", aspect="auto", cmap="magma",
               extent=(0, len(features), 0, features.shape[1]))  # fmt: skip
    top.set_ylabel("feature")
    if title:
        top.set_title(title)
    centres = (np.arange(expected) + 0.5) * stack
    bottom.plot(centres, probabilities[:, 0], color="0.7", linestyle="--", label="blank")
    best = probabilities.argmax(1)
    for column in np.unique(best[best > 0]):
        bottom.plot(centres, probabilities[:, column], linewidth=1)
    previous = 0
    for frame, column in enumerate(best):
        if column > 0 and column != previous:
            shown = labels[column - 1] if labels[column - 1] != " " else "␣"
            bottom.annotate(shown, (centres[frame], probabilities[frame, column]),
                            ha="center", va="bottom", fontsize="small")  # fmt: skip
        previous = column
    bottom.set_ylim(0, 1.12)
    bottom.set_xlim(0, len(features))
    bottom.set_xlabel("input frame")
    bottom.set_ylabel("probability")
    bottom.legend(loc="upper right", fontsize="small")
    return _save(figure, path)


def plot_gradient_flow(
    path: str | Path, panels: Mapping[str, Mapping[str, ArrayLike]], title: str | None = None
) -> Path:
    """‖∂loss/∂h_t‖ against the time step t on a log scale: vanishing gradients fall
    geometrically toward t = 0, exploding ones rise.

    Args:
        path: the PNG to write.
        panels: one panel per entry (a layer and state, e.g. ``"rnn.0.forward/h"``), each
            ``{curve label: norms (T,)}``: the training steps a run recorded, or the cells a
            benchmark compared. Consecutive labels get colours along one colour map.
        title: over the figure.
    """
    if not panels or any(not curves for curves in panels.values()):
        raise ValueError("panels must map each panel name to at least one curve")
    from matplotlib import colormaps

    figure, axes_list = _new_figure(len(panels))
    for axes, (name, curves) in zip(axes_list, panels.items(), strict=True):
        count = len(curves)
        for index, (label, values) in enumerate(curves.items()):
            values = np.asarray(values, dtype=float)
            # Zeros (steps past every sequence's end) have no place on a log axis.
            shown = np.where(values > 0, values, np.nan)
            color = colormaps["viridis"](index / max(count - 1, 1) * 0.9)
            axes.plot(np.arange(values.size), shown, label=label, color=color, linewidth=1.2)
        axes.set_yscale("log")
        axes.grid(alpha=0.3, which="both")
        axes.set_ylabel(f"‖∂loss/∂{name.rsplit('/', 1)[-1]}_t‖")
        axes.set_title(name, fontsize="medium")
        axes.legend(fontsize="small", ncols=min(count, 4))
    axes_list[-1].set_xlabel("time step t")
    figure.suptitle(title or "gradient flow through time (log scale)")
    return _save(figure, path)


def plot_state_norms(path: str | Path, curves: Mapping[str, ArrayLike]) -> Path:
    """The mean norm of the hidden state ‖h_t‖ over a batch against the time step t: one
    curve per layer and direction."""
    if not curves:
        raise ValueError("curves must hold at least one layer's norms")
    figure, (axes,) = _new_figure()
    for label, values in curves.items():
        axes.plot(np.asarray(values, dtype=float), label=label)
    axes.set_xlabel("time step t")
    axes.set_ylabel("mean ‖h_t‖")
    axes.set_title("hidden-state norm over time")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


def plot_state_heatmap(path: str | Path, states: ArrayLike, title: str = "hidden state") -> Path:
    """The hidden units of one sequence over time: rows are units, columns time steps.

    Args:
        states: (T, size), the state after each step.
    """
    states = np.asarray(states, dtype=float)
    if states.ndim != 2 or 0 in states.shape:
        raise ValueError(f"states must be (T, size) with T, size >= 1, got shape {states.shape}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, min(2 + 0.08 * states.shape[1], 12)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    limit = max(float(np.abs(states).max()), 1e-12)
    image = axes.imshow(
        states.T, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest"
    )
    axes.set_xlabel("time step t")
    axes.set_ylabel("unit")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.03, label="activation")
    return _save(figure, path)


def plot_gate_statistics(
    path: str | Path,
    steps: ArrayLike,
    saturated: Mapping[str, ArrayLike],
    means: Mapping[str, ArrayLike],
) -> Path:
    """Gates over training: the fraction of saturated activations (top) and the mean
    activation (bottom) of each gate against the training step.

    Args:
        steps: (S,) the training steps recorded.
        saturated, means: ``"layer gate"`` -> (S,) values at those steps; gates that cannot
            saturate (NaN) are left out of the top panel.
    """
    steps = np.asarray(steps, dtype=float)
    if steps.ndim != 1 or steps.size == 0 or not means:
        raise ValueError("steps must be 1-D and non-empty, and means must hold a gate")
    figure, (top, bottom) = _new_figure(2)
    for label, values in saturated.items():
        values = _series(f"saturated[{label!r}]", values, steps.size, "steps")
        if not np.all(np.isnan(values)):
            top.plot(steps, values, marker=".", label=label)
    for label, values in means.items():
        values = _series(f"means[{label!r}]", values, steps.size, "steps")
        bottom.plot(steps, values, marker=".", label=label)
    top.set_ylabel("saturated fraction")
    top.set_title("gate saturation (sigmoid < 0.05 or > 0.95, tanh |x| > 0.95)")
    bottom.set_ylabel("mean activation")
    bottom.set_xlabel("training step")
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize="small", ncols=2)
    return _save(figure, path)


def plot_memory_benchmark(
    path: str | Path,
    steps: Sequence[int],
    errors: Mapping[str, ArrayLike],
    baseline: ArrayLike,
    metric: str,
) -> Path:
    """Test error of each cell against the sequence length T, with the trivial baseline.

    Args:
        steps: the lengths T run.
        errors: cell name -> (len(steps),) test errors (NaN for a run that did not happen).
        baseline: (len(steps),) the trivial strategy's error at each T, or one number.
        metric: the error's name, for the axis.
    """
    x = np.asarray(steps, dtype=float)
    if x.ndim != 1 or x.size == 0 or not errors:
        raise ValueError("steps must be a non-empty list and errors must hold a cell")
    figure, (axes,) = _new_figure()
    for cell, values in errors.items():
        axes.plot(x, _series(f"errors[{cell!r}]", values, x.size, "steps"), marker="o", label=cell)
    level = np.broadcast_to(np.asarray(baseline, dtype=float), x.shape)
    axes.plot(x, level, linestyle="--", color="grey", label="trivial baseline")
    axes.set_xticks(x)
    axes.set_xlabel("sequence length T")
    axes.set_ylabel(f"test {metric}")
    axes.set_title(f"test {metric} against sequence length: who remembers")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


def plot_piano_roll(
    path: str | Path, sounding: ArrayLike, low: int, primed: int = 0, *, frames_per_bar: int = 0
) -> Path:
    """A piano roll: time across, pitch up, each sounding frame a dark cell; the first
    ``primed`` frames (the seed a piece was composed from) shaded and labelled, bar lines
    every ``frames_per_bar`` frames.

    Args:
        path: the PNG to write.
        sounding: (T, P) bool, pitch ``low + p`` in column ``p``.
        low: the MIDI pitch of column 0.
    """
    roll = np.asarray(sounding, dtype=float)
    if roll.ndim != 2 or not roll.size:
        raise ValueError(f"sounding must be a non-empty (frames, pitches) array, got {roll.shape}")
    frames, pitches = roll.shape
    figure, (axes,) = _new_figure()
    axes.imshow(roll.T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
                extent=(0, frames, low - 0.5, low + pitches - 0.5))  # fmt: skip
    if primed:
        axes.axvspan(0, primed, color="tab:orange", alpha=0.2, label="prime")
        axes.legend(loc="upper right", fontsize="small")
    for bar in range(frames_per_bar, frames, frames_per_bar) if frames_per_bar else ():
        axes.axvline(bar, color="grey", linewidth=0.5, alpha=0.5)
    c_pitches = [p for p in range(low, low + pitches) if p % 12 == 0]
    axes.set_yticks(c_pitches, [f"C{p // 12 - 1}" for p in c_pitches])
    axes.set_xlabel("frame")
    axes.set_ylabel("pitch")
    axes.set_title("piano roll" + (" (shaded: the prime)" if primed else ""))
    return _save(figure, path)


def plot_contact_sheet(
    path: str | Path, images: ArrayLike, captions: Sequence[str], references: Sequence[str]
) -> Path:
    """Images in a grid, each with its generated caption and one reference under it.

    Args:
        path: the PNG to write.
        images: (N, H, W, 3) uint8.
        captions, references: N texts each.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(captions) != len(images) or len(references) != len(images):
        raise ValueError(
            f"images (N, H, W, 3) and N captions and references: got {images.shape}, "
            f"{len(captions)} and {len(references)}"
        )
    import textwrap

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(4, len(images))
    rows = -(-len(images) // columns)
    figure = Figure(figsize=(3.2 * columns, 3.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, caption, reference in zip(axes, images, captions, references, strict=False):
        ax.imshow(image, interpolation="nearest")
        said = textwrap.fill(f"model: {caption}", 38)
        truth = textwrap.fill(f"reference: {reference}", 38)
        ax.set_title(f"{said}\n{truth}", fontsize=7, loc="left")
    return _save(figure, path)


def plot_caption_attention(
    path: str | Path, image: ArrayLike, words: Sequence[str], weights: ArrayLike
) -> Path:
    """Where the decoder looked for each word: the image once per word, the attention over
    its grid of regions laid over it (brighter: more weight).

    Args:
        path: the PNG to write.
        image: (H, W, 3) uint8.
        words: the T words written (``</s>`` included, if it was).
        weights: (T, R), R a square grid of regions, row-major.
    """
    image, weights = np.asarray(image), np.asarray(weights, dtype=float)
    grid = round(float(np.sqrt(weights.shape[-1]))) if weights.ndim == 2 else 0
    if weights.shape != (len(words), grid * grid) or not grid:
        raise ValueError(
            f"weights has shape {weights.shape}, expected (len(words), regions of a square "
            f"grid) = ({len(words)}, g*g)"
        )
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(6, len(words) + 1)
    rows = -(-(len(words) + 1) // columns)
    figure = Figure(figsize=(2 * columns, 2.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    height, width = image.shape[:2]
    axes[0].imshow(image, interpolation="nearest")
    axes[0].set_title("image", fontsize=8)
    for ax, word, row in zip(axes[1:], words, weights, strict=False):
        ax.imshow(image, interpolation="nearest")
        heat = row.reshape(grid, grid) / max(row.max(), 1e-12)
        ax.imshow(heat, cmap="gray", alpha=0.65, extent=(0, width, height, 0),
                  interpolation="bilinear", vmin=0, vmax=1)  # fmt: skip
        ax.set_title(word, fontsize=9)
    return _save(figure, path)
