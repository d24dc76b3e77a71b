"""Forecasters: windows of the past in, the next ``horizon`` steps out (many-to-one).

Every forecaster takes ``past`` (B, lookback, inputs), whose first ``targets`` columns are the
target series, then the past-observed covariates, then the known-future covariates; and
``future`` (B, horizon, known_future), the known-future covariates over the horizon (or None).
It returns (B, horizon, targets). The three strategies differ in how they reach ``horizon``:

- ``DirectForecaster``: one summary of the window, one linear map to all ``horizon`` values.
- ``RecursiveForecaster``: a one-step model whose predictions are fed back as inputs, with the
  recurrent state carried from step to step (no recomputation of the window).
- ``Seq2SeqForecaster``: an encoder reads the window, its final state starts a decoder that
  emits one step at a time, fed its own previous prediction.

The recursive and sequence-to-sequence models are trained through their own feedback (the
loss is on all ``horizon`` outputs, predicted from predictions), so training sees the same
computation as forecasting does; with short horizons this costs little and avoids the
mismatch of teacher forcing.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import CELLS, recurrent_layer  # also for those who import them from here


class _Forecaster(nn.Module):
    """What the strategies share: sizes, the check of ``future``, dropout before the head.

    Subclasses build their layers in ``build(input_size, cell, hidden_size, num_layers,
    options)`` and define ``forward(past, future=None)``.
    """

    def __init__(
        self,
        input_size: int,
        targets: int,
        horizon: int,
        *,
        future_size: int = 0,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        output_dropout: float = 0.0,
        rnn_options: dict | None = None,
    ):
        super().__init__()
        self.targets, self.horizon, self.future_size = targets, horizon, future_size
        self.output_dropout = nn.Dropout(output_dropout)
        if "dropout" in (rnn_options or {}):
            raise ValueError("rnn_options ['dropout'] is a setting of the forecaster: dropout=")
        options = {"dropout": dropout, **(rnn_options or {})}
        self.build(input_size, cell, hidden_size, num_layers, options)

    def _future(self, future: torch.Tensor | None) -> torch.Tensor | None:
        """``future`` checked against (batch, horizon, future_size); None when unused."""
        if not self.future_size:
            return None
        expected = (self.horizon, self.future_size)
        if future is None or tuple(future.shape[1:]) != expected:
            got = None if future is None else tuple(future.shape)
            raise ValueError(f"future must be (batch, {expected[0]}, {expected[1]}), got {got}")
        return future


class DirectForecaster(_Forecaster):
    """Many-to-one, direct: ``ŷ_{t+1..t+h} = W · [RNN(x_{t-L+1..t}); z_{t+1..t+h}] + b``.

    Args:
        input_size: columns of ``past``.
        targets: number of target series ``k``.
        horizon: steps predicted at once.
        future_size: known-future covariates per step (their horizon values join the summary).
        cell, hidden_size, num_layers: the recurrent layer (see ``recurrent_layer``);
        dropout: between its layers; rnn_options: more options of the layer
            (``layer_norm``, ``zoneout``, ``bidirectional``, …).
        output_dropout: dropout on the summary before the linear map.

    Example::

        >>> model = DirectForecaster(input_size=1, targets=1, horizon=5, hidden_size=32)
        >>> model(torch.randn(8, 60, 1)).shape
        torch.Size([8, 5, 1])
    """

    def build(self, input_size, cell, hidden_size, num_layers, options):
        self.rnn = recurrent_layer(
            cell, input_size, hidden_size, num_layers,
            return_sequences=False, return_state=False, **options,
        )  # fmt: skip
        self.head = nn.Linear(
            self.rnn.output_size + self.horizon * self.future_size, self.horizon * self.targets
        )

    def forward(self, past: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        summary = self.output_dropout(self.rnn(past))
        if self.future_size:
            summary = torch.cat([summary, self._future(future).flatten(1)], 1)
        return self.head(summary).view(past.shape[0], self.horizon, self.targets)


class RecursiveForecaster(_Forecaster):
    """One step at a time: ``ŷ_{t+1} = W h_t + b``, then ``x_{t+1} = [ŷ_{t+1}; z_{t+1}]``
    is fed back and the state carried on, ``horizon`` times.

    Inputs past the targets must be known in the future too (``future_size`` of them): a
    covariate observed only in the past has no value to feed back.

    Args: as ``DirectForecaster``; the layer must be unidirectional (it runs forward in time).
    """

    def build(self, input_size, cell, hidden_size, num_layers, options):
        if input_size != self.targets + self.future_size:
            raise ValueError(
                f"a recursive forecaster feeds back its targets and known-future covariates "
                f"only, so input_size={input_size} must equal targets={self.targets} + "
                f"future_size={self.future_size}; drop past-only covariates or use model='direct'"
            )
        if options.get("bidirectional"):
            raise ValueError("bidirectional=True cannot forecast step by step; use model='direct'")
        self.rnn = recurrent_layer(
            cell, input_size, hidden_size, num_layers, return_sequences=False, **options
        )
        self.head = nn.Linear(self.rnn.output_size, self.targets)

    def forward(self, past: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        future = self._future(future)
        summary, state = self.rnn(past)
        prediction = self.head(self.output_dropout(summary))
        predictions = [prediction]
        for step in range(1, self.horizon):
            fed_back = _next_input(prediction, future, step - 1)
            summary, state = self.rnn(fed_back, state=state)
            prediction = self.head(self.output_dropout(summary))
            predictions.append(prediction)
        return torch.stack(predictions, 1)


class Seq2SeqForecaster(_Forecaster):
    """Encoder–decoder: ``s = bridge(Encoder(x_{t-L+1..t}))``, then for ``j = 1 … h``
    ``ŷ_{t+j} = W · Decoder([ŷ_{t+j-1}; z_{t+j}], s) + b`` with ``ŷ_t = y_t``.

    The decoder has the encoder's cell, size and depth and runs forward in time. A
    bidirectional encoder's two final states are joined by a learned linear bridge per state
    tensor; a unidirectional encoder hands its state over as it is.

    Args: as ``DirectForecaster``.
    """

    def build(self, input_size, cell, hidden_size, num_layers, options):
        self.encoder = recurrent_layer(
            cell, input_size, hidden_size, num_layers, return_sequences=False, **options
        )
        decoder_options = {k: v for k, v in options.items() if k not in ("bidirectional", "merge")}
        self.decoder = recurrent_layer(
            cell, self.targets + self.future_size, hidden_size, num_layers,
            return_sequences=False, **decoder_options,
        )  # fmt: skip
        states = CELLS[cell].states
        bridge = options.get("bidirectional", False)
        self.bridge = nn.ModuleList(
            [nn.Linear(2 * hidden_size, hidden_size) for _ in range(states)] if bridge else []
        )
        self.head = nn.Linear(self.decoder.output_size, self.targets)

    def _bridge(self, state):
        """Join the directions of a bidirectional encoder's state: (2L, B, H) -> (L, B, H)."""
        if not len(self.bridge):
            return state
        parts = (state,) if isinstance(state, torch.Tensor) else state
        joined = []
        for part, linear in zip(parts, self.bridge, strict=True):
            layers, batch, size = part.shape[0] // 2, part.shape[1], part.shape[2]
            both = part.view(layers, 2, batch, size).permute(0, 2, 1, 3).reshape(layers, batch, -1)
            joined.append(torch.tanh(linear(both)))
        return joined[0] if isinstance(state, torch.Tensor) else tuple(joined)

    def forward(self, past: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        future = self._future(future)
        _, state = self.encoder(past)
        state = self._bridge(state)
        prediction = past[:, -1, : self.targets]  # ŷ_t = y_t: the last observation
        predictions = []
        for step in range(self.horizon):
            summary, state = self.decoder(_next_input(prediction, future, step), state=state)
            prediction = self.head(self.output_dropout(summary))
            predictions.append(prediction)
        return torch.stack(predictions, 1)


@torch.no_grad()
def keras_init_(model: nn.Module) -> nn.Module:
    """Initialise like Keras' LSTM and Dense layers, to reproduce a Keras recipe.

    Keras draws each kernel whole: Glorot-uniform over the input kernel (fan-out = all four
    gates), orthogonal over the recurrent kernel, zero biases (the LSTM's forget-gate bias of 1
    is rnnkit's ``forget_bias`` default). rnnkit's own default draws per gate block instead.
    """
    for name, parameter in model.named_parameters():
        if name.endswith(("weight_ih", "head.weight")):
            nn.init.xavier_uniform_(parameter)
        elif name.endswith("weight_hh"):
            nn.init.orthogonal_(parameter)
        elif name.endswith(("bias_hh", "head.bias")):
            nn.init.zeros_(parameter)
    return model


FORECASTERS = {
    "direct": DirectForecaster,
    "recursive": RecursiveForecaster,
    "seq2seq": Seq2SeqForecaster,
}


def _next_input(prediction: torch.Tensor, future: torch.Tensor | None, step: int) -> torch.Tensor:
    """One input step (B, 1, targets + future_size): a prediction and that step's covariates."""
    if future is not None:
        prediction = torch.cat([prediction, future[:, step]], 1)
    return prediction.unsqueeze(1)
