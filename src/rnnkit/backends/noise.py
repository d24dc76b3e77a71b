"""The randomness of one forward call, drawn by the layer and handed to whichever backend runs.

Drawing it outside the backends is what lets two backends be compared exactly: both receive
the same masks.
"""

from dataclasses import dataclass, field

import torch


@dataclass
class Noise:
    """Regularisers for one layer and direction over one forward call.

    input_mask: (B, I), multiplies every x_t (variational input dropout).
    recurrent_mask: (B, R), multiplies h_{t-1} where it meets the recurrent weights.
    zoneout_keep: one entry per state tensor: a (T, B, size) 0/1 tensor in training (1 keeps
        the previous value), or the rate itself at evaluation, where the expectation
        ``rate * old + (1 - rate) * new`` is used (Krueger et al. 2017).
    weights: parameter name → the tensor to use instead (DropConnect of recurrent weights).
    record: where the backend keeps the states and their gradients for diagnostics
        (``recording.Direction``), or None.
    """

    input_mask: torch.Tensor | None = None
    recurrent_mask: torch.Tensor | None = None
    zoneout_keep: tuple[torch.Tensor | float, ...] | None = None
    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    record: object = None


def keep_mask(shape, keep: float, like: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """A tensor of ``shape`` (``like``'s dtype and device) holding ``scale`` with probability
    ``keep`` and 0 otherwise: the masks of every regulariser, whatever backend runs the layer.

    On the CPU the fused extension draws it (Philox4x32-10, csrc/random.cpp; a 60 x 32 x 50
    mask in 150 µs on one thread and 80 on two, where ``bernoulli_`` takes 710 on either,
    measured), from a seed drawn from torch's generator, so ``torch.manual_seed``
    fixes it all the same; elsewhere (a GPU, half precision, no compiler) torch's
    ``bernoulli_`` draws it.
    """
    from .fused import build

    if like.device.type == "cpu" and like.dtype in (torch.float32, torch.float64):
        extension = build.extension()
        if extension is not None:
            seed = int(torch.randint(0, 2**62, ()))
            return extension.keep_mask(list(shape), float(keep), float(scale), seed, like.dtype)
    mask = torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(keep)
    return mask if scale == 1 else mask * scale


def dropout_mask(shape, p: float, like: torch.Tensor) -> torch.Tensor:
    """Inverted-dropout mask: 0 with probability p, else 1/(1-p) (all 0 when p = 1)."""
    return keep_mask(shape, 1 - p, like, 1 / (1 - p) if p < 1 else 0.0)


def zone(keep, old, new):
    """Zoneout of one state tensor: keep the previous value where ``keep`` says so.

    Written as a blend, not ``new + keep * (old - new)``, so that a 0/1 mask keeps exactly.
    """
    return keep * old + (1 - keep) * new
