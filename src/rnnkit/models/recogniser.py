"""A recogniser trained without alignment: frames in, label sequences out, by CTC.

``CTCRecogniser`` is the classic speech and handwriting model (Graves et al. 2006, 2009): an
optional frame-rate reduction, a (by default bidirectional) recurrent stack, and a linear map
to the labels and a blank at every frame; ``log_softmax`` of that is what
``torch.nn.functional.ctc_loss`` trains and what ``rnnkit.ctc`` decodes.

Frame stacking (``stack=k``) joins k consecutive frames into one of k times the features
(zero frames pad the last group): the recurrence runs k times fewer steps, and the output has
k times fewer frames, which CTC needs to be at least as many as the labels it emits (plus one
for each repeated label, for the blank between). ``FramewiseCTC`` is the baseline beside it:
the same input and output with an MLP on each frame alone, no recurrence.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import recurrent_layer

BLANK = 0  # label 0 is the blank; a model's labels are 1..num_labels


def min_frames(labels) -> int:
    """The fewest frames a CTC path needs to read as ``labels``: one each, and a blank between
    each pair of equal neighbours."""
    labels = list(labels)
    return len(labels) + sum(a == b for a, b in itertools.pairwise(labels))


def stacked_frames(frames: int, stack: int) -> int:
    """The output frames of an input of ``frames`` frames with ``stack`` frames joined in
    each: ⌈frames / stack⌉."""
    # Of non-negative numbers only: an exported graph may divide with truncation (ONNX's Div
    # of integers), which for -(-n // k) is not the ceiling.
    return (frames + stack - 1) // stack


class _CTCModel(nn.Module):
    """What CTC models share: the frame stacking, the output lengths, the per-frame map to
    labels and blank, and the loss. Subclasses set ``encoder`` (stacked frames, output
    lengths → (B, T', encoder_size)) in ``build``."""

    def __init__(self, input_size: int, num_labels: int, stack: int, dropout: float, **build):
        super().__init__()
        if int(stack) != stack or stack < 1:
            raise ValueError(f"stack must be an integer >= 1, got {stack!r}")
        self.stack, self.num_labels = int(stack), num_labels
        size = self.build(input_size * self.stack, dropout=dropout, **build)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(size, num_labels + 1)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """The output frames of inputs of ``lengths`` frames: ⌈length / stack⌉."""
        return torch.div(lengths + self.stack - 1, self.stack, rounding_mode="floor")

    def forward(self, features: torch.Tensor, lengths: torch.Tensor):
        """-> (log_probs (T', B, num_labels + 1), output lengths (B,))."""
        if features.ndim != 3:
            raise ValueError(f"features must be (batch, frames, size), got {tuple(features.shape)}")
        batch, frames, size = features.shape
        if self.stack > 1:
            # Frames past a length join a group with valid ones: they must be zeros, as the
            # padding of an utterance alone is (whatever a padded batch holds there).
            valid = torch.arange(frames, device=features.device) < lengths[:, None].to(
                features.device
            )
            features = torch.where(valid[..., None], features, 0)
            steps = stacked_frames(frames, self.stack)
            features = F.pad(features, (0, 0, 0, steps * self.stack - frames))
            features = features.reshape(batch, steps, size * self.stack)
        out_lengths = self.output_lengths(lengths)
        logits = self.head(self.dropout(self.encode(features, out_lengths)))
        return logits.log_softmax(-1).transpose(0, 1), out_lengths

    def loss(self, features, lengths, targets, target_lengths, reduction: str = "mean"):
        """CTC loss of the label sequences ``targets`` (B, S) padded, ids 1..num_labels, of
        ``target_lengths``; ``reduction="mean"`` divides each by its length, as ctc_loss."""
        log_probs, out_lengths = self(features, lengths)
        return F.ctc_loss(
            log_probs, targets, out_lengths, target_lengths, blank=BLANK, reduction=reduction
        )


class CTCRecogniser(_CTCModel):
    """``features`` (B, T, input_size) with ``lengths`` → log-probabilities (T', B,
    num_labels + 1) over the blank (index 0) and the labels, and the output lengths T'_b.

    Args:
        input_size: features per frame.
        num_labels: the labels (ids 1..num_labels; 0 is the blank).
        cell, hidden_size, num_layers, bidirectional: the recurrent stack
            (``rnnkit.registry.recurrent_layer``); rnn_options: more of its options.
        stack: frames joined into one before the recurrence (frame-rate reduction).
        dropout: between the recurrent layers, and before the output map.
    """

    def __init__(
        self,
        input_size: int,
        num_labels: int,
        *,
        cell: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 2,
        bidirectional: bool = True,
        stack: int = 1,
        dropout: float = 0.0,
        rnn_options: dict | None = None,
    ):
        super().__init__(
            input_size, num_labels, stack, dropout, cell=cell, hidden_size=hidden_size,
            num_layers=num_layers, bidirectional=bidirectional, rnn_options=rnn_options,
        )  # fmt: skip

    def build(self, size, *, dropout, cell, hidden_size, num_layers, bidirectional, rnn_options):
        options = {"bidirectional": bidirectional, "return_state": False}
        if num_layers > 1:
            options["dropout"] = dropout
        self.rnn = recurrent_layer(cell, size, hidden_size, num_layers, user=rnn_options, **options)
        return self.rnn.output_size

    def encode(self, frames, lengths):
        return self.rnn(frames, lengths=lengths)


class FramewiseCTC(_CTCModel):
    """The baseline without recurrence: the same frame stacking and output, with an MLP that
    sees each (stacked) frame alone, so a score beside ``CTCRecogniser``'s shows what the
    recurrence adds. Args as ``CTCRecogniser``'s, with ``hidden_size`` and ``num_layers``
    those of the MLP (ReLU)."""

    def __init__(
        self,
        input_size: int,
        num_labels: int,
        *,
        hidden_size: int = 128,
        num_layers: int = 2,
        stack: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__(
            input_size, num_labels, stack, dropout, hidden_size=hidden_size, num_layers=num_layers
        )

    def build(self, size, *, dropout, hidden_size, num_layers):
        layers = []
        for _ in range(num_layers):
            layers += [nn.Linear(size, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            size = hidden_size
        self.mlp = nn.Sequential(*layers)
        return size

    def encode(self, frames, lengths):
        return self.mlp(frames)
