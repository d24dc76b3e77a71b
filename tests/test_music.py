"""Music: scores as notes and piano rolls (round trips on real chorales, ties, transposition),
the frame model's probabilities (hand-computed Bernoulli, NADE normalised over every chord,
carried state), the count baselines, the statistics, and the CLI end to end on a small
extract of the Bach chorales."""

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rnnkit import metrics
from rnnkit.cli import main
from rnnkit.data import music
from rnnkit.models.music import ChordNGram, FrameModel, PitchFrequency, RepeatPrevious
from rnnkit.tasks.music import Composer

music21 = pytest.importorskip("music21")

SIXTEENTH = music.RESOLUTIONS["16th"]
TINY = {"hidden_size": 16, "num_layers": 1, "nade_size": 8, "epochs": 1, "progress": "none"}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def chorales():
    """Twelve chorales: ten of the training part, one of validation and one of the test."""
    pieces = music.bach_chorales(SIXTEENTH, limit=40)
    parts = {part: [p for p in pieces if music.split_of(p.name) == part]
             for part in ("train", "validation", "test")}  # fmt: skip
    return parts["train"][:10] + parts["validation"][:1] + parts["test"][:1]


@pytest.fixture(scope="module")
def extract(tmp_path_factory, chorales):
    """A folder of the first twelve chorales' MusicXML files, as a user's own would be."""
    folder = tmp_path_factory.mktemp("chorales")
    by_name = {p.stem: p for p in music21.corpus.getComposer("bach")}
    for piece in chorales:
        shutil.copy(by_name[piece.name], folder / by_name[piece.name].name)
    return folder


def test_chorales_are_four_voices_on_the_sixteenth_grid(chorales):
    assert len(chorales) == 12
    for piece in chorales:
        assert piece.voices == music.VOICES
        assert set(piece.notes[:, 0]) == {0, 1, 2, 3}
        assert piece.bar in (12, 16)  # 3/4 or 4/4
        assert (piece.notes[:, 3] > piece.notes[:, 2]).all()
        assert piece.notes[:, 2].min() == 0


@pytest.mark.parametrize("suffix", ["mid", "musicxml"])
def test_a_score_written_and_read_back_keeps_every_note(tmp_path, chorales, suffix):
    for piece in chorales[:3]:
        midi, xml = tmp_path / f"{piece.name}.mid", tmp_path / f"{piece.name}.musicxml"
        music.write_piece(piece, midi, xml)
        back = music.read_piece(midi if suffix == "mid" else xml, SIXTEENTH)
        np.testing.assert_array_equal(back.notes, piece.notes)  # voice, pitch, onset, end


def test_the_piano_roll_gives_back_its_notes(chorales):
    for piece in chorales:
        notes = piece.notes.copy()
        notes[:, 0] = 0
        # Unisons of two voices are one note in a roll; the test keeps pieces without them.
        sounding, onset = music.piano_roll(notes, 30, 60)
        back = music.roll_to_notes(sounding, onset, 30)
        keys = {tuple(row) for row in notes}
        if len(keys) == len(notes) and not _overlapping_unisons(notes):
            assert {tuple(row) for row in back} == keys


def _overlapping_unisons(notes):
    for pitch in set(notes[:, 1]):
        spans = sorted(notes[notes[:, 1] == pitch][:, 2:].tolist())
        if any(b[0] < a[1] for a, b in itertools.pairwise(spans)):
            return True
    return False


