"""``python -m benchmarks``: time training steps of rnnkit against its peers.

Prints a Markdown table on stdout (progress on stderr) and writes the JSON of every run to
benchmarks/results/ (or ``--json PATH``). ``python -m benchmarks dtw …`` runs the 1-NN-DTW
distance benchmark instead (``bench_dtw.py``; ``--help`` for its options), and ``python -m
benchmarks seed-model …`` the tutorials' stock model against plain PyTorch and Keras 3
(``seed_model.py``), and ``python -m benchmarks export`` exported graphs' inference against
PyTorch eager (``export_latency.py``).
"""

import argparse
import sys

from . import bench_dtw, export_latency, rnn_training, seed_model
from .rnn_training import positive


def configs(text: str) -> list[str]:
    names = [name.strip().upper() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in rnn_training.CONFIGS]
    known = ",".join(rnn_training.CONFIGS)
    if not names:
        raise argparse.ArgumentTypeError(f"no configuration given; known: {known}")
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown configuration {unknown}; known: {known}")
    return names


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Training time (forward + backward) of rnnkit's layers against torch.nn "
        "and hand-written loops, on the CPU with 2 threads (configurations of BENCHMARKS.md).",
    )
    parser.add_argument(
        "--configs",
        type=configs,
        default=list(rnn_training.CONFIGS),
        help="comma-separated configurations to run (default: all, "
        f"{','.join(rnn_training.CONFIGS)}); {' and '.join(rnn_training.VARIANTS_CONFIGS)} "
        "also run the variants that leave the vendor kernel",
    )
    parser.add_argument(
        "--repeats",
        type=positive,
        default=None,
        help="timed runs of each contestant (default: enough for about "
        f"{rnn_training.TARGET_SECONDS:g} s per comparison, {rnn_training.MIN_RUNS} to "
        f"{rnn_training.MAX_RUNS})",
    )
    parser.add_argument(
        "--warmup",
        type=positive,
        default=None,
        help=f"untimed runs of each first (default: {rnn_training.WARMUP_RUNS}, --quick: 1)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="toy shapes and 2 runs: a smoke check that everything runs, not a measurement",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="where to write the JSON (default: benchmarks/results/rnn_training-<time>.json)",
    )
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = 1 if args.quick else rnn_training.WARMUP_RUNS
    if args.quick and args.repeats is None:
        args.repeats = 2
    return args


if __name__ == "__main__":
    if sys.argv[1:2] == ["dtw"]:
        bench_dtw.main(bench_dtw.parse_args(sys.argv[2:]))
    elif sys.argv[1:2] == ["export"]:
        export_latency.main(sys.argv[2:])
    elif sys.argv[1:2] == ["seed-model"]:
        seed_model.main(seed_model.parse_args(sys.argv[2:]))
    else:
        rnn_training.main(parse_args())
