"""What the built-in cells share: argument checks and initialisation.

Input weights: Glorot/Xavier uniform per gate block (fan-in = input size, fan-out = hidden size),
so the scale of each gate does not depend on how many gates the cell has.
Recurrent weights: orthogonal per gate block (Saxe et al. 2014): an orthogonal map preserves
the norm of h, so gradients neither vanish nor explode through the first steps of training.
Biases start at zero; the LSTM adds its forget-gate bias on top (Jozefowicz et al. 2015).
"""

from typing import NamedTuple

import torch
from torch import nn

from .._checks import check_integer


class Gate(NamedTuple):
    """A gate's (or squashing nonlinearity's) activations at one step, for diagnostics.

    ``kind`` names the function that produced ``values``: "sigmoid" and "tanh" saturate (the
    gradient through them vanishes near 0 and 1, or near ±1), others do not.
    """

    kind: str
    values: torch.Tensor


def check_sizes(**sizes) -> None:
    """Raise a ValueError naming the first size that is not a positive integer."""
    for name, value in sizes.items():
        check_integer(name, value, 1, what="a positive integer")


@torch.no_grad()
def xavier_blocks_(weight: torch.Tensor, blocks: int) -> None:
    """Glorot-uniform init of each of ``blocks`` equal row blocks of ``weight``."""
    for block in weight.chunk(blocks, dim=0):
        nn.init.xavier_uniform_(block)


@torch.no_grad()
def orthogonal_blocks_(weight: torch.Tensor, blocks: int) -> None:
    """Orthogonal (semi-orthogonal if not square) init of each row block of ``weight``."""
    for block in weight.chunk(blocks, dim=0):
        nn.init.orthogonal_(block)
