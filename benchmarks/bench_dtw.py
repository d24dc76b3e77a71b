"""Time of the train × test block of 1-NN-DTW distances: dtaidistance against its peers.

The block is 300 training × 300 test univariate series of length 500 (z-normalised random
walks, the size of a mid-sized UCR data set), in a Sakoe–Chiba band of 10 % of the length
(r = 50 steps) and unconstrained. Contestants:

- dtaidistance: ``dtw.distance_matrix_fast(train + test, block=…, compact=True,
  window=r + 1)``, its C kernel on both cores through OpenMP: what
  ``rnnkit.models.NearestNeighbour(metric="dtw")`` runs.
- torch anti-diagonal: the dynamic programme written here in torch (float64, 2 threads), one
  anti-diagonal of every pair of a batch at a time, so each step is a few vector operations
  over the band: what a user writes without a DTW library.
- tslearn, where importable: ``tslearn.metrics.cdist_dtw(…, global_constraint="sakoe_chiba",
  sakoe_chiba_radius=r, n_jobs=2)`` (numba; its compilation is left out by a warm-up).

The peers are much slower, so they are timed on the first ``--peer-rows`` training series
against every test series and scaled to the whole block (exact, as every pair has the same
length and so the same work); their distances are checked against dtaidistance's on those
rows. One timed run of each by default (``--repeats``): a run takes seconds to minutes, so
the timer's noise does not matter, other work on the machine does (it is reported).

``python -m benchmarks dtw`` (or ``python -m benchmarks.bench_dtw``) prints a Markdown table
and writes JSON to benchmarks/results/. To include tslearn, run it with an interpreter that
has tslearn (the project does not depend on it), e.g. a separate venv with tslearn,
dtaidistance, torch and numpy: ``PYTHONPATH=src /tmp/peers/bin/python -m benchmarks dtw``.
"""

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from rnnkit.models.neighbours import band_steps

from .rnn_training import (
    RESULTS_DIR,
    THREADS,
    load_average,
    log,
    machine,
    positive,
    prepare_cpu,
)

TRAIN, TEST, LENGTH = 300, 300, 500
BAND_FRACTION = 0.10
PEER_ROWS = 30  # training series the peers are timed on (of TRAIN)
PAIRS_PER_BATCH = 4096  # pairs the torch programme holds at once: 3 × 16 MiB of diagonals
QUICK = {"train": 12, "test": 10, "length": 40, "peer_rows": 4}


def random_walks(count: int, length: int, seed: int) -> np.ndarray:
    """(count, length) z-normalised random walks, as UCR series are z-normalised."""
    walks = np.cumsum(np.random.default_rng(seed).normal(size=(count, length)), axis=1)
    walks -= walks.mean(axis=1, keepdims=True)
    walks /= walks.std(axis=1, keepdims=True)
    return walks


def band_cells(radius: int | None, length: int) -> int:
    """Cells (i, j) of a length × length programme with |i − j| ≤ radius."""
    if radius is None or radius >= length - 1:
        return length * length
    return length * (2 * radius + 1) - radius * (radius + 1)


# ------------------------------------------------------------------------- contestants


def dtaidistance_block(train: np.ndarray, test: np.ndarray, radius: int | None) -> np.ndarray:
    from dtaidistance import dtw

    # dtaidistance allows |i − j| < window, and reads 0 or None as no band.
    window = None if radius is None else radius + 1
    series = [np.ascontiguousarray(row) for row in np.concatenate([train, test])]
    block = ((0, len(train)), (len(train), len(series)))
    values = dtw.distance_matrix_fast(series, block=block, compact=True, window=window)
    return np.asarray(values).reshape(len(train), len(test))


