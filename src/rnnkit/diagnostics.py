"""Seeing inside a recurrent model: how the gradient flows back through time, and what the
gates and states do.

- ``gradient_flow(model, batch)``: ‖∂loss/∂h_t‖ for every step t of every recurrent layer
  and direction (and ‖∂loss/∂c_t‖ for the LSTM), from one backward pass. Vanishing gradients
  are norms that fall geometrically going back in time; exploding ones rise.
- ``state_statistics(model, batch)``: per layer and direction, the fraction of saturated gate
  activations (sigmoid < 0.05 or > 0.95, tanh |x| > 0.95), each gate's mean (the forget gate's
  says how much memory the LSTM keeps), the norm of h_t over time, and h_t of one sequence
  for a heat map.
- ``diagnose`` does both in one pass; ``Diagnosis.save``/``load`` write and read them, and
  ``rnnkit.plots`` draws them.
- ``Recorder``, a ``rnnkit.training.Hook``, diagnoses a fixed batch while the Trainer trains
  (``Trainer(hooks=[Recorder(every=N, folder=DIR)])``); ``read_run``, ``render`` and
  ``summary`` read and draw what it recorded.

Every recurrent layer of rnnkit (``rnnkit.layers``) that the model runs is recorded, on any
backend: the reference backend hooks each step's state, the fused kernels write the gradients
they carry back through time anyway, and configurations that would run on the vendor kernels
(which keep no per-step gradients) run fused, or on the reference, while recording. The
model runs in eval mode (no dropout), so two diagnoses of the same weights agree.

Layers are named by their path in the model, their index in the stack and their direction:
``encoder.0.forward``. A layer called several times in one pass (a decoder run step by step)
reads as one sequence, its calls joined along time.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ._checks import check_integer
from .backends import recording
from .backends.reference import valid_steps
from .training.batches import fetch, to_device, unpack
from .training.hooks import Hook
from .training.losses import batch_loss, lengths_argument


def state_name(k: int) -> str:
    """The name of state tensor k: h, c (the LSTM's is (h, c)), then s2, s3, … (a user's cell)."""
    return ("h", "c")[k] if k < 2 else f"s{k}"


SIGMOID_BAND = 0.05  # a sigmoid below 0.05 or above 0.95 passes < 5 % of its gradient
TANH_BAND = 0.95  # tanh beyond ±0.95 passes < 10 %


@dataclass
class Trace:
    """One direction of one layer, its calls in this pass joined along time.

    ``states[k]`` and ``gradients[k]`` are (T, B, size) for state tensor k (h, then c);
    ``valid`` (T, B) is True where step t of sequence b was computed.
    """

    name: str
    cell: nn.Module
    valid: torch.Tensor
    states: tuple[torch.Tensor, ...]
    gradients: tuple[torch.Tensor | None, ...]
    gates: dict[str, tuple[str, torch.Tensor]]  # name -> (kind, (T, B, size) activations)


@dataclass
class GateStatistics:
    """One gate of one layer and direction, over the valid steps of a batch."""

    kind: str  # "sigmoid", "tanh", or the activation of an Elman cell
    saturated: float  # fraction of activations in the flat ends (NaN where kind cannot saturate)
    mean: float
    mean_by_step: torch.Tensor  # (T,) the mean at each step


@dataclass
class Diagnosis:
    """What ``diagnose`` found in one batch. Keys are layer names (``rnn.0.forward``); the
    gradient keys add the state (``rnn.0.forward/h``).

    loss: the batch's mean loss, or None for statistics alone.
    gradient_norms: (T,) ‖∂loss/∂state_t‖ over the batch (all sequences and units).
    state_norms: (T,) mean over the batch's sequences of ‖h_t‖ (NaN where none is running).
    heat: (T_b, size) h_t of the chosen sequence, over its own length T_b.
    gates: per layer, per gate name, its ``GateStatistics``.
    """

    loss: float | None = None
    gradient_norms: dict[str, torch.Tensor] = field(default_factory=dict)
    state_norms: dict[str, torch.Tensor] = field(default_factory=dict)
    heat: dict[str, torch.Tensor] = field(default_factory=dict)
    gates: dict[str, dict[str, GateStatistics]] = field(default_factory=dict)

    def save(self, path, metadata: dict | None = None) -> None:
        """Write as one safetensors file; ``metadata`` (JSON-able) travels with it."""
        from safetensors.torch import save_file

        tensors = {f"gradient/{k}": v for k, v in self.gradient_norms.items()}
        tensors |= {f"state_norm/{k}": v for k, v in self.state_norms.items()}
        tensors |= {f"heat/{k}": v for k, v in self.heat.items()}
        kinds = {}
        for layer, gates in self.gates.items():
            for gate, stats in gates.items():
                key = f"gate/{layer}/{gate}"
                kinds[key] = stats.kind
                tensors[f"{key}/by_step"] = stats.mean_by_step
                tensors[f"{key}/summary"] = torch.tensor([stats.saturated, stats.mean])
        info = {"loss": self.loss, "kinds": kinds, "metadata": metadata or {}}
        tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
        save_file(tensors, str(path), metadata={"rnnkit": json.dumps(info)})

    @classmethod
    def load(cls, path) -> tuple[Diagnosis, dict]:
        """-> (the diagnosis, the metadata saved with it)."""
        from safetensors import safe_open

        with safe_open(str(path), "pt") as file:
            info = json.loads(file.metadata()["rnnkit"])
            tensors = {k: file.get_tensor(k) for k in file.keys()}  # noqa: SIM118
        diagnosis = cls(loss=info["loss"])
        parts = {
            "gradient": diagnosis.gradient_norms,
            "state_norm": diagnosis.state_norms,
            "heat": diagnosis.heat,
        }
        for key, tensor in tensors.items():
            group, rest = key.split("/", 1)
            if group in parts:
                parts[group][rest] = tensor
        for key, kind in info["kinds"].items():
            _, layer, gate = key.split("/", 2)
            saturated, mean = tensors[f"{key}/summary"].tolist()
            diagnosis.gates.setdefault(layer, {})[gate] = GateStatistics(
                kind, saturated, mean, tensors[f"{key}/by_step"]
            )
        return diagnosis, info["metadata"]


# ---------------------------------------------------------------------------- recording


def record(
    model: nn.Module, batch, *, loss="mse", compute_loss=None, backward=True, statistics=True
):
    """Run ``model`` on ``batch`` in eval mode while recording its recurrent layers.

    -> (mean loss or None, [Trace]). With ``backward`` the loss is differentiated with
    respect to a zero added to each recorded layer's initial state (so frozen layers are
    seen, and no parameter's ``.grad`` is touched) and the traces hold gradients; without,
    only the forward pass runs, gradients off. ``statistics=False`` skips the gates.

    ``batch`` is what ``Trainer`` feeds the model: ``(inputs, target)`` or ``(inputs, target,
    lengths)`` scored by ``loss``, or anything ``compute_loss(model, batch) -> mean loss``
    takes.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    names = {module: name for name, module in model.named_modules()}
    was_training = model.training
    model.eval()
    try:
        with recording.recording() as recorder, torch.set_grad_enabled(backward):
            if backward:
                value = batch_loss(model, batch, loss, compute_loss)
                _check_scalar(value, model, recorder)
                # To the anchors, not the parameters: a frozen layer is seen too, and no
                # parameter's .grad is touched.
                torch.autograd.grad(value, recorder.anchors, allow_unused=True)
                value = float(value.detach())
            else:
                value = None
                _forward_only(model, batch, compute_loss)
                _check_ran(model, recorder)
    finally:
        model.train(was_training)
    return value, _join(recorder.directions, names, with_gates=statistics)


