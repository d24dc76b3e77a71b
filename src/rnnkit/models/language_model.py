"""The language model (many-to-many, aligned): read tokens, predict the next one at every step."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_integer
from ..registry import recurrent_layer


def select_rows(state, index: torch.Tensor):
    """Rows ``index`` of a layer state: a tensor (layers * directions, B, size) or a tuple of
    them; None (the initial state) stays None."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.index_select(1, index)
    return tuple(select_rows(s, index) for s in state)


class SoftmaxOutput(nn.Module):
    r"""The scores of every token of the vocabulary from a recurrent output ``h``:
    ``logits = W drop(P h) + b``.

    With ``tie_weights`` the matrix ``W`` is ``embedding``'s own weight (Press & Wolf 2017;
    Inan et al. 2017), and ``P`` a linear map to the embedding's size when ``input_size``
    differs from it; otherwise ``P`` is the identity and ``W`` is learnt on its own.
    """

    def __init__(self, input_size: int, embedding: nn.Embedding, *, tie_weights=False, dropout=0.0):
        super().__init__()
        vocab_size, embedding_dim = embedding.weight.shape
        tied_projection = tie_weights and input_size != embedding_dim
        self.projection = nn.Linear(input_size, embedding_dim) if tied_projection else None
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(embedding_dim if tie_weights else input_size, vocab_size)
        if tie_weights:
            self.linear.weight = embedding.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.projection is not None:
            hidden = self.projection(hidden)
        return self.linear(self.dropout(hidden))


class LanguageModel(nn.Module):
    r"""A recurrent language model: the next token's distribution after every prefix.

    .. math::

        e_t = E x_t, \qquad h_t = \mathrm{RNN}(e_t, h_{t-1}), \qquad
        p(x_{t+1} \mid x_{\le t}) = \mathrm{softmax}(W\, \mathrm{drop}(P h_t) + b)

    ``P`` is the identity unless the output is tied to the embedding and the sizes differ
    (the top layer's output size is ``hidden_size``, or an LSTM's ``proj_size``).
    With ``tie_weights`` the output matrix is the embedding itself, ``W = E`` (Press & Wolf
    2017; Inan et al. 2017), which saves ``V * d`` parameters and usually lowers perplexity;
    when ``hidden_size != embedding_dim`` a linear ``P`` maps ``h_t`` to the embedding size.

    The state is the recurrent layer's, so a long text is read chunk by chunk with the state
    carried over (truncated BPTT, generation) and nothing is recomputed.

    Args:
        vocab_size: tokens in the vocabulary (ids 0..V-1).
        embedding_dim: size of the token embedding.
        hidden_size, num_layers, cell: the recurrent stack; ``cell`` is a name of
            ``rnnkit.registry.CELLS``.
        dropout: between stacked layers.
        embedding_dropout: dropout on the embedded input.
        output_dropout: dropout on the top layer's output, before the softmax layer.
        tie_weights: share the embedding with the output layer.
        rnn_options: more options of the recurrent layer (``layer_norm``, ``zoneout``,
            ``recurrent_dropout``, ``weight_dropout``, ...).

    Shapes: ``forward(tokens (B, T), state=None, lengths=None) -> (logits (B, T, V), state)``.

    Example::

        >>> lm = LanguageModel(vocab_size=84, hidden_size=256)
        >>> logits, state = lm(tokens[:, :100])
        >>> logits, state = lm(tokens[:, 100:200], state=state)  # continue the text
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        embedding_dim: int = 128,
        hidden_size: int = 512,
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
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.rnn = recurrent_layer(
            cell, embedding_dim, hidden_size, num_layers, user=rnn_options, dropout=dropout
        )
        self.output = SoftmaxOutput(  # the top layer's size: hidden_size, or an LSTM's proj_size
            self.rnn.output_size, self.embedding, tie_weights=tie_weights, dropout=output_dropout
        )
        self.tie_weights = tie_weights

    def _check_tokens(self, tokens: torch.Tensor) -> None:
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"tokens must be integer ids, got dtype {tokens.dtype}")
        if torch.compiler.is_exporting():  # the ids are symbolic: an exported graph takes them
            return
        if tokens.numel() and not 0 <= int(tokens.min()) <= int(tokens.max()) < self.vocab_size:
            raise ValueError(
                f"tokens hold ids from {int(tokens.min())} to {int(tokens.max())}, outside "
                f"the vocabulary's 0..{self.vocab_size - 1}"
            )

    def forward(self, tokens: torch.Tensor, state=None, lengths: torch.Tensor | None = None):
        """Logits of the next token after every step, and the state after the last."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (batch, steps), got shape {tuple(tokens.shape)}")
        self._check_tokens(tokens)
        embedded = self.embedding_dropout(self.embedding(tokens))
        hidden, state = self.rnn(embedded, state=state, lengths=lengths)
        return self.output(hidden), state

    def decode_step(self, tokens: torch.Tensor, state):
        """One step of generation: ``tokens`` (N,) in, logits (N, V) of the next out; the
        decoder protocol of ``rnnkit.decoding``. ``state`` None starts a text."""
        logits, state = self(tokens[:, None], state=state)
        return logits[:, 0], state

    def reorder_state(self, state, index: torch.Tensor):
        """The state of rows ``index`` (beam search repeats and reorders rows)."""
        return select_rows(state, index)
