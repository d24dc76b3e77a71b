"""Sequence classifiers (many-to-one) and the one-to-one baseline they are compared with.

``SequenceClassifier``: tokens (embedded) or raw features -> stacked (bi)RNN of any cell ->
pooling over time -> MLP head -> class logits. ``BagClassifier``: the same input and head with
no recurrence, so a run can show what reading the sequence in order adds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_integer
from ..registry import recurrent_layer

POOLINGS = ("last", "mean", "max", "attention")


def valid_steps(lengths: torch.Tensor | None, batch: int, steps: int, device) -> torch.Tensor:
    """(B, T) bool: True on each sequence's first ``lengths[b]`` steps."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    return torch.arange(steps, device=device) < lengths.to(device)[:, None]


class AttentionPooling(nn.Module):
    r"""Additive attention pooling over time (Bahdanau et al. 2015; Yang et al. 2016).

    .. math::
        e_t = v^\top \tanh(W h_t + b), \qquad
        \alpha_t = \frac{\exp e_t}{\sum_{s < L} \exp e_s} \ (t < L), \quad \alpha_t = 0 \ (t \ge L),
        \qquad c = \sum_t \alpha_t h_t

    where ``L`` is the sequence's length: the weights sum to 1 over the valid steps and are
    exactly 0 on padding.
    """

    def __init__(self, size: int, attention_size: int | None = None):
        super().__init__()
        attention_size = attention_size or size
        self.project = nn.Linear(size, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def forward(self, h: torch.Tensor, valid: torch.Tensor):
        """h (B, T, F), valid (B, T) -> (context (B, F), weights (B, T))."""
        energy = self.score(torch.tanh(self.project(h))).squeeze(-1)
        weights = torch.softmax(energy.masked_fill(~valid, float("-inf")), dim=1)
        return torch.einsum("bt,btf->bf", weights, h), weights


def pool(h: torch.Tensor, valid: torch.Tensor, how: str) -> torch.Tensor:
    """Mean or max of ``h`` (B, T, F) over each sequence's valid steps."""
    if how == "mean":
        mask = valid.unsqueeze(-1)
        return torch.where(mask, h, 0).sum(1) / valid.sum(1, keepdim=True).to(h.dtype)
    if how == "max":
        return h.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(1)
    raise ValueError(f"pooling={how!r} is not one of ('mean', 'max')")


class ConvFrontEnd(nn.Module):
    r"""Convolutions over time before the recurrence: local shapes first, order after.

    Each block is ``Conv1d`` (stride 1, "same" padding) -> batch norm -> ReLU, the block of
    the fully convolutional network (FCN) of Wang et al. (2017) and of LSTM-FCN (Karim et al.
    2018); then, with ``downsample`` k > 1, a max-pool of width and stride k:

    .. math::
        u^{(l)}_t = \operatorname{ReLU}\bigl(\operatorname{BN}(\textstyle\sum_{j}
            W^{(l)}_j u^{(l-1)}_{t + j - \lfloor K_l / 2 \rfloor} + b^{(l)})\bigr),
        \qquad y_t = \max_{0 \le j < k} u^{(L)}_{kt + j}

    Steps past a sequence's length are set to 0 before every convolution, so a sequence's
    output does not depend on how much padding its batch has; its length becomes
    ``ceil(length / k)``. A signal of hundreds of steps thus reaches the RNN as a few dozen
    steps of learned features: shorter to back-propagate through, and each step already
    describes a local shape (a peak, a slope) rather than one noisy value.

    Args:
        input_size: features per step in.
        channels: output channels of each block.
        kernels: width of each block's kernel (one per block).
        downsample: the pooling width and stride k after the last block (1: none).
    """

    def __init__(self, input_size: int, channels=(64, 64, 64), kernels=(7, 5, 3), downsample=1):
        super().__init__()
        channels, kernels = tuple(channels), tuple(kernels)
        if not channels or len(channels) != len(kernels):
            raise ValueError(
                f"conv_channels={channels} and conv_kernels={kernels} must be non-empty and "
                "give one entry per block"
            )
        check_integer("downsample", downsample, 1)
        blocks, size = [], input_size
        for width, kernel in zip(channels, kernels, strict=True):
            blocks.append(
                nn.ModuleList(
                    [nn.Conv1d(size, width, kernel, padding="same"), nn.BatchNorm1d(width)]
                )
            )
            size = width
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample
        self.output_size = size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None):
        """x (B, T, F), lengths (B,) or None -> (y (B, ceil(T / k), C), lengths or None)."""
        valid = valid_steps(lengths, *x.shape[:2], x.device).unsqueeze(1)
        u = x.transpose(1, 2)
        for conv, norm in self.blocks:
            u = torch.relu(norm(conv(u.masked_fill(~valid, 0.0))))
        if self.downsample > 1:
            # Padding is 0 and every output >= 0 (ReLU): the max of a window is unchanged.
            u = F.max_pool1d(u.masked_fill(~valid, 0.0), self.downsample, ceil_mode=True)
            if lengths is not None:
                lengths = torch.div(lengths + self.downsample - 1, self.downsample,
                                    rounding_mode="floor")  # fmt: skip
        return u.transpose(1, 2), lengths


