"""Batches: the order of an epoch, each process's share of a batch, fetching and unpacking.

The order of an epoch is a permutation drawn from a generator seeded with (seed, epoch), cut
into global batches of ``batch_size`` indices; the last one holds the remainder. Under
distributed training each global batch is cut into ``world_size`` contiguous slices, one per
process. ``batch_size`` is a multiple of ``world_size``, so the slices of a full batch are
equal; those of the last batch differ by at most one row, and a process whose slice is empty
(the last batch has fewer rows than there are processes) runs a stand-in row of weight 0, so
that every process takes part in the gradient all-reduce. The loss weights every row by the
global count (see ``Trainer``), so the gradient equals the one-process gradient of the global
batch in every case.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch.utils.data import Subset, TensorDataset, default_collate

from ..data.batching import epoch_generator


def epoch_batches(dataset, batch_size: int, seed: int, epoch: int, shuffle: bool) -> list:
    """The global batches of one epoch: index tensors, all of ``batch_size`` but the last.

    A dataset with its own ``epoch_batches`` (same arguments but the dataset) draws them
    itself: ``rnnkit.data.SequenceDataset`` batches sequences of similar length together.
    """
    if _orders_itself(dataset):
        return dataset.epoch_batches(batch_size, seed, epoch, shuffle)
    size = len(dataset)
    if shuffle:
        order = torch.randperm(size, generator=epoch_generator(seed, epoch))
    else:
        order = torch.arange(size)
    return list(order.split(batch_size))


@dataclass
class Batch:
    """One process's share of a global batch, on the training device.

    ``data`` is the batch as the dataset's items collate: what ``compute_loss`` receives.
    ``rows`` counts its real rows (0 for a stand-in) and ``row_weight`` is 1 on real rows and
    0 on a stand-in row.
    """

    data: Any
    rows: int
    row_weight: torch.Tensor


def fetch_share(dataset, indices: torch.Tensor, rank: int, world: int, device) -> Batch:
    """This process's contiguous slice of the global batch ``indices``, fetched and moved."""
    mine = torch.tensor_split(indices, world)[rank]
    rows = len(mine)
    if rows == 0:
        mine = indices[:1]  # a stand-in row of weight 0: see the module docstring
    data = to_device(fetch(dataset, mine), device)
    weight = torch.full((len(mine),), float(rows > 0), device=device)
    return Batch(data, rows, weight)


def fetch(dataset, indices: torch.Tensor):
    """The items at ``indices``, collated.

    A ``TensorDataset`` (or a ``Subset`` of one) is indexed directly with the whole index
    tensor: one gather per tensor instead of a Python call and a collate per item.
    """
    while isinstance(dataset, Subset):
        indices = torch.tensor([dataset.indices[i] for i in indices.tolist()], dtype=torch.long)
        dataset = dataset.dataset
    if isinstance(dataset, TensorDataset):
        return tuple(t[indices.to(t.device)] for t in dataset.tensors)
    if _orders_itself(dataset):  # and collates its own batches (padding, e.g. SequenceDataset)
        return dataset.batch(indices)
    positions = indices.tolist()
    if hasattr(dataset, "__getitems__"):
        return default_collate(dataset.__getitems__(positions))
    return default_collate([dataset[i] for i in positions])


def _orders_itself(dataset) -> bool:
    """Whether ``dataset`` draws and collates its own batches: both methods, as
    ``rnnkit.data.SequenceDataset`` has them (a lone ``batch`` may mean something else)."""
    return callable(getattr(dataset, "epoch_batches", None)) and callable(
        getattr(dataset, "batch", None)
    )


def to_device(data, device):
    """``data`` with every tensor in it (through tuples, lists and dicts) on ``device``."""
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=True)
    if isinstance(data, Mapping):
        return {key: to_device(value, device) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(to_device(value, device) for value in data)
    return data


class Parts(NamedTuple):
    """A batch in the default call convention: ``(inputs, target[, lengths[, reset]])``."""

    inputs: tuple
    target: torch.Tensor
    lengths: torch.Tensor | None
    reset: torch.Tensor | None


def unpack(data) -> Parts:
    """Split a collated batch into its parts, or say what shape the batch should have."""
    expected = (
        "an item must be (inputs, target), (inputs, target, lengths) or "
        "(inputs, target, lengths, reset), inputs a tensor or a tuple of tensors; for any "
        "other layout pass compute_loss=callable(model, batch) -> loss"
    )
    if not isinstance(data, list | tuple) or not 2 <= len(data) <= 4:
        raise ValueError(f"{expected}; got {_describe(data)}")
    inputs, target, *rest = data
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else inputs
    parts = [*inputs, target, *rest]
    if not isinstance(inputs, list | tuple) or not all(isinstance(p, torch.Tensor) for p in parts):
        raise ValueError(f"{expected}; got {_describe(data)}")
    lengths = rest[0] if rest else None
    reset = rest[1] if len(rest) > 1 else None
    if reset is not None and reset.dtype != torch.bool:
        raise TypeError(f"reset (the 4th part of a batch) must be bool, got dtype {reset.dtype}")
    return Parts(tuple(inputs), target, lengths, reset)


def _describe(data) -> str:
    if isinstance(data, torch.Tensor):
        return f"a tensor of shape {tuple(data.shape)}"
    if isinstance(data, list | tuple):
        return f"a {type(data).__name__} of {len(data)}: ({', '.join(map(_describe, data))})"
    return type(data).__name__
