"""Sequence tagging (many-to-many, aligned): one tag per token, as in named-entity recognition.

The architecture of Lample et al. (2016) and Ma & Hovy (2016): each word is its embedding
joined with what a character-level BiRNN reads from its spelling (which helps with the rare
and unseen words that Twitter text is full of); a BiRNN over the words gives each token a
score per tag; a softmax picks each tag on its own, or a linear-chain CRF picks the best
sequence of tags (``rnnkit.models.crf``), so that ``I-person`` never follows ``O``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_integer
from ..registry import recurrent_layer
from .classifier import valid_steps
from .crf import CRF


class CharEncoder(nn.Module):
    """The characters of each word -> one vector: a BiRNN's final states in both directions."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, cell: str):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.rnn = recurrent_layer(
            cell, embedding_dim, hidden_size, 1, bidirectional=True, batch_first=True
        )
        self.output_size = 2 * hidden_size

    def forward(self, chars: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """chars (B, T, W) ids, 0 = padding; valid (B, T) -> (B, T, output_size).

        Only the valid words run through the RNN; padded words get zeros.
        """
        # A graph cannot pick rows by value (their number is data): exported, every word runs
        # and the padding's outputs are zeroed, the same values as picking the valid ones.
        exporting = torch.compiler.is_exporting()
        words = chars.flatten(0, 1) if exporting else chars[valid]
        lengths = (words != 0).sum(-1).clamp(min=1)  # an empty spelling reads one pad
        _, state = self.rnn(self.embedding(words), lengths=lengths)
        h = state[0] if isinstance(state, tuple) else state
        encoded = torch.cat([h[0], h[1]], dim=-1)
        if exporting:
            encoded = encoded.reshape(*valid.shape, self.output_size)
            return torch.where(valid[..., None], encoded, 0)
        out = encoded.new_zeros(*valid.shape, self.output_size)
        out[valid] = encoded
        return out


class SequenceTagger(nn.Module):
    """Words (and their characters) -> BiRNN -> a tag per word, by softmax or CRF.

    Args:
        vocab_size: rows of the word embedding (id 0 is padding, 1 unknown).
        num_tags: tags to choose from.
        embedding_dim: size of the word embedding.
        char_vocab_size: rows of the character embedding; None for no character features.
        char_embedding_dim, char_hidden_size: the character BiRNN's sizes.
        cell: a cell name of ``rnnkit.registry.CELLS``, for both the word and the character RNN.
        hidden_size, num_layers: the word BiRNN.
        dropout: on the word representation and on the BiRNN's output (Lample et al.: 0.5).
        crf: decode with a linear-chain CRF (True) or a softmax per token (False).
        tags: the tag names in id order; with ``crf``, BIO/BIOES names forbid the
            transitions the scheme does not allow (``I-X`` after ``O``, …).
        rnn_options: more options of the word BiRNN (``recurrent_dropout``, ``layer_norm``, …).

    ``forward(words, chars=None, lengths=None)`` -> emission scores (B, T, num_tags);
    with ``tags=`` it returns instead each row's loss (B,): the CRF's negative
    log-likelihood, or the summed cross-entropy of its tokens. ``decode`` gives tag ids.
    """

    def __init__(
        self,
        vocab_size: int,
        num_tags: int,
        *,
        embedding_dim: int = 100,
        char_vocab_size: int | None = None,
        char_embedding_dim: int = 25,
        char_hidden_size: int = 25,
        cell: str = "lstm",
        hidden_size: int = 100,
        num_layers: int = 1,
        dropout: float = 0.5,
        crf: bool = True,
        tags: list[str] | None = None,
        rnn_options: dict | None = None,
    ):
        super().__init__()
        check_integer("num_tags", num_tags, 2)
        if tags is not None and len(tags) != num_tags:
            raise ValueError(f"tags has {len(tags)} names for num_tags={num_tags}")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.chars = None
        size = embedding_dim
        if char_vocab_size is not None:
            self.chars = CharEncoder(char_vocab_size, char_embedding_dim, char_hidden_size, cell)
            size += self.chars.output_size
        self.dropout = nn.Dropout(dropout)
        self.rnn = recurrent_layer(
            cell,
            size,
            hidden_size,
            num_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            user=rnn_options,
        )
        self.emit = nn.Linear(self.rnn.output_size, num_tags)
        self.crf = None
        if crf:
            self.crf = CRF.from_tags(tags) if tags is not None else CRF(num_tags)

    def forward(self, words, chars=None, lengths=None, tags=None):
        """Emission scores (B, T, K); or, given ``tags`` (B, T), each row's loss (B,)."""
        if words.is_floating_point() or words.dim() != 2:
            raise ValueError(f"words must be token ids (B, T); got {tuple(words.shape)}")
        if (chars is None) != (self.chars is None):
            expected = "needs" if self.chars is not None else "has no character encoder for"
            raise ValueError(
                f"chars={'None' if chars is None else 'given'}: this tagger {expected} chars"
            )
        batch, steps = words.shape
        valid = valid_steps(lengths, batch, steps, words.device)
        features = self.embedding(words)
        if self.chars is not None:
            features = torch.cat([features, self.chars(chars, valid)], dim=-1)
        outputs, _ = self.rnn(self.dropout(features), lengths=lengths)
        emissions = self.emit(self.dropout(outputs))
        if tags is None:
            return emissions
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long, device=words.device)
        if self.crf is not None:
            return self.crf(emissions, tags, lengths)
        token_loss = F.cross_entropy(emissions.transpose(1, 2), tags, reduction="none")
        return torch.where(valid, token_loss, 0).sum(1)

    def decode(self, words, chars=None, lengths=None) -> torch.Tensor:
        """The best tag ids (B, T); steps past each length hold 0."""
        emissions = self(words, chars, lengths)
        batch, steps = words.shape
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long, device=words.device)
        if self.crf is not None:
            return self.crf.decode(emissions, lengths)
        valid = valid_steps(lengths, batch, steps, words.device)
        return torch.where(valid, emissions.argmax(-1), 0)
