"""Recurrent layers: any cell, stacked and bidirectional, with lengths, state and regularisers.

``Recurrent(cell)`` runs any cell that follows the cell protocol (see ``Recurrent``);
``RNN``, ``LSTM`` and ``GRU`` are ``Recurrent`` over the built-in cells, and exchange weights
with ``torch.nn.RNN`` / ``LSTM`` / ``GRU``.
"""

import copy
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from . import backends
from ._checks import check_choice, check_flag, check_fraction, check_integer
from .backends import recording
from .backends.noise import Noise, dropout_mask, keep_mask
from .cells import ElmanCell, GRUCell, LSTMCell

MERGES = ("concat", "sum", "mean", "mul")


def _check_rate(name: str, value) -> float:
    return float(check_fraction(name, value, noun="rate", numpy=True))


def _as_tuple(state) -> tuple:
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


def _output_size(cell) -> int:
    return getattr(cell, "output_size", cell.hidden_size)


class Recurrent(nn.Module):
    r"""Runs a recurrent cell over time: stacked, bidirectional, masked by lengths, regularised.

    A cell is any ``nn.Module`` with

    - ``input_size`` and ``hidden_size`` (and ``output_size`` if its output is not of size
      ``hidden_size``);
    - ``initial_state(batch, device, dtype)`` -> a tensor or a tuple of tensors, batch first;
    - ``step(x_t, state)`` -> ``(output of shape (batch, output_size), new state)``.

    Optional: ``output(state)`` reads the output from a state (needed by zoneout when the
    output is not the first state tensor); a ``recurrent_mask`` keyword on ``step`` to apply
    recurrent dropout where ``h`` meets the recurrent weights (otherwise the mask multiplies
    the first state tensor as ``step`` receives it); ``recurrent_weights``, the names of the
    parameters that DropConnect drops (default ``("weight_hh",)``); ``reset_parameters()``,
    used to re-initialise the copies made for other layers and directions.

    Args:
        cell: one cell, for the first layer's forward direction; every other layer and
            direction gets a copy, re-initialised by the ``reset_parameters()`` of the cell and
            of its submodules where they have one (parameters the cell holds itself without a
            ``reset_parameters()`` stay copies). A copy for an upper layer needs the same input
            size. Or a list of cells,
            one per layer and direction: layer 0 forward, layer 0 backward, layer 1 forward, …
        num_layers: stacked layers; each one's output is the next one's input.
        bidirectional: run a second cell backward in time and merge the two outputs.
        batch_first: ``x`` and outputs are (B, T, F) if True, (T, B, F) if False. States are
            always (num_layers * num_directions, B, size), as in ``torch.nn.LSTM``.
        dropout: dropout on the output of every layer but the last.
        input_dropout: variational dropout of each layer's input (Gal & Ghahramani 2016): one
            mask per sequence, the same at every step and shared by both directions.
        recurrent_dropout: variational dropout of ``h_{t-1}`` where it meets the recurrent
            weights: one mask per sequence and direction, the same at every step.
        zoneout: probability that a unit keeps its previous value at a step (Krueger et al.
            2017); a float for every state tensor, or a tuple with one rate per state tensor
            (for the LSTM, ``(rate_h, rate_c)``). At evaluation the expectation is used.
        weight_dropout: DropConnect on the recurrent weights (Merity et al. 2018): one mask per
            forward call, shared by the whole batch.
        merge: how the two directions' outputs combine: ``concat``, ``sum``, ``mean``, ``mul``.
        learn_initial_state: learn the initial state instead of starting from zeros.
        return_sequences: return the output at every step (many-to-many); if False, only
            each sequence's last output (many-to-one; backward direction: its output at t = 0).
        return_state: also return the final state: ``out, state = layer(x)``.
        backend: ``auto``, ``reference``, ``vendor``, ``fused`` or ``scan`` (inference
            only: what export traces). ``auto`` picks the fastest backend that computes the
            configuration exactly; ``backend_in_use`` and ``backend_reason`` say which and why.

    All regularisers are active in training mode only. Shapes of ``forward``:

    - ``x``: (B, T, I) (batch first) or (T, B, I).
    - ``state``: like the returned state; default zeros (or the learned initial state).
    - ``lengths``: (B,) integers in 1..T: sequence b has ``lengths[b]`` valid steps at the
      front. Padded steps output exactly 0, take no part in any gradient (NaN padding is
      fine), the final state is the one after the last valid step, and the backward direction
      starts at that step. Or ``mask``: booleans laid out like ``x`` without its features,
      True on valid steps, which must be a prefix of each sequence (left padding is refused).

    Example::

        >>> layer = Recurrent(MyCell(8, 32), bidirectional=True)
        >>> out, state = layer(torch.randn(4, 10, 8), lengths=torch.tensor([10, 7, 3, 1]))
        >>> stacked = Recurrent([MyCell(8, 32), MyCell(32, 32)], num_layers=2)
    """

    def __init__(
        self,
        cell: nn.Module | Sequence[nn.Module],
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        batch_first: bool = True,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float | Sequence[float] = 0.0,
        weight_dropout: float = 0.0,
        merge: str = "concat",
        learn_initial_state: bool = False,
        return_sequences: bool = True,
        return_state: bool = True,
        backend: str = "auto",
    ):
        super().__init__()
        check_integer("num_layers", num_layers, 1)
        check_flag("bidirectional", bidirectional)
        check_choice("merge", merge, MERGES, wording="is not known; expected one of")
        backends.check_name(backend)
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.bidirectional = bidirectional
        self.batch_first = batch_first
        self.merge = merge
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.backend = backend
        self.dropout = _check_rate("dropout", dropout)
        self.input_dropout = _check_rate("input_dropout", input_dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.weight_dropout = _check_rate("weight_dropout", weight_dropout)
        if self.dropout and num_layers == 1:
            warnings.warn(
                f"dropout={dropout} acts between stacked layers, and num_layers=1 has none; "
                "for dropout of the input use input_dropout",
                stacklevel=2,
            )
        self.cells = nn.ModuleList(self._build_cells(cell))

        probe = self.cells[0].initial_state(1, None, None)
        self._tuple_state = not isinstance(probe, torch.Tensor)
        self.state_sizes = tuple(s.shape[-1] for s in _as_tuple(probe))
        for i, c in enumerate(self.cells):
            sizes = tuple(s.shape[-1] for s in _as_tuple(c.initial_state(1, None, None)))
            if sizes != self.state_sizes:
                raise ValueError(
                    f"cell {i} has state sizes {sizes} but cell 0 has {self.state_sizes}; "
                    "every cell of a layer stack must carry states of the same sizes"
                )
        rates = zoneout if isinstance(zoneout, list | tuple) else [zoneout] * len(self.state_sizes)
        if len(rates) != len(self.state_sizes):
            raise ValueError(
                f"zoneout={zoneout!r} gives {len(rates)} rates but the cell has "
                f"{len(self.state_sizes)} state tensors"
            )
        self.zoneout = tuple(_check_rate("zoneout", z) for z in rates)
        if self.weight_dropout:
            for c in self.cells:
                names = getattr(c, "recurrent_weights", ("weight_hh",))
                missing = [n for n in names if not isinstance(getattr(c, n, None), nn.Parameter)]
                if missing:
                    raise ValueError(
                        f"weight_dropout needs the recurrent weights of {type(c).__name__}, "
                        f"but it has no parameter {missing[0]!r}; name them in a "
                        "`recurrent_weights` attribute of the cell"
                    )
        if learn_initial_state:
            n = num_layers * self.num_directions
            self.learned_state = nn.ParameterList(
                nn.Parameter(torch.zeros(n, 1, size, dtype=s.dtype))
                for size, s in zip(self.state_sizes, _as_tuple(probe), strict=True)
            )
        else:
            self.learned_state = None
        backends.choose(self, backend, self.training)  # a backend that cannot serve fails now

    # ---------------------------------------------------------------- construction

    def _merged_size(self, output_size: int) -> int:
        return output_size * self.num_directions if self.merge == "concat" else output_size

    def _build_cells(self, cell) -> list[nn.Module]:
        count = self.num_layers * self.num_directions
        if isinstance(cell, nn.Module) and not isinstance(cell, nn.ModuleList):
            cells = [cell]
            for _ in range(1, count):
                clone = copy.deepcopy(cell)
                for module in clone.modules():  # the cell's and its submodules' own inits
                    if hasattr(module, "reset_parameters"):
                        module.reset_parameters()
                cells.append(clone)
        elif isinstance(cell, list | tuple | nn.ModuleList):
            cells = list(cell)
            if len(cells) != count:
                raise ValueError(
                    f"cell is a list of {len(cells)} cells, but num_layers={self.num_layers} "
                    f"with {self.num_directions} direction(s) needs {count}"
                )
        else:
            raise TypeError(f"cell must be an nn.Module or a list of them, got {cell!r}")
        for c in cells:
            missing = [
                a
                for a in ("input_size", "hidden_size", "initial_state", "step")
                if not hasattr(c, a)
            ]
            if missing:
                raise TypeError(
                    f"{type(c).__name__} is not a recurrent cell: it has no "
                    f"{', '.join(map(repr, missing))} "
                    "(see the cell protocol in help(rnnkit.Recurrent))"
                )
        expected = cells[0].input_size
        for layer in range(self.num_layers):
            layer_cells = cells[layer * self.num_directions : (layer + 1) * self.num_directions]
            for c in layer_cells:
                if c.input_size != expected:
                    hint = (
                        "; pass a list of cells, one per layer and direction"
                        if isinstance(cell, nn.Module)
                        else ""
                    )
                    raise ValueError(
                        f"layer {layer} receives {expected} features, but its cell has "
                        f"input_size={c.input_size}{hint}"
                    )
            sizes = {_output_size(c) for c in layer_cells}
            if len(sizes) > 1:
                raise ValueError(f"the directions of layer {layer} output different sizes {sizes}")
            expected = self._merged_size(sizes.pop())
        return cells

    # ---------------------------------------------------------------- properties

    @property
    def input_size(self) -> int:
        return self.cells[0].input_size

    @property
    def hidden_size(self) -> int:
        return self.cells[0].hidden_size

    @property
    def output_size(self) -> int:
        """Features of each output step (after merging the directions)."""
        return self._merged_size(_output_size(self.cells[-1]))

    @property
    def learn_initial_state(self) -> bool:
        return self.learned_state is not None

    @property
    def backend_in_use(self) -> str:
        """The backend a forward call in the current mode (train/eval) runs on."""
        return backends.choose(self, self.backend, self.training)[0].NAME

    @property
    def backend_reason(self) -> str:
        """Why ``backend_in_use`` was chosen, in one line."""
        return backends.choose(self, self.backend, self.training)[1]

    # ---------------------------------------------------------------- checks

    def _check_input(self, x) -> None:
        layout = "(batch, time, features)" if self.batch_first else "(time, batch, features)"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor {layout}, got {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(
                f"x must be 3-D {layout}, got shape {tuple(x.shape)}"
                + ("; for one sequence use x.unsqueeze(0)" if x.dim() == 2 else "")
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be floating point, got dtype {x.dtype}")
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"x has {x.shape[-1]} features (last dimension), "
                f"but the layer expects input_size={self.input_size}"
            )
        # The first cell's parameter stands for all (walking every module costs ~25 µs a call);
        # a user's cell may have none, and then the learned initial state, if any, speaks.
        param = next(self.cells[0].parameters(), None)
        if param is None:
            param = next(self.parameters(), None)
        if param is not None and x.dtype != param.dtype:
            raise TypeError(
                f"x has dtype {x.dtype} but the layer's parameters are {param.dtype}; "
                "convert one of them (x.to(dtype) or layer.to(dtype))"
            )
        if param is not None and x.device != param.device:
            raise ValueError(f"x is on {x.device} but the layer's parameters are on {param.device}")
        if x.shape[1 if self.batch_first else 0] == 0:
            raise ValueError(f"x has 0 time steps (shape {tuple(x.shape)})")
        if x.shape[0 if self.batch_first else 1] == 0:
            raise ValueError(f"x has batch size 0 (shape {tuple(x.shape)})")

    def _check_lengths(self, lengths, mask, batch: int, steps: int, device):
        """-> lengths as an int64 tensor on ``device``, or None when every sequence is full."""
        if mask is not None:
            if lengths is not None:
                raise ValueError("give lengths or mask, not both")
            lengths = self._mask_to_lengths(mask, batch, steps)
        if lengths is None:
            return None
        if isinstance(lengths, list | tuple):
            lengths = torch.tensor(lengths) if lengths else torch.empty(0, dtype=torch.int64)
        if not isinstance(lengths, torch.Tensor):
            raise TypeError(f"lengths must be a tensor or list of ints, got {lengths!r}")
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must hold integers, got dtype {lengths.dtype}")
        if lengths.shape != (batch,):
            raise ValueError(
                f"lengths must have shape (batch,) = ({batch},), got {tuple(lengths.shape)}"
            )
        if torch.compiler.is_exporting():
            # The values are symbolic: an exported graph takes them as they come (the
            # padding steps are masked whatever their number).
            return lengths.to(device=device, dtype=torch.int64)
        shortest, longest = int(lengths.min()), int(lengths.max())
        if shortest < 1:
            at = int((lengths < 1).nonzero()[0, 0])
            raise ValueError(
                f"lengths must be >= 1, got lengths[{at}] = {int(lengths[at])}; "
                "drop empty sequences from the batch"
            )
        if longest > steps:
            at = int((lengths > steps).nonzero()[0, 0])
            raise ValueError(
                f"lengths[{at}] = {int(lengths[at])} is longer than the {steps} time steps of x"
            )
        if shortest == steps:
            return None
        # Contiguous: a backend may read it as a plain array (a column slice would not be).
        return lengths.to(device=device, dtype=torch.int64).contiguous()

    def _mask_to_lengths(self, mask, batch: int, steps: int) -> torch.Tensor:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor, got {getattr(mask, 'dtype', mask)!r}")
        given = tuple(mask.shape)
        mask = mask if self.batch_first else mask.transpose(0, 1)
        if mask.shape != (batch, steps):
            order = "(batch, time)" if self.batch_first else "(time, batch)"
            raise ValueError(f"mask must have shape {order} like x, got {given}")
        lengths = mask.sum(1)
        if not lengths.all():
            b = int((lengths == 0).nonzero()[0, 0])
            raise ValueError(f"mask row {b} has no valid step; drop empty sequences from the batch")
        prefix = torch.arange(steps, device=mask.device) < lengths[:, None]
        if not torch.equal(prefix, mask):
            b = int((prefix != mask).any(1).nonzero()[0, 0])
            raise ValueError(
                f"mask row {b} is not a run of True followed by False: rnnkit expects right "
                "padding (valid steps first); left padding or gaps are not supported"
            )
        return lengths

    def _initial_states(self, state, batch: int, x: torch.Tensor) -> list:
        """-> one cell state per layer and direction."""
        count = self.num_layers * self.num_directions
        if state is None:
            if self.learned_state is None:
                return [c.initial_state(batch, x.device, x.dtype) for c in self.cells]
            state = tuple(s.expand(-1, batch, -1) for s in self.learned_state)
        parts = (state,) if isinstance(state, torch.Tensor) else tuple(state)
        n = len(self.state_sizes)
        if len(parts) != n or not all(isinstance(p, torch.Tensor) for p in parts):
            expected = f"a tuple of {n} tensors" if self._tuple_state else "one tensor"
            got = "a tensor" if isinstance(state, torch.Tensor) else f"{len(parts)} item(s)"
            raise ValueError(
                f"state must be {expected} of shape (num_layers * num_directions, batch, size), "
                f"got {got}"
            )
        for k, (part, size) in enumerate(zip(parts, self.state_sizes, strict=True)):
            name = f"state[{k}]" if self._tuple_state else "state"
            if part.shape != (count, batch, size):
                raise ValueError(
                    f"{name} must have shape (num_layers * num_directions, batch, size) = "
                    f"{(count, batch, size)}, got {tuple(part.shape)}"
                )
            if part.dtype != x.dtype or part.device != x.device:
                raise TypeError(
                    f"{name} is {part.dtype} on {part.device}, but x is {x.dtype} on {x.device}"
                )
        if self._tuple_state:
            return [tuple(p[i] for p in parts) for i in range(count)]
        return list(parts[0])

    # ---------------------------------------------------------------- forward

    def _draw_noise(self, cells: list[nn.Module], x: torch.Tensor) -> list[Noise]:
        """The masks of one layer's cells for this call."""
        steps, batch, features = x.shape
        training = self.training
        input_mask = None
        if training and self.input_dropout:
            input_mask = dropout_mask((batch, features), self.input_dropout, x)
        noises = []
        for cell in cells:
            noise = Noise(input_mask=input_mask)
            if training and self.recurrent_dropout:
                size = self.state_sizes[0]
                noise.recurrent_mask = dropout_mask((batch, size), self.recurrent_dropout, x)
            if any(self.zoneout):
                noise.zoneout_keep = tuple(
                    keep_mask((steps, batch, size), z, x) if training and z else z
                    for z, size in zip(self.zoneout, self.state_sizes, strict=True)
                )
            if training and self.weight_dropout:
                for name in getattr(cell, "recurrent_weights", ("weight_hh",)):
                    w = getattr(cell, name)
                    noise.weights[name] = w * dropout_mask(w.shape, self.weight_dropout, w)
            noises.append(noise)
        return noises

    def _merge(self, outputs: torch.Tensor) -> torch.Tensor:
        """(…, D, O) -> (…, merged size): views where possible, so no output is copied."""
        if self.num_directions == 1:
            return outputs.squeeze(-2)
        if self.merge == "concat":
            return outputs.flatten(-2)
        if self.merge == "sum":
            return outputs.sum(-2)
        if self.merge == "mean":
            return outputs.mean(-2)
        return outputs[..., 0, :] * outputs[..., 1, :]

    def forward(self, x, state=None, lengths=None, mask=None):
        """Run the stack over ``x``; see the class docstring for shapes.

        Returns ``(output, state)``, or only ``output`` when ``return_state=False``.
        ``output`` is (B, T, output_size) (or (T, B, …)) with ``return_sequences``, else
        (B, output_size).
        """
        self._check_input(x)
        if self.batch_first:
            x = x.transpose(0, 1)
        steps, batch = x.shape[:2]
        lengths = self._check_lengths(lengths, mask, batch, steps, x.device)
        states = self._initial_states(state, batch, x)
        backend, _ = backends.choose(self, self.backend, self.training)
        recorder = recording.active()
        if recorder is not None:
            backend = backends.recording_backend(self, backend, self.training)

        D = self.num_directions
        all_cells = list(self.cells)  # slicing a list is free; slicing a ModuleList builds one
        finals = []
        for layer in range(self.num_layers):
            here = slice(layer * D, (layer + 1) * D)
            cells = all_cells[here]
            noises = self._draw_noise(cells, x)
            if recorder is not None:
                states[here] = [recorder.anchor(state) for state in states[here]]
                for d, (cell, noise, state) in enumerate(
                    zip(cells, noises, states[here], strict=True)
                ):
                    noise.record = recorder.add(
                        layer=self, index=layer, reverse=d == 1, cell=cell, inputs=x.detach(),
                        initial=tuple(s.detach() for s in _as_tuple(state)), lengths=lengths,
                    )  # fmt: skip
            outputs, layer_finals = backend.run_layer(cells, x, lengths, states[here], noises)
            finals += layer_finals
            last_layer = layer == self.num_layers - 1
            if last_layer and not self.return_sequences:
                rows = torch.arange(batch, device=x.device)
                forward = outputs[-1, :, 0] if lengths is None else outputs[lengths - 1, rows, 0]
                # The backward direction ends at t = 0. (No unbind of an empty dimension when
                # there is none: a saved torch.export program cannot load one back.)
                ends = [forward, outputs[0, :, 1]] if D == 2 else [forward]
                output = self._merge(torch.stack(ends, 1))
            else:
                x = self._merge(outputs)
                if not last_layer and self.dropout:
                    x = x * dropout_mask(x.shape, self.dropout, x) if self.training else x
                output = x.transpose(0, 1) if self.batch_first else x
        if not self.return_state:
            return output
        stacked = tuple(torch.stack(parts) for parts in zip(*map(_as_tuple, finals), strict=True))
        return output, (stacked if self._tuple_state else stacked[0])

    def extra_repr(self) -> str:
        options = [f"num_layers={self.num_layers}"]
        if self.bidirectional:
            options.append(f"bidirectional=True, merge={self.merge!r}")
        for name in ("dropout", "input_dropout", "recurrent_dropout", "weight_dropout"):
            if getattr(self, name):
                options.append(f"{name}={getattr(self, name)}")
        if any(self.zoneout):
            options.append(f"zoneout={self.zoneout}")
        options.append(f"batch_first={self.batch_first}, backend={self.backend!r}")
        return ", ".join(options)


class _TorchFamily(Recurrent):
    """A layer of built-in cells that ``torch.nn`` also has, with weight exchange."""

    torch_class: type[nn.RNNBase]

    def __init__(self, input_size: int, num_layers: int, make_cell, **options):
        """``make_cell(input_size)`` builds one cell; one per layer and direction is made."""
        check_integer("num_layers", num_layers, 1)
        directions = 2 if options.get("bidirectional", False) else 1
        concat = options.get("merge", "concat") == "concat"
        cells, size = [], input_size
        for _ in range(num_layers):
            layer_cells = [make_cell(size) for _ in range(directions)]
            cells += layer_cells
            size = _output_size(layer_cells[0]) * (directions if concat else 1)
        super().__init__(cells, num_layers, **options)

    @classmethod
    def _from_torch_options(cls, module) -> dict:
        return {}

    @classmethod
    def from_torch(cls, module: nn.RNNBase, **options):
        """A layer with the configuration and weights of ``module`` (a ``torch_class``).

        ``options`` add rnnkit's own settings (regularisers, backend, …) and override the
        module's (``batch_first=True``, say).
        """
        if not isinstance(module, cls.torch_class):
            raise TypeError(
                f"{cls.__name__}.from_torch takes a torch.nn.{cls.torch_class.__name__}, "
                f"got {type(module).__name__}"
            )
        settings = {
            "bias": module.bias,
            "batch_first": module.batch_first,
            "dropout": module.dropout,
            "bidirectional": module.bidirectional,
            **cls._from_torch_options(module),
        }
        layer = cls(
            module.input_size,
            module.hidden_size,
            module.num_layers,
            **{**settings, **options},
        )
        reference = module.weight_ih_l0
        layer.to(device=reference.device, dtype=reference.dtype)
        with torch.no_grad():
            for torch_name, cell, name in layer._torch_parameter_names():
                getattr(cell, name).copy_(getattr(module, torch_name))
        return layer

    def _torch_parameter_names(self):
        """(name in torch.nn, cell, name in the cell) for every exchanged parameter."""
        for i, cell in enumerate(self.cells):
            layer, direction = divmod(i, self.num_directions)
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            for name in backends.vendor.torch_weight_names(cell):
                yield name + suffix, cell, name

    def _torch_options(self) -> dict:
        return {}

    def to_torch(self) -> nn.RNNBase:
        """The equivalent ``torch_class`` module with a copy of the weights.

        Training-time regularisers that torch lacks (input/recurrent/weight dropout) are
        dropped, since they do not change evaluation; settings that do are refused.
        """
        reason = backends.vendor.unsupported_reason(self, training=False)
        if not reason and self.learn_initial_state:
            reason = f"a learned initial state is not in {self.torch_class.__name__}"
        if not reason and self.bidirectional and self.merge != "concat":
            reason = f"merge={self.merge!r} (torch concatenates the directions)"
        if not reason and getattr(self.cells[0], "has_output_projection", False):
            reason = "the output projection is not in nn.RNN"
        if reason:
            raise ValueError(f"this layer has no torch.nn equivalent: {reason}")
        reference = self.cells[0].weight_ih
        module = self.torch_class(
            self.input_size,
            self.hidden_size,
            self.num_layers,
            bias=self.cells[0].bias_ih is not None,
            batch_first=self.batch_first,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
            device=reference.device,
            dtype=reference.dtype,
            **self._torch_options(),
        )
        with torch.no_grad():
            for torch_name, cell, name in self._torch_parameter_names():
                getattr(module, torch_name).copy_(getattr(cell, name))
        return module


class RNN(_TorchFamily):
    """Elman RNN layer: ``Recurrent`` over ``ElmanCell`` (see both for the arguments).

    Example::

        >>> layer = RNN(8, 32, activation="leaky_relu", num_layers=2)
        >>> out, h = layer(torch.randn(4, 10, 8))      # out (4, 10, 32), h (2, 4, 32)
    """

    torch_class = nn.RNN

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        activation="tanh",
        negative_slope: float = 0.01,
        bias: bool = True,
        output_size: int | None = None,
        **options,
    ):
        def make_cell(size):
            return ElmanCell(size, hidden_size, activation, negative_slope, bias, output_size)

        super().__init__(input_size, num_layers, make_cell, **options)

    @classmethod
    def _from_torch_options(cls, module) -> dict:
        return {"activation": module.nonlinearity}

    def _torch_options(self) -> dict:
        return {"nonlinearity": self.cells[0].activation}


class LSTM(_TorchFamily):
    """LSTM layer: ``Recurrent`` over ``LSTMCell`` (see both for the arguments).

    Example::

        >>> layer = LSTM(8, 64, num_layers=2, bidirectional=True, layer_norm=True)
        >>> out, (h, c) = layer(torch.randn(4, 10, 8))  # out (4, 10, 128), h and c (4, 4, 64)
    """

    torch_class = nn.LSTM

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        forget_bias: float = 1.0,
        peephole: bool = False,
        proj_size: int = 0,
        layer_norm: bool = False,
        **options,
    ):
        def make_cell(size):
            return LSTMCell(size, hidden_size, bias, forget_bias, peephole, proj_size, layer_norm)

        super().__init__(input_size, num_layers, make_cell, **options)

    @classmethod
    def _from_torch_options(cls, module) -> dict:
        return {"proj_size": module.proj_size}

    def _torch_options(self) -> dict:
        return {"proj_size": self.cells[0].proj_size}


class GRU(_TorchFamily):
    """GRU layer: ``Recurrent`` over ``GRUCell`` (see both for the arguments).

    Example::

        >>> layer = GRU(8, 64, reset_after=False)         # Cho et al. 2014's form
        >>> out, h = layer(torch.randn(4, 10, 8))
    """

    torch_class = nn.GRU

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        reset_after: bool = True,
        layer_norm: bool = False,
        **options,
    ):
        def make_cell(size):
            return GRUCell(size, hidden_size, bias, reset_after, layer_norm)

        super().__init__(input_size, num_layers, make_cell, **options)
