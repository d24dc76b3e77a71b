"""Transcription (many-to-many, unaligned): speech, or images of text lines, in; text out. A
recogniser trained with CTC, which needs no alignment of the characters to the frames.

Data are a manifest, a CSV or TSV file of ``path`` and ``transcript`` (and optionally
``speaker``: a voice, a writer or a font), the paths relative to the manifest's folder; a
folder holding ``manifest.tsv`` or ``manifest.csv``, or media files each beside a ``.txt``
transcript; or a list of ``Utterance``. ``kind`` says what the files are: ``speech`` (WAV,
any sample rate, mono or stereo: log-mel features, ``rnnkit.data.speech``) or ``image`` (a
line of text, read column by column: ``rnnkit.data.text_lines``); ``auto`` goes by the
files' suffixes.

The model is ``rnnkit.models.CTCRecogniser`` (frame stacking, a bidirectional recurrent
stack, a label and a blank at every frame), with early stopping on the validation part's
character error rate. Validation holds out whole speakers where the manifest names them, so
it measures what the test does: voices, writers or fonts the model never met.

Scores are character and word error rates (edit distance over the reference's length) of
three decodings of the model (``rnnkit.ctc``): greedy (best path), prefix beam search, and
beam search with a character n-gram language model of the training transcripts (shallow
fusion: ``lm_weight``, ``insertion_bonus``); beside them, the baselines: the empty
transcript, the training set's most frequent transcript, and ``FramewiseCTC``, the same
front end and output with an MLP for the recurrence, trained the same way.

The alphabet is the characters of the training transcripts. A character outside it in data
that is scored stays in the reference (an error no model of this alphabet can avoid) and is
counted, with a warning naming the files. A training utterance too short for its transcript
after frame stacking (CTC cannot align it) is skipped and counted, also naming the files.

    >>> recogniser = Transcriber(epochs=30).fit("digits/train.tsv")
    >>> recogniser.score("digits/test.tsv")["model"]  # {"cer": ..., "wer": ...}
    >>> recogniser.predict(["hello.wav"])  # ["three oh nine"]
"""

from __future__ import annotations

import csv
import io
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import ctc
from ..data import speech, text_lines
from ..data.batching import SequenceDataset, pad
from ..models.ngram import NGramModel
from ..models.recogniser import BLANK, CTCRecogniser, FramewiseCTC, min_frames, stacked_frames
from . import supervised
from .estimator import Estimator
from .settings import Setting, finite, shared, training_settings

