"""Variable-length sequences in batches of similar length, padded, with their lengths.

A batch holds sequences of about the same length, so little compute goes to padding; the
padding itself is masked by the layers' ``lengths`` (see ``rnnkit.Recurrent``), never packed
by hand. ``SequenceDataset`` plugs into the ``Trainer``: it draws each epoch's batches itself
(``epoch_batches``) and collates them itself (``batch``).

Bucketing follows the usual recipe (torchtext's ``BucketIterator``, fairseq): shuffle, cut the
order into pools of ``pool`` batches, sort each pool by length, cut it into batches and
shuffle the batches. Every epoch mixes different sequences into a batch, and a batch's
sequences differ in length only within a pool's sorted run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_integer


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator for the batch order of one epoch, independent of the global generators.

    Seeded from (seed, epoch) through NumPy's ``SeedSequence``, so the order of an epoch is
    the same in a resumed run, in every process of a distributed run, and whatever the model
    drew from the global generators before it. ``SequenceDataset`` and the ``Trainer``'s own
    batches (``rnnkit.training.batches``) both draw their order from it.
    """
    state = np.random.SeedSequence((seed, epoch)).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def pad(tensors: Sequence[torch.Tensor], value=0) -> torch.Tensor:
    """Stack tensors of equal rank, padding every dimension to the largest size with ``value``.

    ``[(3, 2), (5, 1)]`` -> ``(2, 5, 2)``; the original values sit at the front of each axis.
    """
    if not tensors:
        raise ValueError("pad() needs at least one tensor")
    ranks = {t.dim() for t in tensors}
    if len(ranks) != 1:
        raise ValueError(f"pad() needs tensors of one rank; got ranks {sorted(ranks)}")
    shape = [max(sizes) for sizes in zip(*(t.shape for t in tensors), strict=True)]
    out = tensors[0].new_full((len(tensors), *shape), value)
    for row, tensor in enumerate(tensors):
        out[(row, *(slice(0, size) for size in tensor.shape))] = tensor
    return out


class SequenceDataset(Dataset):
    """Sequences of different lengths, with a target each, batched by length.

    Args:
        inputs: one list of tensors, one per sequence, time first (``(T_i,)`` token ids or
            ``(T_i, features)``); or a tuple of such lists (several fields of one sequence,
            e.g. word ids and the characters of each word ``(T_i, W)``), all with the same
            ``T_i`` per sequence. A batch pads every field to its largest size.
        target: one per sequence: a tensor ``(N, …)`` (a class each), a list of tensors
            ``(T_i, …)`` (a tag per step), or None (for prediction).
        pad_value: what fills the inputs' padding (0: ``<pad>`` in a vocabulary). Steps past a
            sequence's length are masked by ``lengths`` anyway.
        target_pad: what fills a per-step target's padding (the loss masks it out).
        pool: batches per sorting pool when shuffling (see the module docstring).

    A batch is ``(inputs, target, lengths)``, inputs a tensor or a tuple of tensors batch
    first, so that ``Trainer`` calls ``model(*inputs, lengths=lengths)``.
    """

    def __init__(self, inputs, target=None, *, pad_value=0, target_pad=0, pool: int = 50):
        fields = tuple(inputs) if isinstance(inputs, tuple) else (inputs,)
        if not fields or not all(isinstance(f, Sequence) and len(f) for f in fields):
            raise ValueError("inputs must be a non-empty list of tensors (or a tuple of such)")
        count = len(fields[0])
        for number, field in enumerate(fields):
            if len(field) != count:
                raise ValueError(
                    f"inputs field {number} has {len(field)} sequences, field 0 has {count}"
                )
            for i, tensor in enumerate(field):
                if not isinstance(tensor, torch.Tensor) or tensor.dim() == 0:
                    raise TypeError(f"inputs field {number}, sequence {i} is not a sequence tensor")
        lengths = [len(t) for t in fields[0]]
        for number, field in enumerate(fields):
            for i, tensor in enumerate(field):
                if len(tensor) != lengths[i]:
                    raise ValueError(
                        f"sequence {i} has {lengths[i]} steps in inputs field 0 but "
                        f"{len(tensor)} in field {number}"
                    )
        if 0 in lengths:
            raise ValueError(f"sequence {lengths.index(0)} is empty; every sequence needs a step")
        scalars = isinstance(target, Sequence) and all(
            not isinstance(t, torch.Tensor) or t.dim() == 0 for t in target
        )
        if target is not None and scalars:
            target = torch.as_tensor([int(t) for t in target])  # one class index per sequence
        if target is not None and len(target) != count:
            raise ValueError(f"target has {len(target)} entries for {count} sequences")
        if isinstance(target, Sequence) and not isinstance(target, torch.Tensor):
            for i, (tags, length) in enumerate(zip(target, lengths, strict=True)):
                if len(tags) != length:
                    raise ValueError(
                        f"sequence {i} has {length} steps but {len(tags)} targets; a per-step "
                        "target needs one per step"
                    )
        check_integer("pool", pool, 1)
        self.fields = fields
        self.target = target
        self.lengths = torch.tensor(lengths, dtype=torch.long)
        self.pad_value = pad_value
        self.target_pad = target_pad
        self.pool = pool

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int):
        return self.batch(torch.tensor([i]))

    def batch(self, indices: torch.Tensor):
        """The sequences at ``indices``, padded: ``(inputs, target, lengths)``."""
        rows = indices.tolist()
        inputs = tuple(pad([field[i] for i in rows], self.pad_value) for field in self.fields)
        target = self.target
        if target is None:
            pass
        elif isinstance(target, torch.Tensor):
            target = target[indices]
        else:
            target = pad([target[i] for i in rows], self.target_pad)
        return (inputs if len(inputs) > 1 else inputs[0]), target, self.lengths[indices]

    def epoch_batches(self, batch_size: int, seed: int, epoch: int, shuffle: bool) -> list:
        """The batches of one epoch as index tensors: ``len(self) // batch_size`` full ones
        and the remainder, as ``Trainer`` expects.

        Shuffled: bucketed as the module docstring says, a new draw for each (seed, epoch).
        In order (evaluation): sorted by length, longest first, so padding is minimal.
        """
        if not shuffle:
            order = torch.sort(self.lengths, descending=True, stable=True).indices
            return list(order.split(batch_size))
        generator = epoch_generator(seed, epoch)
        order = torch.randperm(len(self), generator=generator)
        batches = []
        for chunk in order.split(batch_size * self.pool):
            by_length = chunk[torch.sort(self.lengths[chunk], stable=True).indices]
            batches += list(by_length.split(batch_size))
        # The one short batch (the very last) stays last, so every other batch is full.
        full, rest = batches[:-1], batches[-1:]
        if len(rest[0]) == batch_size:
            full, rest = batches, []
        shuffled = torch.randperm(len(full), generator=generator).tolist()
        return [full[i] for i in shuffled] + rest


