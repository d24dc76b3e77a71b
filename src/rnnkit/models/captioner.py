r"""Image captioning (one-to-many): a convolutional encoder and a recurrent decoder that writes
a caption one word at a time, attending over the image's regions (Show, Attend and Tell, Xu et
al. 2015) or knowing the image only through its first state (Show and Tell, Vinyals et al.
2015).

The model is a *decoder* in the sense of ``rnnkit.decoding`` (``encode``, ``decode_step``,
``reorder_state``), so greedy decoding and beam search drive it as they drive the
translator::

    >>> model = ImageCaptioner(vocab_size=500)
    >>> logits, weights = model(images, target_in, return_attention=True)  # (B, T, V), (B, T, R)
    >>> decoded = rnnkit.decoding.beam_search(model, model.encode(images), start=…, …)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .._checks import check_fraction, check_integer
from ..attention import Attention
from ..registry import recurrent_layer
from .seq2seq import _as_tuple, _like


class ConvEncoder(nn.Module):
    r"""A small convolutional network trained from scratch: a grid of region features.

    Each block is a 3 × 3 convolution, batch normalisation, ReLU and a 2 × 2 max-pool, so
    ``blocks`` blocks turn a ``side`` × ``side`` image into a ``side / 2^blocks`` square grid
    of regions. Each region's feature (the last block's channels) gets a learned embedding
    of its place in the grid added, so that the decoder can tell left from right.

    ``forward(images (B, 3, side, side), floats in [0, 1])`` -> regions (B, R, channels[-1]).
    """

    def __init__(self, side: int = 64, channels: tuple = (32, 64, 128)):
        super().__init__()
        check_integer("side", side, 1)
        if not channels or any(not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(f"channels={channels!r} must be positive integers, one per block")
        grid = side >> len(channels)
        if grid < 1 or side % (1 << len(channels)):
            raise ValueError(
                f"side={side} must be a multiple of 2^{len(channels)} (one halving per "
                f"block of channels={tuple(channels)})"
            )
        layers, width = [], 3
        for out in channels:
            layers += [nn.Conv2d(width, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(),
                       nn.MaxPool2d(2)]  # fmt: skip
            width = out
        self.side, self.grid, self.output_size = side, grid, width
        self.blocks = nn.Sequential(*layers)
        self.place = nn.Parameter(torch.zeros(grid * grid, width))
        # The usual ImageNet statistics are not those of every set; a fixed centring suffices.
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1:] != (3, self.side, self.side):
            raise ValueError(
                f"images must have shape (batch, 3, {self.side}, {self.side}), got "
                f"{tuple(images.shape)}"
            )
        grid = self.blocks(images - self.mean)  # (B, C, g, g)
        return grid.flatten(2).transpose(1, 2) + self.place


class CaptionState(NamedTuple):
    """What ``decode_step`` carries: the decoder's state ``rnn`` ((L, N, H) per tensor),
    the regions ``keys`` (N, R, K) and ``attention.prepare(keys)`` (None without attention),
    and the last step's ``attention`` weights (N, R), None before the first step."""

    rnn: torch.Tensor | tuple[torch.Tensor, ...]
    keys: torch.Tensor | None
    prepared: torch.Tensor | None
    attention: torch.Tensor | None


