"""Models, data and settings shared by test_training.py and the scripts it runs as subprocesses."""

import torch
from torch import nn
from torch.utils.data import TensorDataset

import rnnkit as rk


class Tagger(nn.Module):
    """An LSTM with a linear head, one output per step; returns (prediction, state)."""

    def __init__(self, inputs=3, hidden=6, outputs=2, dropout=0.0):
        super().__init__()
        self.rnn = rk.LSTM(inputs, hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x, state=None, lengths=None):
        out, state = self.rnn(x, state=state, lengths=lengths)
        return self.head(self.dropout(out)), state


def tagger(seed=0, dtype=torch.float64, **options) -> Tagger:
    torch.manual_seed(seed)
    return Tagger(**options).to(dtype)


def sequences(n=13, steps=7, seed=1, dtype=torch.float64, lengths=True) -> TensorDataset:
    """Random sequences (n, steps, 3) with targets (n, steps, 2) and, if asked, lengths."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, steps, 3, generator=generator, dtype=dtype)
    y = torch.randn(n, steps, 2, generator=generator, dtype=dtype)
    if not lengths:
        return TensorDataset(x, y)
    return TensorDataset(x, y, torch.randint(1, steps + 1, (n,), generator=generator))


def mean_abs_output(model) -> float:
    """A val metric: the mean absolute prediction on a fixed batch."""
    x = torch.linspace(-1, 1, 2 * 5 * 3, dtype=torch.float64).view(2, 5, 3)
    return model(x)[0].abs().mean().item()


def mean_squared_error(model, batch) -> torch.Tensor:
    """A compute_loss: the mean over every step, padding included (lengths are ignored)."""
    x, y, _ = batch
    return (model(x)[0] - y).square().mean()


# Runs the distributed test repeats in one process: full BPTT with shuffling, clipping, a
# cosine schedule and a val metric; truncated BPTT with SGD; a compute_loss. 13 training rows
# in batches of 4 end with a batch of 1 (the second process runs a stand-in row); 7 val rows
# end with a batch of 3 (split 2 and 1).
DDP_RUNS = {
    "full": {
        "epochs": 3,
        "batch_size": 4,
        "clip_norm": 0.5,
        "schedule": "cosine",
        "lr": 0.01,
        "val_metrics": {"val_mean_abs": mean_abs_output},
    },
    "tbptt": {"epochs": 2, "batch_size": 4, "tbptt": 3, "optimizer": "sgd", "lr": 0.05},
    "compute_loss": {"epochs": 2, "batch_size": 4, "compute_loss": mean_squared_error},
}


def ddp_data():
    return sequences(13), sequences(7, seed=2)


# A run whose every part has state to restore: dropout (torch's generator), shuffling, Adam's
# moments, a cosine schedule, early-stopping bookkeeping and best weights.
RESUMABLE = {
    "epochs": 4,
    "batch_size": 4,
    "schedule": "cosine",
    "early_stopping": 10,
    "lr": 0.01,
    "progress": "none",
}


def resumable_data():
    return sequences(10), sequences(5, seed=2)