NGRAM_ORDERS = "1, 2 or 3 (the longest n-gram), or 0"
"""What an n-gram bag's ``ngrams`` may be: the longest n-gram it counts, or 0 for no bag."""


class NgramBag(nn.Module):
    r"""A linear bag of hashed token n-grams whose class scores are added to a network's logits:
    the "wide" part of wide-and-deep models (Cheng et al. 2016), on the n-gram features of
    NB-SVM (Wang & Manning 2012) and fastText (Joulin et al. 2017).

    .. math::
        s(x) = \sum_{n=1}^{N} \sum_{t} m_t\, w_{h(x_t, \ldots, x_{t+n-1})}

    where ``h`` hashes each n-gram of token ids (orders 1 to ``N``, none touching padding,
    id 0) into one of ``buckets`` rows of ``w`` (buckets x classes), and ``m_t`` is 1, or in
    training a dropout mask over the occurrences. ``w`` starts at 0, so training starts from
    the network alone. The hash is fixed arithmetic on the ids: nothing to fit or save beside
    the weights.
    """

    PRIME = 1_000_003  # keys of orders <= 3 stay below 2**63 for vocabularies under 2**20

    def __init__(self, num_classes: int, orders: int = 2, buckets: int = 2**18, dropout=0.0):
        super().__init__()
        self.check(orders, buckets)
        self.orders, self.buckets = orders, buckets
        self.weight = nn.Parameter(torch.zeros(buckets, num_classes))
        self.dropout = nn.Dropout(dropout)

    @staticmethod
    def check(orders, buckets) -> None:
        """A ValueError that names the setting unless orders is 1-3 and buckets >= 1."""
        check_integer("ngrams", orders, 1, maximum=3, what=NGRAM_ORDERS)
        check_integer("ngram_buckets", buckets, 1, what="a positive integer")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> class scores (B, C)."""
        scores = self.weight.new_zeros(ids.shape[0], self.weight.shape[1])
        # Padding on the right gives every order a window even for T < n, without a branch
        # on T (so the time axis stays free in an exported graph); windows that reach into
        # it hold id 0 and count nothing.
        ids = torch.nn.functional.pad(ids, (0, self.orders - 1))
        for n in range(1, self.orders + 1):
            windows = ids.unfold(1, n, 1)  # (B, T + orders - n, n)
            key = torch.full_like(windows[..., 0], n)
            for k in range(n):
                key = key * self.PRIME + windows[..., k]
            present = (windows != 0).all(-1).to(self.weight.dtype)
            gathered = self.weight[key % self.buckets]  # (B, T - n + 1, C)
            scores = scores + (self.dropout(present).unsqueeze(-1) * gathered).sum(1)
        return scores


class _Head(nn.Module):
    """What classifier and baseline share: the input (embedding or features) and the MLP head."""

    def __init__(
        self,
        num_classes: int,
        vocab_size: int | None,
        input_size: int | None,
        embedding_dim: int,
        head_hidden: int,
        dropout: float,
        embedding_dropout: float,
    ):
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError(
                f"give vocab_size (token ids in) or input_size (features in), not both or "
                f"neither; got vocab_size={vocab_size!r}, input_size={input_size!r}"
            )
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes={num_classes!r} must be an integer >= 2")
        self.num_classes = num_classes
        self.embedding = None
        if vocab_size is not None:
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.features = embedding_dim if vocab_size is not None else input_size
        self.embedding_dropout = embedding_dropout
        self.dropout = nn.Dropout(dropout)
        self.head_hidden = head_hidden

    def build_head(self, pooled_size: int) -> None:
        if self.head_hidden:
            self.head = nn.Sequential(
                nn.Linear(pooled_size, self.head_hidden),
                nn.ReLU(),
                nn.Dropout(self.dropout.p),
                nn.Linear(self.head_hidden, self.num_classes),
            )
        else:
            self.head = nn.Linear(pooled_size, self.num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) -> (B, T, E) with whole-word dropout in training; features pass."""
        if self.embedding is None:
            if not x.is_floating_point() or x.dim() != 3:
                raise ValueError(
                    f"this classifier reads features (B, T, {self.features}); got "
                    f"{tuple(x.shape)} of dtype {x.dtype}"
                )
            return x
        if x.is_floating_point() or x.dim() != 2:
            raise ValueError(
                f"this classifier reads token ids (B, T) as integers; got {tuple(x.shape)} of "
                f"dtype {x.dtype}"
            )
        if self.training and self.embedding_dropout:
            # Drop whole word types (Gal & Ghahramani 2016): every occurrence in the batch.
            keep = torch.rand(self.embedding.num_embeddings, device=x.device)
            keep = (keep >= self.embedding_dropout).to(self.embedding.weight.dtype)
            weight = self.embedding.weight * (keep / (1 - self.embedding_dropout))[:, None]
            return F.embedding(x, weight, padding_idx=0)
        return self.embedding(x)


