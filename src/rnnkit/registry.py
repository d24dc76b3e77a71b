"""The named cells: one table from a cell's name to what rnnkit knows of it.

Whatever takes a cell by name reads ``CELLS``: the models' ``cell=`` (through
``recurrent_layer``), the tasks' settings, the memory benchmark and the command line's
``--cell`` choices. Each entry says which layer and cell classes the name builds, the
``torch.nn`` module it exchanges weights with (if any), how many state tensors the layer
carries, and which backends run the cell (``tests/test_registry.py`` checks every claim).

Adding a named cell is one entry here plus its tests:

1. the cell in ``cells/`` (the cell protocol of ``rnnkit.Recurrent``, built as
   ``Cell(input_size, hidden_size)`` with defaults for the rest) and its layer in
   ``layers.py`` (``Layer(input_size, hidden_size, num_layers=1, **options)``, a
   ``Recurrent`` over the cell), if they do not exist yet;
2. one ``CellEntry`` in ``CELLS`` below, its ``backends`` the ones that serve it (a new cell
   has ``("reference",)`` until a backend learns it);
3. tests: ``tests/test_registry.py`` runs its generic checks over every entry by itself
   (gradcheck of the step, lengths, the state count, each claimed backend against the
   reference and the refusal of the others, the torch exchange) and fails if a public cell
   or layer class is missing from the table; the cell's own equations get their tests beside
   ``tests/test_cells.py``.

Nothing else names the cells: models, tasks and the CLI take the new name from here.
"""

import inspect
from dataclasses import dataclass

from torch import nn

from . import backends
from .cells import ElmanCell, GRUCell, LSTMCell
from .layers import GRU, LSTM, RNN, Recurrent


@dataclass(frozen=True)
class CellEntry:
    """What rnnkit knows of one named cell.

    Args:
        name: the name users pass as ``cell=`` and ``--cell``.
        layer: the rnnkit layer class, ``layer(input_size, hidden_size, num_layers, **options)``.
        cell: the cell class the layer runs, ``cell(input_size, hidden_size)``.
        states: the number of state tensors the layer takes and returns (LSTM: h and c).
        backends: the backends that run the cell in its default configuration; the reference
            always does.
        torch: the ``torch.nn`` module ``layer.from_torch`` / ``to_torch`` exchange weights
            with, or None.
    """

    name: str
    layer: type[Recurrent]
    cell: type[nn.Module]
    states: int
    backends: tuple[str, ...] = ("reference",)
    torch: type[nn.RNNBase] | None = None

    def __post_init__(self):
        unknown = [b for b in self.backends if b not in backends.BACKENDS]
        if "reference" not in self.backends or unknown:
            raise ValueError(
                f"cell {self.name!r}: backends={self.backends!r} must include 'reference' and "
                f"name only backends of {tuple(backends.BACKENDS)}"
            )


CELLS: dict[str, CellEntry] = {
    entry.name: entry
    for entry in (
        CellEntry(
            "lstm", LSTM, LSTMCell, states=2, backends=("reference", "vendor", "fused"),
            torch=nn.LSTM,
        ),
        CellEntry(
            "gru", GRU, GRUCell, states=1, backends=("reference", "vendor", "fused"),
            torch=nn.GRU,
        ),
        CellEntry(
            "rnn", RNN, ElmanCell, states=1, backends=("reference", "vendor", "fused"),
            torch=nn.RNN,
        ),
    )
}  # fmt: skip


def entry(cell: str) -> CellEntry:
    """The entry of ``cell``, or a ValueError that lists the names there are."""
    if cell not in CELLS:
        raise ValueError(f"cell={cell!r} is not one of {tuple(CELLS)}")
    return CELLS[cell]


def layer_options(cell: str) -> list[str]:
    """The options the layer of ``cell`` takes besides its sizes (its own, such as
    ``layer_norm``, and those of every layer, such as ``recurrent_dropout``)."""
    from .layers import Recurrent

    own = inspect.signature(entry(cell).layer).parameters.values()
    shared = inspect.signature(Recurrent).parameters.values()
    return sorted(
        parameter.name
        for parameter in [*own, *shared]
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    )


def recurrent_layer(
    cell: str, input_size: int, hidden_size: int, num_layers: int, *, user=None, **options
):
    """An rnnkit layer by cell name, one of ``CELLS`` ("rnn" is Elman; ``activation=`` picks
    tanh, relu, sigmoid or leaky_relu). ``options`` go to the layer (``layer_norm``,
    ``recurrent_dropout``, ``zoneout``, ``bidirectional``, …); ``user`` are more of them, from
    a user, who may not set those the model sets itself in ``options``."""
    clash = sorted(set(user or {}) & set(options))
    if clash:
        raise ValueError(
            f"layer options {clash} are set by the model itself; use its own settings for them"
        )
    options |= user or {}
    layer = entry(cell).layer
    try:
        return layer(input_size, hidden_size, num_layers, **options)
    except TypeError as error:
        if "keyword argument" not in str(error):
            raise  # not an option's fault (a size too large for a tensor)
        raise ValueError(f"layer options {options}: {error}") from None