def test_a_tie_is_a_hold_and_a_repeated_note_is_struck_again():
    part = music21.stream.Part()
    part.append(music21.meter.TimeSignature("4/4"))
    tied = [music21.note.Note("C4", quarterLength=q) for q in (3, 2)]  # over the bar line
    tied[0].tie, tied[1].tie = music21.tie.Tie("start"), music21.tie.Tie("stop")
    repeated = [music21.note.Note("C4", quarterLength=0.5) for _ in range(2)]
    for note in [*tied, *repeated, music21.note.Note("E4", quarterLength=2)]:
        part.append(note)
    score = music21.stream.Score([part.makeMeasures()])
    piece = music.from_score(score, "tie", SIXTEENTH)
    assert piece.notes[:, 1:].tolist() == [[60, 0, 20], [60, 20, 22], [60, 22, 24], [64, 24, 32]]
    sounding, onset = music.piano_roll(piece.notes, 60, 5)
    assert sounding[:24, 0].all() and onset[:, 0].nonzero()[0].tolist() == [0, 20, 22]


def test_transposition_keeps_every_interval_and_length(chorales):
    piece = chorales[0]
    for shift in (-5, 6):
        moved = piece.transposed(shift)
        np.testing.assert_array_equal(moved.notes[:, 1] - piece.notes[:, 1], shift)
        np.testing.assert_array_equal(moved.notes[:, [0, 2, 3]], piece.notes[:, [0, 2, 3]])
    tonic, mode = metrics.estimate_key(music.to_c(piece).notes)
    assert (tonic, mode) in ((0, "major"), (9, "minor"))


def test_the_split_is_fixed_by_the_name():
    names = [f"bwv{n}.6" for n in range(1, 400)]
    parts = [music.split_of(n) for n in names]
    assert parts == [music.split_of(n) for n in names]
    shares = {p: parts.count(p) / len(parts) for p in ("train", "validation", "test")}
    assert 0.05 < shares["test"] < 0.16 and 0.05 < shares["validation"] < 0.16


def test_pitches_parse_and_bad_ones_are_named():
    assert music.parse_pitches("C4") == [60]
    assert music.parse_pitches("C4, E4,G4") == [60, 64, 67]
    assert music.parse_pitches("F#3,Bb2") == [54, 46]
    assert music.pitch_name(61) == "C#4"
    with pytest.raises(ValueError, match="'H4' is not a note"):
        music.parse_pitches("C4,H4")


# --- the frame model --------------------------------------------------------------------------


def _frames(rows, steps, pitches, seed=0):
    generator = torch.Generator().manual_seed(seed)
    sounding = (torch.rand(rows, steps, pitches, generator=generator) < 0.4).double()
    onset = sounding * (torch.rand(rows, steps, pitches, generator=generator) < 0.5).double()
    previous = torch.cat([torch.zeros_like(sounding[:, :1]), sounding[:, :-1]], 1)
    onset = torch.where((sounding > 0) & (previous == 0), torch.ones_like(onset), onset)
    return sounding, onset, previous


def test_the_bernoulli_nll_is_the_hand_computed_one():
    torch.manual_seed(0)
    model = FrameModel(5, hidden_size=6, num_layers=1, output="bernoulli").double().eval()
    sounding, onset, previous = _frames(2, 4, 5)
    hidden, _ = model(sounding, onset)
    log_s, log_o = model.log_prob(hidden, sounding, onset, previous)
    q = torch.sigmoid(model.sounding(hidden))
    by_hand = (sounding * q.log() + (1 - sounding) * (1 - q).log()).sum(-1)
    torch.testing.assert_close(log_s, by_hand)
    r = torch.sigmoid(model.articulation(hidden) + model.articulation_chord(sounding))
    held = sounding * previous
    hand_o = (held * (onset * r.log() + (1 - onset) * (1 - r).log())).sum(-1)
    torch.testing.assert_close(log_o, hand_o)


