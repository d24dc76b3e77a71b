"""The cell registry: every entry passes one generic check, and no named cell escapes it.

The checks are parametrised from ``rnnkit.registry.CELLS`` itself, so a new entry is checked
the moment it is added: its cell's step by gradcheck, its layer with lengths, its state count,
each backend it claims against the reference (float64, 1e-10) and the refusal of the others,
and its weight exchange with its torch twin. ``EXAMPLE``, an entry a user could write for
conftest's ``MinimalRNN``, runs through the same checks, so the refusal of a backend an entry
does not claim is exercised even while every built-in cell runs on every backend.
"""

import importlib
import inspect
import pkgutil

import pytest
import torch
from click.testing import CliRunner

import rnnkit as rk
import rnnkit.cells
from rnnkit import backends, cli, layers, registry
from rnnkit.models import forecaster
from rnnkit.registry import CELLS, CellEntry
from rnnkit.tasks import memory
from rnnkit.tasks.settings import SHARED

from conftest import (
    MinimalRNN,
    as_tuple,
    assert_exchanges_weights_with_torch,
    assert_padded_batch_equals_each_sequence_alone,
    compare_backends,
    gradcheck_cell,
    make_inputs,
)

D64 = torch.float64


class MinimalLayer(rk.Recurrent):
    """``Recurrent`` over ``MinimalRNN`` with a named layer's signature."""

    def __init__(self, input_size, hidden_size, num_layers=1, **options):
        D = 2 if options.get("bidirectional") else 1
        sizes = [input_size] * D + [hidden_size * D] * (D * (num_layers - 1))
        super().__init__([MinimalRNN(s, hidden_size) for s in sizes], num_layers, **options)


EXAMPLE = CellEntry("minimal", MinimalLayer, MinimalRNN, states=2)
ENTRIES = [*CELLS.values(), EXAMPLE]
CLAIMS = [(entry, backend) for entry in ENTRIES for backend in entry.backends]
COMPARED = [(entry, backend) for entry, backend in CLAIMS if backend != "reference"]


def ids(value):
    return value.name if isinstance(value, CellEntry) else None


def make_layer(entry, **options):
    """A small stacked bidirectional layer of ``entry`` in float64, parameters off their
    initial values (zero biases and peepholes would hide their gradients' errors)."""
    layer = entry.layer(5, 4, 2, bidirectional=True, **options).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return layer


# ---------------------------------------------------------------- every entry


@pytest.mark.parametrize("entry", ENTRIES, ids=ids)
def test_the_cell_step_passes_gradcheck(entry):
    gradcheck_cell(entry.cell(3, 4), batch=2)


@pytest.mark.parametrize(("entry", "backend"), CLAIMS, ids=ids)
def test_the_layer_with_lengths_equals_each_sequence_alone(entry, backend):
    layer = make_layer(entry, backend=backend).eval()
    assert layer.backend_in_use == backend, layer.backend_reason
    assert_padded_batch_equals_each_sequence_alone(layer, torch.randn(5, 6, 5, dtype=D64))


@pytest.mark.parametrize("entry", ENTRIES, ids=ids)
def test_the_layer_is_made_of_the_cell_and_carries_the_states_the_entry_counts(entry):
    layer = make_layer(entry)
    assert all(type(cell) is entry.cell for cell in layer.cells)
    assert len(layer.state_sizes) == entry.states
    _, state = layer(torch.randn(2, 3, 5, dtype=D64))
    assert len(as_tuple(state)) == entry.states


@pytest.mark.parametrize(("entry", "backend"), COMPARED, ids=ids)
def test_each_claimed_backend_equals_the_reference(entry, backend):
    layer = make_layer(entry)
    x, state, lengths = make_inputs(layer, True, True, D64)
    compare_backends(layer, x, state, lengths, D64, backend=backend)


@pytest.mark.parametrize("entry", ENTRIES, ids=ids)
def test_an_unclaimed_backend_is_refused_with_a_reason_and_auto_picks_a_claimed_one(entry):
    for backend in set(backends.BACKENDS) - set(entry.backends):
        with pytest.raises(ValueError, match=f"backend={backend!r} cannot run this layer: .+"):
            make_layer(entry, backend=backend)
    layer = make_layer(entry)
    assert layer.backend == "auto"
    assert layer.backend_in_use in entry.backends and layer.backend_reason


@pytest.mark.parametrize("entry", ENTRIES, ids=ids)
def test_the_torch_twin_exchanges_weights_both_ways(entry):
    assert getattr(entry.layer, "torch_class", None) is entry.torch
    if entry.torch is None:
        return
    theirs = entry.torch(5, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    assert_exchanges_weights_with_torch(entry.layer, theirs, torch.randn(3, 6, 5, dtype=D64))


# ---------------------------------------------------------------- nothing escapes


def public_classes(modules, kind):
    """The classes of ``kind`` that ``modules`` define under a public name."""
    return {
        value
        for module in modules
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, kind)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    }


def test_every_named_cell_and_layer_is_registered():
    cell_modules = [
        importlib.import_module(f"rnnkit.cells.{info.name}")
        for info in pkgutil.iter_modules(rnnkit.cells.__path__)
    ]
    cells = {c for c in public_classes(cell_modules, torch.nn.Module) if hasattr(c, "step")}
    # Recurrent itself runs any cell; its subclasses are the layers named for users.
    named_layers = public_classes([layers], rk.Recurrent) - {rk.Recurrent}
    for kind, found, registered in [
        ("cell", cells, {entry.cell for entry in CELLS.values()}),
        ("layer", named_layers, {entry.layer for entry in CELLS.values()}),
    ]:
        escaped = sorted(c.__qualname__ for c in found - registered)
        assert not escaped, f"{kind} classes without an entry in rnnkit.registry.CELLS: {escaped}"
        assert registered <= found, f"the search for {kind} classes missed some: it is broken"


# ---------------------------------------------------------------- who reads the registry


def test_the_names_are_read_from_the_registry_everywhere():
    assert forecaster.CELLS is CELLS and forecaster.recurrent_layer is registry.recurrent_layer
    assert tuple(CELLS) == memory.CELLS
    assert SHARED["cell"].choices == tuple(CELLS)
    help_text = CliRunner().invoke(cli.main, ["tag", "train", "--help"]).output
    assert f"--cell [{'|'.join(CELLS)}]" in help_text
    for name, entry in CELLS.items():
        assert type(registry.recurrent_layer(name, 3, 4, 1)) is entry.layer
        assert type(memory.MemoryNet(name, 3, 4, 1, every_step=False).rnn) is entry.layer


def test_an_unknown_name_is_refused_with_the_names_there_are():
    with pytest.raises(ValueError, match=r"^cell='tcn' is not one of \('lstm', 'gru', 'rnn'\)$"):
        registry.recurrent_layer("tcn", 3, 4, 1)


def test_an_entry_must_claim_the_reference_and_known_backends_only():
    for claimed in [("vendor",), ("reference", "cudnn")]:
        with pytest.raises(ValueError, match="must include 'reference'"):
            CellEntry("bad", MinimalLayer, MinimalRNN, states=2, backends=claimed)