def _forward_only(model, batch, compute_loss) -> None:
    """The forward pass alone, called as ``batch_loss`` calls the model."""
    if compute_loss is not None:
        compute_loss(model, batch)
        return
    parts = unpack(batch)
    model(*parts.inputs, **lengths_argument(parts.lengths))


def _check_ran(model, recorder) -> None:
    if not recorder.directions:
        raise ValueError(
            f"{type(model).__name__} ran no rnnkit recurrent layer (rnnkit.layers.Recurrent, "
            "RNN, LSTM, GRU) on this batch, so there is nothing to diagnose"
        )


def _check_scalar(value, model, recorder) -> None:
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else repr(value)
        raise ValueError(f"the loss must be a scalar tensor, got {got}")
    _check_ran(model, recorder)
    if not value.requires_grad:
        raise ValueError(
            "the loss does not depend on any recorded layer's states (or the layers ran with "
            "gradients off), so no gradient flows back through time"
        )


def _layer_name(direction, names) -> str:
    name = names.get(direction.layer) or type(direction.layer).__name__.lower()
    return f"{name}.{direction.index}.{'backward' if direction.reverse else 'forward'}"


def _previous_states(direction) -> tuple[torch.Tensor, ...]:
    """The state each step started from, by time: the initial state, then the states after
    the steps before it (after it, going backward)."""
    previous = []
    for initial, states in zip(direction.initial, direction.states, strict=True):
        if direction.reverse:
            previous.append(torch.cat([states[1:], initial[None]]))
        else:
            previous.append(torch.cat([initial[None], states[:-1]]))
    return tuple(previous)


