"""The equations: one module per cell family. A cell steps once; it never loops over time."""

from .elman import ElmanCell
from .gru import GRUCell
from .lstm import LSTMCell

__all__ = ["ElmanCell", "GRUCell", "LSTMCell"]
