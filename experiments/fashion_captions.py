"""Captioning Fashion-MNIST: each image's class name, spelled out character by character.

``ConditionalGenerator(condition_size=784)`` reads an image's pixels (scaled to [0, 1]) as its
condition and writes the name of its class ("T-shirt/top", "Trouser", ..., "Ankle boot") one
character at a time, from ``<s>`` to ``</s>``. It is trained by teacher forcing on the 60,000
training images and scored on the 10,000 test images (1,000 per class) by:

- exact match: the share of captions that are exactly the image's class name, with greedy
  decoding and with beam search (5 beams) ranking captions by ``log P / length ** a``:
  ``a = 0``, the most probable caption, and ``a = 1``, the most probable per character;
- the character error rate: the edit distance between caption and name over the name's
  length, summed over the test set;
- the share of captions that are none of the 10 names (the generator is free to spell
  anything);
- the majority baseline: always writing one class's name is right on 10 % of the test set.

Images come from Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``).

    OMP_NUM_THREADS=1 python experiments/fashion_captions.py                # about 1.5 minutes
    OMP_NUM_THREADS=1 python experiments/fashion_captions.py --epochs 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from rnnkit.data.readers import read_idx
from rnnkit.models.generator import ConditionalGenerator
from rnnkit.training import Trainer

FOLDER = Path("/usr/share/datasets/fashion-mnist")
NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
PAD, BOS, EOS = 0, 1, 2
CHARACTERS = sorted(set("".join(NAMES)))
VOCABULARY = ["<pad>", "<s>", "</s>", *CHARACTERS]


def load(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 784) in [0, 1], labels (N,)) of "train" or "t10k"."""
    images = read_idx(FOLDER / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(FOLDER / f"{split}-labels-idx1-ubyte.gz")
    pixels = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255)
    return pixels, torch.from_numpy(labels.astype(np.int64))


def spell(text: str) -> list[int]:
    return [VOCABULARY.index(ch) for ch in text]


def captions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher-forcing inputs ``<s> c_1 .. c_n``, targets ``c_1 .. c_n </s>`` and lengths,
    padded with ``<pad>``, for each label."""
    longest = max(map(len, NAMES)) + 1
    inputs = torch.full((len(NAMES), longest), PAD)
    targets = torch.full((len(NAMES), longest), PAD)
    for row, name in enumerate(NAMES):
        ids = spell(name)
        inputs[row, : len(ids) + 1] = torch.tensor([BOS, *ids])
        targets[row, : len(ids) + 1] = torch.tensor([*ids, EOS])
    lengths = torch.tensor([len(name) + 1 for name in NAMES])
    return inputs[labels], targets[labels], lengths[labels]


def caption_loss(model, batch):
    """Cross-entropy of the next character over the valid steps of the batch."""
    images, inputs, targets, lengths = batch
    # Trim to the batch's longest caption: "Ankle boot" and "T-shirt/top" need not be in it.
    steps = int(lengths.max())
    inputs, targets = inputs[:, :steps], targets[:, :steps]
    logits = model(images, inputs, lengths=lengths)
    valid = torch.arange(steps, device=inputs.device) < lengths[:, None]
    return F.cross_entropy(logits[valid], targets[valid])


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions, each costing 1."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def score(texts: list[str], labels: torch.Tensor) -> dict:
    truth = [NAMES[k] for k in labels.tolist()]
    edits = sum(edit_distance(t, n) for t, n in zip(texts, truth, strict=True))
    return {
        "exact match": float(np.mean([t == n for t, n in zip(texts, truth, strict=True)])),
        "character error rate": edits / sum(map(len, truth)),
        "not a class name": float(np.mean([t not in NAMES for t in texts])),
    }


def caption_all(model, images, method: str, **options) -> list[str]:
    texts = []
    for batch in images.split(1000):
        for ids in model.generate(batch, BOS, EOS, 20, method=method, **options):
            texts.append("".join(VOCABULARY[i] for i in ids))
    return texts


def thumbnail(image: torch.Tensor) -> list[str]:
    """The image as 14 lines of text, 2 x 2 pixels a character."""
    shades = " .:-=+*#%@"
    pooled = F.avg_pool2d(image.view(1, 1, 28, 28), 2)[0, 0]
    return ["".join(shades[min(int(v * 10), 9)] for v in row) for row in pooled.tolist()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--condition-mode", default="init", choices=("init", "input", "both"))
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--show", type=int, default=8, help="Test images to print.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()

    train_images, train_labels = load("train")
    test_images, test_labels = load("t10k")
    print(
        f"Fashion-MNIST: {len(train_images)} training and {len(test_images)} test images; "
        f"{len(VOCABULARY)} tokens ({len(CHARACTERS)} characters and <pad>, <s>, </s>)"
    )
    torch.manual_seed(args.seed)
    model = ConditionalGenerator(
        len(VOCABULARY),
        condition_size=784,
        condition_mode=args.condition_mode,
        embedding_dim=args.embedding_dim,
        hidden_size=args.hidden_size,
        cell=args.cell,
    )
    trainer = Trainer(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        clip_norm=1.0,
        compute_loss=caption_loss,
        seed=args.seed,
        progress="log",
    )
    trainer.fit(model, TensorDataset(train_images, *captions(train_labels)))
    trained = time.perf_counter()

    results = {
        "greedy": caption_all(model, test_images, "greedy"),
        # alpha = 0 ranks captions by log P(caption | image): the most probable name.
        "beam 5, a=0": caption_all(model, test_images, "beam", beam_size=5, length_penalty=0.0),
        # alpha = 1 (the default) ranks them by log P per character, which favours long names.
        "beam 5, a=1": caption_all(model, test_images, "beam", beam_size=5, length_penalty=1.0),
    }
    greedy = results["greedy"]
    majority = float((test_labels == torch.bincount(train_labels).argmax()).float().mean())
    print(f"\ntest set, {len(test_images)} images ({args.condition_mode!r} conditioning):")
    print(f"  {'':22s}" + "".join(f"{method:>13s}" for method in results))
    scores = {method: score(texts, test_labels) for method, texts in results.items()}
    for metric in scores["greedy"]:
        row = "".join(f"{100 * scores[method][metric]:12.2f}%" for method in results)
        print(f"  {metric:22s}{row}")
    print(f"  majority baseline     {100 * majority:12.2f}% exact match (one name for every image)")
    print(
        "  for scale, classifiers on this test set (the dataset's benchmark table): MLP 88.3 %, "
        "GRU+SVM 88.8 %"
    )
    invented = sorted({t for texts in results.values() for t in texts if t not in NAMES})
    print(f"  captions that are no class name: {invented[:10]}")

    print("\nsome test images, their name and the greedy caption:")
    for index in range(args.show):
        truth, caption = NAMES[int(test_labels[index])], greedy[index]
        print(f"  #{index}: {truth!r:14s} -> {caption!r}{'' if caption == truth else '  (wrong)'}")
    truths = [NAMES[k] for k in test_labels.tolist()]
    wrong = next(i for i, (t, n) in enumerate(zip(greedy, truths, strict=True)) if t != n)
    print(f"\nthe first wrong caption, test image #{wrong}: {truths[wrong]!r}")
    print(f"captioned {greedy[wrong]!r} (beam, a=0: {results['beam 5, a=0'][wrong]!r}):")
    print("\n".join("  |" + line + "|" for line in thumbnail(test_images[wrong])))
    print(
        f"\ntraining {(trained - started) / 60:.1f} minutes, captioning "
        f"{(time.perf_counter() - trained) / 60:.1f} minutes"
    )


if __name__ == "__main__":
    main()
