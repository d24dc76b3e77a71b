r"""Attention over a source sequence: additive (Bahdanau) and multiplicative (Luong).

At each output step a decoder asks a *query* ``q`` (its state) of the source's *keys*
``k_1 … k_S`` (the encoder's outputs, which are also the values read): every key gets a score,
the scores become weights by a softmax over the valid (unpadded) positions, and the context is
the weighted sum of the keys.

.. math::
    \text{additive:} \quad e_s = v^\top \tanh(W_q q + W_k k_s + b)
        \quad \text{(Bahdanau et al. 2015)}

    \text{dot:} \quad e_s = q^\top k_s \qquad
    \text{general:} \quad e_s = q^\top W k_s \quad \text{(Luong et al. 2015)}

    \alpha_s = \frac{\exp e_s}{\sum_{s' \text{ valid}} \exp e_{s'}} \ (s \text{ valid}),
    \quad \alpha_s = 0 \ (s \text{ padding}), \qquad c = \sum_s \alpha_s k_s

The part of each score that depends on the keys only (``W_k k_s + b``, ``W k_s``) is the same
at every output step, so ``prepare`` computes it once per sentence and ``forward`` takes it.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_choice, check_integer

KINDS = ("additive", "dot", "general")


def _check_size(name: str, value) -> int:
    return check_integer(name, value, 1, what="a positive integer")


class Attention(nn.Module):
    r"""Scores the keys against a query; returns the context and the weights.

    Args:
        query_size: features ``Q`` of the query (the decoder's state).
        key_size: features ``K`` of each key (the encoder's output per position).
        kind: ``"additive"``: :math:`e_s = v^\top \tanh(W_q q + W_k k_s + b)`, with
            :math:`W_q` (A, Q), :math:`W_k` (A, K), :math:`b` and :math:`v` (A,);
            ``"dot"``: :math:`e_s = q^\top k_s`, no parameters, needs ``Q == K``;
            ``"general"``: :math:`e_s = q^\top W k_s`, with :math:`W` (Q, K).
            No kind scales its scores (as in the papers).
        attention_size: ``A``, the width of the additive kind's hidden layer (default
            ``query_size``); the other kinds have none and refuse it.

    Shapes of ``forward(query, keys, mask=None, prepared=None)``:

    - ``query`` (B, Q); ``keys`` (B, S, K);
    - ``mask`` (B, S) bool, True on valid positions (every row needs one), or None: all valid;
    - ``prepared``: ``prepare(keys)``, to skip recomputing it at every decoder step;
    - returns ``context`` (B, K) and ``weights`` (B, S): they sum to 1 over the valid
      positions of each row and are exactly 0 on padding, so padded keys, whatever finite
      values they hold, change nothing.

    Example::

        >>> attention = Attention(query_size=64, key_size=128, kind="general")
        >>> prepared = attention.prepare(keys)                   # once per source batch
        >>> context, weights = attention(h_t, keys, mask, prepared)  # at every step
    """

    def __init__(
        self,
        query_size: int,
        key_size: int,
        kind: str = "additive",
        attention_size: int | None = None,
    ):
        super().__init__()
        self.query_size = _check_size("query_size", query_size)
        self.key_size = _check_size("key_size", key_size)
        check_choice("kind", kind, KINDS)
        if kind == "dot" and query_size != key_size:
            raise ValueError(
                f"kind='dot' scores q·k, so query_size={query_size} must equal "
                f"key_size={key_size}; use kind='general' (q·Wk) or 'additive' for different sizes"
            )
        if attention_size is not None and kind != "additive":
            raise ValueError(
                f"attention_size={attention_size!r} is the additive kind's hidden width; "
                f"kind={kind!r} has none"
            )
        self.kind = kind
        self.attention_size = None
        if kind == "additive":
            size = _check_size("attention_size", attention_size or query_size)
            self.attention_size = size
            self.key_projection = nn.Linear(key_size, size)  # W_k and b
            self.query_projection = nn.Linear(query_size, size, bias=False)  # W_q
            self.score = nn.Linear(size, 1, bias=False)  # v
        elif kind == "general":
            self.key_projection = nn.Linear(key_size, query_size, bias=False)  # W

    @property
    def prepared_size(self) -> int:
        """Features of ``prepare(keys)``: A (additive), Q (general) or K (dot)."""
        if self.kind == "additive":
            return self.attention_size
        return self.query_size if self.kind == "general" else self.key_size

    def _check_keys(self, keys) -> None:
        if not isinstance(keys, torch.Tensor) or keys.dim() != 3:
            raise ValueError(
                f"keys must be a tensor (batch, positions, {self.key_size}), got "
                f"{tuple(keys.shape) if isinstance(keys, torch.Tensor) else type(keys).__name__}"
            )
        if keys.shape[2] != self.key_size:
            raise ValueError(
                f"keys have {keys.shape[2]} features (last dimension), but key_size={self.key_size}"
            )
        if keys.shape[1] == 0:
            raise ValueError(f"keys have 0 positions (shape {tuple(keys.shape)})")

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        """The query-independent part of the scores: ``W_k k + b`` (additive), ``W k``
        (general) or the keys themselves (dot); (B, S, K) -> (B, S, prepared_size)."""
        self._check_keys(keys)
        return keys if self.kind == "dot" else self.key_projection(keys)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor | None = None,
        prepared: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (context (B, K), weights (B, S)); see the class docstring."""
        self._check_keys(keys)
        batch, positions = keys.shape[:2]
        if not isinstance(query, torch.Tensor) or tuple(query.shape) != (batch, self.query_size):
            got = tuple(query.shape) if isinstance(query, torch.Tensor) else type(query).__name__
            raise ValueError(
                f"query must have shape (batch, query_size) = {(batch, self.query_size)}, got {got}"
            )
        if prepared is None:
            prepared = self.prepare(keys)
        elif tuple(prepared.shape) != (batch, positions, self.prepared_size):
            raise ValueError(
                f"prepared must be prepare(keys) of shape "
                f"{(batch, positions, self.prepared_size)}, got {tuple(prepared.shape)}"
            )
        if self.kind == "additive":
            hidden = torch.tanh(prepared + self.query_projection(query).unsqueeze(1))
            energy = self.score(hidden).squeeze(-1)
        else:  # q·k or q·(Wk), one batched matrix-vector product
            energy = torch.bmm(prepared, query.unsqueeze(-1)).squeeze(-1)
        if mask is not None:
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                got = getattr(mask, "dtype", mask)
                raise TypeError(f"mask must be a bool tensor (True = valid), got {got!r}")
            if tuple(mask.shape) != (batch, positions):
                raise ValueError(
                    f"mask must have shape (batch, positions) = {(batch, positions)}, "
                    f"got {tuple(mask.shape)}"
                )
            empty = ~mask.any(1)
            # The check reads values: an exported graph (symbolic values) goes without it.
            if not torch.compiler.is_exporting() and empty.any():
                row = int(empty.nonzero()[0, 0])
                raise ValueError(
                    f"mask row {row} has no valid position: attention needs at least one"
                )
            # exp(-inf) = 0: padding gets a weight of exactly 0, and no gradient.
            energy = energy.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(energy, dim=-1)
        context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)
        return context, weights

    def extra_repr(self) -> str:
        size = f", attention_size={self.attention_size}" if self.kind == "additive" else ""
        return f"query_size={self.query_size}, key_size={self.key_size}, kind={self.kind!r}{size}"
