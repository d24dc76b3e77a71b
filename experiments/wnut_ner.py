"""WNUT-2016 Twitter NER: entity F1 of a BiLSTM tagger with and without the CRF.

Only the training split of WNUT-2016 is available (../shared/data/ner/wnut16_train.bio, 2,394
tweets), so a fixed random 20 % of its tweets (``--seed``) is held out as the test set; the
tagger holds out another 10 % of the remaining 80 % for early stopping on entity F1. Both
variants get the same split, settings and seed; only the decoder differs. Scores are
entity-level with conlleval's rules. For scale: the best shared-task system scored 52.41 F1 on
the official test set (not available here, and not the same split).

    python experiments/wnut_ner.py --out results/wnut.json          # about 10 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rnnkit.data.readers import read_conll
from rnnkit.tasks.tag import Tagger

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ner" / "wnut16_train.bio"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args()

    sentences = read_conll(args.data)
    order = np.random.default_rng(args.seed).permutation(len(sentences))
    cut = int(0.8 * len(sentences))
    train = [sentences[i] for i in sorted(order[:cut])]
    test = [sentences[i] for i in sorted(order[cut:])]
    print(f"WNUT-2016 train split: {len(train)} tweets to train on, {len(test)} held out")
    results = {}
    for crf in (True, False):
        started = time.perf_counter()
        tagger = Tagger(
            crf=crf, epochs=args.epochs, patience=args.patience, seed=args.seed, progress="none"
        ).fit(train)
        scores = tagger.score(test)
        name = "BiLSTM-CRF" if crf else "BiLSTM-softmax"
        results[name] = {
            "precision": scores["model"]["precision"],
            "recall": scores["model"]["recall"],
            "f1": scores["model"]["f1"],
            "best_epoch": tagger.best_epoch_,
            "epochs": len(tagger.history_),
            "minutes": (time.perf_counter() - started) / 60,
        }
        results["most frequent tag"] = {
            k: scores["most_frequent_tag"][k] for k in ("precision", "recall", "f1")
        }
        print(name, json.dumps(results[name]), flush=True)
    print(f"\n{'':<18}{'precision':>10}{'recall':>10}{'F1':>10}")
    for name, r in results.items():
        scores = "".join(f"{100 * r[k]:>10.1f}" for k in ("precision", "recall", "f1"))
        print(f"{name:<18}{scores}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        summary = {"train": len(train), "test": len(test), "seed": args.seed, **results}
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