def _antidiagonal_pairs(a: torch.Tensor, b: torch.Tensor, radius: int | None) -> torch.Tensor:
    """DTW of the pairs (a[p], b[p]), all of one length L, one anti-diagonal at a time.

    Diagonal s holds C[i, s − i] at position i (1-based, position 0 the border). Three
    buffers rotate; of the one overwritten only the band and its two neighbours are touched,
    so each step costs the band's width, not L.
    """
    pairs, length = a.shape
    radius = length if radius is None else radius
    b_reversed = b.flip(1)  # b[:, s − i − 1] for increasing i is a forward slice of this
    inf = float("inf")
    before_last = torch.full((pairs, length + 1), inf, dtype=a.dtype)
    before_last[:, 0] = 0.0  # s = 0: C[0, 0]
    last = torch.full_like(before_last, inf)  # s = 1: the border
    spare = torch.full_like(before_last, inf)
    for s in range(2, 2 * length + 1):
        low = max(1, s - length, (s - radius + 1) // 2)  # i ≥ ⌈(s − r)/2⌉: |2i − s| ≤ r
        high = min(length, s - 1, (s + radius) // 2)
        current = spare
        cost = a[:, low - 1 : high] - b_reversed[:, length - s + low : length - s + high + 1]
        cost.square_()
        best = torch.minimum(before_last[:, low - 1 : high], last[:, low - 1 : high])
        torch.minimum(best, last[:, low : high + 1], out=best)
        current[:, low : high + 1] = cost.add_(best)
        # The next two steps read one position beyond each end: left from 3 steps ago.
        current[:, low - 1] = inf
        if high + 1 <= length:
            current[:, high + 1] = inf
        spare, before_last, last = before_last, last, current
    return last[:, length].sqrt()


def torch_block(train: np.ndarray, test: np.ndarray, radius: int | None) -> np.ndarray:
    rows = torch.arange(len(train)).repeat_interleave(len(test))
    columns = torch.arange(len(test)).repeat(len(train))
    train_t, test_t = torch.from_numpy(train), torch.from_numpy(test)
    out = torch.empty(len(rows), dtype=torch.float64)
    for start in range(0, len(rows), PAIRS_PER_BATCH):
        batch = slice(start, start + PAIRS_PER_BATCH)
        out[batch] = _antidiagonal_pairs(train_t[rows[batch]], test_t[columns[batch]], radius)
    return out.reshape(len(train), len(test)).numpy()


def tslearn_block(train: np.ndarray, test: np.ndarray, radius: int | None) -> np.ndarray:
    from tslearn.metrics import cdist_dtw

    constraint = {} if radius is None else {"global_constraint": "sakoe_chiba"}
    if radius is not None:
        constraint["sakoe_chiba_radius"] = radius
    return cdist_dtw(train[:, :, None], test[:, :, None], n_jobs=THREADS, **constraint)


def tslearn_available() -> str | None:
    """tslearn's version, or None where it is not importable."""
    try:
        import tslearn
    except ImportError:
        return None
    return tslearn.__version__


# ------------------------------------------------------------------------- measurement


def timed(function: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def measure(args, radius: int | None, train, test, contestants) -> dict:
    """Time each contestant ``args.repeats`` times, interleaved, on its share of the block."""
    seconds: dict[str, list[float]] = {name: [] for name in contestants}
    results: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, (function, rows) in contestants.items():
            elapsed, results[name] = timed(lambda f=function, k=rows: f(train[:k], test, radius))
            seconds[name].append(elapsed)
    reference = results["dtaidistance"]
    pairs_total = len(train) * len(test)
    cells_per_pair = band_cells(radius, train.shape[1])
    row = {"radius": radius, "cells_per_pair": cells_per_pair, "runners": {}}
    for name, (_, rows) in contestants.items():
        median = statistics.median(seconds[name])
        pairs_timed = rows * len(test)
        block_seconds = median * pairs_total / pairs_timed
        difference = float(np.max(np.abs(results[name] - reference[:rows])))
        row["runners"][name] = {
            "pairs_timed": pairs_timed,
            "seconds_timed": seconds[name],
            "block_seconds": block_seconds,
            "mcells_per_second": pairs_total * cells_per_pair / block_seconds / 1e6,
            "max_abs_difference": difference,
        }
    return row


def run(args) -> dict:
    busy_before = prepare_cpu()
    train = random_walks(args.train, args.length, seed=0)
    test = random_walks(args.test, args.length, seed=1)
    peer_rows = min(args.peer_rows, args.train)
    contestants = {
        "dtaidistance": (dtaidistance_block, args.train),
        "torch": (torch_block, peer_rows),
    }
    tslearn_version = tslearn_available()
    if tslearn_version is not None:
        contestants["tslearn"] = (tslearn_block, peer_rows)
    else:
        log("tslearn is not importable here: its rows are left out")
    # Warm-up: load the C extensions, compile tslearn's numba functions (both code paths).
    for function, _ in contestants.values():
        for radius in (1, None):
            function(train[:2, :8].copy(), test[:2, :8].copy(), radius)
    rows = []
    radius = band_steps(BAND_FRACTION, args.length)  # the band NearestNeighbour uses
    for label, band in ((f"{BAND_FRACTION:.0%} band (r = {radius})", radius), ("full", None)):
        log(f"{label}: {args.train} x {args.test} series of length {args.length} …")
        row = measure(args, band, train, test, contestants)
        row["band"] = label
        rows.append(row)
    meta = machine()
    meta.update(
        cpu_busy_before=busy_before,
        load_average_after=load_average(),
        quick=args.quick,
        repeats=args.repeats,
        shape={"train": args.train, "test": args.test, "length": args.length},
        peer_rows=peer_rows,
        tslearn=tslearn_version,
        dtaidistance=__import__("dtaidistance").__version__,
    )
    return {"meta": meta, "results": rows}


def markdown(meta: dict, rows: list[dict]) -> str:
    shape = meta["shape"]
    lines = [
        f"### 1-NN-DTW distance block: {shape['train']} x {shape['test']} series of length "
        f"{shape['length']}",
        "",
        f"{meta['cpu']}, {meta['torch_threads']} threads; dtaidistance "
        f"{meta['dtaidistance']}, torch {meta['torch']}, tslearn {meta['tslearn'] or 'absent'}. "
        f"Peers timed on {meta['peer_rows']} x {shape['test']} pairs and scaled to the block; "
        f"CPU busy before: {meta['cpu_busy_before'] or 0:.0%}.",
        "",
        "| band | contestant | block s | ÷ dtaidistance | Mcells/s | max abs diff |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for row in rows:
        reference = row["runners"]["dtaidistance"]["block_seconds"]
        for name, runner in row["runners"].items():
            lines.append(
                f"| {row['band']} | {name} | {runner['block_seconds']:.2f} | "
                f"{runner['block_seconds'] / reference:.1f} | "
                f"{runner['mcells_per_second']:.0f} | {runner['max_abs_difference']:.1e} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks dtw",
        description="Time of the train x test 1-NN-DTW distance block: dtaidistance against a "
        "torch anti-diagonal programme and (where importable) tslearn, on the CPU.",
    )
    parser.add_argument("--train", type=positive, default=TRAIN, help="training series")
    parser.add_argument("--test", type=positive, default=TEST, help="test series")
    parser.add_argument("--length", type=positive, default=LENGTH, help="steps of each series")
    parser.add_argument(
        "--peer-rows",
        type=positive,
        default=PEER_ROWS,
        help=f"training series the slower peers are timed on (default {PEER_ROWS})",
    )
    parser.add_argument("--repeats", type=positive, default=1, help="timed runs of each")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="toy shapes: a smoke check that everything runs, not a measurement",
    )
    parser.add_argument("--json", metavar="PATH", help="where to write the JSON")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    return args


def main(args) -> None:
    started = time.perf_counter()
    report = run(args)
    print(markdown(report["meta"], report["results"]), end="")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    default = RESULTS_DIR / f"bench_dtw-{stamp}{'-quick' if args.quick else ''}.json"
    path = Path(args.json) if args.json else default
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    log(f"wrote {path} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main(parse_args())
