"""Scores as quantised notes and piano rolls: reading (music21), writing, transposing, splitting.

A piece is a ``Piece``: its notes as an integer table, one row per note, ``(voice, pitch,
start, end)`` in frames of ``1 / resolution`` quarter notes, ``end`` exclusive. Tied notes are
one note (a tie is a hold, not a new note), so the table keeps holds and re-articulations
apart: two quavers on one pitch are two rows, a crotchet tied over the bar line is one.

A piano roll over a pitch range ``low..low + P - 1`` is two (T, P) planes made from the table:
``sounding`` (some note covers the frame) and ``onset`` (some note starts at the frame).

music21 (the ``rnnkit[music]`` extra) reads MusicXML, MIDI, ABC and Humdrum, and ships the
Bach chorales; it is imported only by the functions that read or write files.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RESOLUTIONS = {"8th": 2, "16th": 4}  # frames per quarter note
VOICES = ("Soprano", "Alto", "Tenor", "Bass")  # the chorales' four parts, top down
DROPPED = ("grace", "off_grid")  # what reading a score counts: notes dropped, notes moved
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass
class Piece:
    """One score: ``notes`` (N, 4) int64 rows ``(voice, pitch, start, end)``, frames of
    ``1 / resolution`` quarter notes, sorted by start, voice and pitch."""

    name: str
    notes: np.ndarray
    resolution: int
    voices: tuple[str, ...] = ()  # voice names, by index; () when the source has no parts
    bar: int = 0  # frames per bar (0: unknown)
    dropped: dict = field(default_factory=dict)  # notes left out in reading, by reason

    def __post_init__(self):
        notes = np.asarray(self.notes, dtype=np.int64).reshape(-1, 4)
        order = np.lexsort((notes[:, 1], notes[:, 0], notes[:, 2]))
        self.notes = notes[order]

    @property
    def frames(self) -> int:
        return int(self.notes[:, 3].max()) if len(self.notes) else 0

    def transposed(self, semitones: int) -> Piece:
        """The piece ``semitones`` higher (lower when negative); every interval kept."""
        notes = self.notes.copy()
        notes[:, 1] += semitones
        return Piece(self.name, notes, self.resolution, self.voices, self.bar, self.dropped)


def piano_roll(notes: np.ndarray, low: int, pitches: int, frames: int | None = None):
    """(sounding, onset): (T, P) bool planes of ``notes`` over pitches ``low..low+P-1``.
    A pitch outside the range is an error, naming it."""
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 4)
    frames = int(notes[:, 3].max()) if frames is None and len(notes) else (frames or 0)
    outside = (notes[:, 1] < low) | (notes[:, 1] >= low + pitches)
    if outside.any():
        bad = sorted({pitch_name(p) for p in notes[outside, 1]})
        span = f"{pitch_name(low)}..{pitch_name(low + pitches - 1)}"
        raise ValueError(f"pitches {bad} lie outside the range {span}")
    sounding = np.zeros((frames, pitches), dtype=bool)
    onset = np.zeros((frames, pitches), dtype=bool)
    for _, pitch, start, end in notes:
        sounding[start:end, pitch - low] = True
        onset[start, pitch - low] = True
    return sounding, onset


def roll_to_notes(sounding: np.ndarray, onset: np.ndarray, low: int) -> np.ndarray:
    """The notes (voice 0) of a piano roll: each run of sounding frames of a pitch, cut where
    an onset re-articulates it; the inverse of ``piano_roll`` for notes that do not overlap
    on one pitch."""
    rows = []
    frames, pitches = sounding.shape
    for p in range(pitches):
        start = None
        for t in range(frames + 1):
            on = t < frames and sounding[t, p]
            if start is not None and (not on or onset[t, p]):
                rows.append((0, low + p, start, t))
                start = None
            if on and start is None:
                start = t
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def pitch_name(pitch: int) -> str:
    """MIDI pitch as scientific pitch notation: 60 -> C4."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def parse_pitches(text: str) -> list[int]:
    """MIDI pitches of ``"C4"`` or ``"C4,E4,G4"`` (sharps ``#``, flats ``b``)."""
    pitches = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*([A-Ga-g])([#b]?)(-?\d+)\s*", part)
        if not match:
            raise ValueError(f"prime={text!r}: {part.strip()!r} is not a note like C4, F#3 or Bb2")
        letter, accidental, octave = match.groups()
        pitch = NOTE_NAMES.index(letter.upper()) + {"#": 1, "b": -1, "": 0}[accidental]
        pitches.append(pitch + 12 * (int(octave) + 1))
    return pitches


# --- reading and writing scores (music21) -------------------------------------------------------


def _music21():
    try:
        import music21
    except ImportError as error:
        raise ImportError(
            "reading and writing scores needs music21: pip install 'rnnkit[music]'"
        ) from error
    return music21


def from_score(score, name: str, resolution: int, *, parts=None, source=None) -> Piece:
    """A music21 score as a ``Piece``. ``parts``: the part names to keep (each matched by
    its first line, e.g. the chorales' Soprano, Alto, Tenor, Bass); None keeps every part but
    percussion. Grace notes and notes off the grid of ``resolution`` are moved or dropped and
    counted in ``dropped``. ``source``: the file, as errors name it (default ``name``)."""
    music21 = _music21()
    chosen = []
    for part in score.parts if hasattr(score, "parts") and score.parts else [score]:
        # A score without parts is read as one (its partName is not a Score's attribute).
        label = str(getattr(part, "partName", "") or "").split("\r")[0].split("\n")[0].strip()
        instrument = part.getInstrument(returnDefault=False)
        if isinstance(instrument, music21.instrument.UnpitchedPercussion):
            continue
        if parts is None or (label in parts and label not in [c[0] for c in chosen]):
            chosen.append((label, part))
    if parts is not None:
        chosen.sort(key=lambda item: parts.index(item[0]))
    rows, dropped = [], dict.fromkeys(DROPPED, 0)
    for voice, (_, part) in enumerate(chosen):
        for element in part.stripTies().flatten().notes:
            length = float(element.quarterLength)
            if length == 0:
                dropped["grace"] += 1
                continue
            onset = float(element.getOffsetInHierarchy(part)) * resolution
            end = onset + length * resolution
            start, stop = round(onset), round(end)
            if start != onset or stop != end:
                dropped["off_grid"] += 1  # kept, moved to the nearest frames
            stop = max(stop, start + 1)
            for pitch in element.pitches:
                rows.append((voice, int(pitch.midi), start, stop))
    signatures = score.recurse().getElementsByClass("TimeSignature")
    bar = round(float(signatures[0].barDuration.quarterLength) * resolution) if signatures else 0
    voices = tuple(label for label, _ in chosen)
    piece = Piece(name, np.array(rows, dtype=np.int64), resolution, voices, bar, dropped)
    if not len(piece.notes):
        raise ValueError(f"{source or name}: the score has no pitched notes")
    piece.notes[:, 2:] -= piece.notes[:, 2].min()  # the first note starts the piece
    return piece


def read_piece(path, resolution: int) -> Piece:
    """A MIDI, MusicXML, ABC or Humdrum file as a ``Piece``; a file music21 cannot parse, or
    one with no pitched notes (percussion only), is an error naming it."""
    music21 = _music21()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        score = music21.converter.parse(str(path))
    except Exception as error:  # music21 raises many kinds; all mean "not a score"
        raise ValueError(f"{path}: music21 cannot read it as a score ({error})") from error
    return from_score(score, path.stem, resolution, source=path)


def bach_chorales(resolution: int, *, limit: int | None = None) -> list[Piece]:
    """The Bach chorales music21 ships (MusicXML), as their Soprano, Alto, Tenor and Bass
    parts, in catalogue order; a harmonisation that appears under two numbers is kept
    once. ``limit``: the first this many (for tests).

    Reading all of them takes a minute or two, so the whole collection is kept in
    ``$RNNKIT_CACHE`` (default ``~/.cache/rnnkit``) per resolution and music21 version."""
    music21 = _music21()
    cache = Path(os.environ.get("RNNKIT_CACHE", Path.home() / ".cache" / "rnnkit"))
    cached = cache / f"bach-chorales-{resolution}-music21-{music21.__version__}.npz"
    if limit is None and cached.is_file():
        return _read_cache(cached, resolution)
    paths = [p for p in music21.corpus.getComposer("bach") if p.suffix in (".mxl", ".xml")]
    paths.sort(key=lambda p: _catalogue_key(p.stem))
    pieces, seen = [], set()
    for path in paths:
        score = music21.corpus.parse(path)
        names = {str(p.partName or "").split("\r")[0].strip() for p in score.parts}
        if not set(VOICES) <= names:
            continue
        piece = from_score(score, path.stem, resolution, parts=VOICES)
        fingerprint = _fingerprint(piece)
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        pieces.append(piece)
        if limit is not None and len(pieces) >= limit:
            return pieces
    cache.mkdir(parents=True, exist_ok=True)
    _write_cache(cached, pieces)
    return pieces


def _write_cache(path: Path, pieces: list[Piece]) -> None:
    temporary = path.with_name(path.name + ".tmp.npz")  # renamed whole: never half a cache
    np.savez_compressed(
        temporary,
        notes=np.concatenate([p.notes for p in pieces]),
        counts=np.array([len(p.notes) for p in pieces]),
        names=np.array([p.name for p in pieces]),
        bars=np.array([p.bar for p in pieces]),
        dropped=np.array([[p.dropped.get(k, 0) for k in DROPPED] for p in pieces]),
    )
    os.replace(temporary, path)


def _read_cache(path: Path, resolution: int) -> list[Piece]:
    with np.load(path) as stored:
        tables = np.split(stored["notes"], np.cumsum(stored["counts"])[:-1])
        return [
            Piece(
                str(name),
                table,
                resolution,
                VOICES,
                int(bar),
                dict(zip(DROPPED, map(int, d), strict=True)),
            )
            for name, table, bar, d in zip(
                stored["names"], tables, stored["bars"], stored["dropped"], strict=True
            )
        ]


def _catalogue_key(stem: str) -> tuple:
    """bwv10.7 -> (10, 7): catalogue numbers sort as numbers."""
    return tuple(int(n) for n in re.findall(r"\d+", stem)) or (0,)


def _fingerprint(piece: Piece) -> str:
    """The notes, moved to start on pitch class 0, as a hash: equal for one harmonisation
    under two numbers, in any key."""
    notes = piece.notes.copy()
    notes[:, 1] -= notes[:, 1].min() // 12 * 12 + (notes[:, 1].min() % 12)
    return hashlib.sha1(notes.tobytes()).hexdigest()


def split_of(name: str) -> str:
    """The part a piece belongs to, fixed by its name: "test" for a tenth, "validation" for a
    tenth, else "train" (the first byte of the name's SHA-1, so it never changes with the
    collection or the order)."""
    bucket = hashlib.sha1(name.encode()).digest()[0] % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def to_score(piece: Piece, *, tempo: int = 80):
    """A music21 score of ``piece``: one part per voice (a piano part where it has none),
    notes sounding together in a voice written as chords."""
    music21 = _music21()
    score = music21.stream.Score()
    names = piece.voices or ("Piano",)
    for voice, label in enumerate(names):
        part = music21.stream.Part()
        part.partName = label
        part.insert(0, music21.tempo.MetronomeMark(number=tempo))
        if piece.bar:
            numerator = piece.bar * 4 // piece.resolution  # quarter notes per bar, as x/4
            part.insert(0, music21.meter.TimeSignature(f"{numerator}/4"))
        mine = piece.notes[piece.notes[:, 0] == voice]
        groups: dict = {}
        for _, pitch, start, end in mine:
            groups.setdefault((int(start), int(end)), []).append(int(pitch))
        for (start, end), pitches in sorted(groups.items()):
            length = (end - start) / piece.resolution
            element = (
                music21.note.Note(pitches[0]) if len(pitches) == 1 else music21.chord.Chord(pitches)
            )
            element.quarterLength = length
            part.insert(start / piece.resolution, element)
        score.insert(0, part)
    return score


def write_piece(piece: Piece, midi_path, musicxml_path=None) -> None:
    """``piece`` as a MIDI file and, if ``musicxml_path`` is given, a MusicXML file."""
    score = to_score(piece)
    score.write("midi", fp=str(midi_path))
    if musicxml_path is not None:
        score.makeNotation(inPlace=True)
        score.write("musicxml", fp=str(musicxml_path))


def to_c(piece: Piece) -> Piece:
    """``piece`` moved by at most a tritone so that its estimated key is C major or A minor."""
    from ..metrics import estimate_key

    tonic, mode = estimate_key(piece.notes)
    target = 0 if mode == "major" else 9
    shift = (target - tonic + 6) % 12 - 6  # the nearest: -6..5 semitones
    return piece.transposed(shift)


# --- sound ---------------------------------------------------------------------------------------

SOUNDFONTS = (  # where Debian's General MIDI soundfonts install
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/default.sf2",
)


def render_wav(piece: Piece, midi_path, wav_path, *, tempo: int = 80, rate: int = 22050) -> str:
    """Write ``piece`` (already written to ``midi_path``) as a WAV file a person can play, and
    say how: with FluidSynth and a General MIDI soundfont where both are installed, else with
    the additive synthesis below."""
    import shutil
    import subprocess

    fluidsynth = shutil.which("fluidsynth")
    soundfont = next((f for f in SOUNDFONTS if Path(f).is_file()), None)
    if fluidsynth and soundfont:
        subprocess.run(
            [fluidsynth, "-ni", "-q", "-F", str(wav_path), "-r", str(rate), soundfont,
             str(midi_path)],
            check=True, capture_output=True,
        )  # fmt: skip
        return f"FluidSynth with {Path(soundfont).name}"
    _additive(piece, wav_path, tempo=tempo, rate=rate)
    return "additive synthesis (FluidSynth or a General MIDI soundfont is not installed)"


def _additive(piece: Piece, wav_path, *, tempo: int, rate: int) -> None:
    """Each note as five harmonics falling off as 1/k, under a 10 ms attack and an
    exponential decay, mixed and normalised to 16-bit PCM."""
    import wave

    frame_seconds = 60 / tempo / piece.resolution
    audio = np.zeros(int((piece.frames * frame_seconds + 0.5) * rate) + 1)
    for _, pitch, start, end in piece.notes:
        first, length = int(start * frame_seconds * rate), int((end - start) * frame_seconds * rate)
        t = np.arange(length) / rate
        frequency = 440.0 * 2 ** ((pitch - 69) / 12)
        tone = sum(np.sin(2 * np.pi * k * frequency * t) / k for k in range(1, 6))
        envelope = (
            np.minimum(1, t / 0.01)
            * np.exp(-2.5 * t)
            * np.minimum(1, (length - np.arange(length)) / (0.01 * rate))
        )
        audio[first : first + length] += tone * envelope
    peak = np.abs(audio).max() or 1.0
    samples = (audio / peak * 0.8 * 32767).astype("<i2")
    with wave.open(str(wav_path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