@pytest.mark.parametrize("output", ["nade", "bernoulli"])
def test_a_frame_distribution_sums_to_one_over_every_chord_and_articulation(output):
    torch.manual_seed(1)
    pitches = 4
    model = FrameModel(pitches, hidden_size=5, num_layers=1, output=output, nade_size=3)
    model = model.double().eval()
    hidden = torch.randn(1, 1, 5, dtype=torch.double)
    previous = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]], dtype=torch.double)
    total = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=2 * pitches):
        s = torch.tensor(bits[:pitches], dtype=torch.double).view(1, 1, -1)
        strike = torch.tensor(bits[pitches:], dtype=torch.double).view(1, 1, -1)
        if ((strike > 0) & (s * previous == 0)).any():
            continue  # only held pitches choose; the others' onsets follow from s
        onset = torch.where((s > 0) & (previous == 0), torch.ones_like(s), strike)
        log_s, log_o = model.log_prob(hidden, s, onset, previous)
        total += float((log_s + log_o).exp().detach())
    assert total == pytest.approx(1.0, abs=1e-12)


def test_the_nade_gradients_are_right():
    torch.manual_seed(2)
    model = FrameModel(3, hidden_size=4, num_layers=1, output="nade", nade_size=2).double()
    sounding, onset, previous = _frames(2, 3, 3)
    hidden = torch.randn(2, 3, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda h: sum(p.sum() for p in model.log_prob(h, sounding, onset, previous)), (hidden,)
    )


def test_stepping_from_the_carried_state_equals_reading_the_prefix():
    torch.manual_seed(3)
    model = FrameModel(6, hidden_size=8, num_layers=2).double().eval()
    sounding, onset, _ = _frames(1, 7, 6)
    hidden, _ = model(sounding, onset)
    step_hidden, state = model.initial(1)
    stepped = [step_hidden]
    for t in range(6):
        step_hidden, state = model.step(sounding[:, t], onset[:, t], state)
        stepped.append(step_hidden)
    torch.testing.assert_close(torch.stack(stepped, 1), hidden)


def test_sampling_is_seeded_and_onsets_follow_the_chord():
    torch.manual_seed(4)
    model = FrameModel(8, hidden_size=8, num_layers=1).eval()
    hidden = torch.randn(50, 8)
    previous = (torch.rand(50, 8) < 0.5).float()
    draws = [model.sample(hidden, previous, generator=torch.Generator().manual_seed(7))
             for _ in range(2)]  # fmt: skip
    for a, b in zip(*draws, strict=True):
        torch.testing.assert_close(a, b)
    sounding, onset = draws[0]
    assert (onset <= sounding).all()  # a silent pitch is not struck
    assert (onset[(sounding > 0) & (previous == 0)] == 1).all()  # a new pitch is
    greedy, _ = model.sample(hidden, previous, temperature=0)
    assert torch.equal(greedy, model.sample(hidden, previous, temperature=0)[0])


# --- baselines and statistics ------------------------------------------------------------------


@pytest.mark.parametrize("baseline", [PitchFrequency(), RepeatPrevious(), ChordNGram(3)])
def test_each_baseline_sums_to_one_over_every_next_chord(baseline):
    rng = np.random.default_rng(0)
    rolls = [rng.random((20, 3)) < 0.4 for _ in range(4)]
    baseline.fit(rolls)
    history = rolls[0][:4]
    total = 0.0
    for bits in itertools.product([False, True], repeat=3):
        chord = np.vstack([history, np.array(bits)[None]])
        total += np.exp(baseline.log_prob(chord)[-1])
    assert total == pytest.approx(1.0)


@pytest.mark.parametrize("baseline", [PitchFrequency(), RepeatPrevious(), ChordNGram(3)])
def test_each_baseline_samples_its_own_distribution(baseline):
    """Over every three-frame roll of two pitches (64), the share of 20,000 draws is each
    roll's probability: the samples that the statistics table compares come from the model
    whose NLL is reported."""
    rng = np.random.default_rng(0)
    baseline.fit([rng.random((12, 2)) < 0.5 for _ in range(3)])
    rolls = [np.array(bits, dtype=bool).reshape(3, 2)
             for bits in itertools.product([False, True], repeat=6)]  # fmt: skip
    expected = np.exp([baseline.log_prob(roll).sum() for roll in rolls])
    assert expected.sum() == pytest.approx(1.0)
    draws = 20_000
    index = {roll.tobytes(): i for i, roll in enumerate(rolls)}
    counts = np.bincount([index[baseline.sample(3, rng).tobytes()] for _ in range(draws)],
                         minlength=len(rolls))  # fmt: skip
    assert metrics.total_variation(counts / draws, expected) < 0.03  # sampling noise ~0.01


