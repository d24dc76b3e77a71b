"""A sentence generator conditioned on sentiment: MR movie-review sentences, word by word.

``ConditionalGenerator(num_classes=2)`` learns ``p(sentence | positive)`` and
``p(sentence | negative)`` from the MR sentences with their original labels (``load_mr`` of
``mr_cv.py``: 10,453 sentences). A tenth of the sentences, drawn with ``--seed``, is held out
for the test; a twentieth of the rest is held out for early stopping. Words are lower-cased
``WordTokenizer`` tokens; the vocabulary is the words seen ``--min-freq`` times in training,
the rest ``<unk>`` (counted as a token to predict, the same for every model here).

Results on the held-out sentences (perplexity per token, ``</s>`` included):

- the model given each sentence's true sentiment, and the same model given the flipped one:
  the condition helps iff the true one gives the lower perplexity;
- the same model summed over the two sentiments, ``p(s) = (p(s | neg) + p(s | pos)) / 2``;
- an unconditional baseline, the same network trained the same way with ``num_classes=1``
  (one condition for every sentence), and a unigram model (add-one smoothed). The class
  vectors start at zero and are built after every other weight, so with one seed the two
  networks start as the same function and see the same batches and dropout masks: they
  differ only in what the sentiment adds;
- the generator as a classifier by Bayes' rule, ``argmax_y p(sentence | y)``, against the
  majority class.

A binary condition can say at most 1 bit about a sentence: the mixture above is never more
than ``log 2`` per sentence worse than the true condition, so with ~23 tokens a sentence the
perplexity can fall by at most ~3 % (the script prints the exact bound). Differences of that
size between separately trained networks are within seed noise; the comparison of true and
flipped sentiment in one model is the sharper test.

Then sentences sampled for each sentiment (nucleus sampling, top-p 0.9, seeded).

    OMP_NUM_THREADS=1 python experiments/sentiment_generator.py             # about 8 minutes
    OMP_NUM_THREADS=1 python experiments/sentiment_generator.py --epochs 1  # a quick look
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.data.batching import SequenceDataset
from rnnkit.data.text import Vocabulary, WordTokenizer
from rnnkit.models.generator import ConditionalGenerator
from rnnkit.training import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mr_cv import load_mr

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
SENTIMENTS = ("negative", "positive")  # class ids 0 and 1


def encode(texts, vocabulary, tokenizer) -> tuple[list, list]:
    """Teacher-forcing pairs: inputs ``<s> w_1 .. w_n`` and targets ``w_1 .. w_n </s>``."""
    bos, eos = vocabulary["<s>"], vocabulary["</s>"]
    inputs, targets = [], []
    for text in texts:
        ids = vocabulary.encode(tokenizer(text))
        inputs.append(torch.tensor([bos, *ids]))
        targets.append(torch.tensor([*ids, eos]))
    return inputs, targets


def token_loss(model, batch):
    """Cross-entropy of the next token, the mean over the batch's valid steps."""
    (inputs, targets), labels, lengths = batch
    logits = model(labels, inputs, lengths=lengths)
    valid = torch.arange(inputs.shape[1], device=inputs.device) < lengths[:, None]
    return F.cross_entropy(logits[valid], targets[valid])


def sentence_nll(model, data: SequenceDataset, labels: torch.Tensor) -> torch.Tensor:
    """-log p(sentence | label) of every sentence of ``data`` (in nats), in ``data``'s order."""
    model.eval()
    nll = torch.zeros(len(data), dtype=torch.float64)
    with torch.no_grad():
        for indices in data.epoch_batches(256, 0, 0, shuffle=False):
            (inputs, targets), _, lengths = data.batch(indices)
            logits = model(labels[indices], inputs, lengths=lengths)
            per_token = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
            valid = torch.arange(inputs.shape[1]) < lengths[:, None]
            nll[indices] = (per_token * valid).sum(1).double()
    return nll


def unigram_perplexity(train_targets, test_targets, vocab_size: int) -> float:
    counts = np.bincount(torch.cat(train_targets).numpy(), minlength=vocab_size) + 1.0
    log_p = np.log(counts / counts.sum())
    test = torch.cat(test_targets).numpy()
    return math.exp(-log_p[test].mean())


