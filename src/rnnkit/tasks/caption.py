"""Image captioning (one-to-many): Show, Attend and Tell beside Show and Tell, the most
frequent caption and the nearest neighbour's caption, scored with BLEU-1..4 and CIDEr-D
against every reference, and, on the scene sets rnnkit makes, with caption correctness.

The data is a folder of images with a captions file in Flickr8k's or COCO's layout
(``rnnkit.data.captions``), or a scene set (``rnnkit caption make-scenes``,
``rnnkit.data.scenes``), whose ``scenes.json`` lets every caption be parsed back and checked.
The split is by image, never by caption: the set's part files where it has them (Flickr8k's,
and the scene sets', whose compositional split lives there), else a fixed random ``test``
fraction and a seeded ``val`` fraction of the images. Every (image, caption) pair is a
training example; captions are lowercased words and punctuation, cut at ``max_length``.

The baselines (Devlin et al. 2015 found the nearest neighbour strong on real sets):

- ``show_and_tell``: the same decoder without attention, the image its first state
  (Vinyals et al. 2015), trained on the same budget (``baseline=False`` leaves it out);
- ``nearest_neighbour``: of the captions of the 5 training images nearest in pixel space
  (8 × 8 thumbnails), the one that agrees best with the others (mean unigram and bigram F1),
  Devlin et al.'s consensus caption;
- ``most_frequent``: the training caption written most often (ties: the first).
"""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from .. import metrics
from ..data.captions import CaptionSet, load_image, read_caption_set
from ..data.text import Vocabulary, attach_punctuation, make_tokenizer
from ..models.captioner import ImageCaptioner
from . import supervised
from .estimator import Estimator
from .settings import Setting, existing_file, finite, shared, training_settings
from .supervised import stratified_split

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
BOS, EOS = 2, 3  # the ids of <s> and </s>
THUMBNAIL = 8  # the side of the nearest-neighbour baseline's pixel space
NEIGHBOURS = 5
DECODE_BATCH = 64


class _CaptionedImages:
    """Images with their captions, for the Trainer: ``images`` (N, side, side, 3) uint8 and
    ``captions`` (the caption ids of each image). A batch holds images and every caption of
    each, so an image is encoded once a step: ``(images (B, 3, side, side) in [0, 1],
    (image_rows (M,), target_in (M, T), target_out (M, T)))``, a row per caption,
    ``target_in`` = ``<s>`` + caption and ``target_out`` = caption + ``</s>``, padded with
    ``<pad>`` and -100 (which the loss ignores)."""

    def __init__(self, images: torch.Tensor, captions: list[list[list[int]]]):
        self.images, self.captions = images, captions

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, i: int):
        return self.batch(torch.tensor([i]))

    def epoch_batches(self, batch_size: int, seed: int, epoch: int, shuffle: bool) -> list:
        from ..data.batching import epoch_generator

        if not shuffle:
            return list(torch.arange(len(self)).split(batch_size))
        order = torch.randperm(len(self), generator=epoch_generator(seed, epoch))
        return list(order.split(batch_size))

    def batch(self, indices: torch.Tensor):
        from ..data.batching import pad

        rows = indices.tolist()
        owners = [k for k, i in enumerate(rows) for _ in self.captions[i]]
        captions = [ids for i in rows for ids in self.captions[i]]
        target_in = pad([torch.tensor([BOS, *ids]) for ids in captions], 0)
        target_out = pad([torch.tensor([*ids, EOS]) for ids in captions], -100)
        return pixels(rows, self.images), (torch.tensor(owners), target_in, target_out)


def pixels(rows, images: torch.Tensor) -> torch.Tensor:
    """Images ``rows`` of the uint8 block ``images`` (N, side, side, 3) as the model reads
    them: floats in [0, 1], (B, 3, side, side)."""
    return images[list(rows)].permute(0, 3, 1, 2).float() / 255


