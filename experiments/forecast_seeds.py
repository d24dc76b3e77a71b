"""How much of a forecaster's score is the seed: the README's table of models over seeds.

Trains each configuration on the bundled GOOG closes (test from 2012-01-03, as `rnnkit demo`)
once per seed and prints its test RMSE relative to persistence's.

    python experiments/forecast_seeds.py                        # default: 8 seeds; tutorial: 3
    python experiments/forecast_seeds.py --seeds 2 --tutorial-seeds 0

A default run takes 5-10 s, a tutorial run about two minutes, on one thread.
"""

import argparse
import statistics
import time

import torch

from rnnkit.data.datasets import stocks_path
from rnnkit.tasks.forecast import Forecaster

DATA = {"date_col": "Date", "where": {"Ticker": "GOOG"}, "test_start": "2012-01-01"}
CONFIGS = {
    "default (2 x LSTM(64) on changes)": {"target": "Close"},
    "default, GRU": {"target": "Close", "cell": "gru"},
    "default, target Open": {"target": "Open"},
}


def ratios(make, seeds) -> list[float]:
    """Model RMSE / persistence RMSE on the test part, in percent, one per seed."""
    found = []
    for seed in seeds:
        started = time.perf_counter()
        test = make(seed).fit(stocks_path()).metrics_["test"]
        found.append(100 * test["model"]["rmse"] / test["persistence"]["rmse"])
        print(f"  seed {seed}: {found[-1]:.2f} %  ({time.perf_counter() - started:.0f} s)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds per default configuration")
    parser.add_argument("--tutorial-seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # small models: threads only add noise to the timings

    rows = {}
    for name, settings in CONFIGS.items():
        print(name)
        rows[name] = ratios(
            lambda seed, s=settings: Forecaster(**s, **DATA, seed=seed, progress="none"),
            range(args.seeds),
        )
    if args.tutorial_seeds:
        print("tutorial preset")
        rows["tutorial preset"] = ratios(
            lambda seed: Forecaster.from_preset(
                "tutorial", target="Close", **DATA, seed=seed, progress="none"
            ),
            range(args.tutorial_seeds),
        )

    print("\n| model | seeds | RMSE / persistence | seeds below persistence |")
    print("|---|--:|--:|--:|")
    for name, found in rows.items():
        spread = f" ± {statistics.stdev(found):.2f}" if len(found) > 1 else ""
        below = sum(r < 100 for r in found)
        print(f"| {name} | {len(found)} | {statistics.mean(found):.2f} %{spread} | {below} |")


if __name__ == "__main__":
    main()