class ImageCaptioner(nn.Module):
    r"""An image encoder and a recurrent decoder of any rnnkit cell.

    **Encoder.** :math:`a_1 … a_R = \mathrm{ConvEncoder}(I)`, the regions (R, K), and
    :math:`\bar a = \frac1R \sum_r a_r`.

    **First state.** For every layer ``l`` and state tensor (the LSTM's ``h`` and ``c``
    alike): :math:`s_0^{(l)} = \tanh(W_l \bar a + b_l)`. With ``attention=False`` (Show and
    Tell) this is all the decoder knows of the image.

    **Decoder**, for :math:`t = 1 … T`, with :math:`e_t = \mathrm{drop}(E\, y_{t-1})` and
    :math:`h_{t-1}` the top layer's ``h``:

    - with attention (Show, Attend and Tell, soft attention, additive scores):
      :math:`z_t, \alpha_t = \mathrm{attn}(h_{t-1}, a)`, gated by
      :math:`\beta_t = \sigma(W_\beta h_{t-1} + b_\beta)` (one gate per feature):
      :math:`\hat z_t = \beta_t \odot z_t`;
      :math:`h_t, s_t = \mathrm{RNN}([e_t; \hat z_t], s_{t-1})`;
      :math:`o_t = \tanh(W_c [h_t; \hat z_t; e_t])` (the paper's deep output);
    - without: :math:`h_t, s_t = \mathrm{RNN}(e_t, s_{t-1})` and :math:`o_t = h_t`.

    Then :math:`\mathrm{logits}_t = W_{out}\, \mathrm{drop}(o_t) + b_{out}`. The doubly
    stochastic regulariser of the paper, :math:`\lambda \sum_r (1 - \sum_t \alpha_{t r})^2`,
    is the training loss's (``attention_penalty``), from the weights ``forward`` returns.

    Args:
        vocab_size: rows of the word embedding and of the output; ``pad_id`` is padding.
        side, channels: the encoder's image side and channels per block.
        embedding_dim, hidden_size, num_layers, cell: the decoder (``cell``, a name of
            ``rnnkit.registry.CELLS``).
        attention: soft attention over the regions (True), or none (Show and Tell).
        dropout: on the embedding, between stacked layers and before the output.
        rnn_options: more options for the decoder's layer.

    ``forward(images, target_in, return_attention=False)``: teacher-forced logits (B, T, V)
    [and the weights (B, T, R)]; ``target_in[:, t]`` is :math:`y_{t-1}` (it starts with the
    start token).
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        side: int = 64,
        channels: tuple = (32, 64, 128),
        embedding_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        cell: str = "lstm",
        attention: bool = True,
        dropout: float = 0.2,
        pad_id: int = 0,
        rnn_options: dict | None = None,
    ):
        super().__init__()
        sizes = {"vocab_size": vocab_size, "embedding_dim": embedding_dim,
                 "hidden_size": hidden_size, "num_layers": num_layers}  # fmt: skip
        for name, value in sizes.items():
            check_integer(name, value, 1, what="a positive integer")
        check_fraction("dropout", dropout, noun="rate", numpy=True)
        check_integer("pad_id", pad_id, 0, maximum=vocab_size - 1)
        self.vocab_size, self.pad_id, self.attends = vocab_size, pad_id, bool(attention)
        self.encoder = ConvEncoder(side, tuple(channels))
        key_size = self.encoder.output_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        between = dropout if num_layers > 1 else 0.0
        self.decoder = recurrent_layer(
            cell, embedding_dim + (key_size if attention else 0), hidden_size, num_layers,
            bidirectional=False, batch_first=True, dropout=between, user=rnn_options,
        )  # fmt: skip
        sizes = self.decoder.state_sizes  # the first state comes from the image: W_l, b_l
        self.init = nn.ModuleList(nn.Linear(key_size, n) for _ in range(num_layers) for n in sizes)
        output_size = self.decoder.output_size
        if attention:
            query_size = self.decoder.state_sizes[0]
            self.attention = Attention(query_size, key_size, kind="additive")
            self.gate = nn.Linear(query_size, key_size)  # W_beta, b_beta
            self.combine = nn.Linear(output_size + key_size + embedding_dim, hidden_size)
            output_size = hidden_size
        self.output = nn.Linear(output_size, vocab_size)

    # ---------------------------------------------------------------- the decoder protocol

    def encode(self, images: torch.Tensor) -> CaptionState:
        """Images (B, 3, side, side) -> the decoding state before the first word."""
        regions = self.encoder(images)
        mean = regions.mean(1)
        width = len(self.decoder.state_sizes)
        layers = len(self.init) // width
        parts = tuple(
            torch.stack([torch.tanh(self.init[l * width + k](mean)) for l in range(layers)])
            for k in range(width)
        )
        rnn = parts[0] if width == 1 else parts
        if not self.attends:
            return CaptionState(rnn, None, None, None)
        return CaptionState(rnn, regions, self.attention.prepare(regions), None)

    def _step(self, embedded: torch.Tensor, state: CaptionState):
        """One step from the embedded previous words (N, E) -> (logits (N, V), state)."""
        if not self.attends:
            output, rnn = self.decoder(embedded.unsqueeze(1), state=state.rnn)
            h = output.squeeze(1)
            return self.output(self.dropout(h)), state._replace(rnn=rnn)
        query = _as_tuple(state.rnn)[0][-1]  # h_{t-1}: the top layer's
        context, weights = self.attention(query, state.keys, None, state.prepared)
        context = torch.sigmoid(self.gate(query)) * context
        output, rnn = self.decoder(torch.cat([embedded, context], 1).unsqueeze(1), state=state.rnn)
        h = output.squeeze(1)
        deep = torch.tanh(self.combine(torch.cat([h, context, embedded], 1)))
        return self.output(self.dropout(deep)), state._replace(rnn=rnn, attention=weights)

    def decode_step(self, tokens: torch.Tensor, state: CaptionState):
        """The previous words (N,) -> (logits of the next word (N, V), the new state)."""
        return self._step(self.dropout(self.embedding(tokens)), state)

    def reorder_state(self, state: CaptionState, index: torch.Tensor) -> CaptionState:
        """The state of rows ``index`` (M,), in that order (rows may repeat)."""
        rnn = _like(tuple(part.index_select(1, index) for part in _as_tuple(state.rnn)), state.rnn)

        def rows(x):
            return None if x is None else x.index_select(0, index)

        return CaptionState(rnn, rows(state.keys), rows(state.prepared), rows(state.attention))

    # ---------------------------------------------------------------- training

    def forward(
        self,
        images: torch.Tensor,
        target_in: torch.Tensor,
        *,
        image_rows: torch.Tensor | None = None,
        return_attention: bool = False,
    ):
        """Teacher-forced logits (N, T, V) of each next word [, weights (N, T, R)].

        ``images`` (B, 3, side, side); ``target_in`` (N, T), a caption a row, of the image
        ``image_rows[n]`` (N,), or of image ``n`` without them (N = B): an image with several
        captions is encoded once."""
        if return_attention and not self.attends:
            raise ValueError("return_attention=True needs a model with attention")
        rows = len(images) if image_rows is None else len(image_rows)
        if target_in.dim() != 2 or len(target_in) != rows:
            raise ValueError(
                f"target_in must be (captions, steps) with a row for each of the {rows} "
                f"captions, got {tuple(target_in.shape)}"
            )
        state = self.encode(images)
        if image_rows is not None:
            state = self.reorder_state(state, image_rows)
        embedded = self.dropout(self.embedding(target_in))
        all_logits, all_weights = [], []
        for t in range(target_in.shape[1]):
            logits, state = self._step(embedded[:, t], state)
            all_logits.append(logits)
            all_weights.append(state.attention)
        logits = torch.stack(all_logits, 1)
        return (logits, torch.stack(all_weights, 1)) if return_attention else logits

    def extra_repr(self) -> str:
        return f"attention={self.attends}, pad_id={self.pad_id}"
