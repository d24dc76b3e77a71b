"""Models that leave Python: ONNX and ``torch.export`` programs with a free batch size and
number of steps, and the JSON a user needs to run them without rnnkit.

A model is exported as one or more graphs (``Graph``: a module of tensors in and tensors
out, example inputs by name, and which axes are free), each to its own file in one folder
with ``export.json`` beside them: the schema version, the task, the settings, the inputs and
outputs of every graph, and the task's data state (vocabularies, scalers, label names: what
the graphs do not hold). The folder is written whole or not at all.

Every recurrent layer runs on the ``scan`` backend while it is traced
(``rnnkit.backends.scan``): the fused C++ kernels cannot be traced, and a Python loop would
be unrolled at the example's length. After writing, each graph is run on a new random batch
of other sizes than the example's, against the model on the backend it normally runs, and
the largest difference is recorded in ``export.json`` (``checked``): an export proves itself.

ONNX goes through the ``torch.export``-based exporter (``dynamo=True``, onnxscript's
torchlib) at opset ``OPSET``; ``.pt2`` through ``torch.export.save``.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

SCHEMA = 1
FORMATS = ("onnx", "pt2")
# torchlib, which turns aten operators into ONNX, is written against opset 18: exporting
# there needs no version conversion, and ONNX Runtime has run it since 1.14 (2023).
OPSET = 18
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2"}
# Protocol buffers, which ONNX files are, hold at most 2 GiB: weights past this many bytes go
# to a data file beside the graph (ONNX's external data), which export.json lists.
ONNX_INLINE_BYTES = 2**31 - 2**26


class ExportError(ValueError):
    """A model, or a part of it, that cannot be exported; the message says why."""


@dataclass
class Graph:
    """One exported graph: ``module`` maps the tensors ``inputs`` (examples, by name, in the
    order ``forward`` takes them) to the tensors ``outputs`` names; ``dynamic`` names the
    free axes of each input (``{"x": {0: "batch", 1: "time"}}``); axes of the same name are
    one size, at least ``minimum[name]`` (default 1). ``sample(batch, time)`` makes inputs
    of other sizes for the check."""

    name: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)
    sample: object = None  # callable(batch, time) -> inputs like ``inputs``
    minimum: dict[str, int] = field(default_factory=dict)


def random_lengths(batch: int, steps: int) -> torch.Tensor:
    """Lengths in 1..``steps`` for a padded batch, the first of them ``steps``."""
    lengths = torch.randint(1, steps + 1, (batch,))
    lengths[0] = steps
    return lengths


def sequence_inputs(batch: int, steps: int, *, vocab_size=None, input_size=None) -> dict:
    """``{"x", "lengths"}``: token ids in 1..vocab_size - 1 (B, T), or features (B, T, F)."""
    if vocab_size is not None:
        x = torch.randint(1, vocab_size, (batch, steps))
    else:
        x = torch.randn(batch, steps, input_size)
    return {"x": x, "lengths": random_lengths(batch, steps)}


BATCH_AND_TIME = {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}


def state_names(layer) -> list[str]:
    """The names a recurrent layer's state takes in a graph: h, and c for an LSTM."""
    return ["h", "c"][: len(layer.state_sizes)]


def state_inputs(layer, batch: int) -> dict:
    """Small random states of ``layer`` for ``batch`` rows, by name: (layers, batch, size)."""
    rows = layer.num_layers * layer.num_directions
    return {name: torch.randn(rows, batch, size) * 0.1
            for name, size in zip(state_names(layer), layer.state_sizes, strict=True)}  # fmt: skip


def as_state(named: dict):
    """The layer's state from the graph's named tensors: h, or (h, c)."""
    return tuple(named.values()) if len(named) > 1 else named["h"]


def state_outputs(state) -> tuple:
    """A layer's state as the graph's outputs: (h,) or (h, c)."""
    return tuple(state) if isinstance(state, tuple) else (state,)


class Positional(nn.Module):
    """A graph whose inputs depend on the model's configuration (an LSTM's ``c``, attention's
    keys): ``forward`` takes the tensors ``names`` positionally, under those names (what
    ``torch.export`` reads from its signature), and returns ``function(**by_name)``.
    ``model`` is registered, so its weights are the graph's."""

    def __init__(self, model: nn.Module, names, function):
        super().__init__()
        self.model, self.names = model, list(names)

        def forward(*tensors):
            return function(**dict(zip(self.names, tensors, strict=True)))

        keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
        forward.__signature__ = inspect.Signature(
            [inspect.Parameter(name, keyword) for name in self.names]
        )
        self.forward = forward


@contextlib.contextmanager
def traceable(module: nn.Module):
    """``module`` in eval mode with every recurrent layer on the ``scan`` backend; both
    restored afterwards."""
    from .layers import Recurrent

    layers = [m for m in module.modules() if isinstance(m, Recurrent)]
    backends = [layer.backend for layer in layers]
    training = module.training
    module.eval()
    for layer in layers:
        layer.backend = "scan"
    try:
        yield module
    finally:
        for layer, backend in zip(layers, backends, strict=True):
            layer.backend = backend
        module.train(training)


