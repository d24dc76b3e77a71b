"""Per-element losses and their masked sum over the valid elements of a batch."""

import torch
import torch.nn.functional as F

from .batches import unpack

LOSSES = ("mse", "mae", "cross_entropy")


def _same_shape(name: str, pred: torch.Tensor, target: torch.Tensor) -> None:
    # Broadcasting (B, 1) against (B,) would silently compare every row with every other.
    if pred.shape != target.shape:
        raise ValueError(
            f"loss={name!r} needs the prediction and the target to have the same shape; got "
            f"prediction {tuple(pred.shape)} and target {tuple(target.shape)}"
        )


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    _same_shape("mse", pred, target)
    return (pred - target).square()


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    _same_shape("mae", pred, target)
    return (pred - target).abs()


def cross_entropy(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Logits (B, C) or (B, T, C) against class indices (B,) or (B, T); one loss per index."""
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(
            f"loss='cross_entropy' needs integer class indices as target, got dtype {target.dtype}"
        )
    if pred.dim() != target.dim() + 1 or pred.shape[:-1] != target.shape:
        raise ValueError(
            "loss='cross_entropy' needs logits (B, C) with target (B,), or (B, T, C) with "
            f"(B, T); got prediction {tuple(pred.shape)} and target {tuple(target.shape)}"
        )
    classes = pred.shape[-1]
    flat = F.cross_entropy(pred.reshape(-1, classes), target.reshape(-1), reduction="none")
    return flat.view(target.shape)


def resolve(loss):
    """The per-element loss function that ``loss`` (a name or a callable) stands for."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not known; expected one of {LOSSES} or a callable")
    return {"mse": mse, "mae": mae, "cross_entropy": cross_entropy}[loss]


def valid_elements(row_weight, target, lengths, steps: int, start: int = 0):
    """Which (row, step) pairs count: real rows, and steps before each row's length.

    Returns a bool tensor (B,), or (B, T) when lengths are given and the target has a time
    axis of the inputs' ``steps`` (batch first) that padding must leave out of the mean.
    ``start`` is the first step of a truncated-BPTT chunk within the whole sequence.
    """
    rows = row_weight > 0
    if lengths is None or target.dim() < 2 or target.shape[1] != steps:
        return rows
    positions = torch.arange(start, start + steps, device=target.device)
    return rows[:, None] & (positions < lengths.to(target.device)[:, None])


def masked_loss(loss, prediction, target, valid) -> tuple:
    """(sum of the per-element loss over the valid elements, their count as a float tensor).

    ``valid`` (from ``valid_elements``) covers the leading dimensions of the target and
    spreads over the rest. Padded target elements are set to 0 before the loss and left out
    of the sum with ``where``: NaN padding would otherwise reach the gradient as 0 * NaN.
    """
    spread = valid.view(*valid.shape, *[1] * (target.dim() - valid.dim()))
    elementwise = loss(prediction, target.masked_fill(~spread, 0))
    if elementwise.shape[: valid.dim()] != valid.shape:
        raise ValueError(
            f"the per-element loss has shape {tuple(elementwise.shape)}, but the batch has "
            f"{tuple(valid.shape)} (rows{', steps' if valid.dim() > 1 else ''}); a loss "
            "callable must return one loss per target element (reduction='none')"
        )
    spread = valid.view(*valid.shape, *[1] * (elementwise.dim() - valid.dim()))
    spread = spread.expand_as(elementwise)
    return torch.where(spread, elementwise, 0).sum(), spread.sum().to(torch.float64)


# The Trainer's call convention, shared with rnnkit.diagnostics.


def prediction_of(output):
    """The prediction in a model's output; a layer's ``(output, state)`` gives its output."""
    return output[0] if isinstance(output, tuple) else output


def time_steps(parts) -> int:
    """T of batch-first inputs (B, T, …); 0 when the first input has no time axis."""
    first = parts.inputs[0]
    return first.shape[1] if first.dim() >= 2 else 0


def lengths_argument(lengths) -> dict:
    return {} if lengths is None else {"lengths": lengths}


def batch_loss(model: torch.nn.Module, data, loss="mse", compute_loss=None) -> torch.Tensor:
    """The mean loss of one collated batch, called as ``Trainer`` calls the model: through
    ``compute_loss(model, data)`` if given, else ``model(*inputs, lengths=lengths)`` scored by
    ``loss`` (a name or a per-element callable) over the valid elements."""
    if compute_loss is not None:
        result = compute_loss(model, data)
        return result[0] / result[1] if isinstance(result, tuple) else result
    parts = unpack(data)
    prediction = prediction_of(model(*parts.inputs, **lengths_argument(parts.lengths)))
    rows = torch.ones(parts.target.shape[0], device=parts.target.device)
    valid = valid_elements(rows, parts.target, parts.lengths, time_steps(parts))
    loss_sum, count = masked_loss(resolve(loss), prediction, parts.target, valid)
    return loss_sum / count