class SequenceClassifier(_Head):
    """Tokens or features -> stacked (bi)RNN -> pooling over time -> MLP -> class logits.

    Args:
        num_classes: classes to tell apart.
        vocab_size: read token ids (B, T) through an embedding of this many rows (id 0 is
            padding); or
        input_size: read features (B, T, input_size) as they are.
        embedding_dim: size of the embedding.
        cell: a cell name of ``rnnkit.registry.CELLS`` ("rnn", Elman: pass ``activation=``).
        hidden_size, num_layers, bidirectional: the recurrent stack (outputs concatenated).
        pooling: how the sequence becomes one vector: "last" (the final state of each
            direction: forward after the last valid step, backward after the first), "mean"
            or "max" over the valid steps, or "attention" (``AttentionPooling``; its weights
            come back from ``forward(..., return_attention=True)``).
        head_hidden: width of the MLP's hidden layer; 0 for a single linear layer.
        dropout: dropout before the head and inside it (and between stacked layers).
        embedding_dropout: drop whole word types from the embedding in training.
        conv_channels, conv_kernels, downsample: a ``ConvFrontEnd`` between the input and the
            RNN (one block per entry of ``conv_channels``; none when empty).
        ngrams, ngram_buckets: with token ids, an ``NgramBag`` of orders up to ``ngrams``
            hashed into ``ngram_buckets`` rows, added to the logits (0: none).
        rnn_options: more options of the layer (``recurrent_dropout``, ``layer_norm``,
            ``zoneout``, ``activation``, ``backend``, …).

    ``forward(x, lengths=None)`` -> logits (B, num_classes).

    Example::

        >>> model = SequenceClassifier(2, vocab_size=5000, cell="gru", pooling="attention")
        >>> logits, weights = model(ids, lengths=lengths, return_attention=True)
    """

    def __init__(
        self,
        num_classes: int,
        *,
        vocab_size: int | None = None,
        input_size: int | None = None,
        embedding_dim: int = 128,
        cell: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        pooling: str = "last",
        head_hidden: int = 0,
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        conv_channels: tuple = (),
        conv_kernels: tuple = (),
        downsample: int = 1,
        ngrams: int = 0,
        ngram_buckets: int = 2**18,
        rnn_options: dict | None = None,
    ):
        super().__init__(
            num_classes,
            vocab_size,
            input_size,
            embedding_dim,
            head_hidden,
            dropout,
            embedding_dropout,
        )
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is not one of {POOLINGS}")
        self.pooling = pooling
        self.front_end = None
        rnn_input = self.features
        if conv_channels:
            self.front_end = ConvFrontEnd(self.features, conv_channels, conv_kernels, downsample)
            rnn_input = self.front_end.output_size
        elif downsample != 1 or conv_kernels:
            raise ValueError(
                f"conv_kernels={conv_kernels!r} and downsample={downsample!r} shape the "
                "convolutional front-end: give conv_channels too"
            )
        self.rnn = recurrent_layer(
            cell,
            rnn_input,
            hidden_size,
            num_layers,
            bidirectional=bidirectional,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            # "last" needs only each direction's last output, which the layer picks and merges.
            return_sequences=pooling != "last",
            user=rnn_options,
        )
        size = self.rnn.output_size
        self.attention = AttentionPooling(size) if pooling == "attention" else None
        self.build_head(size)
        self.ngram_bag = None
        if ngrams:
            if vocab_size is None:
                raise ValueError(f"ngrams={ngrams!r} needs token ids in (vocab_size)")
            self.ngram_bag = NgramBag(num_classes, ngrams, ngram_buckets, dropout)

    def forward(self, x, lengths=None, return_attention: bool = False):
        """x: ids (B, T) or features (B, T, F) -> logits (B, C) [, attention (B, T)]."""
        if return_attention and self.attention is None:
            raise ValueError(
                f"return_attention=True needs pooling='attention'; this model pools by "
                f"{self.pooling!r}"
            )
        embedded = self.embed(x)
        if self.front_end is not None:
            embedded, lengths = self.front_end(embedded, lengths)
        outputs, _ = self.rnn(embedded, lengths=lengths)
        weights = None
        if self.pooling == "last":  # forward after the last valid step, backward after t = 0
            pooled = outputs
        elif self.pooling == "attention":
            valid = valid_steps(lengths, *outputs.shape[:2], outputs.device)
            pooled, weights = self.attention(outputs, valid)
        else:
            valid = valid_steps(lengths, *outputs.shape[:2], outputs.device)
            pooled = pool(outputs, valid, self.pooling)
        logits = self.head(self.dropout(pooled))
        if self.ngram_bag is not None:
            logits = logits + self.ngram_bag(x)
        return (logits, weights) if return_attention else logits

    def stream_reason(self) -> str | None:
        """Why this model cannot read a sequence in pieces, or None: it must pool by the last
        step, read forward only, and see each step alone before the recurrence."""
        if self.pooling != "last":
            return f"pooling={self.pooling!r} pools over the whole sequence (stream with 'last')"
        if self.rnn.num_directions == 2:
            return "a bidirectional model reads each sequence from its end"
        if self.front_end is not None or self.ngram_bag is not None:
            return "its convolutions or n-grams read steps across the pieces' boundaries"
        return None

    def stream_step(self, x, state=None):
        """One piece x (1, T[, F]) read after ``state`` -> (logits (1, C), state after it)."""
        outputs, state = self.rnn(self.embed(x), state=state)
        return self.head(self.dropout(outputs)), state


