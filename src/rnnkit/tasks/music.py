"""Music: learn polyphonic scores as piano-roll frames, score them in nats per frame against
count baselines, and compose from a seed (one-to-many).

Data are ``rnnkit.data.music.Piece`` note tables: ``"bach"`` (the chorales music21 ships),
a folder of score files, one file (MIDI, MusicXML, ABC, Humdrum), or a list of pieces. Each
piece belongs to a part fixed by its name (``rnnkit.data.music.split_of``): a tenth to test,
a tenth to validation. With fewer than ``MIN_SPLIT`` pieces nothing is held out.

Keys: ``transpose="all"`` trains on every piece in all twelve keys (moved by -5..+6
semitones); ``"c"`` moves every piece, test pieces included, to C major or A minor;
``"none"`` keeps the keys as written.

The model is ``rnnkit.models.music.FrameModel``; the scores are its negative log-likelihood
per frame (nats, summed over pitches) of the sounding frames, as the literature reports
it, plus the articulation part (which held notes are struck again), and the baselines'
on the same frames: each pitch's frequency, the previous frame repeated and a chord n-gram.

    >>> composer = Composer(epochs=20).fit("bach")
    >>> composer.score(composer.read("bach"))  # on the pieces of the test part
    >>> piece, primed = composer.generate("C4,E4,G4", bars=8, seed=0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .._checks import check_integer
from ..data import music
from ..models.music import OUTPUTS, ChordNGram, FrameModel, PitchFrequency, RepeatPrevious
from . import supervised
from .estimator import Estimator
from .settings import Setting, shared, training_settings

TRANSPOSE = ("all", "c", "none")
SHIFTS = range(-5, 7)  # twelve transpositions: every key once
MIN_SPLIT = 10  # fewer pieces than this: all of them train
SCORE_FILES = (".mid", ".midi", ".mxl", ".musicxml", ".xml", ".abc", ".krn")
BASELINES = ("pitch_frequency", "repeat_previous", "chord_3gram")
LABELS = {"pitch_frequency": "pitch frequency", "repeat_previous": "repeat previous frame",
          "chord_3gram": "chord 3-gram"}  # fmt: skip


def read_pieces(data, resolution: int) -> list[music.Piece]:
    """``data`` as pieces: "bach", a folder (its score files, in name order), a score file,
    or a list of ``Piece``."""
    if isinstance(data, list | tuple) and all(isinstance(p, music.Piece) for p in data):
        pieces = list(data)
    elif data == "bach":
        pieces = music.bach_chorales(resolution)
    elif isinstance(data, str | Path) and Path(data).is_dir():
        files = sorted(p for p in Path(data).rglob("*") if p.suffix.lower() in SCORE_FILES)
        if not files:
            raise ValueError(f"data={str(data)!r} holds no score files ({', '.join(SCORE_FILES)})")
        pieces = [music.read_piece(f, resolution) for f in files]
    elif isinstance(data, str | Path):
        pieces = [music.read_piece(data, resolution)]
    else:
        raise TypeError(f"data must be 'bach', a score file or folder, or pieces; got {data!r}")
    if not pieces:
        raise ValueError("data holds no pieces")
    for piece in pieces:
        if piece.resolution != resolution:
            raise ValueError(
                f"piece {piece.name!r} has {piece.resolution} frames per quarter note, the "
                f"settings {resolution}"
            )
    return pieces


class Composer(Estimator):
    """Trains, scores and samples a polyphonic frame model (see ``rnnkit.tasks.estimator``
    for the contract).

    ``epochs`` count passes over the training pieces in every key they are trained in,
    ``batch_size`` pieces, and early stopping (``patience``) watches the validation pieces'
    NLL per frame.

    Fitted: ``model_``, ``low_`` and ``pitches_`` (the pitch range), ``baselines_``,
    ``parts_`` (the names of the pieces of each part), ``history_``, ``metrics_``.
    """

    task = "music"
    settings = (
        Setting("resolution", "16th", "A frame is this note value.", str, tuple(music.RESOLUTIONS)),
        Setting(
            "transpose",
            "all",
            "Train in all keys, move every piece to C major / A minor, or neither.",
            str,
            TRANSPOSE,
        ),
        shared("cell"),
        shared("hidden_size", default=256),
        shared("num_layers", default=2),
        shared("dropout", default=0.3),
        Setting(
            "output",
            "nade",
            "Chords drawn pitch by pitch (nade) or independent pitches "
            "(bernoulli: the literature's RNN baseline).",
            str,
            OUTPUTS,
        ),
        Setting("nade_size", 64, "NADE's hidden units."),
        shared("rnn_options"),
    )
    unit = "pieces"
    headline = ("nll_per_frame",)
    training = training_settings(epochs=30, batch_size=16, lr=1e-3, patience=5)

    def _check_settings(self) -> None:
        supervised.check_rnn_options(self, FrameModel)

    @property
    def frames_per_quarter(self) -> int:
        return music.RESOLUTIONS[self.resolution]

    # --- data --------------------------------------------------------------------------------

    def read(self, data) -> list[music.Piece]:
        self.declarations()["resolution"].check(self.resolution)
        return read_pieces(data, self.frames_per_quarter)

    def _hold_out_test(self, data, test):
        if test is not None or len(data) < MIN_SPLIT:
            return data, test
        held = [p for p in data if music.split_of(p.name) == "test"]
        return [p for p in data if music.split_of(p.name) != "test"], held or None

    def _keyed(self, pieces) -> list[music.Piece]:
        """The pieces in the keys the model reads them in: C major / A minor with
        ``transpose="c"``, as written otherwise."""
        return [music.to_c(p) for p in pieces] if self.transpose == "c" else list(pieces)

    def _rolls(self, pieces) -> list[tuple[np.ndarray, np.ndarray]]:
        """(sounding, onset) of each piece over the model's pitch range, in its keys."""
        rolls = []
        for piece in self._keyed(pieces):
            try:
                rolls.append(music.piano_roll(piece.notes, self.low_, self.pitches_))
            except ValueError as error:
                raise ValueError(f"piece {piece.name!r}: {error}, the model's range") from error
        return rolls

    # --- training ----------------------------------------------------------------------------

    def _build_model(self) -> FrameModel:
        return FrameModel(
            self.pitches_,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            cell=self.cell,
            dropout=self.dropout,
            output=self.output,
            nade_size=self.nade_size,
            rnn_options=self.rnn_options,
        )

    def _split(self, pieces, val_data):
        """The pieces of the training and validation parts, by name (see the module
        docstring), unless ``val_data`` gives the validation pieces."""
        self._dropped = {key: sum(p.dropped.get(key, 0) for p in pieces) for key in music.DROPPED}
        if val_data is not None:
            return pieces, self.read(val_data)
        split = len(pieces) >= MIN_SPLIT
        train = [p for p in pieces if not split or music.split_of(p.name) == "train"]
        held = [p for p in pieces if split and music.split_of(p.name) == "validation"]
        if not train:
            raise ValueError(f"none of the {len(pieces)} pieces falls in the training part")
        return train, held or None

    def _prepare(self, train, held):
        """The pitch range (wide enough for every transposition), and the training pieces as
        piano rolls in every key they are trained in."""
        from ..data.batching import SequenceDataset

        keyed = self._keyed(train)
        shifts = SHIFTS if self.transpose == "all" else [0]
        pitches = np.concatenate([p.notes[:, 1] for p in keyed])
        self.low_ = int(pitches.min()) + min(shifts)
        self.pitches_ = int(pitches.max()) + max(shifts) - self.low_ + 1
        self.parts_ = {"train": [p.name for p in train], "validation": [p.name for p in held or []]}
        augmented = [music.piano_roll(p.transposed(k).notes, self.low_, self.pitches_)
                     for p in keyed for k in shifts]  # fmt: skip
        sounding = [torch.from_numpy(s) for s, _ in augmented]
        onsets = [torch.from_numpy(o) for _, o in augmented]
        dataset = SequenceDataset((sounding, onsets), sounding, pad_value=False, target_pad=False)
        # The validation pieces are scored whole by val_metrics, not batched as a dataset.
        self._held_rolls = self._rolls(held) if held else []
        return dataset, None

    def _trainer_options(self, held, held_set) -> dict:
        def held_out(model) -> float:
            return self._nll(model, self._held_rolls)["nll_per_frame"]

        return {"monitor": "val_nll_per_frame", "compute_loss": _frame_loss,
                "val_metrics": {"val_nll_per_frame": held_out} if held else {}}  # fmt: skip

    def _fit_baselines(self, train, held) -> None:
        """The count baselines, on the training pieces in their own keys."""
        sounding = [s for s, _ in self._rolls(train)]
        self.baselines_ = {
            "pitch_frequency": PitchFrequency().fit(sounding),
            "repeat_previous": RepeatPrevious().fit(sounding),
            "chord_3gram": ChordNGram(3).fit(sounding),
        }
        self._train_frames = int(sum(len(s) for s in sounding))

    def _fit_metrics(self, train, held) -> dict:
        fitted = {
            "data": {
                "train": len(train),
                "validation": len(held or []),
                "train_frames": self._train_frames,
                "quantised": self._dropped,
                "pitch_range": [
                    music.pitch_name(self.low_),
                    music.pitch_name(self.low_ + self.pitches_ - 1),
                ],
            },
            "training_seconds": self.training_seconds_,
            "steps": len(self.steps_),
        }
        if held:
            fitted["validation"] = self._scores(self._held_rolls)
        return fitted

    def _nll(self, model, rolls) -> dict:
        """The model's NLL per frame on ``rolls``: sounding (the literature's), articulation,
        and their sum."""
        totals, frames = np.zeros(2), 0
        model.eval()
        with torch.no_grad():
            for sounding, onset in rolls:
                s = torch.from_numpy(sounding).float()[None]
                o = torch.from_numpy(onset).float()[None]
                parts = _log_probs(model, s, o)
                totals -= [float(part.sum()) for part in parts]
                frames += len(sounding)
        nll, articulation = totals / max(frames, 1)
        return {"nll_per_frame": nll, "articulation_nll_per_frame": articulation,
                "total_nll_per_frame": nll + articulation, "frames": frames}  # fmt: skip

    def _scores(self, rolls) -> dict:
        scores = {"model": self._nll(self.model_, rolls)}
        frames = sum(len(s) for s, _ in rolls)
        for name, baseline in self.baselines_.items():
            nll = -sum(float(baseline.log_prob(s).sum()) for s, _ in rolls) / frames
            scores[name] = {"nll_per_frame": nll, "frames": frames}
        return scores

    # --- using it ----------------------------------------------------------------------------

    def score(self, data) -> dict:
        """NLL per frame of the model and every baseline on the pieces of ``data``."""
        self._check_fitted()
        return self._scores(self._rolls(self.read(data)))

    def predict(self, data):
        """Per piece of ``data``, the probability (T, P) that each pitch sounds in each frame
        given the frames before it (the NADE marginals are not closed-form: for "nade" this is
        each pitch's probability given the true chord below it)."""
        self._check_fitted()
        out = []
        with torch.no_grad():
            for sounding, onset in self._rolls(self.read(data)):
                s = torch.from_numpy(sounding).float()[None]
                hidden, _ = self.model_(s, torch.from_numpy(onset).float()[None])
                out.append(torch.sigmoid(self.model_.sounding_logits(hidden, s))[0].numpy())
        return out

    def prime_frames(self, prime, bars: int = 2) -> tuple[np.ndarray, np.ndarray, int]:
        """(sounding, onset, frames per bar) of a prime: None (silence: nothing), notes as
        text (``"C4"``, ``"C4,E4,G4"``: struck and held for one beat), or a score file (its
        first ``bars`` bars)."""
        self._check_fitted()
        bar = 4 * self.frames_per_quarter
        if prime is None or prime == "":
            empty = np.zeros((0, self.pitches_), dtype=bool)
            return empty, empty, bar
        if isinstance(prime, str | Path) and Path(prime).is_file():
            piece = music.read_piece(prime, self.frames_per_quarter)
            bar = piece.bar or bar
            keep = piece.notes[piece.notes[:, 2] < bars * bar].copy()
            keep[:, 3] = np.minimum(keep[:, 3], bars * bar)
            piece = self._keyed([music.Piece(piece.name, keep, piece.resolution, bar=bar)])[0]
            notes = piece.notes
        else:
            pitches = music.parse_pitches(str(prime))
            beat = self.frames_per_quarter
            notes = np.array([(0, p, 0, beat) for p in pitches], dtype=np.int64)
        try:
            sounding, onset = music.piano_roll(notes, self.low_, self.pitches_)
        except ValueError as error:
            raise ValueError(f"prime={str(prime)!r}: {error}, the model's range") from error
        return sounding, onset, bar

    def generate(self, prime=None, bars: int = 8, *, temperature: float = 1.0,
                 top_p: float | None = None, seed: int | None = None,
                 prime_bars: int = 2) -> tuple[music.Piece, int]:  # fmt: skip
        """(piece, frames of prime): ``bars`` bars sampled frame by frame after the prime
        (see ``prime_frames``), from the state the prime leaves; ``temperature`` and
        ``top_p`` filter each binary choice (``rnnkit.decoding.filter_logits``); ``seed``
        makes it reproducible. The piece holds the prime, then what was drawn."""
        self._check_fitted()
        check_integer("bars", bars, 1)
        check_integer("prime_bars", prime_bars, 1)
        sounding, onset, bar = self.prime_frames(prime, prime_bars)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        frames_s, frames_o = [sounding], [onset]
        model = self.model_.eval()
        with torch.no_grad():
            hidden, state = model.initial(1)
            for s, o in zip(sounding, onset, strict=True):
                hidden, state = model.step(
                    torch.from_numpy(s).float()[None], torch.from_numpy(o).float()[None], state
                )
            previous = torch.from_numpy(sounding[-1:]).float() if len(sounding) else None
            previous = previous if previous is not None else torch.zeros(1, self.pitches_)
            for _ in range(bars * bar):
                s, o = model.sample(
                    hidden, previous, temperature=temperature, top_p=top_p, generator=generator
                )
                frames_s.append(s.bool().numpy())
                frames_o.append(o.bool().numpy())
                hidden, state = model.step(s, o, state)
                previous = s
        notes = music.roll_to_notes(np.concatenate(frames_s), np.concatenate(frames_o), self.low_)
        name = f"generated from {prime}" if prime else "generated"
        return music.Piece(name, notes, self.frames_per_quarter, bar=bar), len(sounding)

    # --- reports -----------------------------------------------------------------------------

    def table(self, scores: dict) -> list[str]:
        names = {
            "model": f"{self.cell.upper()} {self.hidden_size}x{self.num_layers}, "
            f"{self.output.upper() if self.output == 'nade' else 'Bernoulli'}"
        }
        names |= {key: LABELS[key] for key in BASELINES if key in scores}
        width = max(map(len, names.values()))
        lines = [f"{'':<{width}}{'NLL/frame':>11}{'+ articulation':>16}"]
        for key, label in names.items():
            row = scores[key]
            extra = row.get("articulation_nll_per_frame")
            more = f"{row['nll_per_frame'] + extra:>16.3f}" if extra is not None else ""
            lines.append(f"{label:<{width}}{row['nll_per_frame']:>11.3f}{more}")
        return lines

    def report(self) -> str:
        data = self.metrics_["data"]
        lines = [super().report(), ""]
        lines.append(
            f"{data['train']} training pieces ({data['train_frames']:,} frames of a "
            f"{self.resolution} note, keys: {self.transpose}), pitches "
            f"{data['pitch_range'][0]}..{data['pitch_range'][1]}; {self.metrics_['steps']:,} "
            f"steps in {self.metrics_['training_seconds']:.0f} s."
        )
        moved = data["quantised"]
        if any(moved.values()):
            lines.append(
                f"Reading the scores at this resolution moved {moved['off_grid']} notes to the "
                f"nearest frame and dropped {moved['grace']} grace notes."
            )
        return "\n".join(lines)

    # --- run directories ---------------------------------------------------------------------

    def _export_graphs(self) -> list:
        from ..export import Graph, Positional, as_state, state_inputs, state_names, state_outputs

        model, pitches = self.model_.eval(), self.pitches_
        rnn = model.rnn
        names = state_names(rnn)

        def frames(batch: int, steps: int) -> dict:
            chords = {key: (torch.rand(batch, pitches) < 0.1).float()
                      for key in ("sounding", "onset")}  # fmt: skip
            return chords | state_inputs(rnn, batch)

        def step(sounding, onset, **state):
            hidden, after = model.step(sounding, onset, as_state(state))
            return (hidden, *state_outputs(after))

        def scores(hidden, sounding):
            return model.sounding_logits(hidden, sounding), model.articulation_logits(
                hidden, sounding
            )

        def chords(batch: int, steps: int) -> dict:
            return {"hidden": torch.randn(batch, rnn.output_size),
                    "sounding": (torch.rand(batch, pitches) < 0.1).float()}  # fmt: skip

        state_axes = {name: {1: "batch"} for name in names}
        batch = {0: "batch"}
        return [
            Graph("frame_step", Positional(model, ["sounding", "onset", *names], step),
                  frames(2, 1), ["hidden", *(f"{n}_out" for n in names)],
                  {"sounding": batch, "onset": batch} | state_axes, frames),
            Graph("frame_scores", Positional(model, ["hidden", "sounding"], scores), chords(2, 1),
                  ["sounding_logits", "articulation_logits"],
                  {"hidden": batch, "sounding": batch}, chords),
        ]  # fmt: skip

    def _export_notes(self) -> str:
        return (
            "frames are piano-roll rows over data_state's pitch range (low, pitches): sounding "
            "and onset (batch, pitches) as 0/1 floats; frame_step reads the frame just made "
            "(zeros before the first) and the state (zeros to start), and returns the hidden "
            "output that predicts the next frame; frame_scores gives, teacher-forced by a "
            "sounding chord, each pitch's logit given the pitches below it (NADE; independent "
            "for bernoulli) and each held pitch's logit of being struck again. To compose, "
            "draw the pitches low to high, calling frame_scores with the chord drawn so far "
            "(a pitch's logit depends only on those below it), then the re-strikes"
        )

    def _data_state(self) -> dict:
        return {
            "low": self.low_,
            "pitches": self.pitches_,
            "parts": self.parts_,
            "pitch_frequency": self.baselines_["pitch_frequency"].probability_.tolist(),
            "flip": self.baselines_["repeat_previous"].flip_,
            "chord_3gram": self.baselines_["chord_3gram"].to_dict(),
        }

    def _restore(self, state: dict) -> None:
        self.low_, self.pitches_, self.parts_ = state["low"], state["pitches"], state["parts"]
        frequency = PitchFrequency()
        frequency.probability_ = np.asarray(state["pitch_frequency"])
        repeat = RepeatPrevious()
        repeat.flip_, repeat.first_ = state["flip"], frequency
        self.baselines_ = {"pitch_frequency": frequency, "repeat_previous": repeat,
                           "chord_3gram": ChordNGram.from_dict(state["chord_3gram"])}  # fmt: skip
        self.model_ = self._build_model()

    def _config(self) -> dict:
        return {"parts": self.parts_}

    def _write_extra(self, directory: Path) -> None:
        write_sample(self, directory / "sample", bars=8, seed=0)