@torch.no_grad()
def _gates(direction) -> dict[str, tuple[str, torch.Tensor]]:
    """Every step's gate activations, computed from the recorded inputs and states at once:
    a step's gates depend on its input and previous state only."""
    cell = direction.cell
    if not hasattr(cell, "gates"):
        return {}
    T, B = direction.inputs.shape[:2]
    previous = [p.flatten(0, 1) for p in _previous_states(direction)]
    state = previous[0] if len(previous) == 1 else tuple(previous)
    gates = cell.gates(direction.inputs.flatten(0, 1), state)
    return {name: (gate.kind, gate.values.view(T, B, -1)) for name, gate in gates.items()}


def _join(directions, names, with_gates: bool) -> list[Trace]:
    """One Trace per layer and direction, in the order they first ran."""
    groups = defaultdict(list)
    for direction in directions:
        groups[_layer_name(direction, names)].append(direction)
    traces = []
    for name, calls in groups.items():
        batch = {call.inputs.shape[1] for call in calls}
        if len(batch) > 1:
            raise ValueError(
                f"layer {name} ran {len(calls)} times on batches of different sizes "
                f"{sorted(batch)}; its calls cannot be joined into one sequence"
            )
        valid = [
            valid_steps(c.inputs.shape[0], c.lengths, c.inputs.device)
            if c.lengths is not None
            else torch.ones(c.inputs.shape[:2], dtype=torch.bool, device=c.inputs.device)
            for c in calls
        ]
        count = len(calls[0].states)
        gradients = []
        for k in range(count):
            parts = [c.gradients[k] if c.gradients else None for c in calls]
            gradients.append(None if any(p is None for p in parts) else torch.cat(parts))
        gates = [_gates(c) for c in calls] if with_gates else [{}]
        traces.append(
            Trace(
                name=name,
                cell=calls[0].cell,
                valid=torch.cat(valid),
                states=tuple(torch.cat([c.states[k] for c in calls]) for k in range(count)),
                gradients=tuple(gradients),
                gates={
                    gate: (kind, torch.cat([g[gate][1] for g in gates]))
                    for gate, (kind, _) in gates[0].items()
                },
            )
        )
    return traces


# ---------------------------------------------------------------------------- measures


@dataclass
class GradientFlow:
    """∂loss/∂state_t of every recorded layer, direction and state tensor.

    gradients: ``"rnn.0.forward/h"`` -> (T, B, size), 0 on steps past a sequence's end.
    norms: the same keys -> (T,), the norm over the whole batch at each step.
    """

    loss: float
    gradients: dict[str, torch.Tensor]

    @property
    def norms(self) -> dict[str, torch.Tensor]:
        return {key: g.flatten(1).norm(dim=1) for key, g in self.gradients.items()}

    def plot(self, path, title: str | None = None):
        """The norms against t on a log scale, one panel per layer, direction and state."""
        from .plots import plot_gradient_flow

        panels = {key: {f"loss {self.loss:.4g}": norms} for key, norms in self.norms.items()}
        return plot_gradient_flow(path, panels, title)