class BagClassifier(_Head):
    """The one-to-one baseline: the classifier's input and head with no recurrence.

    Fixed-length inputs (``steps`` given: an image read row by row) are flattened into one
    vector, the plain network of image classification. Variable-length ones (text, signals)
    become a bag: the mean and the max of the (embedded) steps over each sequence's valid
    steps, order ignored (fastText's idea). Either way an MLP head with a hidden layer of
    ``hidden_size`` reads the result, so the gap to ``SequenceClassifier`` is what reading the
    steps in order adds.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        vocab_size: int | None = None,
        input_size: int | None = None,
        embedding_dim: int = 128,
        hidden_size: int = 128,
        steps: int | None = None,
        head_hidden: int = 0,
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
    ):
        super().__init__(
            num_classes,
            vocab_size,
            input_size,
            embedding_dim,
            head_hidden or hidden_size,
            dropout,
            embedding_dropout,
        )
        self.steps = steps
        self.build_head(steps * self.features if steps is not None else 2 * self.features)

    def forward(self, x, lengths=None):
        """x: ids (B, T) or features (B, T, F) -> logits (B, C)."""
        embedded = self.embed(x)
        if self.steps is not None:
            if embedded.shape[1] != self.steps:
                raise ValueError(
                    f"this baseline reads sequences of exactly {self.steps} steps; got "
                    f"{embedded.shape[1]}"
                )
            return self.head(self.dropout(embedded.flatten(1)))
        valid = valid_steps(lengths, *embedded.shape[:2], embedded.device)
        pooled = torch.cat([pool(embedded, valid, "mean"), pool(embedded, valid, "max")], dim=-1)
        return self.head(self.dropout(pooled))