def thumbnails(images: torch.Tensor) -> torch.Tensor:
    """The nearest-neighbour baseline's pixel space: each image of the uint8 block (N, side,
    side, 3) averaged down to THUMBNAIL × THUMBNAIL × 3, as uint8 (N, 3 · THUMBNAIL²)."""
    small = torch.nn.functional.adaptive_avg_pool2d(pixels(range(len(images)), images), THUMBNAIL)
    return (small * 255).round().to(torch.uint8).flatten(1)


def _overlap(a: list[str], b: list[str]) -> float:
    """Mean F1 of the unigrams and of the bigrams of two token lists."""
    total = 0.0
    for n in (1, 2):
        x = Counter(zip(*(a[i:] for i in range(n)), strict=False))
        y = Counter(zip(*(b[i:] for i in range(n)), strict=False))
        both = sum((x & y).values())
        total += 2 * both / (sum(x.values()) + sum(y.values())) if both else 0.0
    return total / 2


def consensus(candidates: list[str]) -> str:
    """The caption of ``candidates`` that agrees best with the others (``_overlap``)."""
    tokens = [text.split() for text in candidates]
    scores = [
        sum(_overlap(tokens[i], tokens[j]) for j in range(len(tokens)) if j != i)
        for i in range(len(tokens))
    ]
    return candidates[int(np.argmax(scores))]


def bleu_scores(hypotheses: list[str], references: list[list[str]]) -> dict:
    """Corpus BLEU-1..4 (sacrebleu, 13a tokenization, lowercased) against every reference
    of each image; an image with fewer references than the most repeats its own, which
    changes neither the clipped counts nor the closest reference length."""
    try:
        from sacrebleu.metrics import BLEU
    except ImportError as error:
        raise ImportError("BLEU needs sacrebleu: pip install 'rnnkit[text]'") from error
    most = max(map(len, references))
    streams = [[refs[k % len(refs)] for refs in references] for k in range(most)]
    return {
        f"bleu{n}": BLEU(max_ngram_order=n, lowercase=True).corpus_score(hypotheses, streams).score
        for n in (1, 2, 3, 4)
    }