KINDS = ("auto", "speech", "image")
SUFFIXES = {"speech": (".wav",), "image": (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")}
NORMALISE = ("utterance", "global")
MANIFESTS = ("manifest.tsv", "manifest.csv")
DECODINGS = ("greedy", "beam", "beam_lm")
SHOWN_FILES = 5  # files a warning names before "and N more"


@dataclass(frozen=True)
class Utterance:
    """One recording or line image: its file, its transcript (None where unknown, for
    prediction) and who spoke or wrote it (None where the data do not say)."""

    path: Path
    transcript: str | None = None
    speaker: str | None = None


def _named(paths, shown: int = SHOWN_FILES) -> str:
    paths = [str(p) for p in paths]
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(paths[:shown]) + more


def read_manifest(path: Path) -> list[Utterance]:
    """The utterances a CSV/TSV manifest lists: columns ``path``, ``transcript`` and
    optionally ``speaker``, named in a header row or in that order without one; paths
    relative to the manifest's folder. Every file must exist."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle, delimiter=delimiter) if row]
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable manifest ({error})") from error
    columns = ["path", "transcript", "speaker"]
    first = [name.strip().lower() for name in rows[0]] if rows else []
    header_given = bool(set(first) & set(columns))
    if header_given:
        header = first
        rows.pop(0)
        missing = [name for name in columns[:2] if name not in header]
        if missing:
            raise ValueError(f"{path}: the header {header} lacks the columns {missing}")
        columns = header
    if not rows:
        raise ValueError(f"{path}: the manifest lists no files")
    utterances = []
    for number, row in enumerate(rows, start=2 if header_given else 1):
        fields = dict(zip(columns, row, strict=False))
        if "transcript" not in fields:
            raise ValueError(f"{path}, line {number}: needs a path and a transcript, got {row}")
        media = (path.parent / fields["path"].strip()).resolve()
        if not media.is_file():
            header = " (a header names its columns path, transcript[, speaker])"
            raise FileNotFoundError(
                f"{path}, line {number}: no file {media}{header if number == 1 else ''}"
            )
        speaker = fields.get("speaker", "").strip() or None
        utterances.append(Utterance(media, fields["transcript"].strip(), speaker))
    return utterances


def read_utterances(data, *, transcribed: bool = True) -> list[Utterance]:
    """``data`` as utterances: a manifest (.csv, .tsv), a folder (its ``manifest.tsv`` or
    ``manifest.csv``, else its media files each with a ``.txt`` transcript beside it), a
    media file, or a list of ``Utterance``, paths or (path, transcript) pairs.
    ``transcribed``: every utterance must have a transcript (to train or score)."""
    if isinstance(data, Utterance):
        data = [data]
    if isinstance(data, str | Path):
        path = Path(data)
        if path.is_dir():
            manifest = next((path / m for m in MANIFESTS if (path / m).is_file()), None)
            utterances = read_manifest(manifest) if manifest else _read_folder(path)
        elif path.suffix.lower() in (".csv", ".tsv"):
            utterances = read_manifest(path)
        elif path.is_file():
            utterances = [Utterance(path.resolve(), _transcript_beside(path))]
        else:
            raise FileNotFoundError(f"data={str(data)!r}: no such file or folder")
    elif isinstance(data, list | tuple):
        utterances = [_utterance(item) for item in data]
    else:
        raise TypeError(
            f"data must be a manifest, a folder, a media file or a list of utterances; got "
            f"{type(data).__name__}"
        )
    if not utterances:
        raise ValueError(f"data={data!r} holds no utterances")
    if transcribed:
        untranscribed = [u.path for u in utterances if u.transcript is None]
        if untranscribed:
            raise ValueError(f"these files have no transcript: {_named(untranscribed)}")
    return utterances


def _utterance(item) -> Utterance:
    if isinstance(item, Utterance):
        return item
    if isinstance(item, str | Path):
        return Utterance(Path(item))
    if isinstance(item, list | tuple) and len(item) in (2, 3):
        return Utterance(Path(item[0]), *item[1:])
    raise TypeError(f"an utterance is an Utterance, a path or (path, transcript); got {item!r}")


def _transcript_beside(path: Path) -> str | None:
    text = path.with_suffix(".txt")
    return text.read_text(encoding="utf-8").strip() if text.is_file() else None


def _read_folder(folder: Path) -> list[Utterance]:
    suffixes = {s for kind in SUFFIXES.values() for s in kind}
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes)
    if not files:
        raise ValueError(
            f"{folder}: holds no {' or '.join(MANIFESTS)} and no media files "
            f"({', '.join(sorted(suffixes))})"
        )
    return [Utterance(p.resolve(), _transcript_beside(p)) for p in files]


def detect_kind(utterances: list[Utterance]) -> str:
    """The kind of the files, by their suffixes: speech or image; refused where they are
    mixed or neither."""
    kinds = set()
    for utterance in utterances:
        suffix = utterance.path.suffix.lower()
        kind = next((k for k, known in SUFFIXES.items() if suffix in known), None)
        if kind is None:
            raise ValueError(
                f"{utterance.path}: kind='auto' knows speech ({', '.join(SUFFIXES['speech'])}) "
                f"and images ({', '.join(SUFFIXES['image'])}); set kind"
            )
        kinds.add(kind)
    if len(kinds) > 1:
        raise ValueError(f"the data mix {sorted(kinds)} files; a recogniser reads one kind")
    return kinds.pop()


class TranscriptDataset(SequenceDataset):
    """Frames with a label sequence each, of its own length (CTC aligns them): a batch is
    ``(frames, (labels padded, label lengths) or None, frame lengths)``. ``augment``: applied
    to each utterance's frames as a batch is made (SpecAugment, in training)."""

    def __init__(self, frames, labels=None, augment=None):
        super().__init__(frames)
        self.labels, self.augment = labels, augment

    def batch(self, indices: torch.Tensor):
        rows = indices.tolist()
        frames = [self.fields[0][i] for i in rows]
        if self.augment is not None:
            frames = [self.augment(f) for f in frames]
        target = None
        if self.labels is not None:
            chosen = [self.labels[i] for i in rows]
            target = (pad(chosen), torch.tensor([len(c) for c in chosen]))
        return pad(frames), target, self.lengths[indices]


def ctc_batch_loss(model, batch):
    """(CTC loss summed over the batch's utterances, their count): the Trainer's
    ``compute_loss``; through ``model``'s forward, so a distributed wrapper sees the call."""
    frames, (labels, label_lengths), lengths = batch
    log_probs, out_lengths = model(frames, lengths)
    loss = F.ctc_loss(log_probs, labels, out_lengths, label_lengths, blank=BLANK, reduction="sum")
    return loss, len(lengths)


class Transcriber(Estimator):
    """Train, evaluate and use a CTC recogniser of speech or text-line images; see the module
    docstring.

    Fitted: ``model_`` (``CTCRecogniser``), ``framewise_`` (the ``FramewiseCTC`` baseline),
    ``kind_``, ``alphabet_`` (the characters, label i + 1 each), ``feature_mean_`` and
    ``feature_std_`` (global normalisation), ``lm_`` (the character n-gram model),
    ``baselines_`` (``most_frequent``: the transcript), ``skipped_`` (utterances too short
    to align, by part), ``history_``, ``steps_``, ``best_epoch_``, ``metrics_``.
    """

    task = "transcribe"
    about = "Speech or text-line images to text (many-to-many, unaligned): CTC recognisers."
    settings = (
        Setting(
            "kind",
            "auto",
            "What the files are: speech (WAV) or text-line images; auto: by their suffixes.",
            str,
            KINDS,
        ),
        Setting("sample_rate", 16000, "Speech is resampled to this rate (Hz)."),
        Setting("n_mels", 40, "Log-mel bands of the speech features."),
        Setting("height", 32, "Line images are scaled to this height (pixels)."),
        Setting(
            "normalise",
            "utterance",
            "Each feature to mean 0, sd 1: over the utterance, or "
            "with the training set's statistics (global).",
            str,
            NORMALISE,
        ),
        Setting(
            "spec_augment",
            False,
            "Mask random feature bands and time spans in training (SpecAugment).",
            bool,
        ),
        Setting("stack", 2, "Frames joined into one before the recurrence (frame-rate reduction)."),
        shared("cell"),
        shared("hidden_size", default=128),
        shared("num_layers", default=2),
        Setting("bidirectional", True, "Read the frames in both directions.", bool),
        shared("dropout", default=0.2),
        shared("rnn_options"),
        Setting("beam", 8, "Width of the prefix beam search."),
        Setting("lm_order", 5, "Order of the character n-gram model the beam search fuses."),
        Setting(
            "lm_weight",
            0.5,
            "Weight of the language model's log-probabilities in the beam search.",
            float,
            minimum=0,
        ),
        Setting(
            "insertion_bonus",
            1.0,
            "Added to a beam's score for each character it emits "
            "(balances the language model's cost of each).",
            float,
            rule=finite,
        ),
        shared(
            "val",
            help="Fraction held out for early stopping on the character error rate: of the "
            "speakers, where the data name them, else of the utterances; unless fit is given "
            "val_data.",
        ),
    )
    training = training_settings(epochs=40, batch_size=16, lr=1e-3, clip_norm=5.0, patience=6)
    headline = ("cer", "wer")
    unit = "utterances"

    # --- data --------------------------------------------------------------------------------

    def read(self, data) -> list[Utterance]:
        """Transcribed ``data`` (see ``read_utterances``) as utterances."""
        return read_utterances(data)

    def _split(self, data, val_data):
        fraction = self.val
        speakers = sorted({u.speaker for u in data if u.speaker is not None})
        named = all(u.speaker is not None for u in data) and len(speakers) >= 2
        if val_data is not None or not fraction or not named:
            return super()._split(data, val_data)
        order = np.random.default_rng(self.seed).permutation(len(speakers))
        count = min(max(1, round(fraction * len(speakers))), len(speakers) - 1)
        held = {speakers[i] for i in order[:count]}
        return [u for u in data if u.speaker not in held], [u for u in data if u.speaker in held]

    def _raw_features(self, utterances) -> list[torch.Tensor]:
        """Each utterance's frames before normalisation: (frames, features)."""
        frames = []
        for utterance in utterances:
            if hasattr(utterance.path, "seek"):  # bytes in memory (standard input): reread
                utterance.path.seek(0)
            try:
                if self.kind_ == "speech":
                    frames.append(
                        speech.load_features(utterance.path, self.sample_rate, n_mels=self.n_mels)
                    )
                else:
                    frames.append(text_lines.read_line_image(utterance.path, self.height))
            except ValueError as error:
                message = str(error)
                if str(utterance.path) not in message:
                    message = f"{utterance.path}: {message}"
                raise ValueError(message) from error
        return frames

    def _features(self, utterances) -> list[torch.Tensor]:
        """Each utterance's frames as the model reads them."""
        return self._normalised(self._raw_features(utterances))

    def _normalised(self, raw) -> list[torch.Tensor]:
        """Frames normalised per utterance, or by the training set's statistics."""
        if self.normalise == "global":
            return [speech.normalise(f, self.feature_mean_, self.feature_std_) for f in raw]
        return [speech.normalise(f) for f in raw]

    def _labels(self, transcript: str) -> torch.Tensor:
        """The transcript's label ids (1..); characters outside the alphabet are left out."""
        ids = self._ids
        return torch.tensor([ids[c] for c in transcript if c in ids], dtype=torch.long)

    @property
    def _ids(self) -> dict[str, int]:
        return {c: i + 1 for i, c in enumerate(self.alphabet_)}

    def _text(self, labels) -> str:
        return "".join(self.alphabet_[i - 1] for i in labels)

    @property
    def input_size(self) -> int:
        return self.n_mels if self.kind_ == "speech" else self.height

    # --- training ----------------------------------------------------------------------------

    def _prepare(self, train, held):
        self.kind_ = detect_kind(train + (held or [])) if self.kind == "auto" else self.kind
        self.alphabet_ = sorted({c for u in train for c in u.transcript})
        if not self.alphabet_:
            raise ValueError("every training transcript is empty: there is nothing to learn")
        raw = self._raw_features(train)
        if self.normalise == "global":
            stacked = torch.cat(raw)
            self.feature_mean_, self.feature_std_ = stacked.mean(0), stacked.std(0, unbiased=False)
        else:
            self.feature_mean_ = self.feature_std_ = None
        self.lm_ = self._fit_lm([u.transcript for u in train])
        self._lm_text = [u.transcript for u in train]
        self.skipped_ = {}
        train_set = self._dataset(train, "train", self._normalised(raw))
        # Read once: the validation set and the validation CER of both models use them.
        self._held_frames = self._features(held) if held else None
        held_set = self._dataset(held, "validation", self._held_frames) if held else None
        return train_set, held_set

    def _fit_lm(self, transcripts) -> NGramModel:
        """The character n-gram model of ``transcripts``, each after a boundary (id 0, the
        blank's, which no transcript holds)."""
        ids = [0]
        for transcript in transcripts:
            ids += [*self._labels(transcript).tolist(), 0]
        return NGramModel(self.lm_order, len(self.alphabet_) + 1).fit(ids)

    def _dataset(self, utterances, part: str, frames) -> TranscriptDataset:
        """The alignable ``utterances`` (their ``frames``) as a dataset to train on
        (``part``: which, for the count of those skipped and the warning that names them)."""
        labels = [self._labels(u.transcript) for u in utterances]
        keep = [
            i for i, (f, y) in enumerate(zip(frames, labels, strict=True))
            if stacked_frames(len(f), self.stack) >= min_frames(y.tolist())
        ]  # fmt: skip
        skipped = [utterances[i].path for i in sorted(set(range(len(utterances))) - set(keep))]
        self.skipped_[part] = len(skipped)
        if skipped:
            warnings.warn(
                f"{len(skipped)} {part} utterances are too short for their transcripts after "
                f"stacking {self.stack} frames (CTC cannot align them) and are skipped: "
                f"{_named(skipped)}",
                stacklevel=3,
            )
        if not keep:
            raise ValueError(
                f"no {part} utterance is long enough for its transcript with stack="
                f"{self.stack}; use a smaller stack"
            )
        augment = self._augment if part == "train" and self.spec_augment else None
        return TranscriptDataset([frames[i] for i in keep], [labels[i] for i in keep], augment)

    @staticmethod
    def _augment(frames: torch.Tensor) -> torch.Tensor:
        return speech.spec_augment(frames)

    def _build_model(self) -> CTCRecogniser:
        return CTCRecogniser(
            self.input_size, len(self.alphabet_), cell=self.cell, hidden_size=self.hidden_size,
            num_layers=self.num_layers, bidirectional=self.bidirectional, stack=self.stack,
            dropout=self.dropout, rnn_options=self.rnn_options,
        )  # fmt: skip

    def _build_framewise(self) -> FramewiseCTC:
        return FramewiseCTC(
            self.input_size, len(self.alphabet_), hidden_size=self.hidden_size,
            num_layers=self.num_layers, stack=self.stack, dropout=self.dropout,
        )  # fmt: skip

    def _check_settings(self) -> None:
        supervised.check_rnn_options(self, CTCRecogniser)

    def _trainer_options(self, held, held_set) -> dict:
        options = {"compute_loss": ctc_batch_loss}
        if held is not None:
            references = [u.transcript for u in held]
            frames = self._held_frames

            def val_cer(model) -> float:
                return ctc.cer(references, self._transcripts(self._log_probs(model, frames)))

            options |= {"monitor": "val_cer", "mode": "min", "tie_break": "val_loss",
                        "val_metrics": {"val_cer": val_cer}}  # fmt: skip
        return options

    def _fit_models(self, held, train_set, held_set) -> None:
        """The recogniser, then the frame-wise baseline on the same data, seed and training
        settings (its checkpoints in the sub-folder ``framewise``)."""
        from ..training import set_seed

        super()._fit_models(held, train_set, held_set)
        set_seed(self.seed)
        self.framewise_ = self._build_framewise()
        options = self._trainer_options(held, held_set)
        trainer = self._trainer(
            validation=held is not None, record=False, checkpoint="framewise", **options
        )
        self._train(trainer, self.framewise_, train_set, held_set)
        del self._held_frames  # read for training only

    def _fit_baselines(self, train, held) -> None:
        transcripts = Counter(u.transcript for u in train)
        self.baselines_ = {"most_frequent": transcripts.most_common(1)[0][0]}

    def _fit_metrics(self, train, held) -> dict:
        fitted = super()._fit_metrics(train, held)
        fitted["data"] |= {"kind": self.kind_, "skipped": self.skipped_}
        return fitted | {"alphabet": "".join(self.alphabet_)}

    def _models(self) -> dict:
        return {"model": self.model_, "framewise": self.framewise_}

    # --- decoding and scores -----------------------------------------------------------------

    def _log_probs(self, model, frames) -> list[np.ndarray]:
        """Each utterance's (output frames, labels + blank) log-probabilities under ``model``."""
        dataset = TranscriptDataset(frames)
        model.eval()

        def run(features, lengths):
            return model(features, lengths)[0].transpose(0, 1)

        rows = supervised.run_batches(dataset, run, model, batch_size=64)
        lengths = [stacked_frames(len(f), model.stack) for f in frames]
        return [row[:n].double().numpy() for row, n in zip(rows, lengths, strict=True)]

    def _transcripts(self, log_probs, decoding: str = "greedy") -> list[str]:
        """The transcripts of each utterance's ``log_probs`` by ``decoding`` (``DECODINGS``)."""
        if decoding == "greedy":
            return [self._text(ctc.greedy_decode(lp, BLANK)) for lp in log_probs]
        fusion = {}
        if decoding == "beam_lm":
            fusion = {"lm": ctc.ngram_scorer(self.lm_, start=0), "lm_weight": self.lm_weight,
                      "insertion_bonus": self.insertion_bonus}  # fmt: skip
        return [
            self._text(ctc.prefix_beam_search(lp, self.beam, BLANK, **fusion)[0][0])
            for lp in log_probs
        ]

    def _check_alphabet(self, utterances) -> None:
        """Warn of reference characters outside the alphabet: errors no decoding avoids."""
        known = set(self.alphabet_)
        outside = [u for u in utterances if set(u.transcript) - known]
        if outside:
            characters = sorted({c for u in outside for c in u.transcript} - known)
            count = sum(c not in known for u in outside for c in u.transcript)
            warnings.warn(
                f"{count} characters of the transcripts ({characters[:20]}) are outside the "
                f"model's alphabet and count as errors: {_named([u.path for u in outside])}",
                stacklevel=3,
            )

    def score(self, data) -> dict:
        """Character and word error rates on transcribed ``data``: ``{"model": greedy,
        "model_beam": …, "model_beam_lm": …, "framewise": …, "most_frequent": …,
        "empty": …}``, each ``{"cer": …, "wer": …}``."""
        self._check_fitted()
        utterances = self.read(data)
        self._check_alphabet(utterances)
        references = [u.transcript for u in utterances]
        frames = self._features(utterances)
        log_probs = self._log_probs(self.model_, frames)
        hypotheses = {
            f"model{'' if d == 'greedy' else '_' + d}": self._transcripts(log_probs, d)
            for d in DECODINGS
        }
        hypotheses["framewise"] = self._transcripts(self._log_probs(self.framewise_, frames))
        hypotheses["most_frequent"] = [self.baselines_["most_frequent"]] * len(references)
        hypotheses["empty"] = [""] * len(references)
        return {
            name: {"cer": ctc.cer(references, said), "wer": ctc.wer(references, said)}
            for name, said in hypotheses.items()
        }

    def table(self, scores: dict) -> list[str]:
        model = f"{'Bi' if self.bidirectional else ''}{self.cell.upper()}-CTC"
        names = {
            "model": f"{model}, greedy",
            "model_beam": f"{model}, beam {self.beam}",
            "model_beam_lm": f"{model}, beam {self.beam} + char {self.lm_order}-gram",
            "framewise": "frame-wise MLP-CTC, greedy",
            "most_frequent": "most frequent transcript",
            "empty": "empty transcript",
        }
        return supervised.score_table(scores, {"cer": "CER", "wer": "WER"}, names)

    # --- using -------------------------------------------------------------------------------

    def predict(self, data, *, decoding: str = "beam_lm") -> list[str]:
        """The transcript of each utterance of ``data`` (media files, a manifest or a folder;
        transcripts there are ignored), by ``decoding``: "greedy", "beam" or "beam_lm"."""
        self._check_fitted()
        if decoding not in DECODINGS:
            raise ValueError(f"decoding={decoding!r} must be one of {list(DECODINGS)}")
        utterances = read_utterances(data, transcribed=False)
        return self._transcripts(self._log_probs(self.model_, self._features(utterances)), decoding)

    def plot_alignment(self, path, data) -> Path:
        """Draw where the model emits each character of the first utterance of ``data``
        (``rnnkit.plots.plot_ctc_alignment``) in the PNG ``path``."""
        from .. import plots

        self._check_fitted()
        utterance = read_utterances(data, transcribed=False)[0]
        frames = self._features([utterance])[0]
        log_probs = self._log_probs(self.model_, [frames])[0]
        said = self._transcripts([log_probs])[0]
        name = getattr(utterance.path, "name", "standard input")
        return plots.plot_ctc_alignment(
            path, frames, np.exp(log_probs), self.alphabet_, self.stack, f"{name}: {said!r}"
        )

    def _export_graphs(self) -> list:
        from ..export import Graph, Positional, random_lengths

        size = self.input_size

        def sample(batch: int, frames: int) -> dict:
            return {"features": torch.randn(batch, frames, size),
                    "lengths": random_lengths(batch, frames)}  # fmt: skip

        def batch_first(features, lengths):
            log_probs, out_lengths = self.model_(features, lengths)
            return log_probs.transpose(0, 1), out_lengths

        model = Positional(self.model_, ["features", "lengths"], batch_first)
        return [
            Graph(
                "model", model, sample(2, 6), ["log_probs", "out_lengths"],
                {"features": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}}, sample,
                # The tracer proves the frame stacking for two stacked frames or more.
                minimum={"frames": 2 * self.stack - 1 if self.stack > 1 else 1},
            )
        ]  # fmt: skip

    def _export_notes(self) -> str:
        return (
            "features: normalised log-mel bands (speech: 25 ms Hann windows every 10 ms at "
            "sample_rate, HTK mel filterbank, log(energy + 1e-6)) or image columns (height "
            "pixels, ink 1); log_probs (batch, frames / stack, 1 + len(alphabet)): column 0 "
            "is the blank, column i the alphabet's character i - 1; greedy decoding takes "
            "each frame's best column, merges repeats and drops blanks; the beam search and "
            "the n-gram language model are not in the graph"
        )

    def _data_state(self) -> dict:
        def listed(tensor):
            return None if tensor is None else tensor.tolist()

        return {
            "kind": self.kind_,
            "alphabet": self.alphabet_,
            "feature_mean": listed(self.feature_mean_),
            "feature_std": listed(self.feature_std_),
            "lm_text": self._lm_text,
            "most_frequent": self.baselines_["most_frequent"],
            "skipped": self.skipped_,
        }

    def _restore(self, state: dict) -> None:
        def tensor(values):
            return None if values is None else torch.tensor(values, dtype=torch.float32)

        self.kind_, self.alphabet_ = state["kind"], list(state["alphabet"])
        self.feature_mean_ = tensor(state["feature_mean"])
        self.feature_std_ = tensor(state["feature_std"])
        self._lm_text = list(state["lm_text"])
        self.lm_ = self._fit_lm(self._lm_text)
        self.baselines_ = {"most_frequent": state["most_frequent"]}
        self.skipped_ = state["skipped"]
        self.model_, self.framewise_ = self._build_model(), self._build_framewise()


# --- what the command line runs and prints ----------------------------------------------------


def predict_lines(run, sources, *, decoding: str = "beam_lm", alignment_png=None) -> str:
    """What ``transcribe predict`` prints: the transcript of each utterance of ``sources``,
    one a line. ``sources``: media files, manifests or folders, or ``-``: one file (WAV or
    image) read from standard input. ``alignment_png``: where to draw the first utterance's
    CTC alignment."""
    recogniser = Transcriber.load(run)
    utterances = []
    for source in sources:
        if source == "-":
            utterances.append(Utterance(io.BytesIO(sys.stdin.buffer.read())))
        else:
            utterances += read_utterances(source, transcribed=False)
    if not utterances:
        raise ValueError("nothing to transcribe: give files, manifests or folders, or - (stdin)")
    texts = recogniser.predict(utterances, decoding=decoding)
    if alignment_png:
        recogniser.plot_alignment(alignment_png, utterances[0])
    return "\n".join(texts)
