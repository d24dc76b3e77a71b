"""The Bach chorales: frame models against the count baselines, and what they compose.

Each variant trains a ``Composer`` on the chorales music21 ships (the fixed split by name of
``rnnkit.data.music.split_of``) under a budget of minutes, saves its run directory and scores
the test pieces in nats per frame (summed over pitches, the literature's measure) and per
quarter note (so eighth and sixteenth frames compare). Then it composes ``--samples``
unprimed pieces of ``--bars`` bars, draws as many from each baseline, and measures all of
them against the test pieces with ``rnnkit.metrics.compare_pieces``; the training pieces
are the floor row (how far one set of real chorales is from another).

Variants: ``nade`` (the default Composer), ``bernoulli`` (independent pitches, the
literature's RNN), ``nade-8th`` (eighth-note frames), ``nade-c`` (every piece in C major /
A minor instead of all twelve keys). Run two at a time on two cores, then print the tables:

    OMP_NUM_THREADS=1 python experiments/bach_chorales.py nade --minutes 25 &
    OMP_NUM_THREADS=1 python experiments/bach_chorales.py bernoulli --minutes 25
    python experiments/bach_chorales.py --table

Results are kept in ``--out`` (default ``runs/bach``): a run directory and a JSON per variant.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit import metrics
from rnnkit.data import music
from rnnkit.tasks.music import BASELINES, LABELS, Composer

VARIANTS = {
    "nade": {},
    "bernoulli": {"output": "bernoulli"},
    "nade-8th": {"resolution": "8th"},
    "nade-c": {"transpose": "c"},
}
STATISTICS = ("in_key", "polyphony", "note_length", "parallels", "pitch_class_distance",
              "length_distance")  # fmt: skip


def baseline_pieces(composer: Composer, count: int, frames: int, seed: int) -> dict:
    """``count`` note tables of ``frames`` frames drawn from each of the run's baselines."""
    drawn = {}
    for name in BASELINES:
        rng = np.random.default_rng(seed)
        tables = []
        for _ in range(count):
            roll = composer.baselines_[name].sample(frames, rng)
            onset = roll & ~np.vstack([np.zeros_like(roll[:1]), roll[:-1]])
            tables.append(music.roll_to_notes(roll, onset, composer.low_))
        drawn[name] = tables
    return drawn


def run_variant(name: str, args) -> dict:
    settings = VARIANTS[name] | {"minutes": args.minutes, "epochs": None, "seed": args.seed,
                                 "progress": "none"}  # fmt: skip
    composer = Composer(**settings).fit("bach")
    out = Path(args.out)
    composer.save(out / name, overwrite=True)
    pieces = music.bach_chorales(composer.frames_per_quarter)
    test = [p for p in pieces if music.split_of(p.name) == "test"]
    train = [p for p in pieces if p.name in set(composer.parts_["train"])]
    scores = composer.score(test)
    per_quarter = composer.frames_per_quarter
    nll = {key: {"per_frame": row["nll_per_frame"], "per_quarter": row["nll_per_frame"]
                 * per_quarter} for key, row in scores.items()}  # fmt: skip
    nll["model"]["articulation_per_frame"] = scores["model"]["articulation_nll_per_frame"]

    frames = args.bars * 4 * per_quarter
    generated = []
    for seed in range(args.samples):
        piece, _ = composer.generate(None, args.bars, seed=seed)
        generated.append(piece.notes)
    reference = (
        [music.to_c(p).notes for p in test]
        if composer.transpose == "c"
        else [p.notes for p in test]
    )
    compared = {"model": metrics.compare_pieces([g for g in generated if len(g)], reference)}
    compared["silent_samples"] = sum(not len(g) for g in generated)
    for key, tables in baseline_pieces(composer, args.samples, frames, args.seed).items():
        compared[key] = metrics.compare_pieces([t for t in tables if len(t)], reference)
    compared["training pieces"] = metrics.compare_pieces([p.notes for p in train], reference)
    compared["test pieces"] = metrics.compare_pieces(reference, reference)
    result = {
        "variant": name,
        "settings": settings,
        "training_seconds": composer.training_seconds_,
        "steps": composer.metrics_["steps"],
        "best_epoch": composer.best_epoch_,
        "test_pieces": len(test),
        "test_frames": scores["model"]["frames"],
        "nll": nll,
        "statistics": compared,
        "threads": torch.get_num_threads(),
    }
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    return result


def print_tables(out: Path) -> None:
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    if not results:
        raise SystemExit(f"no results in {out}")
    print("| model or baseline | frames | NLL / frame | NLL / quarter note | training |")
    print("|---|---|--:|--:|--:|")
    shown = set()
    for r in results:
        resolution = r["settings"].get("resolution", "16th")
        minutes = r["training_seconds"] / 60
        print(f"| {r['variant']} ({r['settings'].get('transpose', 'all')} keys) | {resolution} "
              f"| {r['nll']['model']['per_frame']:.2f} | {r['nll']['model']['per_quarter']:.2f} "
              f"| {minutes:.0f} min, {r['steps']} steps |")  # fmt: skip
        for key in BASELINES:
            if (key, resolution) not in shown:
                shown.add((key, resolution))
                row = r["nll"][key]
                print(f"| {LABELS[key]} | {resolution} | {row['per_frame']:.2f} "
                      f"| {row['per_quarter']:.2f} | counts |")  # fmt: skip
    print()
    print("| pieces | " + " | ".join(STATISTICS) + " |")
    print("|---|" + "--:|" * len(STATISTICS))
    for r in results:
        for key, row in r["statistics"].items():
            if not isinstance(row, dict) or (key != "model" and r is not results[0]):
                continue
            label = r["variant"] if key == "model" else LABELS.get(key, key)
            cells = " | ".join("—" if math.isnan(row[s]) else f"{row[s]:.3f}" for s in STATISTICS)
            print(f"| {label} | {cells} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", help=f"Any of {', '.join(VARIANTS)}.")
    parser.add_argument("--minutes", type=float, default=25.0, help="Training budget each.")
    parser.add_argument("--samples", type=int, default=20, help="Pieces composed per model.")
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bach")
    parser.add_argument("--table", action="store_true", help="Print the tables of --out.")
    args = parser.parse_args()
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}: choose from {', '.join(VARIANTS)}")
    for name in args.variants:
        started = time.perf_counter()
        result = run_variant(name, args)
        print(f"{name}: NLL/frame {result['nll']['model']['per_frame']:.3f} "
              f"in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    if args.table or not args.variants:
        print_tables(Path(args.out))


if __name__ == "__main__":
    main()
