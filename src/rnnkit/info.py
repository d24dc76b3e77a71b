"""What this installation can do: versions, devices, backends, and how ``auto`` dispatches.

The dispatch table is computed by building each layer and asking it, never written by hand.
"""

import platform

import torch
from torch import nn

from . import backends
from ._version import __version__
from .layers import GRU, LSTM, RNN, Recurrent


class YourCell(nn.Module):
    """Stands for a user's own cell in the dispatch table."""

    input_size = hidden_size = 2

    def initial_state(self, batch, device=None, dtype=None):
        return torch.zeros(batch, 2, device=device, dtype=dtype)

    def step(self, x_t, h):
        return h, h


DISPATCH_EXAMPLES = [
    ("LSTM", lambda: LSTM(2, 2)),
    ("LSTM(proj_size=1)", lambda: LSTM(2, 2, proj_size=1)),
    (
        "LSTM(input_dropout, weight_dropout)",
        lambda: LSTM(2, 2, input_dropout=0.1, weight_dropout=0.1),
    ),
    ("LSTM(recurrent_dropout=0.1)", lambda: LSTM(2, 2, recurrent_dropout=0.1)),
    ("LSTM(zoneout=0.1)", lambda: LSTM(2, 2, zoneout=0.1)),
    ("LSTM(peephole=True)", lambda: LSTM(2, 2, peephole=True)),
    ("LSTM(layer_norm=True)", lambda: LSTM(2, 2, layer_norm=True)),
    ("GRU", lambda: GRU(2, 2)),
    ("GRU(reset_after=False)", lambda: GRU(2, 2, reset_after=False)),
    ("GRU(layer_norm=True)", lambda: GRU(2, 2, layer_norm=True)),
    ("RNN(activation='tanh' or 'relu')", lambda: RNN(2, 2, activation="relu")),
    ("RNN(output_size=1)", lambda: RNN(2, 2, output_size=1)),
    ("RNN(activation='sigmoid')", lambda: RNN(2, 2, activation="sigmoid")),
    ("RNN(activation='leaky_relu')", lambda: RNN(2, 2, activation="leaky_relu")),
    ("Recurrent(YourCell())", lambda: Recurrent(YourCell())),
]


def dispatch_table() -> list[dict]:
    """One row per example layer: the backend ``auto`` picks in training and in eval, and why."""
    rows = []
    for label, make in DISPATCH_EXAMPLES:
        layer = make()
        train = (layer.train().backend_in_use, layer.backend_reason)
        evaluation = (layer.eval().backend_in_use, layer.backend_reason)
        reasons = train[1] if train == evaluation else f"train: {train[1]}; eval: {evaluation[1]}"
        rows.append({"layer": label, "train": train[0], "eval": evaluation[0], "why": reasons})
    return rows


def environment() -> dict:
    cuda = torch.cuda.is_available()
    return {
        "rnnkit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu threads": torch.get_num_threads(),
        "oneDNN (CPU LSTM kernel)": torch.backends.mkldnn.is_available(),
        "CUDA": ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        if cuda
        else "not available",
        "cuDNN": torch.backends.cudnn.version()
        if cuda and torch.backends.cudnn.is_available()
        else "not available",
    }


def backend_status() -> list[tuple[str, str]]:
    """(backend, what it is and whether it can run here)."""
    return [
        ("reference", "available: " + backends.reference.WHY),
        (
            "vendor",
            "available: torch.lstm / torch.gru / torch.rnn_* with rnnkit's weights "
            f"(oneDNN LSTM on CPU: {'yes' if torch.backends.mkldnn.is_available() else 'no'}; "
            f"cuDNN: {'yes' if torch.cuda.is_available() else 'no GPU here'})",
        ),
        ("fused", fused_status()),
    ]


def fused_status() -> str:
    """Whether the fused kernels run here (building them if this is their first use)."""
    fused = backends.fused
    if fused.build.extension() is None:
        return f"not available here: {fused.build.failure()}; layers fall back to the others"
    return f"available on the CPU: {fused.WHY} (build {fused.build.build_name()})"


def markdown_table(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def report() -> str:
    """Everything ``rnnkit info`` prints."""
    lines = [f"{key}: {value}" for key, value in environment().items()]
    lines += ["", "backends:"]
    lines += [f"  {name:<10} {status}" for name, status in backend_status()]
    lines += ["", 'dispatch of backend="auto" on this machine:', markdown_table(dispatch_table())]
    return "\n".join(lines)
