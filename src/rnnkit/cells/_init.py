"""Initialisation shared by the built-in cells.

Input weights: Glorot/Xavier uniform per gate block (fan-in = input size, fan-out = hidden size),
so every gate starts with unit-variance pre-activations whatever the number of gates.
Recurrent weights: orthogonal per gate block (Saxe et al. 2014): an orthogonal map preserves
the norm of h, so gradients neither vanish nor explode through the first steps of training.
Biases start at zero; the LSTM adds its forget-gate bias on top (Jozefowicz et al. 2015).
"""

import torch
from torch import nn


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
