"""rnnkit: recurrent neural networks on PyTorch.

>>> import rnnkit as rk
>>> layer = rk.LSTM(8, 64, num_layers=2, bidirectional=True)
>>> out, (h, c) = layer(x, lengths=lengths)
"""

from .cells import ElmanCell, GRUCell, LSTMCell
from .layers import GRU, LSTM, RNN, Recurrent

__version__ = "0.1.0"

__all__ = ["GRU", "LSTM", "RNN", "ElmanCell", "GRUCell", "LSTMCell", "Recurrent", "__version__"]