def gradient_flow(model: nn.Module, batch, *, loss="mse", compute_loss=None) -> GradientFlow:
    """The gradient of the batch's mean loss with respect to every step's state, from one
    backward pass (see ``record`` for ``batch``, ``loss`` and ``compute_loss``).

    Example::

        >>> flow = gradient_flow(model, (x, y))
        >>> flow.norms["rnn.0.forward/h"]          # (T,): small at early t = vanishing
    """
    value, traces = record(model, batch, loss=loss, compute_loss=compute_loss, statistics=False)
    return GradientFlow(value, _gradients(traces))


def _gradients(traces) -> dict[str, torch.Tensor]:
    gradients = {}
    for trace in traces:
        for k, gradient in enumerate(trace.gradients):
            state = state_name(k)
            if gradient is None:
                raise ValueError(
                    f"no gradient reached layer {trace.name}: the loss does not depend on it, "
                    "or it ran with gradients off (torch.no_grad)"
                )
            gradients[f"{trace.name}/{state}"] = gradient
    return gradients


def _saturated(kind: str, values: torch.Tensor) -> torch.Tensor | None:
    if kind == "sigmoid":
        return (values < SIGMOID_BAND) | (values > 1 - SIGMOID_BAND)
    if kind == "tanh":
        return values.abs() > TANH_BAND
    return None


def _gate_statistics(kind: str, values: torch.Tensor, valid: torch.Tensor) -> GateStatistics:
    """Statistics over the valid (t, b) entries of (T, B, size) activations."""
    weight = valid[..., None].to(values.dtype).expand_as(values)
    count = weight.sum()
    saturated = _saturated(kind, values)
    by_step = (values * weight).sum((1, 2)) / weight.sum((1, 2))
    return GateStatistics(
        kind=kind,
        saturated=float("nan") if saturated is None else float((saturated * weight).sum() / count),
        mean=float((values * weight).sum() / count),
        mean_by_step=by_step,
    )


def _statistics(traces, diagnosis: Diagnosis, sequence: int) -> None:
    for trace in traces:
        h, valid = trace.states[0], trace.valid
        if not 0 <= sequence < h.shape[1]:
            raise ValueError(
                f"sequence={sequence} is not a row of the batch; expected 0..{h.shape[1] - 1}"
            )
        norms = h.norm(dim=2) * valid
        diagnosis.state_norms[trace.name] = norms.sum(1) / valid.sum(1)
        diagnosis.heat[trace.name] = h[valid[:, sequence], sequence]
        diagnosis.gates[trace.name] = {
            gate: _gate_statistics(kind, values, valid)
            for gate, (kind, values) in trace.gates.items()
        }


def state_statistics(model: nn.Module, batch, *, compute_loss=None, sequence: int = 0):
    """Gate saturation and means, state norms over time and the heat map of ``sequence``,
    from a forward pass alone (the batch's target is not read, but the default call
    convention still wants one in its place).

    -> ``Diagnosis`` without gradients.
    """
    _, traces = record(model, batch, compute_loss=compute_loss, backward=False)
    diagnosis = Diagnosis()
    _statistics(traces, diagnosis, sequence)
    return diagnosis


def diagnose(model: nn.Module, batch, *, loss="mse", compute_loss=None, sequence: int = 0):
    """``gradient_flow`` norms and ``state_statistics`` from one forward and backward pass.

    -> ``Diagnosis``.
    """
    value, traces = record(model, batch, loss=loss, compute_loss=compute_loss)
    norms = GradientFlow(value, _gradients(traces)).norms
    diagnosis = Diagnosis(loss=value, gradient_norms=norms)
    _statistics(traces, diagnosis, sequence)
    return diagnosis