class Captioner(Estimator):
    """Trains and uses an image captioner (see ``rnnkit.tasks.estimator`` for the contract).

    The model is ``rnnkit.models.ImageCaptioner``; early stopping (``patience``) watches the
    validation loss; captions are written by beam search of ``beam_size`` with its length
    normalisation (``length_penalty``). ``score`` returns, for the model and each baseline,
    BLEU-1..4 and CIDEr-D, and on a scene set the correctness of the captions
    (``rnnkit.data.scenes.correctness``).

    Fitted: ``tokenizer_``, ``vocabulary_``, ``model_``, ``show_and_tell_`` (or None),
    ``baselines_`` (the most frequent caption, the nearest neighbours' thumbnails and
    captions), ``history_``, ``steps_``, ``best_epoch_``, ``metrics_``.
    """

    task = "caption"
    about = "Caption images (one-to-many): an attending decoder beside its baselines."
    headline = ("cider_d", "bleu4")
    unit = "images"
    # A batch is of images, each with all its captions (Flickr8k's five: 160 rows a step).
    training = training_settings(epochs=20, batch_size=32, lr=2e-3, clip_norm=5.0, patience=3)
    settings = (
        Setting("side", 64, "Images are made side x side pixels (shorter side scaled, centre)."),
        Setting(
            "channels",
            (32, 64, 128),
            "Channels of each convolution block of the encoder (each halves the image).",
            tuple,
        ),
        Setting(
            "encoder_weights",
            None,
            "Start the encoder from this local file: a caption run's model.safetensors, or "
            "the encoder's state dict (.safetensors or .pt); nothing is downloaded.",
            str,
            optional=True,
            rule=existing_file,
        ),
        Setting("freeze_encoder", False, "Keep the loaded encoder's weights as they are.", bool),
        shared("cell"),
        shared("embedding_dim", default=64),
        shared("hidden_size", default=128),
        shared("num_layers"),
        Setting(
            "attention",
            True,
            "Attend over the image's regions (Show, Attend and Tell); off: Show and Tell.",
            bool,
        ),
        Setting(
            "attention_penalty",
            1.0,
            "Weight of the doubly stochastic regulariser: each region attended once in all.",
            float,
            minimum=0,
        ),
        shared("dropout", default=0.2),
        shared("rnn_options"),
        shared("min_freq", default=2, help="Rarer words become <unk>."),
        Setting("max_length", 30, "Longest caption in words: training cuts, generation stops."),
        Setting("beam_size", 3, "Beam of the captions written."),
        Setting("length_penalty", 1.0, "Beam score = log p / length^this.", float, rule=finite),
        Setting("baseline", True, "Also train Show and Tell (no attention) beside it.", bool),
        shared(
            "val",
            default=0.1,
            fraction="(0, 1)",
            help="Fraction of the images held out "
            "for early stopping (without the set's own validation part).",
        ),
        Setting(
            "test",
            0.2,
            "Fraction of the images held out for the test without --test or the set's own "
            "test part (a fixed random choice whatever the seed).",
            float,
            fraction="(0, 1)",
            flags=("--test-fraction",),
        ),
    )

    def _check_settings(self) -> None:
        supervised.check_rnn_options(self, ImageCaptioner)
        channels = self.channels
        if not channels or any(not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(f"channels={channels!r} must be positive integers, one per block")
        if self.freeze_encoder and not self.encoder_weights:
            raise ValueError("freeze_encoder=True keeps loaded weights: give encoder_weights")
        if self.side % (1 << len(channels)):
            raise ValueError(
                f"side={self.side} must be a multiple of 2^{len(channels)}: each of the "
                f"{len(channels)} blocks of channels={tuple(channels)} halves the image"
            )

    # --- data --------------------------------------------------------------------------------

    def read(self, data, images=None) -> CaptionSet:
        """A ``CaptionSet``: from a folder or captions file (``read_caption_set``), its
        images in the folder ``images`` where given, else found beside it; or as given."""
        return data if isinstance(data, CaptionSet) else read_caption_set(data, images)

    def _hold_out_test(self, data: CaptionSet, test):
        """The set's own test part where it has one; else a fixed random ``test`` fraction
        of the images (a seed of its own, the same whatever the model's seed)."""
        if test is not None:
            return data, test
        if data.parts.get("test"):
            return data.split_off("test")
        keep, hold = stratified_split(np.zeros(len(data)), self.test, 1234)
        if len(hold) == 0:
            raise ValueError(
                f"test={self.test} of {len(data)} images holds out none for the test: give "
                "more images, a larger fraction, or test data (--test)"
            )
        return data.subset(keep), data.subset(hold)

    def _split(self, data: CaptionSet, val_data):
        if val_data is None and data.parts.get("validation"):
            return data.split_off("validation")
        return super()._split(data, val_data)

    def _subset(self, data: CaptionSet, rows):
        return data.subset(rows)

    def _words(self, text: str) -> list[str]:
        return self.tokenizer_(text)

    def _normal(self, text: str) -> str:
        """``text`` as every caption is scored and shown: lowercased words, punctuation
        attached."""
        return attach_punctuation(" ".join(self._words(text)))

    def _images(self, data: CaptionSet) -> torch.Tensor:
        """The images of ``data`` as one uint8 block (N, side, side, 3)."""
        return torch.from_numpy(
            np.stack([load_image(data.folder / name, self.side) for name in data.names])
        )

    def _dataset(self, data: CaptionSet) -> _CaptionedImages:
        captions = [
            [self.vocabulary_.encode(self._words(text)[: self.max_length]) for text in texts]
            for texts in data.captions
        ]
        return _CaptionedImages(self._images(data), captions)

    def _prepare(self, train: CaptionSet, held: CaptionSet | None):
        self.tokenizer_ = make_tokenizer("word", lowercase=True)
        self.vocabulary_ = Vocabulary(min_freq=self.min_freq, specials=SPECIALS)
        self.vocabulary_.fit(self._words(text) for texts in train.captions for text in texts)
        train_set = self._dataset(train)
        return train_set, self._dataset(held) if held is not None else None

    # --- training ----------------------------------------------------------------------------

    def _build_model(self, attention: bool | None = None) -> ImageCaptioner:
        model = ImageCaptioner(
            len(self.vocabulary_),
            side=self.side,
            channels=tuple(self.channels),
            embedding_dim=self.embedding_dim,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            cell=self.cell,
            attention=self.attention if attention is None else attention,
            dropout=self.dropout,
            rnn_options=self.rnn_options,
        )
        if self.encoder_weights and vars(self).get("_places") is not None:  # fitting, not loading
            self._load_encoder(model)
        return model

    def _load_encoder(self, model: ImageCaptioner) -> None:
        """The encoder's weights from ``encoder_weights`` (a whole captioner's, whose keys
        start with "encoder.", or the encoder's alone); frozen with ``freeze_encoder``."""
        path = Path(self.encoder_weights)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            weights = load_file(path)
        else:
            weights = torch.load(path, map_location="cpu", weights_only=True)
        prefix = "encoder."
        if any(key.startswith(prefix) for key in weights):  # a whole captioner's weights
            weights = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        try:
            model.encoder.load_state_dict(weights)
        except RuntimeError as error:
            raise ValueError(
                f"encoder_weights={str(path)!r} does not fit an encoder of side={self.side} and "
                f"channels={tuple(self.channels)}: {str(error).splitlines()[0]}"
            ) from None
        model.encoder.requires_grad_(not self.freeze_encoder)

    def _loss(self, model, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(Cross-entropy summed over the captions' words, plus ``attention_penalty`` times
        the doubly stochastic regulariser, mean_r (1 - sum_t alpha_tr)^2 over each caption's
        words, weighted by its length; the number of words): the Trainer divides."""
        images, (rows, target_in, target_out) = batch
        real = target_out != -100
        if model.attends:
            logits, weights = model(images, target_in, image_rows=rows, return_attention=True)
            coverage = (weights * real.unsqueeze(-1)).sum(1)  # (captions, regions)
            # The mean over regions, a caption's worth per word: once the Trainer divides
            # by the words, lambda times the mean over captions, beside the mean loss a word.
            missed = ((1 - coverage) ** 2).mean(1) * real.sum(1)
            penalty = self.attention_penalty * missed.sum()
        else:
            logits, penalty = model(images, target_in, image_rows=rows), 0.0
        loss = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), target_out.flatten(), ignore_index=-100, reduction="sum"
        )
        return loss + penalty, real.sum()

    def _trainer_options(self, held, held_set) -> dict:
        return {"compute_loss": self._loss}

    def _fit_models(self, held, train_set, held_set) -> None:
        super()._fit_models(held, train_set, held_set)
        self.show_and_tell_ = None
        if self.baseline and self.attention:
            from ..training import set_seed

            set_seed(self.seed)
            self.show_and_tell_ = self._build_model(attention=False)
            trainer = self._trainer(validation=held is not None, record=False,
                                    checkpoint="show_and_tell", progress="none",
                                    **self._trainer_options(held, held_set))  # fmt: skip
            self._train(trainer, self.show_and_tell_, train_set, held_set)
        self._train_images = train_set.images  # for the nearest neighbour, fitted next

    def _fit_baselines(self, train: CaptionSet, held) -> None:
        texts = [text for texts in train.captions for text in texts]
        counts = Counter(self._normal(text) for text in texts)
        self.baselines_ = {
            "most_frequent": counts.most_common(1)[0][0],
            "thumbnails": thumbnails(vars(self).pop("_train_images")),
            "captions": [[self._normal(t) for t in texts] for texts in train.captions],
        }

    # --- captions ----------------------------------------------------------------------------

    def _write(self, model: ImageCaptioner, images: torch.Tensor, *, beam_size=None) -> list:
        """The caption ``model`` writes of each of ``images`` (N, side, side, 3): token ids,
        ``</s>`` left out; beam search of ``beam_size`` (default the setting's), never
        emitting padding, ``<unk>`` or ``<s>``."""
        from .. import decoding

        beam = self.beam_size if beam_size is None else beam_size
        banned = [*self.vocabulary_.unwanted_ids(), BOS]
        written = []
        with torch.no_grad():
            for rows in torch.arange(len(images)).split(DECODE_BATCH):
                state = model.encode(pixels(rows.tolist(), images))
                start = torch.full((len(rows),), BOS)
                found = decoding.beam_search(
                    model, state, start, self.max_length + 1, EOS, beam_size=beam,
                    length_penalty=self.length_penalty, banned=banned,
                )  # fmt: skip
                written += [[t for t in row[0].tokens if t != EOS] for row in found]
        return written

    def _text(self, ids: list[int]) -> str:
        return attach_punctuation(" ".join(self.vocabulary_.tokens[i] for i in ids))

    def _nearest(self, images: torch.Tensor) -> list[str]:
        """The nearest-neighbour baseline's caption of each of ``images``."""
        known = self.baselines_["thumbnails"].float()
        distances = torch.cdist(thumbnails(images).float(), known)
        nearest = distances.topk(min(NEIGHBOURS, len(known)), largest=False).indices
        captions = self.baselines_["captions"]
        return [consensus([c for i in row.tolist() for c in captions[i]]) for row in nearest]

    def caption(self, images, *, beam_size: int | None = None) -> list[str]:
        """The caption of each image: paths to image files (any size and colour mode), or
        uint8 arrays (N, side, side, 3)."""
        self._check_fitted()
        block = self._block(images)
        return [self._text(ids) for ids in self._write(self.model_, block, beam_size=beam_size)]

    def predict(self, images) -> list[str]:
        """``caption`` with the estimator's beam."""
        return self.caption(images)

    def _block(self, images) -> torch.Tensor:
        """``images`` as the uint8 block (N, side, side, 3) the model reads: a ``CaptionSet``
        or a folder with captions (its images), image files, or such a block."""
        if isinstance(images, str | Path) and Path(images).is_dir():
            images = self.read(images)
        if isinstance(images, CaptionSet):
            return self._images(images)
        if isinstance(images, np.ndarray | torch.Tensor):
            block = torch.as_tensor(np.asarray(images), dtype=torch.uint8)
            if block.dim() != 4 or tuple(block.shape[1:]) != (self.side, self.side, 3):
                raise ValueError(
                    f"images must be (N, {self.side}, {self.side}, 3) uint8, got "
                    f"{tuple(block.shape)}"
                )
            return block
        paths = [images] if isinstance(images, str | Path) else list(images)
        if not paths:
            raise ValueError("images is empty: give at least one image")
        return torch.from_numpy(np.stack([load_image(path, self.side) for path in paths]))

    def attention_map(self, image) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(the image (side, side, 3) uint8, the words of its greedy caption with ``</s>``,
        the weights (T, R)): where the decoder looked as it wrote each word."""
        self._check_fitted()
        if not self.model_.attends:
            raise ValueError("this model has no attention (attention=False)")
        block = self._block([image] if isinstance(image, str | Path) else image)[:1]
        ids = self._write(self.model_, block, beam_size=1)[0] + [EOS]
        target_in = torch.tensor([[BOS, *ids[:-1]]])
        with torch.no_grad():
            _, weights = self.model_(pixels([0], block), target_in, return_attention=True)
        words = [self.vocabulary_.tokens[i] for i in ids]
        return block[0].numpy(), words, weights[0].numpy()

    # --- scores ------------------------------------------------------------------------------

    def score(self, data) -> dict:
        """BLEU-1..4 and CIDEr-D of the model and of each baseline on ``data`` (a captioned
        set), against all the references of each image; on a scene set, also the
        correctness of the captions (``rnnkit.data.scenes.correctness``)."""
        from ..data import scenes

        self._check_fitted()
        data = self.read(data)
        images = self._images(data)
        references = [[self._normal(t) for t in texts] for texts in data.captions]
        written = {"model": [self._text(ids) for ids in self._write(self.model_, images)]}
        if self.show_and_tell_ is not None:
            ids = self._write(self.show_and_tell_, images)
            written["show_and_tell"] = [self._text(row) for row in ids]
        written["nearest_neighbour"] = self._nearest(images)
        written["most_frequent"] = [self.baselines_["most_frequent"]] * len(data)
        truth = _scene_truth(data)
        scores = {}
        # CIDEr-D counts n-grams of words split on spaces: punctuation stands apart, as the
        # COCO evaluation's tokenizer leaves it.
        spaced = [[" ".join(self._words(r)) for r in refs] for refs in references]
        for name, captions in written.items():
            scores[name] = bleu_scores(captions, references)
            words = [" ".join(self._words(c)) for c in captions]
            scores[name]["cider_d"] = metrics.cider_d(words, spaced)
            if truth is not None:
                scores[name] |= scenes.correctness(captions, truth)
        shown = min(12, len(data))  # the contact sheet of the run: the last part scored
        self._shown = (images[:shown].numpy(), written["model"][:shown],
                       [refs[0] for refs in references[:shown]])  # fmt: skip
        return scores

    def table(self, scores: dict) -> list[str]:
        columns = ["bleu1", "bleu4", "cider_d"]
        if "object_precision" in scores["model"]:
            columns += ["object_precision", "object_recall", "count_accuracy", "exact"]
        heads = {"bleu1": "BLEU-1", "bleu4": "BLEU-4", "cider_d": "CIDEr-D",
                 "object_precision": "obj P", "object_recall": "obj R",
                 "count_accuracy": "count", "exact": "exact"}  # fmt: skip
        width = max(map(len, scores))
        lines = [" " * width + "".join(f"{heads[c]:>9}" for c in columns)]
        for name, entry in scores.items():
            cells = "".join(
                f"{entry[c]:>9.2f}" if c.startswith(("bleu", "cider")) else f"{entry[c]:>9.1%}"
                for c in columns
            )
            lines.append(f"{name:<{width}}{cells}")
        return lines

    def report(self) -> str:
        data = self.metrics_.get("data", {})
        return (
            f"{super().report()}\nTraining took {self.metrics_['training_seconds'] / 60:.1f} "
            f"min on {data.get('train', 0):,} images ({data.get('pairs', 0):,} captions)."
        )

    def _fit_metrics(self, train, held) -> dict:
        fitted = super()._fit_metrics(train, held)
        fitted["data"]["pairs"] = sum(map(len, train.captions))
        fitted["training_seconds"] = self.training_seconds_
        return fitted

    # --- run directories ---------------------------------------------------------------------

    def _models(self) -> dict:
        models = {"model": self.model_}
        if self.show_and_tell_ is not None:
            models["show_and_tell"] = self.show_and_tell_
        return models

    def _data_state(self) -> dict:
        neighbours = self.baselines_["thumbnails"]
        return {
            "vocabulary": self.vocabulary_.to_dict(),
            "show_and_tell": self.show_and_tell_ is not None,
            "most_frequent": self.baselines_["most_frequent"],
            "captions": self.baselines_["captions"],
            # uint8 thumbnails as base64: a few hundred bytes an image, not a JSON list
            "thumbnails": {"shape": list(neighbours.shape),
                           "base64": base64.b64encode(neighbours.numpy().tobytes()).decode()},
        }  # fmt: skip

    def _restore(self, state: dict) -> None:
        self.tokenizer_ = make_tokenizer("word", lowercase=True)
        self.vocabulary_ = Vocabulary.from_dict(state["vocabulary"])
        stored = state["thumbnails"]
        raw = np.frombuffer(base64.b64decode(stored["base64"]), dtype=np.uint8)
        self.baselines_ = {
            "most_frequent": state["most_frequent"],
            "captions": state["captions"],
            "thumbnails": torch.from_numpy(raw.reshape(stored["shape"]).copy()),
        }
        self.model_ = self._build_model()
        self.show_and_tell_ = self._build_model(attention=False) if state["show_and_tell"] else None

    def _export_graphs(self) -> list:
        return caption_graphs(self.model_)

    def _export_notes(self) -> str:
        return (
            "Images are made side x side RGB in [0, 1] (shorter side scaled, middle square, "
            "channels first) before the encoder; the caption is written outside the graphs by "
            "greedy or beam search over decoder_step, from <s> (id 2) to </s> (id 3), never "
            "emitting <pad>, <unk> or <s>; the words are data_state's vocabulary. Show and "
            "Tell and the baselines are not exported."
        )

    def _write_extra(self, directory: Path) -> None:
        from ..plots import plot_contact_sheet

        if getattr(self, "_shown", None):
            plot_contact_sheet(directory / "contact_sheet.png", *self._shown)


def caption_graphs(model: ImageCaptioner) -> list:
    """The graphs of a captioner: ``encoder`` (images in, the decoding state out) and
    ``decoder_step`` (the previous word and the state in, the next word's logits and the
    decoder's new state out)."""
    from ..export import Graph, Positional
    from ..models.captioner import CaptionState

    model = model.eval()
    side, lstm = model.encoder.side, len(model.decoder.state_sizes) == 2
    carried = ["h", "c"] if lstm else ["h"]
    fields = carried + (["keys", "prepared"] if model.attends else [])

    def images(batch: int, steps: int) -> dict:
        return {"images": torch.rand(batch, 3, side, side)}

    def tensors(state: CaptionState) -> tuple:
        rnn = state.rnn if lstm else (state.rnn,)
        return (*rnn, *((state.keys, state.prepared) if model.attends else ()))

    def encode(images):
        return tensors(model.encode(images))

    def step_inputs(batch: int, steps: int) -> dict:
        with torch.no_grad():
            state = encode(images(batch, steps)["images"])
        tokens = {"tokens": torch.randint(4, model.vocab_size, (batch,))}
        return tokens | dict(zip(fields, state, strict=True))

    def step(tokens, **state):
        rnn = (state["h"], state["c"]) if lstm else state["h"]
        logits, after = model._step(
            model.embedding(tokens),
            CaptionState(rnn, state.get("keys"), state.get("prepared"), None),
        )
        return (logits, *(after.rnn if lstm else (after.rnn,)))

    free = {"h": {1: "batch"}, "c": {1: "batch"}, "keys": {0: "batch"}, "prepared": {0: "batch"}}
    example = images(2, 1)
    return [
        Graph("encoder", Positional(model, example, encode), example, fields,
              {"images": {0: "batch"}}, images),
        Graph("decoder_step", Positional(model, ["tokens", *fields], step), step_inputs(2, 1),
              ["logits", *(f"{name}_out" for name in carried)],
              {"tokens": {0: "batch"}} | {name: free[name] for name in fields}, step_inputs),
    ]  # fmt: skip


def _scene_truth(data: CaptionSet) -> list | None:
    """The things of each image of ``data`` where it comes from a scene set (its
    ``scenes.json`` beside the captions), else None."""
    from ..data.scenes import read_scenes

    folder = Path(data.source).parent
    if not (folder / "scenes.json").is_file():
        return None
    truth = read_scenes(folder)
    return [truth[name] for name in data.names] if all(n in truth for n in data.names) else None
