r"""Encoder–decoder (many-to-many, unaligned): translation and its kin.

A bidirectional encoder reads the source; a *bridge* turns its final states into the decoder's
first state; a unidirectional decoder writes the target one token at a time, attending over the
encoder's outputs (Bahdanau et al. 2015; Luong et al. 2015) or, with ``attention=None``,
knowing the source through the bridge alone (Sutskever et al. 2014; Cho et al. 2014).

The model is a *decoder* in the sense of ``rnnkit.decoding``: ``encode`` makes the state that
``decode_step`` advances by one token and ``reorder_state`` rearranges, so greedy decoding,
sampling and beam search can all drive it::

    >>> model = EncoderDecoder(8000, 8000, attention="general")
    >>> logits = model(source, source_lengths, target_in)       # teacher forcing, (B, T, V)
    >>> loss = F.cross_entropy(logits.transpose(1, 2), target_out, ignore_index=model.pad_id)
    >>> decoded = rnnkit.decoding.greedy(model, model.encode(source, source_lengths),
    ...                                  start=torch.full((B,), BOS), max_length=50, eos=EOS)
    >>> decoded.state.attention                                 # last step's weights (B, S)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .._checks import check_choice, check_flag, check_fraction, check_integer
from ..attention import KINDS, Attention
from ..registry import recurrent_layer

BRIDGES = ("linear", "zeros")


def _as_tuple(state) -> tuple:
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


def _like(parts: tuple, state):
    """``parts`` in the form of ``state``: a tensor, or a tuple of them (the LSTM's (h, c))."""
    return parts[0] if isinstance(state, torch.Tensor) else tuple(parts)


class Seq2SeqState(NamedTuple):
    """What ``decode_step`` carries from one token to the next (N rows being decoded).

    ``rnn``: the decoder's state, (L, N, H) per state tensor (the LSTM's is ``(h, c)``).
    ``feed``: ``feed_{t-1}`` (N, H), fed back by Luong-style input feeding; else None.
    ``keys``: the encoder's outputs (N, S, K); ``prepared``: ``attention.prepare(keys)``;
    ``mask``: (N, S), True on real source tokens (all three None without attention).
    ``attention``: the weights (N, S) of the last step (None before the first): the row of an
    attention heat map.
    """

    rnn: torch.Tensor | tuple[torch.Tensor, ...]
    feed: torch.Tensor | None
    keys: torch.Tensor | None
    prepared: torch.Tensor | None
    mask: torch.Tensor | None
    attention: torch.Tensor | None


class EncoderDecoder(nn.Module):
    r"""Bidirectional RNN encoder, bridge, RNN decoder with attention, one token at a time.

    **Encoder.** :math:`k_1 … k_S = \mathrm{BiRNN}(\mathrm{drop}(E_{src}\, x_{1..S}))`, run
    with the source lengths: the keys (B, S, K) are exactly 0 on padding, and each direction's
    final state is the one at its last real token. ``K = 2 * hidden_size`` (the two directions
    concatenated), except with ``attention="dot"``, where each direction has
    ``hidden_size // 2`` units so that ``K = hidden_size`` matches the decoder's query
    (OpenNMT's convention; ``hidden_size`` must then be even).

    **Bridge.** ``"linear"``: for every layer ``l`` and every state tensor (the LSTM's ``h``
    and ``c`` alike) :math:`s_0^{(l)} = \tanh(W_l [\overrightarrow{s}^{(l)};
    \overleftarrow{s}^{(l)}] + b_l)`, a separate :math:`W_l` per layer and state tensor.
    ``"zeros"``: :math:`s_0 = 0` (then only attention tells the decoder about the source).

    **Decoder**, for :math:`t = 1 … T`, with :math:`e_t = \mathrm{drop}(E_{tgt}\, y_{t-1})`,
    :math:`h_t` the top layer's output and :math:`\mathrm{RNN}` a unidirectional stack of the
    same cell, size and depth, called on one step at a time with its state carried:

    - ``attention="dot"`` or ``"general"`` (Luong et al. 2015, global attention, the query is
      the new state):
      :math:`h_t, s_t = \mathrm{RNN}([e_t; \tilde h_{t-1}], s_{t-1})` (input feeding, with
      :math:`\tilde h_0 = 0`) or :math:`\mathrm{RNN}(e_t, s_{t-1})` without;
      :math:`c_t, a_t = \mathrm{attn}(h_t, k, \mathrm{mask})`;
      :math:`\tilde h_t = \tanh(W_c [c_t; h_t])`.
    - ``attention="additive"`` (Bahdanau et al. 2015, the query is the previous state):
      :math:`c_t, a_t = \mathrm{attn}(s^{top}_{t-1}, k, \mathrm{mask})` with
      :math:`s^{top}_{t-1}` the top layer's ``h`` (the bridge's at t = 1);
      :math:`h_t, s_t = \mathrm{RNN}([e_t; c_t], s_{t-1})` (input feeding: the context
      goes in) or :math:`\mathrm{RNN}(e_t, s_{t-1})` without;
      :math:`\tilde h_t = \tanh(W_c [c_t; h_t])`.
    - ``attention=None`` (plain sequence-to-sequence): :math:`h_t, s_t = \mathrm{RNN}(e_t,
      s_{t-1})` and :math:`\tilde h_t = h_t`; there is no context, so ``input_feeding`` has
      no effect, and ``bridge="zeros"`` is refused (the decoder would never see the source).

    Then :math:`\mathrm{logits}_t = W_{out}\, \mathrm{drop}(\tilde h_t) + b_{out}`.

    Args:
        source_vocab_size, target_vocab_size: rows of the two embeddings; ``pad_id`` is the
            padding row of both (its embedding is 0 and gets no gradient).
        embedding_dim: size of both embeddings.
        hidden_size, num_layers, cell: the encoder and decoder stacks (``cell``, a name
            of ``rnnkit.registry.CELLS``); ``hidden_size`` is also the width of :math:`\tilde h_t`.
        attention: ``"additive"``, ``"dot"``, ``"general"`` or None, as above.
        input_feeding: feed :math:`\tilde h_{t-1}` (Luong) or :math:`c_t` (additive) into
            the decoder's input.
        bridge: ``"linear"`` or ``"zeros"``, as above.
        dropout: on both embeddings' outputs, between stacked layers and on
            :math:`\tilde h_t`; training mode only.
        rnn_options: more options for both stacks (``layer_norm``, ``recurrent_dropout``,
            ``zoneout``, ``backend``, …). The decoder is called one step at a time, so its
            time-locked masks (``input_dropout``, ``recurrent_dropout``, ``weight_dropout``)
            are drawn afresh at every step.

    ``forward(source (B, S), source_lengths (B,), target_in (B, T))`` -> logits (B, T, V):
    teacher forcing, ``target_in[:, t]`` is :math:`y_{t-1}` (it starts with the start token).
    ``encode``, ``decode_step`` and ``reorder_state`` make it a decoder for
    ``rnnkit.decoding``; the state's ``attention`` field holds the last step's weights.
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        *,
        embedding_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        cell: str = "lstm",
        attention: str | None = "additive",
        input_feeding: bool = True,
        bridge: str = "linear",
        dropout: float = 0.2,
        pad_id: int = 0,
        rnn_options: dict | None = None,
    ):
        super().__init__()
        sizes = {
            "source_vocab_size": source_vocab_size,
            "target_vocab_size": target_vocab_size,
            "embedding_dim": embedding_dim,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
        }
        for name, value in sizes.items():
            check_integer(name, value, 1, what="a positive integer")
        check_choice("attention", attention, (*KINDS, None))
        check_flag("input_feeding", input_feeding)
        check_choice("bridge", bridge, BRIDGES)
        if attention is None and bridge == "zeros":
            raise ValueError(
                "attention=None with bridge='zeros' leaves the decoder blind to the source; "
                "use bridge='linear' or an attention"
            )
        check_fraction("dropout", dropout, noun="rate", numpy=True)
        smallest = min(source_vocab_size, target_vocab_size)
        what = f"an id in [0, {smallest}) of both vocabularies"
        check_integer("pad_id", pad_id, 0, maximum=smallest - 1, what=what)
        if attention == "dot" and hidden_size % 2:
            raise ValueError(
                f"attention='dot' splits hidden_size={hidden_size} between the encoder's two "
                "directions (keys and query must be the same size), so it must be even"
            )
        self.source_vocab_size, self.target_vocab_size = source_vocab_size, target_vocab_size
        self.attention_kind, self.input_feeding, self.bridge_kind = attention, input_feeding, bridge
        self.pad_id = pad_id
        self.dropout = nn.Dropout(dropout)
        between = dropout if num_layers > 1 else 0.0  # a 1-layer stack has no "between"

        self.source_embedding = nn.Embedding(source_vocab_size, embedding_dim, padding_idx=pad_id)
        self.target_embedding = nn.Embedding(target_vocab_size, embedding_dim, padding_idx=pad_id)
        per_direction = hidden_size // 2 if attention == "dot" else hidden_size
        self.encoder = recurrent_layer(
            cell, embedding_dim, per_direction, num_layers,
            bidirectional=True, batch_first=True, dropout=between, user=rnn_options,
        )  # fmt: skip
        key_size = self.encoder.output_size

        # What joins the target embedding in the decoder's input (see the class docstring).
        fed = 0
        if input_feeding and attention in ("dot", "general"):
            fed = hidden_size  # ~h_{t-1}
        elif input_feeding and attention == "additive":
            fed = key_size  # c_t
        self.decoder = recurrent_layer(
            cell, embedding_dim + fed, hidden_size, num_layers,
            bidirectional=False, batch_first=True, dropout=between, user=rnn_options,
        )  # fmt: skip

        self.bridge = None
        if bridge == "linear":
            self.bridge = nn.ModuleList(
                nn.Linear(2 * encoder_size, decoder_size)
                for _ in range(num_layers)
                for encoder_size, decoder_size in zip(
                    self.encoder.state_sizes, self.decoder.state_sizes, strict=True
                )
            )

        self.attention = None
        output_size = self.decoder.output_size
        if attention is not None:
            # Luong asks with the new output h_t, Bahdanau with the previous state's top h.
            query_size = self.decoder.state_sizes[0] if attention == "additive" else output_size
            self.attention = Attention(query_size, key_size, kind=attention)
            self.combine = nn.Linear(key_size + output_size, hidden_size, bias=False)  # W_c
            output_size = hidden_size
        self.output = nn.Linear(output_size, target_vocab_size)  # W_out, b_out

    # ---------------------------------------------------------------- checks

    def _check_ids(self, name: str, ids, vocab_size: int, dim: int) -> None:
        shape = "(batch, steps)" if dim == 2 else "(batch,)"
        if not isinstance(ids, torch.Tensor):
            raise TypeError(
                f"{name} must be a tensor of token ids {shape}, got {type(ids).__name__}"
            )
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
        if ids.dim() != dim:
            raise ValueError(f"{name} must be {dim}-D {shape}, got shape {tuple(ids.shape)}")
        if ids.numel() == 0:
            raise ValueError(f"{name} is empty (shape {tuple(ids.shape)})")
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            raise ValueError(f"{name} holds id {bad}, outside the vocabulary [0, {vocab_size})")

    def _check_source(self, source, source_lengths) -> torch.Tensor:
        """-> the lengths as an int64 tensor on the source's device."""
        self._check_ids("source", source, self.source_vocab_size, 2)
        batch, steps = source.shape
        if isinstance(source_lengths, list | tuple):
            source_lengths = torch.tensor(source_lengths, dtype=torch.int64)
        if not isinstance(source_lengths, torch.Tensor):
            raise TypeError(
                f"source_lengths must be a tensor or a list of ints, got {source_lengths!r}"
            )
        if source_lengths.is_floating_point() or source_lengths.dtype == torch.bool:
            raise TypeError(f"source_lengths must hold integers, got dtype {source_lengths.dtype}")
        if source_lengths.shape != (batch,):
            raise ValueError(
                f"source_lengths must have shape (batch,) = ({batch},) like source, got "
                f"{tuple(source_lengths.shape)}"
            )
        if int(source_lengths.min()) < 1:
            at = int((source_lengths < 1).nonzero()[0, 0])
            raise ValueError(
                f"source_lengths[{at}] = {int(source_lengths[at])}: every source needs at least "
                "one token; drop empty rows from the batch"
            )
        if int(source_lengths.max()) > steps:
            at = int((source_lengths > steps).nonzero()[0, 0])
            raise ValueError(
                f"source_lengths[{at}] = {int(source_lengths[at])} is longer than the {steps} "
                "steps of source"
            )
        return source_lengths.to(device=source.device, dtype=torch.int64)

    # ---------------------------------------------------------------- the decoder protocol

    def encode(self, source: torch.Tensor, source_lengths) -> Seq2SeqState:
        """Read the source: ids (B, S) and lengths (B,) -> the decoding state before the
        first target token (``Seq2SeqState``)."""
        return self._encode(source, self._check_source(source, source_lengths))

    def _encode(self, source: torch.Tensor, lengths: torch.Tensor) -> Seq2SeqState:
        batch, steps = source.shape
        keys, final = self.encoder(self.dropout(self.source_embedding(source)), lengths=lengths)
        parts = []
        for k, part in enumerate(_as_tuple(final)):  # (2L, B, h): layer-major, forward first
            layers = part.shape[0] // 2
            if self.bridge is None:
                size = self.decoder.state_sizes[k]
                parts.append(part.new_zeros(layers, batch, size))
                continue
            both = part.view(layers, 2, batch, -1).transpose(1, 2).reshape(layers, batch, -1)
            width = len(self.decoder.state_sizes)
            parts.append(
                torch.stack(
                    [torch.tanh(self.bridge[l * width + k](both[l])) for l in range(layers)]
                )
            )
        rnn = _like(parts, final)
        if self.attention is None:
            return Seq2SeqState(rnn, None, None, None, None, None)
        mask = torch.arange(steps, device=source.device) < lengths[:, None]
        feed = None
        if self.input_feeding and self.attention_kind != "additive":
            feed = keys.new_zeros(batch, self.combine.out_features)  # ~h_0 = 0
        return Seq2SeqState(rnn, feed, keys, self.attention.prepare(keys), mask, None)

    def _step(self, embedded: torch.Tensor, state: Seq2SeqState):
        """One decoder step from the embedded previous tokens (N, E) -> (logits (N, V), state)."""
        kind = self.attention_kind
        context = weights = None
        inputs = [embedded]
        if kind == "additive":
            query = _as_tuple(state.rnn)[0][-1]  # s_{t-1}: the top layer's h
            context, weights = self.attention(query, state.keys, state.mask, state.prepared)
            if self.input_feeding:
                inputs.append(context)
        elif kind is not None and self.input_feeding:
            inputs.append(state.feed)
        x = torch.cat(inputs, 1) if len(inputs) > 1 else embedded
        output, rnn = self.decoder(x.unsqueeze(1), state=state.rnn)
        h = output.squeeze(1)
        if kind is None:
            feed = h
        else:
            if kind != "additive":
                context, weights = self.attention(h, state.keys, state.mask, state.prepared)
            feed = torch.tanh(self.combine(torch.cat([context, h], 1)))
        logits = self.output(self.dropout(feed))
        keep_feed = feed if state.feed is not None else None
        return logits, state._replace(rnn=rnn, feed=keep_feed, attention=weights)

    def decode_step(self, tokens: torch.Tensor, state: Seq2SeqState):
        """The previous tokens (N,) -> (logits of the next token (N, V), the new state)."""
        self._check_ids("tokens", tokens, self.target_vocab_size, 1)
        rows = _as_tuple(state.rnn)[0].shape[1]
        if tokens.shape[0] != rows:
            raise ValueError(f"tokens has {tokens.shape[0]} rows but the state has {rows}")
        return self._step(self.dropout(self.target_embedding(tokens)), state)

    def reorder_state(self, state: Seq2SeqState, index: torch.Tensor) -> Seq2SeqState:
        """The state of rows ``index`` (M,) of the batch, in that order (rows may repeat)."""
        rnn = _like(tuple(part.index_select(1, index) for part in _as_tuple(state.rnn)), state.rnn)

        def rows(x):
            return None if x is None else x.index_select(0, index)

        keys = rows(state.keys)
        # dot attention's prepared keys are the keys: one copy serves both.
        prepared = keys if state.prepared is state.keys else rows(state.prepared)
        return Seq2SeqState(
            rnn, rows(state.feed), keys, prepared, rows(state.mask), rows(state.attention)
        )

    # ---------------------------------------------------------------- training

    def forward(
        self,
        source: torch.Tensor,
        source_lengths,
        target_in: torch.Tensor,
        *,
        sampling: float = 0.0,
        return_attention: bool = False,
    ):
        """Teacher-forced logits (B, T, V) of the target's next tokens [, weights (B, T, S)].

        ``target_in[:, t]`` is the token before the one step ``t`` predicts (``target_in``
        starts with the start token; its padding, any id, only affects the logits of padded
        steps, which the loss should ignore). ``sampling=p``: scheduled sampling (Bengio et
        al. 2015): in training mode, at each step ``t > 0`` each row independently feeds its
        own previous argmax prediction instead of ``target_in[:, t]`` with probability ``p``
        (drawn from torch's global RNG); in evaluation mode ``sampling`` is ignored.
        ``return_attention``: also return every step's attention weights, exactly 0 on the
        source's padding (the attention map of ``source`` against ``target_in``).
        """
        check_fraction("sampling", sampling, "[0, 1]", noun="probability", numpy=True)
        if return_attention and self.attention is None:
            raise ValueError("return_attention=True needs a model with attention (not None)")
        lengths = self._check_source(source, source_lengths)
        self._check_ids("target_in", target_in, self.target_vocab_size, 2)
        if len(target_in) != len(source):
            raise ValueError(
                f"target_in has {len(target_in)} rows but source has {len(source)}; "
                "they must be the same batch"
            )
        state = self._encode(source, lengths)
        embedded = self.dropout(self.target_embedding(target_in))
        scheduled = self.training and sampling > 0
        all_logits, all_weights = [], []
        for t in range(target_in.shape[1]):
            x = embedded[:, t]
            if scheduled and t > 0:
                own = torch.rand(len(target_in), device=target_in.device) < sampling
                tokens = torch.where(own, all_logits[-1].argmax(-1), target_in[:, t])
                x = self.dropout(self.target_embedding(tokens))
            logits, state = self._step(x, state)
            all_logits.append(logits)
            all_weights.append(state.attention)
        logits = torch.stack(all_logits, 1)
        return (logits, torch.stack(all_weights, 1)) if return_attention else logits

    def extra_repr(self) -> str:
        return (
            f"attention={self.attention_kind!r}, input_feeding={self.input_feeding}, "
            f"bridge={self.bridge_kind!r}, pad_id={self.pad_id}"
        )