# ---------------------------------------------------------------------------- in a run


class Recorder(Hook):
    """A Trainer hook that records ``diagnose`` of one fixed batch as training goes.

    ``Trainer(hooks=[Recorder(every=N, folder=DIR)])`` records before the first step, after
    every ``every`` steps and after the last step (when it is off that grid), into ``folder``
    as ``step_NNNNNNN.safetensors`` (the step count, 7 digits; the metadata holds ``step``
    and ``epoch``). When ``restore_best`` puts the best epoch's weights back, those get one
    more record, ``step_NNNNNNN_best`` (metadata ``restored_best_epoch`` too). Read them with
    ``read_run`` (on the folder's parent, a run directory whose ``diagnostics/`` is
    ``folder``) or ``rnnkit diagnose``.

    The batch is the first ``rows`` rows of the val set (of the training set without one),
    fetched once per fit so every record reads the same rows, run in eval mode over the
    whole sequence (no truncation) and scored as the Trainer scores training: with
    ``trainer.loss`` or ``trainer.compute_loss``. A fresh fit (not ``resume``) first removes
    the ``step_*.safetensors`` an earlier run left in ``folder``, which would read as its
    own; a resumed one keeps them and records step 0 only when no step was restored.
    Recording draws no randomness and touches no parameter's ``.grad``, so training is bit
    for bit what it is without it; the Trainer counts its time in ``hook_seconds``, not as
    training time.

    Args:
        every: record after every this many optimizer steps, an integer >= 1.
        folder: the directory the records go into (created when needed).
        rows: the rows of the diagnostic batch, an integer >= 1 (fewer when the data has
            fewer).
    """

    def __init__(self, *, every: int, folder: str | os.PathLike, rows: int = 32):
        for name, value in (("every", every), ("rows", rows)):
            check_integer(f"Recorder {name}", value, 1)
        if folder is None or not isinstance(folder, str | os.PathLike) or not str(folder):
            raise ValueError(
                f"Recorder folder={folder!r} must be the directory to record into (a path)"
            )
        self.every = every
        self.folder = Path(folder)
        self.rows = rows
        self._batch = None

    def __repr__(self) -> str:
        return f"Recorder(every={self.every}, folder={str(self.folder)!r}, rows={self.rows})"

    def on_fit_start(self, trainer, context) -> None:
        self._batch = None  # this fit's data: fetched at the first record
        if not context.resume:
            for path in self.folder.glob("step_*.safetensors"):
                path.unlink()
        if context.step == 0:
            self._record(trainer, context)

    def on_step(self, trainer, context) -> None:
        if context.step % self.every == 0:
            self._record(trainer, context)

    def on_fit_end(self, trainer, context) -> None:
        if context.step % self.every:
            self._record(trainer, context)  # the last step, off the regular grid

    def on_best_restored(self, trainer, context, best_epoch: int) -> None:
        self._record(trainer, context, restored=best_epoch)  # the weights the model ends with

    def _record(self, trainer, context, restored: int | None = None) -> None:
        if self._batch is None:  # fetched once: every record reads the same rows
            data = context.val if context.val is not None else context.train
            rows = torch.arange(min(self.rows, len(data)))
            self._batch = to_device(fetch(data, rows), context.device)
        found = diagnose(
            context.model, self._batch, loss=trainer.loss, compute_loss=trainer.compute_loss
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        name, meta = f"step_{context.step:07d}", {"step": context.step, "epoch": context.epoch}
        if restored is not None:
            name, meta = f"{name}_best", meta | {"restored_best_epoch": restored}
        found.save(self.folder / f"{name}.safetensors", meta)


def read_run(run) -> list[tuple[Diagnosis, dict]]:
    """The diagnoses a training run recorded (``Trainer(hooks=[Recorder(every=N,
    folder=run / "diagnostics")])``), in step order: [(diagnosis, metadata with its
    ``step``)]."""
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"run={str(run)!r} is not a directory")
    if (run / "runs").is_dir() and not (run / "diagnostics").is_dir():
        raise FileNotFoundError(
            f"run={str(run)!r} holds several runs (bench-memory); diagnose one of "
            f"{str(run / 'runs')!r}/<cell>_T<T>"
        )
    folder = run / "diagnostics"
    files = sorted(folder.glob("step_*.safetensors"))
    if not files:
        raise FileNotFoundError(
            f"{str(folder)!r} holds no recorded diagnostics; train with --diagnose-every N "
            "(Trainer(hooks=[Recorder(every=N, folder=...)])) to record them"
        )
    return [Diagnosis.load(path) for path in files]