def test_the_pitch_frequency_nll_is_the_hand_computed_one():
    rolls = [np.array([[1, 0], [1, 1], [0, 0]], dtype=bool)]
    q = np.array([(2 + 1) / (3 + 2), (1 + 1) / (3 + 2)])
    expected = np.log(q[0]) + np.log(1 - q[1])
    assert PitchFrequency().fit(rolls).log_prob(rolls[0][:1])[0] == pytest.approx(expected)


def test_the_chord_ngram_reads_back_from_its_counts():
    rng = np.random.default_rng(1)
    rolls = [rng.random((30, 5)) < 0.3 for _ in range(3)]
    ngram = ChordNGram(3).fit(rolls[:2])
    back = ChordNGram.from_dict(json.loads(json.dumps(ngram.to_dict())))
    np.testing.assert_allclose(back.log_prob(rolls[2]), ngram.log_prob(rolls[2]))


def _table(chords, length=4):
    """Notes of one chord per ``length`` frames, voices by height."""
    return np.array([(v, p, t * length, (t + 1) * length) for t, chord in enumerate(chords)
                     for v, p in enumerate(sorted(chord, reverse=True))])  # fmt: skip


def test_parallel_fifths_and_octaves_are_counted():
    # C3-G3-C4-E4 to D3-A3-D4-F#4: all four voices up a tone; of the 6 pairs moving together
    # bass-tenor keeps its fifth and bass-alto its octave.
    notes = _table([(48, 55, 60, 64), (50, 57, 62, 66)])
    assert metrics.parallel_motion_rate(notes) == pytest.approx(2 / 6)
    contrary = _table([(48, 55, 64, 67), (47, 55, 65, 67)])
    assert np.isnan(metrics.parallel_motion_rate(contrary))  # nothing moves together


def test_music_statistics_of_a_c_major_scale():
    pitches = [60, 62, 64, 65, 67, 69, 71, 72]
    scale = np.array([(0, p, i * 4, i * 4 + 4) for i, p in enumerate(pitches)])
    assert metrics.estimate_key(scale) == (0, "major")
    stats = metrics.music_statistics(scale)
    assert stats["in_key"] == 1.0 and stats["polyphony"] == 1.0 and stats["note_length"] == 4
    same = metrics.compare_pieces([scale], [scale])
    assert same["pitch_class_distance"] == 0 and same["length_distance"] == 0


# --- the estimator and the CLI -------------------------------------------------------------------


def test_the_cli_trains_evaluates_and_generates_and_loads_back(tmp_path, extract):
    out = tmp_path / "run"
    result = run("music", "train", "--data", extract, "--out", out, "--hidden-size", 16,
                 "--num-layers", 1, "--nade-size", 8, "--epochs", 1,
                 "--progress", "none")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "NLL/frame" in result.output and "chord 3-gram" in result.output
    stored = json.loads((out / "metrics.json").read_text())
    test = stored["test"]
    assert set(test) == {"model", "pitch_frequency", "repeat_previous", "chord_3gram"}
    assert stored["nll_per_frame"] == test["model"]["nll_per_frame"]
    for name in ("sample.mid", "sample.musicxml", "sample.png", "sample.wav"):
        assert (out / name).stat().st_size > 0
    evaluated = run("music", "evaluate", "--run", out, "--data", extract)
    assert evaluated.exit_code == 0, evaluated.output
    assert "repeat previous frame" in evaluated.output
    loaded = Composer.load(out)
    pieces = loaded.read(extract)
    scores = loaded.score(pieces)
    assert scores == json.loads((out / "metrics.json").read_text())["evaluations"][-1]["scores"]
    written = [run("music", "generate", "--run", out, "--prime", "C4,E4,G4", "--bars", 2,
                   "--seed", 3, "--out", tmp_path / f"piece{i}") for i in range(2)]  # fmt: skip
    for result in written:
        assert result.exit_code == 0, result.output
    first, second = (music.read_piece(tmp_path / f"piece{i}.mid", SIXTEENTH) for i in range(2))
    np.testing.assert_array_equal(first.notes, second.notes)
    assert first.notes[:3, 1:].tolist() == [[60, 0, 4], [64, 0, 4], [67, 0, 4]]  # the prime


