"""Captioning on the scene sets (issue 33): Show, Attend and Tell beside Show and Tell, the
nearest neighbour and the most frequent caption, on the random and the compositional split.

    python experiments/captions.py --out runs/captions [--count 3000] [--split both]

Each split: ``rnnkit caption make-scenes`` (COUNT images, seed 0), then ``rnnkit caption
train`` with the defaults and no other flag; prints each run's test table and its training
time. The README's table is this script's output on a 2-core CPU.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--split", choices=["random", "compositional", "both"], default="both")
    parser.add_argument("train_options", nargs="*", help="More options for `caption train`.")
    options = parser.parse_args()
    splits = ["random", "compositional"] if options.split == "both" else [options.split]
    for split in splits:
        data, run = options.out / f"scenes-{split}", options.out / f"run-{split}"
        if not data.exists():
            subprocess.run([sys.executable, "-m", "rnnkit", "caption", "make-scenes", "--out",
                            str(data), "--count", str(options.count), "--split", split],
                           check=True)  # fmt: skip
        started = time.perf_counter()
        command = [sys.executable, "-m", "rnnkit", "caption", "train", "--data", str(data),
                   "--out", str(run), "--overwrite", "--progress", "log",
                   *options.train_options]  # fmt: skip
        subprocess.run(command, check=True)
        print(f"{split}: {(time.perf_counter() - started) / 60:.1f} min in all", flush=True)


if __name__ == "__main__":
    main()
