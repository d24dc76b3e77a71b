"""Epoch time of the tutorials' stock-price model: rnnkit against plain PyTorch and Keras 3.

The model every LSTM stock tutorial trains: four LSTM(50) layers, each followed by
Dropout(0.2), then Dense(1); 60-day windows of GOOG's min-max-scaled close (the bundled data,
the days before 2012 as in ``rnnkit demo``), batch 32, shuffled, Adam(1e-3), MSE. Contestants,
each in its own process, one epoch = one pass over all windows:

- ``rnnkit``: ``rk.LSTM(1, 50, num_layers=4, dropout=0.2)`` (backend ``auto``) in a plain
  training loop, what a user writes;
- ``rnnkit-trainer``: ``Forecaster.from_preset("tutorial")`` fitted through rnnkit's Trainer
  (its epoch times from the training history: the same windows, with the Trainer's batching,
  clipping checks and progress bookkeeping);
- ``torch``: ``nn.LSTM(1, 50, num_layers=4, dropout=0.2)`` in the same loop;
- ``keras-jax`` and ``keras-torch``: the tutorials' Keras code, ``model.fit``, on the JAX and
  the torch backend, where Keras (and JAX) are installed; otherwise the table says so.

Threads: each process is pinned to that many cores (``os.sched_setaffinity``, on Linux) and told
so (torch.set_num_threads; XLA and Keras see only those cores). The contestants run in turn, in
``--rounds`` interleaved rounds; an epoch time is the median of epochs 2 onward over all rounds
(epoch 1 holds JAX's compilation and every allocator's warm-up).

``python -m benchmarks seed-model`` prints a Markdown table and writes JSON to
benchmarks/results/; ``--quick`` runs two epochs of each as a smoke check.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CONTESTANTS = ("rnnkit", "rnnkit-trainer", "torch", "keras-jax", "keras-torch")
LOOKBACK, HIDDEN, LAYERS, DROPOUT, BATCH, LR = 60, 50, 4, 0.2, 32, 1e-3


def windows() -> tuple[np.ndarray, np.ndarray]:
    """(x (N, 60, 1), y (N, 1)) float32: the tutorial's training windows of GOOG's close."""
    from rnnkit.data.datasets import load_stocks

    close = load_stocks("GOOG").set_index("Date")["Close"]
    train = close[close.index < "2012-01-01"].to_numpy(np.float64)
    low, high = train.min(), train.max()
    scaled = ((train - low) / (high - low)).astype(np.float32)
    origins = range(LOOKBACK, len(scaled))
    x = np.stack([scaled[t - LOOKBACK : t] for t in origins])[..., None]
    y = scaled[LOOKBACK:, None]
    return x, y


def missing(contestant: str) -> str | None:
    """Why a contestant cannot run in this environment, or None."""
    needs = {"keras-jax": ("keras", "jax"), "keras-torch": ("keras",)}.get(contestant, ())
    absent = [name for name in needs if importlib.util.find_spec(name) is None]
    return f"not installed: {', '.join(absent)}" if absent else None


# --- the workers: each runs in its own process ---------------------------------------------


def torch_epochs(contestant: str, epochs: int, threads: int) -> list[float]:
    import torch
    from torch import nn

    import rnnkit as rk

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    x_np, y_np = windows()
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)

    class Tutorial(nn.Module):
        def __init__(self):
            super().__init__()
            if contestant == "torch":
                self.rnn = nn.LSTM(1, HIDDEN, LAYERS, dropout=DROPOUT, batch_first=True)
            else:
                self.rnn = rk.LSTM(
                    1, HIDDEN, LAYERS, dropout=DROPOUT, return_sequences=False, return_state=False
                )
            self.dropout, self.head = nn.Dropout(DROPOUT), nn.Linear(HIDDEN, 1)

        def forward(self, past):
            summary = self.rnn(past)
            if contestant == "torch":
                summary = summary[0][:, -1]
            return self.head(self.dropout(summary))

    model = Tutorial()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        for batch in torch.randperm(len(x)).split(BATCH):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - started)
    return seconds


def trainer_epochs(epochs: int, threads: int) -> list[float]:
    import torch

    from rnnkit.data.datasets import stocks_path
    from rnnkit.tasks.forecast import Forecaster

    torch.set_num_threads(threads)
    forecaster = Forecaster.from_preset(
        "tutorial", target="Close", date_col="Date", where={"Ticker": "GOOG"},
        test_start="2012-01-01", epochs=epochs, progress="none",
    )  # fmt: skip
    forecaster.fit(stocks_path())
    return [row["seconds"] for row in forecaster.history_]


def keras_epochs(epochs: int) -> list[float]:
    import keras

    keras.utils.set_random_seed(0)
    x, y = windows()
    model = keras.Sequential([keras.Input((LOOKBACK, 1))])
    for layer in range(LAYERS):
        model.add(keras.layers.LSTM(HIDDEN, return_sequences=layer < LAYERS - 1))
        model.add(keras.layers.Dropout(DROPOUT))
    model.add(keras.layers.Dense(1))
    model.compile(optimizer=keras.optimizers.Adam(LR), loss="mean_squared_error")

    class EpochTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    timer = EpochTimes()
    model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[timer])
    return timer.seconds


def worker(contestant: str, epochs: int, threads: int) -> list[float]:
    if contestant.startswith("keras"):
        return keras_epochs(epochs)
    if contestant == "rnnkit-trainer":
        return trainer_epochs(epochs, threads)
    return torch_epochs(contestant, epochs, threads)


def pinned_environment(contestant: str, threads: int) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if contestant.startswith("keras"):
        env["KERAS_BACKEND"] = contestant.split("-", 1)[1]
        env["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}"
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def run_worker(contestant: str, epochs: int, threads: int) -> list[float]:
    """Epoch seconds of one contestant, in a fresh process pinned to ``threads`` cores."""
    # Pinned where the OS allows it (Linux); elsewhere the thread settings alone hold.
    pin = ""
    if hasattr(os, "sched_getaffinity"):
        pin = f"os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[:threads]}); "
    code = (
        "import json, os, sys; from benchmarks import seed_model as s; "
        f"{pin}print('RESULT', json.dumps(s.worker({contestant!r}, {epochs}, {threads})))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=pinned_environment(contestant, threads),
        capture_output=True, text=True,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{contestant} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


# --- the driver ------------------------------------------------------------------------------


def measure(contestants, thread_counts, epochs: int, rounds: int) -> list[dict]:
    """One row per (threads, contestant): epoch seconds of every round, interleaved."""
    rows = []
    for threads in thread_counts:
        runnable = [c for c in contestants if not missing(c)]
        times = {c: [] for c in runnable}
        for round_ in range(rounds):
            for contestant in runnable:
                print(f"  {threads} thread(s), round {round_ + 1}: {contestant}", file=sys.stderr)
                times[contestant].append(run_worker(contestant, epochs, threads))
        for contestant in contestants:
            row = {"threads": threads, "contestant": contestant, "missing": missing(contestant)}
            if contestant in times:
                later = [s for run in times[contestant] for s in run[1:]] or [
                    s for run in times[contestant] for s in run
                ]
                row.update(epochs=times[contestant], seconds=statistics.median(later))
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| threads | contestant | s/epoch | ratio to keras-jax | ratio to torch |",
        "|--:|---|--:|--:|--:|",
    ]
    for row in rows:
        if row["missing"]:
            lines.append(f"| {row['threads']} | {row['contestant']} | {row['missing']} | | |")
            continue
        same = {r["contestant"]: r.get("seconds") for r in rows if r["threads"] == row["threads"]}
        ratios = [
            f"{row['seconds'] / same[peer]:.2f}" if same.get(peer) else "-"
            for peer in ("keras-jax", "torch")
        ]
        lines.append(
            f"| {row['threads']} | {row['contestant']} | {row['seconds']:.3f} | "
            f"{ratios[0]} | {ratios[1]} |"
        )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks seed-model",
        description="Epoch time of the tutorials' 4 x LSTM(50) stock model: rnnkit, plain "
        "PyTorch, and Keras 3 on JAX and on torch where installed.",
    )
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run (default 6)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument(
        "--contestants", default=",".join(CONTESTANTS), help=f"default {','.join(CONTESTANTS)}"
    )
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 round: a smoke check")
    parser.add_argument("--json", metavar="PATH", help="where to write the JSON")
    args = parser.parse_args(argv)
    args.threads = [int(n) for n in args.threads.split(",")]
    args.contestants = [c.strip() for c in args.contestants.split(",")]
    unknown = sorted(set(args.contestants) - set(CONTESTANTS))
    if unknown:
        parser.error(f"unknown contestants {unknown}; known: {', '.join(CONTESTANTS)}")
    if args.quick:
        args.epochs, args.rounds = 2, 1
    return args


def main(args: argparse.Namespace) -> list[dict]:
    from .rnn_training import machine

    rows = measure(args.contestants, args.threads, args.epochs, args.rounds)
    print(table(rows))
    path = (
        Path(args.json)
        if args.json
        else RESULTS_DIR / (f"seed_model-{datetime.now():%Y%m%d-%H%M%S}.json")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
    print(f"\nJSON: {path}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main(parse_args())