@pytest.fixture(scope="module")
def fitted(chorales):
    return Composer(**TINY).fit(chorales)


def test_a_prime_outside_the_range_is_refused_with_the_range(fitted, tmp_path):
    with pytest.raises(ValueError, match=r"prime='C9'.*outside the range"):
        fitted.generate("C9")
    with pytest.raises(ValueError, match="bars=0 must be an integer >= 1"):
        fitted.generate("C4", bars=0)


def test_bad_files_are_named_and_nothing_is_written(tmp_path):
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"not a midi file")
    out = tmp_path / "run"
    result = run("music", "train", "--data", broken, "--out", out, "--epochs", 1)
    assert result.exit_code != 0 and "broken.mid: music21 cannot read it" in result.output
    assert not out.exists() and not (tmp_path / "run.partial").exists()
    empty = music21.stream.Score([music21.stream.Part([music21.note.Rest(quarterLength=4)])])
    empty.write("musicxml", fp=str(tmp_path / "rests.musicxml"))
    with pytest.raises(ValueError, match=r"rests\.musicxml: the score has no pitched notes"):
        music.read_piece(tmp_path / "rests.musicxml", SIXTEENTH)
    drums = music21.stream.Part([music21.instrument.BassDrum(), music21.note.Note(36)])
    music21.stream.Score([drums]).write("midi", fp=str(tmp_path / "drums.mid"))
    with pytest.raises(ValueError, match=r"drums\.mid: the score has no pitched notes"):
        music.read_piece(tmp_path / "drums.mid", SIXTEENTH)


def test_settings_are_checked_before_training():
    for settings, message in [
        ({"resolution": "32nd"}, "resolution='32nd' is not one of"),
        ({"transpose": "up"}, "transpose='up' is not one of"),
        ({"output": "softmax"}, "output='softmax' is not one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            Composer(**settings).fit([])


@pytest.mark.parametrize("synthesizer", ["additive", "fluidsynth"])
def test_a_piece_sounds_and_the_file_says_how(tmp_path, monkeypatch, synthesizer):
    import wave

    if synthesizer == "additive":
        monkeypatch.setattr(shutil, "which", lambda name: None)
    elif shutil.which("fluidsynth") is None or not any(Path(f).is_file() for f in music.SOUNDFONTS):
        pytest.skip("FluidSynth or a General MIDI soundfont is not installed")
    notes = np.array([(0, 60, 0, 8), (0, 64, 0, 8), (0, 67, 8, 16)])
    piece = music.Piece("triad", notes, SIXTEENTH)
    midi = tmp_path / "triad.mid"
    music.to_score(piece).write("midi", fp=str(midi))
    how = music.render_wav(piece, midi, tmp_path / "triad.wav", tempo=120)
    assert how.startswith("additive" if synthesizer == "additive" else "FluidSynth with")
    with wave.open(str(tmp_path / "triad.wav")) as sound:
        seconds = sound.getnframes() / sound.getframerate()
        samples = np.frombuffer(sound.readframes(sound.getnframes()), dtype=np.int16)
    assert seconds >= 2.0  # four beats at 120 per minute
    assert np.sqrt(np.mean(samples.astype(float) ** 2)) > 100  # not silence
