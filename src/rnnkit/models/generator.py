"""The conditional generator (one-to-many): one condition in, a sequence of tokens out.

A caption from an image, a sentence from a sentiment, a word from a class: the condition (a
feature vector or a class id) becomes one vector that starts the recurrent state, or joins
every step's input, or both; the network then writes one token at a time, each fed back as
the next step's input. Searching for a sequence (greedy, sampling, beam) is
``rnnkit.decoding``'s work: the generator only follows its decoder protocol.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import decoding
from .._checks import check_choice, check_integer, is_integer
from ..registry import recurrent_layer
from .language_model import SoftmaxOutput, select_rows

CONDITION_MODES = ("init", "input", "both")
METHODS = ("greedy", "sample", "beam")


class ConditionalGenerator(nn.Module):
    r"""A recurrent generator of token sequences conditioned on a vector or a class.

    The condition, features ``x`` (``condition_size`` of them) or a class id ``k`` (of
    ``num_classes``), becomes the condition vector

    .. math::

        c = \tanh(W_c x + b_c) \quad\text{or}\quad c = C_k \qquad (\text{size } d_c)

    The class vectors ``C_k`` start at zero, so an untrained model treats every class
    alike and training learns what each class changes (on MR sentences this trained faster
    and to a lower perplexity than the usual N(0, 1) start, which shifts every step's input
    by a large random vector per class).

    The condition vector enters the recurrent network in one or both of two ways
    (``condition_mode``):

    - ``"init"``: it sets the initial state. Every state tensor of every layer (the LSTM's
      ``h`` and ``c``, the GRU's ``h``) is a slice of one linear map,
      ``[s_0^{(1)}; \dots; s_0^{(L)}] = \tanh(W_s c + b_s)``; the network must remember the
      condition through its state.
    - ``"input"``: it joins the input at every step, ``u_t = [E y_{t-1}; c]``, from a zero
      initial state; the condition cannot fade however long the sequence.
    - ``"both"``: the two at once.

    Then, with ``y_0`` the start token (``<s>``) and ``u_t = E y_{t-1}`` unless the input
    carries ``c``:

    .. math::

        h_t = \mathrm{RNN}(u_t, h_{t-1}), \qquad
        p(y_t \mid y_{<t}, c) = \mathrm{softmax}(W\, \mathrm{drop}(P h_t) + b)

    ``P`` is the identity unless the output is tied to the embedding (``tie_weights``,
    ``W = E``) and the top layer's output size (``hidden_size``, or ``proj_size``) differs
    from ``embedding_dim``, as in ``LanguageModel``.

    Trained by teacher forcing: ``forward`` reads the gold tokens ``<s> y_1 … y_n`` and its
    logits at step ``t`` score ``y_{t+1}`` (``y_{n+1} = </s>``), so the loss is the
    cross-entropy against ``y_1 … y_n </s>``. ``generate`` feeds back its own tokens instead.

    Args:
        vocab_size: tokens in the vocabulary (ids 0..V-1).
        condition_size: read a float vector (B, condition_size) per example (an image's
            pixels, features); or
        num_classes: read a class id (B,) per example. Exactly one of the two.
        condition_mode: "init", "input" or "both" (see above).
        condition_dim: size of the condition vector ``c``; default ``hidden_size``.
        embedding_dim: size of the token embedding.
        hidden_size, num_layers, cell: the recurrent stack; ``cell`` is a name of
            ``rnnkit.registry.CELLS``.
        dropout: between stacked layers.
        embedding_dropout: dropout on the embedded tokens.
        output_dropout: dropout on the top layer's output, before the softmax layer.
        tie_weights: share the embedding with the output layer.
        rnn_options: more options of the recurrent layer (``layer_norm``, ``zoneout``,
            ``recurrent_dropout``, ...); not ``bidirectional``: a generator reads left to
            right.

    Shapes: ``forward(condition, tokens (B, T), lengths=None) -> logits (B, T, V)``;
    ``start(condition) -> state``; ``decode_step(tokens (N,), state) -> (logits (N, V),
    state)``; ``generate(condition, bos, eos, max_length, ...) -> list of B token-id lists``.

    Example::

        >>> model = ConditionalGenerator(vocab_size=30, num_classes=4, hidden_size=64)
        >>> logits = model(classes, tokens[:, :-1], lengths=lengths)   # teacher forcing
        >>> model.generate(torch.tensor([0, 3]), bos=1, eos=2, max_length=20)
        [[5, 3, 9], [7, 12, 4, 6]]
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        condition_size: int | None = None,
        num_classes: int | None = None,
        condition_mode: str = "init",
        condition_dim: int | None = None,
        embedding_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        output_dropout: float = 0.0,
        tie_weights: bool = False,
        rnn_options: dict | None = None,
    ):
        super().__init__()
        self.vocab_size = check_integer("vocab_size", vocab_size, 2)
        if (condition_size is None) == (num_classes is None):
            raise ValueError(
                "give condition_size (a feature vector per example) or num_classes (a class "
                f"id per example), exactly one; got condition_size={condition_size!r}, "
                f"num_classes={num_classes!r}"
            )
        check_choice("condition_mode", condition_mode, CONDITION_MODES)
        condition_dim = hidden_size if condition_dim is None else condition_dim
        check_integer("condition_dim", condition_dim, 1)
        check_integer("embedding_dim", embedding_dim, 1)
        self.condition_size = condition_size
        self.num_classes = num_classes
        self.condition_mode = condition_mode
        if condition_size is not None:
            check_integer("condition_size", condition_size, 1)
        else:
            # num_classes=1 is allowed: the unconditional model, a baseline for the others.
            check_integer("num_classes", num_classes, 1)

        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.condition_in_input = condition_mode in ("input", "both")
        input_size = embedding_dim + (condition_dim if self.condition_in_input else 0)
        self.rnn = recurrent_layer(
            cell,
            input_size,
            hidden_size,
            num_layers,
            user=rnn_options,
            dropout=dropout,
            bidirectional=False,
            batch_first=True,
            return_sequences=True,
            return_state=True,
        )
        self.initial_state = None
        if condition_mode in ("init", "both"):
            self.initial_state = nn.Linear(condition_dim, num_layers * sum(self.rnn.state_sizes))
        self.output = SoftmaxOutput(  # the top layer's size: hidden_size, or an LSTM's proj_size
            self.rnn.output_size, self.embedding, tie_weights=tie_weights, dropout=output_dropout
        )
        self.tie_weights = tie_weights
        # Built last, so that the layers above draw the same initial weights whatever the
        # condition: with one seed, models of 1 and of 2 classes start as the same function.
        if condition_size is not None:
            self.condition_encoder = nn.Sequential(
                nn.Linear(condition_size, condition_dim), nn.Tanh()
            )
        else:
            self.condition_encoder = nn.Embedding(num_classes, condition_dim)
            # Every class starts at c = 0, the same: the model learns what a class changes,
            # rather than starting from a large random shift of each class's every step.
            nn.init.zeros_(self.condition_encoder.weight)

    # ---------------------------------------------------------------- checks

    def _check_condition(self, condition) -> None:
        if not isinstance(condition, torch.Tensor):
            raise TypeError(f"condition must be a torch.Tensor, got {type(condition).__name__}")
        if condition.dim() and condition.shape[0] == 0:
            raise ValueError(f"condition has batch size 0 (shape {tuple(condition.shape)})")
        if self.condition_size is not None:
            expected = f"(batch, {self.condition_size}) floats"
            if condition.dim() != 2 or condition.shape[1] != self.condition_size:
                raise ValueError(
                    f"condition must be {expected}, got shape {tuple(condition.shape)}"
                )
            if not condition.is_floating_point():
                raise TypeError(
                    f"condition must be {expected}, got dtype {condition.dtype} (scale "
                    "integer data to floats first, e.g. pixels / 255)"
                )
            weight = self.condition_encoder[0].weight
            if condition.dtype != weight.dtype:
                raise TypeError(
                    f"condition has dtype {condition.dtype} but the model's parameters are "
                    f"{weight.dtype}; convert one of them"
                )
        else:
            if condition.dim() != 1:
                raise ValueError(
                    f"condition must be (batch,) class ids, got shape {tuple(condition.shape)}"
                )
            if condition.dtype not in (torch.int64, torch.int32):
                raise TypeError(
                    f"condition must be (batch,) integer class ids, got dtype {condition.dtype}"
                )
            low, high = int(condition.min()), int(condition.max())
            if not 0 <= low <= high < self.num_classes:
                raise ValueError(
                    f"condition holds class ids from {low} to {high}, outside 0.."
                    f"{self.num_classes - 1} (num_classes={self.num_classes})"
                )

    def _check_tokens(self, tokens, name: str = "tokens") -> None:
        if not isinstance(tokens, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of ids, got {type(tokens).__name__}")
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"{name} must be integer ids, got dtype {tokens.dtype}")
        if tokens.numel() and not 0 <= int(tokens.min()) <= int(tokens.max()) < self.vocab_size:
            raise ValueError(
                f"{name} hold ids from {int(tokens.min())} to {int(tokens.max())}, outside "
                f"the vocabulary's 0..{self.vocab_size - 1}"
            )

    # ---------------------------------------------------------------- the network

    def start(self, condition: torch.Tensor):
        """The decoding state before the first token, for a batch of conditions.

        ``condition``: (B, condition_size) floats or (B,) class ids. The state is a pair
        ``(recurrent state, c)``: the layer's state (None, i.e. zeros, unless
        ``condition_mode`` sets it) and the condition vector (B, condition_dim) that every
        step's input carries (None unless it does).
        """
        self._check_condition(condition)
        vector = self.condition_encoder(condition)
        rnn_state = None
        if self.initial_state is not None:
            layers, batch = self.rnn.num_layers, len(vector)
            # (L, B, total) -> one (L, B, size) tensor per state tensor (LSTM: h, then c).
            flat = torch.tanh(self.initial_state(vector)).view(batch, layers, -1).transpose(0, 1)
            parts = flat.split(list(self.rnn.state_sizes), dim=-1)
            rnn_state = tuple(p.contiguous() for p in parts)
            if len(rnn_state) == 1:
                rnn_state = rnn_state[0]
        return rnn_state, (vector if self.condition_in_input else None)

    def _run(self, tokens: torch.Tensor, state, lengths=None):
        """Tokens (B, T) from ``state`` -> (logits (B, T, V), state after the last step)."""
        rnn_state, vector = state
        if vector is not None and vector.shape[0] != tokens.shape[0]:
            raise ValueError(
                f"tokens have batch size {tokens.shape[0]} but the condition has {vector.shape[0]}"
            )
        embedded = self.embedding_dropout(self.embedding(tokens))
        if vector is not None:
            embedded = torch.cat([embedded, vector[:, None].expand(-1, tokens.shape[1], -1)], -1)
        hidden, rnn_state = self.rnn(embedded, state=rnn_state, lengths=lengths)
        return self.output(hidden), (rnn_state, vector)

    def forward(self, condition: torch.Tensor, tokens: torch.Tensor, lengths=None):
        """Teacher forcing: the logits (B, T, V) of the token after each of ``tokens``.

        ``tokens`` (B, T) start with the start token (``<s> y_1 … y_{n}``); ``lengths`` (B,)
        gives each row's valid steps (padded steps' logits are meaningless: mask them out
        of the loss).
        """
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
            got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens)
            raise ValueError(f"tokens must be (batch, steps) ids, got {got}")
        self._check_tokens(tokens)
        state = self.start(condition)
        if len(condition) != len(tokens):
            raise ValueError(
                f"condition has batch size {len(condition)} but tokens have {len(tokens)}"
            )
        return self._run(tokens, state, lengths)[0]

    # ---------------------------------------------------------------- the decoder protocol

    def decode_step(self, tokens: torch.Tensor, state):
        """One step: the previous tokens (N,) in, logits (N, V) of the next out; the decoder
        protocol of ``rnnkit.decoding``. ``state`` comes from ``start`` or the last step."""
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1:
            got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens)
            raise ValueError(f"tokens must be (N,) ids, one per row, got {got}")
        self._check_tokens(tokens)
        logits, state = self._run(tokens[:, None], state)
        return logits[:, 0], state

    def reorder_state(self, state, index: torch.Tensor):
        """The state of rows ``index`` (beam search repeats and reorders rows)."""
        rnn_state, vector = state
        return select_rows(rnn_state, index), (None if vector is None else vector[index])

    # ---------------------------------------------------------------- generation

    def generate(
        self,
        condition: torch.Tensor,
        bos: int,
        eos: int,
        max_length: int,
        *,
        method: str = "greedy",
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        beam_size: int = 5,
        length_penalty: float = 1.0,
        generator: torch.Generator | None = None,
        banned=(),
    ) -> list[list[int]]:
        """A token sequence for each condition (``<s>`` and ``</s>`` excluded).

        Args:
            condition: (B, condition_size) floats or (B,) class ids.
            bos, eos: the start and end tokens.
            max_length: tokens at most, ``eos`` included.
            method: "greedy" (the most probable token at each step), "sample" (with
                ``temperature``, ``top_k``, ``top_p`` and a seeded ``generator`` for
                reproducible draws) or "beam" (``beam_size``, ``length_penalty``: the best
                sequence found, see ``rnnkit.decoding.beam_search``).
            banned: token ids never emitted (a vocabulary's ``unwanted_ids()``: padding and
                ``<unk>``); ``bos`` is never emitted either.

        Runs in evaluation mode without gradients (dropout off), then restores the mode.
        """
        check_choice("method", method, METHODS)
        for name, token in (("bos", bos), ("eos", eos)):
            if not is_integer(token):
                raise TypeError(f"{name} must be a token id (int), got {token!r}")
            if not 0 <= token < self.vocab_size:
                raise ValueError(
                    f"{name}={token} is not a token id: ids run from 0 to {self.vocab_size - 1}"
                )
        never = sorted({*banned, bos})
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                state = self.start(condition)
                start = torch.full((len(condition),), bos, device=condition.device)
                if method == "beam":
                    best = decoding.beam_search(
                        self, state, start, max_length, eos,
                        beam_size=beam_size, length_penalty=length_penalty, banned=never,
                    )  # fmt: skip
                    return [hypotheses[0].tokens for hypotheses in best]
                if method == "greedy":
                    decoded = decoding.greedy(self, state, start, max_length, eos, banned=never)
                else:
                    decoded = decoding.sample(
                        self, state, start, max_length, eos,
                        temperature=temperature, top_k=top_k, top_p=top_p, generator=generator,
                        banned=never,
                    )  # fmt: skip
        finally:
            self.train(was_training)
        return [
            row[:n].tolist()
            for row, n in zip(decoded.tokens, decoded.lengths.tolist(), strict=True)
        ]
