"""rnnkit: recurrent neural networks on PyTorch.

>>> import rnnkit as rk
>>> layer = rk.LSTM(8, 64, num_layers=2, bidirectional=True)
>>> out, (h, c) = layer(x, lengths=lengths)
"""

from ._version import __version__
from .cells import ElmanCell, GRUCell, LSTMCell
from .layers import GRU, LSTM, RNN, Recurrent

__all__ = ["GRU", "LSTM", "RNN", "ElmanCell", "GRUCell", "LSTMCell", "Recurrent", "__version__"]
