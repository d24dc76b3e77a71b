"""MR sentence polarity with 10-fold cross-validation, as in Kim (2014) Table 2.

The MR sentences come from the VADER file (``mr_movie_snippets_valence.tsv.gz``); each takes
its original binary label from the Rotten Tomatoes file (fresh = positive, rotten = negative),
matched on the text with everything but letters and digits removed: 10,453 of the 10,662 MR
sentences (5,215 positive, 5,238 negative). Folds are stratified and fixed by ``--seed``;
inside each training fold a tenth is held out for early stopping. Embeddings are learnt from
scratch. Published (Kim 2014): CNN-rand 76.1, RAE 77.7, NBSVM 79.4, CNN-non-static 81.5.

    python experiments/mr_cv.py --out results/mr_cv.json            # about 25 minutes on 2 cores
    python experiments/mr_cv.py --folds 2 --epochs 2                # a quick look
    python experiments/mr_cv.py --ngrams 2 --ensemble 1            # one model + n-gram bag
    python experiments/mr_cv.py --defaults                         # Classifier(), no setting
"""

from __future__ import annotations

import argparse
import json
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnnkit.tasks.classify import Classifier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment"
PUBLISHED = {"CNN-rand": 76.1, "RAE": 77.7, "MV-RNN": 79.0, "NBSVM": 79.4, "CNN-non-static": 81.5}


def load_mr(folder: Path = DATA) -> pd.DataFrame:
    """The MR sentences with their original labels (see the module docstring)."""
    sentences = pd.read_csv(folder / "mr_movie_snippets_valence.tsv.gz", sep="\t")
    reviews = pd.read_csv(folder / "rotten_tomatoes_fresh_rotten.csv.gz")

    def key(text) -> str:
        return re.sub(r"[^a-z0-9]", "", str(text).lower())

    label = {key(t): c for t, c in zip(reviews.text, reviews.category, strict=True)}
    names = {"fresh": "positive", "rotten": "negative"}
    sentences["label"] = [names.get(label.get(key(t))) for t in sentences.text]
    return sentences.dropna(subset=["label"])[["text", "label"]].reset_index(drop=True)


def folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold number per row, each class dealt round-robin after a shuffle (stratified)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=int)
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        fold[rows] = np.arange(len(rows)) % k
    return fold


def run_fold(k: int, train: pd.DataFrame, test: pd.DataFrame, settings: dict) -> dict:
    """Train on ``train``, score on ``test``: one fold's row of the results."""
    started = time.perf_counter()
    classifier = Classifier(**settings).fit(list(train.text), list(train.label))
    scores = classifier.score(list(test.text), list(test.label))
    return {
        "fold": k,
        "accuracy": scores["model"]["accuracy"],
        "single_models": scores["model"].get("members", [scores["model"]["accuracy"]]),
        "one_to_one": scores["one_to_one"]["accuracy"],
        "network": scores.get("network", scores["model"])["accuracy"],
        "linear": {
            k: scores[k]["accuracy"]
            for k in ("nbsvm", "naive_bayes", "tfidf_logistic")
            if k in scores
        },
        "blend": classifier.blend_,
        "best_epoch": classifier.best_epoch_,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=10, help="Folds to run (of 10).")
    parser.add_argument("--epochs", type=int, help="Default: the budget rule (15).")
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--pooling", default="max")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--embedding-dropout", type=float, default=0.3)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--min-freq", type=int, default=2)
    parser.add_argument("--tokenizer", default="word")
    parser.add_argument("--ngrams", type=int, default=0, help="Word n-gram bag beside the RNN.")
    parser.add_argument("--ensemble", type=int, default=3, help="Models per fold, averaged.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="Folds trained at once, 1 thread each.")
    parser.add_argument(
        "--defaults", action="store_true", help="Classifier's defaults: ignore the settings above."
    )
    parser.add_argument("--out", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args()

    data = load_mr()
    fold = folds(data.label.to_numpy(), 10, args.seed)
    settings = {
        "cell": args.cell, "pooling": args.pooling, "hidden_size": args.hidden_size,
        "embedding_dim": args.embedding_dim, "dropout": args.dropout,
        "embedding_dropout": args.embedding_dropout, "lr": args.lr, "min_freq": args.min_freq,
        "tokenizer": args.tokenizer, "epochs": args.epochs, "seed": args.seed,
        "ensemble": args.ensemble, "ngrams": args.ngrams, "progress": "none",
    }  # fmt: skip
    if args.defaults:
        settings = {"seed": args.seed, "progress": "none"}
    print(f"MR: {len(data)} sentences, {data.label.value_counts().to_dict()}; settings {settings}")
    started = time.perf_counter()
    work = [(k, data[fold != k], data[fold == k], settings) for k in range(args.folds)]
    with ProcessPoolExecutor(args.jobs, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        results = []
        for row in pool.map(run_fold, *zip(*work, strict=True)):
            results.append(row)
            print(json.dumps(row), flush=True)
    accuracy = np.array([r["accuracy"] for r in results])
    single = np.array([np.mean(r["single_models"]) for r in results])
    bag = np.array([r["one_to_one"] for r in results])
    network = np.array([r["network"] for r in results])
    linear = {k: float(np.mean([r["linear"][k] for r in results])) for k in results[0]["linear"]}
    summary = {
        "sentences": len(data),
        "folds": len(results),
        "accuracy_mean": float(accuracy.mean()),
        "accuracy_std": float(accuracy.std()),
        "single_model_mean": float(single.mean()),
        "one_to_one_mean": float(bag.mean()),
        "network_mean": float(network.mean()),
        "linear_means": linear,
        "minutes": (time.perf_counter() - started) / 60,
        "cpu_minutes": sum(r["seconds"] for r in results) / 60,
        "settings": settings,
        "published": PUBLISHED,
        "folds_detail": results,
    }
    print(
        f"\n{len(results)}-fold accuracy {100 * accuracy.mean():.1f} ± {100 * accuracy.std():.1f} "
        f"(its models alone {100 * single.mean():.1f}, the network alone "
        f"{100 * network.mean():.1f}, one-to-one {100 * bag.mean():.1f}; "
        + ", ".join(f"{k} {100 * v:.1f}" for k, v in linear.items())
        + "); "
        "published: " + ", ".join(f"{name} {value}" for name, value in PUBLISHED.items())
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
