"""Count-based n-gram language models: the baselines a recurrent language model must beat."""

from __future__ import annotations

import numpy as np

from .._checks import check_integer


class NGramModel:
    r"""An n-gram model with interpolated absolute discounting (Ney et al. 1994).

    .. math::

        p_1(w) = \frac{c(w) + 1}{N + V}, \qquad
        p_k(w \mid h) = \frac{\max(c(h w) - D, 0)}{c(h)}
                      + \frac{D \, n(h)}{c(h)} \, p_{k-1}(w \mid h')

    ``h`` is the last ``k - 1`` tokens, ``h'`` the last ``k - 2``, ``n(h)`` the number of
    distinct tokens seen after ``h``; a history never seen falls back to ``p_{k-1}``. Order
    1 is the add-one unigram model, whose cross-entropy is the "unigram entropy" a model that
    learnt anything about order must go below.

    Counting is vectorised: each k-gram is one base-V integer, counted with ``np.unique``
    and looked up with ``np.searchsorted``, so a 5-gram model of 5 M characters takes
    seconds.

    Args:
        order: n, the longest k-gram used (1 = unigram).
        vocab_size: V, ids are 0..V-1.
        discount: D in (0, 1).
    """

    def __init__(self, order: int, vocab_size: int, discount: float = 0.75):
        check_integer("order", order, 1)
        if vocab_size**order >= 2**62:
            raise ValueError(
                f"order={order} with vocab_size={vocab_size} does not fit the 64-bit keys "
                "of the counts; use a lower order"
            )
        if not 0 < discount < 1:
            raise ValueError(f"discount={discount!r} must be in (0, 1)")
        self.order, self.vocab_size, self.discount = order, vocab_size, discount

    def _keys(self, ids: np.ndarray, k: int) -> np.ndarray:
        """Every k-gram of ``ids`` as one integer; entry i ends at position i + k - 1."""
        keys = np.zeros(len(ids) - k + 1, dtype=np.int64)
        for j in range(k):
            keys = keys * self.vocab_size + ids[j : len(ids) - k + 1 + j]
        return keys

    def fit(self, ids) -> NGramModel:
        """Count the k-grams of the token ids ``ids`` (a 1-d sequence), k = 1..order."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or len(ids) < self.order:
            raise ValueError(f"ids must be a 1-d sequence of at least order={self.order} tokens")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"ids must lie in 0..{self.vocab_size - 1}")
        self.unigram_ = np.bincount(ids, minlength=self.vocab_size).astype(np.float64)
        self.tables_ = []  # per k >= 2: (k-gram keys, counts, history keys, totals, types)
        for k in range(2, self.order + 1):
            grams, counts = np.unique(self._keys(ids, k), return_counts=True)
            histories, first = np.unique(grams // self.vocab_size, return_index=True)
            totals = np.add.reduceat(counts, first)
            types = np.diff(np.append(first, len(grams)))
            self.tables_.append((grams, counts, histories, totals, types))
        return self

    @staticmethod
    def _lookup(table: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``values`` of ``keys`` in the sorted ``table``; 0 where a key is absent."""
        at = np.minimum(np.searchsorted(table, keys), len(table) - 1)
        return np.where(table[at] == keys, values[at], 0)

    def log_probs(self, ids) -> np.ndarray:
        """Natural log of p(ids[t] | ids[:t]) for t = 1..len-1 (the first token has no
        history, as with a recurrent model reading the same text)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or len(ids) < 2 or ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(
                f"ids must be a 1-d sequence of at least 2 tokens in 0..{self.vocab_size - 1}"
            )
        targets = ids[1:]
        V = self.vocab_size
        prob = (self.unigram_[targets] + 1) / (self.unigram_.sum() + V)
        for k, (grams, counts, histories, totals, types) in enumerate(self.tables_, start=2):
            # Position t (target ids[t], t >= 1) has a k-gram only when t >= k - 1.
            ends = np.arange(1, len(ids))
            has = ends >= k - 1
            keys = np.zeros(len(targets), dtype=np.int64)
            if has.any():  # a text shorter than k has no k-gram
                keys[has] = self._keys(ids, k)[ends[has] - (k - 1)]
            total = self._lookup(histories, keys // V, totals).astype(np.float64)
            seen = has & (total > 0)
            count = self._lookup(grams, keys, counts)
            kinds = self._lookup(histories, keys // V, types)
            safe = np.where(seen, total, 1.0)
            mixed = (np.maximum(count - self.discount, 0) + self.discount * kinds * prob) / safe
            prob = np.where(seen, mixed, prob)
        return np.log(prob)

    def next_log_probs(self, history) -> np.ndarray:
        """Natural log of p(w | history) for every token w, (V,): what ``log_probs`` gives
        the last token of ``[*history, w]``, for all w at once (a beam search's step)."""
        history = np.asarray(history, dtype=np.int64)
        if history.ndim != 1 or len(history) < 1:
            raise ValueError("history must be a 1-d sequence of at least 1 token")
        if history.min() < 0 or history.max() >= self.vocab_size:
            raise ValueError(f"history must lie in 0..{self.vocab_size - 1}")
        V = self.vocab_size
        prob = (self.unigram_ + 1) / (self.unigram_.sum() + V)
        for k, (grams, counts, histories, totals, types) in enumerate(self.tables_, start=2):
            if len(history) < k - 1:
                break
            key = np.zeros(1, dtype=np.int64)
            for token in history[len(history) - (k - 1) :]:
                key = key * V + token
            total = float(self._lookup(histories, key, totals)[0])
            if total == 0:
                continue
            count = self._lookup(grams, key * V + np.arange(V), counts)
            kinds = float(self._lookup(histories, key, types)[0])
            prob = (np.maximum(count - self.discount, 0) + self.discount * kinds * prob) / total
        return np.log(prob)

    def cross_entropy(self, ids) -> float:
        """Mean negative log-likelihood in nats per predicted token of ``ids``."""
        return float(-self.log_probs(ids).mean())
