"""The classifier's defaults on signal sets nobody tuned them for, beside 1-NN-ED and 1-NN-DTW.

Each set is a UCR/UEA pair ``NAME_TRAIN.ts`` / ``NAME_TEST.ts``, trained with no setting
given (what ``rnnkit classify train --data NAME_TRAIN.ts --test NAME_TEST.ts`` does) and scored
on its official test split beside the baselines the run reports: 1-NN with the Euclidean
distance, 1-NN with DTW in a band learned on the training set, the one-to-one network and the
majority class. Seeds change only the networks.

The sets the README reports are the UCR/UEA ones aeon ships inside its wheel (BSD-3; the data
are the archive's, free for research, Dau et al. 2019 and Bagnall et al. 2018); nothing is
installed:

    pip download aeon==1.6.0 --no-deps -d /tmp/aeon && cd /tmp/aeon \\
        && unzip -q aeon-1.6.0-py3-none-any.whl 'aeon/datasets/data/*'
    python experiments/signal_defaults.py /tmp/aeon/aeon/datasets/data/{GunPoint,ArrowHead}
    python experiments/signal_defaults.py ../shared/data/sequences --seeds 0 1 2

A folder argument is searched for ``*_TRAIN.ts`` files (each with its ``_TEST.ts``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit.tasks.classify import Classifier

SHOWN = ("model", "nn_euclidean", "nn_dtw", "one_to_one", "majority")


def find_sets(places: list[Path]) -> list[tuple[str, Path, Path]]:
    """(name, train file, test file) of every set under ``places``, in name order."""
    found = []
    for place in places:
        for train in sorted(place.rglob("*_TRAIN.ts")) if place.is_dir() else [place]:
            name = train.name.removesuffix("_TRAIN.ts")
            if name.endswith("_eq"):  # aeon's equal-length copies of unequal sets
                continue
            test = train.with_name(f"{name}_TEST.ts")
            if not test.exists():
                raise SystemExit(f"{train}: no {test.name} beside it")
            found.append((name, train, test))
    return found


def run_set(name: str, train: Path, test: Path, seed: int) -> dict:
    started = time.perf_counter()
    classifier = Classifier(seed=seed, progress="none").fit(train)
    scores = classifier.score(test)
    row = {"set": name, "seed": seed, "seconds": round(time.perf_counter() - started)}
    row |= {key: scores[key]["accuracy"] for key in SHOWN if key in scores}
    row["dtw_band"] = classifier.reference_["nn_dtw"].window_ if "nn_dtw" in scores else None
    row["data"] = classifier.metrics_["data"]
    row["budget"] = classifier.budget_["reason"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("places", nargs="+", type=Path, help="Sets: folders or _TRAIN.ts files.")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per run.")
    parser.add_argument("--out", type=Path, help="Write the rows as JSON lines here.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, train, test in find_sets(args.places):
        for seed in args.seeds:
            row = run_set(name, train, test, seed)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                with args.out.open("a") as file:
                    file.write(json.dumps(row) + "\n")
    print(f"\n{'set':<24}{'model':>14}{'1-NN-ED':>9}{'1-NN-DTW':>9}{'one-to-one':>11}")
    for name in dict.fromkeys(row["set"] for row in rows):
        mine = [row for row in rows if row["set"] == name]
        model = np.array([row["model"] for row in mine]) * 100
        spread = f" ± {model.std():.1f}" if len(mine) > 1 else ""
        first = mine[0]
        dtw = f"{100 * first['nn_dtw']:.1f}" if "nn_dtw" in first else "-"
        print(f"{name:<24}{f'{model.mean():.1f}{spread}':>14}{100 * first['nn_euclidean']:>9.1f}"
              f"{dtw:>9}{100 * np.mean([r['one_to_one'] for r in mine]):>11.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
