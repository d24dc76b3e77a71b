"""What the fused cells share on the Python side: the input and state plumbing around a kernel.

The Elman and GRU modules compute the input projections of all steps with one GEMM (autograd
handles them and their weight gradients), the LSTM's kernels compute them from x; each module
hands its kernel the regularisers' masks and reads outputs and final states from the state
tensor the kernel returns (see csrc/common.h).
"""

import functools

import torch

from ..noise import Noise
from ..reference import valid_steps


def first_order_only(backward):
    """Decorates a fused Function's backward. The hand-derived gradients are not themselves
    differentiable, and ``once_differentiable`` does not catch every second derivative (a
    gradient penalty through a loss linear in the outputs comes back silently incomplete), so
    any backward under ``create_graph=True`` (the only time grad mode is on inside it) fails."""

    @functools.wraps(backward)
    def checked(ctx, *grads):
        if torch.is_grad_enabled():
            raise RuntimeError(
                "rnnkit's fused backend computes first derivatives only; for double backward "
                "(create_graph=True, gradient penalties) use backend='reference'"
            )
        return backward(ctx, *grads)

    return checked


def prepare_input(x: torch.Tensor, valid, noise: Noise) -> torch.Tensor:
    """x with padding zeroed (NaN there would reach the weight gradients through 0 · NaN) and
    the variational input mask applied."""
    if valid is not None:
        x = torch.where(valid[..., None], x, 0)
    if noise.input_mask is not None:
        x = x * noise.input_mask
    return x


def zoneout_args(noise: Noise, index: int) -> tuple[torch.Tensor | None, float]:
    """(0/1 keep mask (T, B, size) or None, keep rate) of state tensor ``index``."""
    if noise.zoneout_keep is None:
        return None, 0.0
    keep = noise.zoneout_keep[index]
    if isinstance(keep, float):
        return None, keep
    return keep.contiguous(), 0.0


def contiguous(tensor):
    return None if tensor is None else tensor.contiguous()


def split_states(S: torch.Tensor, reverse: bool):
    """-> (outputs (T, B, size): a view of the kernel's state tensor S, final state: a copy)."""
    if reverse:
        return S[:-1], S[0].clone()
    return S[1:], S[-1].clone()


def keep_states(record, reverse: bool, *S: torch.Tensor) -> None:
    """Hand a diagnostics record (``Noise.record``) the states after each step, by time:
    views of the kernel's state tensors."""
    if record is not None:
        record.keep_states([s[:-1] if reverse else s[1:] for s in S])


def state_grad_buffers(record, count: int) -> list:
    """Where a kernel's backward writes ∂loss/∂state_t when ``record`` wants them (else
    None each, and the kernel records nothing): one (T, B, size) tensor per state tensor."""
    if record is None:
        return [None] * count
    return [torch.empty_like(s) for s in record.states]


def zero_padding(outputs: torch.Tensor, valid) -> torch.Tensor:
    """Outputs past each sequence's length are exactly 0."""
    return outputs if valid is None else torch.where(valid[..., None], outputs, 0)


__all__ = [
    "contiguous",
    "first_order_only",
    "keep_states",
    "prepare_input",
    "split_states",
    "state_grad_buffers",
    "valid_steps",
    "zero_padding",
    "zoneout_args",
]