class TokenStream(Dataset):
    """One long text as ``rows`` parallel streams, read ``steps`` tokens at a time: the data
    of a language model trained by stateful truncated BPTT.

    The ids are cut into ``rows`` contiguous streams of ``segments * steps`` tokens each
    (the fewer than ``rows * steps`` ids left over at the end of the text are not read).
    Batch ``k`` holds segment ``k`` of every stream, so row ``r`` of one batch continues row
    ``r`` of the previous one and the ``Trainer`` (``stateful=True``, ``shuffle=False``,
    ``batch_size=rows``, ``tbptt=steps``) carries its state across. Item ``k * rows + r``
    is ``(tokens, next_tokens, lengths, reset)``: segment ``k`` of stream ``r``, the same
    shifted by one, its length ``steps``, and whether it is the stream's first segment,
    where the carried state is reset.

    ``segments_per_epoch`` makes an "epoch" of the ``Trainer`` that many batches (Keras's
    ``steps_per_epoch``): epochs continue through the text where the last one ended and wrap
    around at its end (the state is reset there), so a long text is validated and
    checkpointed every so often rather than once per pass. The ``Trainer`` also starts every
    epoch from a fresh state, once per ``segments_per_epoch`` segments. None: an epoch is
    one pass.
    """

    def __init__(self, ids: torch.Tensor, rows: int, steps: int, segments_per_epoch=None):
        if not isinstance(ids, torch.Tensor) or ids.dim() != 1:
            raise ValueError("ids must be a 1-d tensor of token ids")
        check_integer("rows", rows, 1)
        check_integer("steps", steps, 1)
        check_integer("segments_per_epoch", segments_per_epoch, 1, optional=True)
        self.rows, self.steps = rows, steps
        self.segments = (len(ids) - 1) // (rows * steps)
        if self.segments == 0:
            raise ValueError(
                f"{len(ids)} tokens make fewer than one segment of {steps} steps in each of "
                f"{rows} streams: use a smaller batch size or segment, or more text"
            )
        used = self.segments * steps
        # (rows, used + 1): the streams, each with the token that follows its last one.
        starts = torch.arange(rows) * used
        self.streams = ids[starts[:, None] + torch.arange(used + 1)]
        self.segments_per_epoch = min(segments_per_epoch or self.segments, self.segments)

    def __len__(self) -> int:
        return self.segments_per_epoch * self.rows

    def __getitem__(self, i: int):
        return tuple(part[0] for part in self.batch(torch.tensor([i])))

    def batch(self, indices: torch.Tensor):
        """Items ``indices`` (taken modulo the text, see the class docstring)."""
        segment = (indices // self.rows) % self.segments
        start = (segment * self.steps)[:, None] + torch.arange(self.steps)
        rows = self.streams[indices % self.rows]
        lengths = torch.full((len(indices),), self.steps)
        return rows.gather(1, start), rows.gather(1, start + 1), lengths, segment == 0

    def epoch_batches(self, batch_size: int, seed: int, epoch: int, shuffle: bool) -> list:
        """Epoch ``epoch``'s batches (from 1; 0 is read as 1): each is one segment of every
        stream, in order. ``shuffle`` must be False: order is what the streams are for."""
        if shuffle or batch_size != self.rows:
            raise ValueError(
                f"a TokenStream of {self.rows} rows is read in order, one segment of every "
                f"row per batch: use shuffle=False and batch_size={self.rows}, got "
                f"shuffle={shuffle} and batch_size={batch_size}"
            )
        first = (max(epoch, 1) - 1) * self.segments_per_epoch
        segments = torch.arange(first, first + self.segments_per_epoch)
        return list((segments[:, None] * self.rows + torch.arange(self.rows)).unbind(0))