def _spread(records: list, count: int) -> list:
    """At most ``count`` records, evenly spread, the first and last always among them."""
    if len(records) <= count:
        return records
    picks = torch.linspace(0, len(records) - 1, count).round().long().unique().tolist()
    return [records[i] for i in picks]


def render(records: list[tuple[Diagnosis, dict]], out) -> list[Path]:
    """Draw a run's recorded diagnoses into ``out``: the gradient flow at up to 8 of the
    recorded steps, the gates over training, and the last step's state norms and one heat
    map per layer. -> the PNG paths."""
    from . import plots

    out = Path(out)
    shown = _spread(records, 8)
    panels = defaultdict(dict)
    for diagnosis, meta in shown:
        for key, norms in diagnosis.gradient_norms.items():
            panels[key][_label(meta)] = norms
    paths = [plots.plot_gradient_flow(out / "gradient_flow.png", dict(panels))]
    steps = [meta.get("step", i) for i, (_, meta) in enumerate(records)]
    saturated, means = defaultdict(list), defaultdict(list)
    for diagnosis, _ in records:
        for layer, gates in diagnosis.gates.items():
            for gate, stats in gates.items():
                saturated[f"{layer} {gate}"].append(stats.saturated)
                means[f"{layer} {gate}"].append(stats.mean)
    if means:
        paths.append(plots.plot_gate_statistics(out / "gates.png", steps, saturated, means))
    last, meta = records[-1]
    paths.append(plots.plot_state_norms(out / "state_norms.png", last.state_norms))
    for layer, states in last.heat.items():
        title = f"{layer}: h_t of the first sequence, {_label(meta)}"
        paths.append(plots.plot_state_heatmap(out / f"heatmap_{layer}.png", states, title))
    return paths


def _label(meta: dict) -> str:
    best = meta.get("restored_best_epoch")
    return f"step {meta.get('step', '?')}" + ("" if best is None else f" (best epoch {best})")


def summary(records: list[tuple[Diagnosis, dict]]) -> str:
    """A few lines on the first and last records: for each layer and state, where over t the
    gradient norm is largest and smallest and their ratio (a tiny ratio far from where the
    loss reads is a vanishing gradient; over padded batches fewer sequences count at late
    t), and each gate's mean and saturation."""
    lines = []
    for diagnosis, meta in records[:1] + records[1:][-1:]:
        lines.append(f"{_label(meta)}: loss {diagnosis.loss:.4g}")
        for key, norms in diagnosis.gradient_norms.items():
            high, low = int(norms.argmax()), int(norms.argmin())
            ratio = float(norms[low] / norms[high]) if norms[high] > 0 else float("nan")
            lines.append(
                f"  {key}: ‖∂loss/∂state_t‖ largest at t={high}, smallest at t={low}, "
                f"smallest / largest = {ratio:.3g}"
            )
        for layer, gates in diagnosis.gates.items():
            parts = [
                f"{gate} mean {stats.mean:.2f}"
                + ("" if math.isnan(stats.saturated) else f" sat {stats.saturated:.0%}")
                for gate, stats in gates.items()
            ]
            lines.append(f"  {layer}: " + ", ".join(parts))
    return "\n".join(lines)


__all__ = [
    "Diagnosis",
    "GateStatistics",
    "GradientFlow",
    "Recorder",
    "Trace",
    "diagnose",
    "gradient_flow",
    "read_run",
    "record",
    "render",
    "state_statistics",
    "summary",
]