def train(args, num_classes: int, train_set, val_set) -> ConditionalGenerator:
    torch.manual_seed(args.seed)
    model = ConditionalGenerator(
        args.vocab_size,
        num_classes=num_classes,
        condition_mode=args.condition_mode,
        embedding_dim=args.embedding_dim,
        hidden_size=args.hidden_size,
        embedding_dropout=args.dropout,
        output_dropout=args.dropout,
        tie_weights=True,
    )
    trainer = Trainer(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        clip_norm=1.0,
        compute_loss=token_loss,
        early_stopping=2,
        seed=args.seed,
        progress="log",
    )
    trainer.fit(model, train_set, val=val_set)
    print(f"  best epoch {trainer.best_epoch}, val loss {trainer.best_score:.3f}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--condition-mode", default="both", choices=("init", "input", "both"))
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--embedding-dim", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--min-freq", type=int, default=3)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()

    data = load_mr()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(data))
    test_rows = order[: len(data) // 10]
    rest = order[len(data) // 10 :]
    val_rows, train_rows = rest[: len(rest) // 20], rest[len(rest) // 20 :]
    tokenizer = WordTokenizer()
    texts = list(data.text)
    labels = torch.tensor([SENTIMENTS.index(label) for label in data.label])
    vocabulary = Vocabulary(min_freq=args.min_freq, specials=SPECIALS)
    vocabulary.fit(tokenizer(texts[i]) for i in train_rows)
    args.vocab_size = len(vocabulary)

    def dataset(rows, unconditional=False):
        inputs, targets = encode([texts[i] for i in rows], vocabulary, tokenizer)
        classes = torch.zeros(len(rows), dtype=torch.long) if unconditional else labels[rows]
        return SequenceDataset((inputs, targets), classes), targets

    (train_set, train_targets), (val_set, _), (test_set, test_targets) = map(
        dataset, (train_rows, val_rows, test_rows)
    )
    # The baseline's data: every sentence under the one class 0.
    baseline_train, baseline_val = (dataset(rows, True)[0] for rows in (train_rows, val_rows))
    test_labels = labels[test_rows]
    tokens = sum(len(t) for t in test_targets)
    unknown = sum(int((t == vocabulary.unk_id).sum()) for t in test_targets)
    print(
        f"MR: {len(train_rows)} training, {len(val_rows)} validation, {len(test_rows)} test "
        f"sentences; vocabulary {len(vocabulary)} words (min_freq {args.min_freq}); test: "
        f"{tokens} tokens, {100 * unknown / tokens:.1f} % <unk>"
    )

    print(f"conditional model (num_classes=2, condition_mode={args.condition_mode!r}):")
    model = train(args, 2, train_set, val_set)
    print("unconditional baseline (num_classes=1):")
    baseline = train(args, 1, baseline_train, baseline_val)

    per_sentence = {label: sentence_nll(model, test_set, torch.full_like(test_labels, label))
                    for label in (0, 1)}  # fmt: skip
    true = torch.where(test_labels == 1, per_sentence[1], per_sentence[0])
    flipped = torch.where(test_labels == 1, per_sentence[0], per_sentence[1])
    # The conditional model marginalised over the sentiment, p(s) = (p(s|neg) + p(s|pos)) / 2:
    # an unconditional model at most log 2 per sentence worse than the true condition.
    mixture = -torch.logaddexp(-per_sentence[0], -per_sentence[1]) + math.log(2)
    unconditional = sentence_nll(baseline, test_set, torch.zeros_like(test_labels))
    results = {
        "conditional, true sentiment": true,
        "conditional, flipped sentiment": flipped,
        "conditional, summed over both": mixture,
        "unconditional (num_classes=1)": unconditional,
    }
    print(f"\nheld-out perplexity per token ({len(test_rows)} sentences, {tokens} tokens):")
    for name, nll in results.items():
        print(f"  {name:32s} {math.exp(float(nll.sum()) / tokens):8.2f}")
    unigram = unigram_perplexity(train_targets, test_targets, len(vocabulary))
    print(f"  {'unigram (add-one)':32s} {unigram:8.2f}")
    helps = float(true.sum()) < float(flipped.sum())
    print(
        f"  the sentiment condition {'helps' if helps else 'does not help'} (true vs flipped). "
        f"It carries at most 1 bit a sentence, 1/{tokens / len(test_rows):.1f} bit a token: "
        f"at most {100 * (1 - 2 ** (-len(test_rows) / tokens)):.1f} % off the perplexity."
    )
    # Bayes' rule with equal priors: the sentiment under which the sentence is more probable.
    guessed = (per_sentence[1] < per_sentence[0]).long()
    accuracy = float((guessed == test_labels).float().mean())
    majority = float((test_labels == labels[train_rows].mode().values).float().mean())
    print(
        f"  the generator as a classifier, argmax_y p(sentence | y): accuracy "
        f"{100 * accuracy:.1f} % (majority class {100 * majority:.1f} %)"
    )

    generator = torch.Generator().manual_seed(args.seed)
    bos, eos = vocabulary["<s>"], vocabulary["</s>"]
    for label, sentiment in enumerate(SENTIMENTS):
        condition = torch.full((args.samples,), label)
        sampled = model.generate(
            condition, bos, eos, 60, method="sample", top_p=0.9, generator=generator
        )
        print(f"\n{sentiment} (sampled, top_p=0.9):")
        for ids in sampled:
            print("  " + " ".join(vocabulary.decode(ids)))
    print(f"\n{(time.perf_counter() - started) / 60:.1f} minutes")


if __name__ == "__main__":
    main()