def write_sample(composer: Composer, out, *, prime=None, bars=8, temperature=1.0, top_p=None,
                 seed=None, prime_bars=2) -> dict:  # fmt: skip
    """Compose and write ``out``.mid, .musicxml, .png (the piano roll, prime marked) and
    .wav; returns the piece's statistics and how the sound was made."""
    from .. import metrics, plots

    out = Path(out)
    piece, primed = composer.generate(prime, bars, temperature=temperature, top_p=top_p,
                                      seed=seed, prime_bars=prime_bars)  # fmt: skip
    if not len(piece.notes):
        raise ValueError("the model drew only silence; try a prime or a higher temperature")
    midi = out.with_suffix(".mid")
    music.write_piece(piece, midi, out.with_suffix(".musicxml"))
    sounding, _ = music.piano_roll(piece.notes, composer.low_, composer.pitches_)
    plots.plot_piano_roll(out.with_suffix(".png"), sounding, composer.low_, primed,
                          frames_per_bar=piece.bar)  # fmt: skip
    synth = music.render_wav(piece, midi, out.with_suffix(".wav"))
    return {"statistics": metrics.music_statistics(piece.notes), "sound": synth,
            "frames": piece.frames, "prime_frames": primed}  # fmt: skip


def _log_probs(model, sounding, onset, lengths=None):
    """(log p of the sounding frames, log p of the re-strikes), (B, T) each."""
    hidden, _ = model(sounding, onset, lengths=lengths)
    previous = torch.cat([torch.zeros_like(sounding[:, :1]), sounding[:, :-1]], 1)
    return (model.module if hasattr(model, "module") else model).log_prob(
        hidden, sounding, onset, previous
    )


def _frame_loss(model, batch):
    """The batch's NLL summed over its frames, and the number of frames (padding left out)."""
    (sounding, onset), _, lengths = batch
    sounding, onset = sounding.float(), onset.float()
    parts = _log_probs(model, sounding, onset, lengths=lengths)
    valid = torch.arange(sounding.shape[1], device=sounding.device) < lengths[:, None].to(
        sounding.device
    )
    total = -sum((part * valid).sum() for part in parts)
    return total, valid.sum()