@contextlib.contextmanager
def _quiet():
    """The ONNX exporter's progress lines (printed) and its notes on packages it would have
    registered (logged) held back: the export's own report says what happened."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _dynamic_shapes(graph: Graph) -> list:
    names = {name for axes in graph.dynamic.values() for name in axes.values()}
    dims = {name: torch.export.Dim(name, min=graph.minimum.get(name, 1)) for name in sorted(names)}
    # In the order of the inputs: a Positional's forward takes them as *tensors.
    return [
        {axis: dims[name] for axis, name in graph.dynamic.get(key, {}).items()} or None
        for key in graph.inputs
    ]


def _reason(error: Exception) -> str:
    """The first lines of a tracer's error: what it could not follow."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:4])[:600] or type(error).__name__


def export_graph(graph: Graph, path: Path, format: str) -> None:
    """Write ``graph`` to ``path`` as ``format`` ("onnx" or "pt2")."""
    if format not in FORMATS:
        raise ValueError(f"format={format!r} must be one of {list(FORMATS)}")
    arguments = tuple(graph.inputs.values())
    with traceable(graph.module) as module, torch.no_grad():
        try:
            program = torch.export.export(
                module, arguments, dynamic_shapes=_dynamic_shapes(graph), strict=False
            )
        except Exception as error:  # the tracer's errors have no common base
            raise ExportError(f"{graph.name} cannot be traced: {_reason(error)}") from error
        if format == "pt2":
            torch.export.save(program, str(path))
            return
        try:
            with _quiet():
                onnx = torch.onnx.export(
                    program, arguments, input_names=list(graph.inputs),
                    output_names=graph.outputs, opset_version=OPSET, dynamo=True, verbose=False,
                )  # fmt: skip
        except Exception as error:
            raise ExportError(
                f"{graph.name} cannot be written as ONNX: {_reason(error)}"
            ) from error
        weights = sum(t.numel() * t.element_size() for t in graph.module.state_dict().values())
        onnx.save(str(path), external_data=weights > ONNX_INLINE_BYTES)


def run_exported(path: Path, format: str, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The outputs of an exported graph on ``inputs``: ONNX Runtime for ONNX, the loaded
    program for ``.pt2``."""
    if format == "pt2":
        program = torch.export.load(str(path))
        with torch.no_grad():
            out = program.module()(*inputs.values())
        return list(out) if isinstance(out, tuple | list) else [out]
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: not its notes on unused constants
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {name: tensor.numpy() for name, tensor in inputs.items()}
    return [torch.from_numpy(array) for array in session.run(None, feeds)]


def check_graph(graph: Graph, path: Path, format: str, batch: int = 3, time: int = 11) -> dict:
    """Run the exported graph on new inputs of ``batch`` rows and ``time`` steps (sizes the
    example did not have) beside the module on its own backend: the largest absolute
    difference over every output, and the largest relative to the size of its output
    (``max_scaled_diff``: difference / the output's largest magnitude)."""
    inputs = graph.sample(batch, time) if graph.sample else graph.inputs
    with torch.no_grad():
        graph.module.eval()
        expected = graph.module(*inputs.values())
    expected = list(expected) if isinstance(expected, tuple | list) else [expected]
    try:
        got = run_exported(path, format, inputs)
    except ImportError:
        return {"checked": False, "why": "onnxruntime is not installed"}
    worst_abs = worst_scaled = 0.0
    for name, want, have in zip(graph.outputs, expected, got, strict=True):
        if tuple(want.shape) != tuple(have.shape):
            raise ExportError(
                f"{graph.name}: output {name} has shape {tuple(have.shape)} exported, "
                f"{tuple(want.shape)} in PyTorch"
            )
        if not want.numel():
            continue
        difference = float((want.double() - have.double()).abs().max())
        worst_abs = max(worst_abs, difference)
        scale = float(want.double().abs().max())
        worst_scaled = max(worst_scaled, difference / max(scale, 1e-12))
    return {"checked": True, "batch": batch, "time": time, "max_abs_diff": worst_abs,
            "max_scaled_diff": worst_scaled}  # fmt: skip


def describe(graph: Graph, path: Path) -> dict:
    """A graph's entry in export.json: its file, its inputs and outputs."""

    def shape(name: str, tensor: torch.Tensor) -> list:
        free = graph.dynamic.get(name, {})
        return [free.get(axis, size) for axis, size in enumerate(tensor.shape)]

    beside = sorted(p.name for p in path.parent.glob(f"{path.name}.*"))  # external data
    return {
        "file": path.name,
        **({"data_files": beside} if beside else {}),
        "inputs": [
            {"name": name, "dtype": str(tensor.dtype).removeprefix("torch."),
             "shape": shape(name, tensor)}
            for name, tensor in graph.inputs.items()
        ],
        "outputs": graph.outputs,
    }  # fmt: skip
