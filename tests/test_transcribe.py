"""The transcribe task: manifests and folders read, bad input named, unalignable utterances
skipped and counted, padding invariance through the task, and the CLI end to end on the
spoken-digit extract (speech) and on lines rendered in matplotlib's fonts (images)."""

import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rnnkit.cli import main
from rnnkit.data import text_lines
from rnnkit.data.spoken_digits import write_wav
from rnnkit.tasks.transcribe import (
    Transcriber,
    Utterance,
    detect_kind,
    read_manifest,
    read_utterances,
)

DIGITS = Path(__file__).parent / "data" / "spoken_digits"
TINY = {"hidden_size": 8, "num_layers": 1, "epochs": 1, "batch_size": 8, "progress": "none"}


def _copy_digits(folder: Path) -> Path:
    target = folder / "digits"
    shutil.copytree(DIGITS, target)
    return target


def _tone(path: Path, seconds: float, rate: int = 8000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    write_wav(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return path


# --- reading ----------------------------------------------------------------------------------


def test_a_manifest_reads_with_or_without_a_header_and_resolves_paths(tmp_path):
    _tone(tmp_path / "a.wav", 0.5)
    (tmp_path / "with.tsv").write_text("path\ttranscript\tspeaker\na.wav\tone two\tanna\n")
    (tmp_path / "without.csv").write_text("a.wav,one two\n")
    for name in ("with.tsv", "without.csv"):
        [utterance] = read_manifest(tmp_path / name)
        assert utterance.path == (tmp_path / "a.wav").resolve()
        assert utterance.transcript == "one two"
    assert read_manifest(tmp_path / "with.tsv")[0].speaker == "anna"


def test_a_folder_pairs_media_with_transcripts_beside_them(tmp_path):
    _tone(tmp_path / "x.wav", 0.5)
    (tmp_path / "x.txt").write_text("nine\n")
    [utterance] = read_utterances(tmp_path)
    assert utterance.transcript == "nine"
    _tone(tmp_path / "y.wav", 0.5)  # no transcript: refused for training, fine to predict
    with pytest.raises(ValueError, match=r"y\.wav"):
        read_utterances(tmp_path)
    assert len(read_utterances(tmp_path, transcribed=False)) == 2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("path\ttranscript\nmissing.wav\tone\n", "line 2: no file"),
        ("path\ttranscript\n", "lists no files"),
        ("path\ttext\na.wav\tone\n", "lacks the columns"),
        ("file\ttext\na.wav\tone\n", "line 1: no file .*a header names its columns"),
        ("a.wav\n", "needs a path and a transcript"),
    ],
)
def test_a_bad_manifest_is_refused_naming_the_manifest(tmp_path, text, match):
    _tone(tmp_path / "a.wav", 0.5)
    (tmp_path / "m.tsv").write_text(text)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        read_manifest(tmp_path / "m.tsv")


def test_the_kind_follows_the_suffixes_and_mixed_kinds_are_refused(tmp_path):
    assert detect_kind([Utterance(Path("a.wav")), Utterance(Path("b.WAV"))]) == "speech"
    assert detect_kind([Utterance(Path("a.png"))]) == "image"
    with pytest.raises(ValueError, match="mix"):
        detect_kind([Utterance(Path("a.wav")), Utterance(Path("b.png"))])
    with pytest.raises(ValueError, match=r"a\.mp3"):
        detect_kind([Utterance(Path("a.mp3"))])


@pytest.mark.parametrize("content", [b"", b"RIFF garbage", None])
def test_an_unreadable_or_empty_wav_is_named(tmp_path, content):
    digits = _copy_digits(tmp_path)
    bad = digits / "wav" / "train-00003.wav"
    if content is None:  # a valid header and no samples
        with wave.open(str(bad), "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(8000)
    else:
        bad.write_bytes(content)
    with pytest.raises(ValueError, match=r"train-00003\.wav"):
        Transcriber(**TINY).fit(digits / "train.tsv")


# --- training and scoring -----------------------------------------------------------------------


def test_an_utterance_too_short_to_align_is_skipped_and_counted(tmp_path):
    digits = _copy_digits(tmp_path)
    _tone(digits / "wav" / "short.wav", 0.08)  # 0.08 s: 6 frames, 3 after stacking 2
    with open(digits / "train.tsv", "a") as manifest:
        manifest.write("wav/short.wav\tseven seven seven\tnobody\n")
    with pytest.warns(UserWarning, match=r"1 train utterances .*short.wav"):
        recogniser = Transcriber(**TINY, val=0).fit(digits / "train.tsv")
    assert recogniser.skipped_ == {"train": 1}
    assert recogniser.metrics_["data"]["skipped"] == {"train": 1}


def test_characters_outside_the_alphabet_are_counted_as_errors_with_a_warning(tmp_path):
    digits = _copy_digits(tmp_path)
    recogniser = Transcriber(**TINY, val=0).fit(digits / "train.tsv")
    manifest = (digits / "test.tsv").read_text().replace("six three", "six thr33")
    (digits / "odd.tsv").write_text(manifest)
    with pytest.warns(UserWarning, match=r"2 characters .*\['3'\].*test-00000.wav"):
        scores = recogniser.score(digits / "odd.tsv")
    assert scores["empty"] == {"cer": 1.0, "wer": 1.0}


def test_validation_holds_out_whole_speakers(tmp_path):
    recogniser = Transcriber(**TINY, val=0.25)
    train, held = recogniser._split(recogniser.read(DIGITS / "train.tsv"), None)
    assert held and {u.speaker for u in train}.isdisjoint({u.speaker for u in held})


def test_an_utterance_alone_reads_as_in_a_padded_batch(tmp_path):
    recogniser = Transcriber(**TINY, val=0, stack=3).fit(DIGITS / "train.tsv")
    utterances = recogniser.read(DIGITS / "test.tsv")
    frames = recogniser._features(utterances)
    together = recogniser._log_probs(recogniser.model_, frames)
    for one, batched in zip(frames, together, strict=True):
        [alone] = recogniser._log_probs(recogniser.model_, [one])
        np.testing.assert_allclose(alone, batched, atol=1e-5)


def test_images_train_and_score_with_global_normalisation_and_spec_augment(tmp_path):
    manifests = text_lines.make_text_lines(tmp_path / "lines", train=16, test=4)
    settings = {**TINY, "normalise": "global", "spec_augment": True, "val": 0}
    recogniser = Transcriber(**settings).fit(manifests["train"])
    assert recogniser.kind_ == "image"
    assert recogniser.model_.rnn.input_size == 2 * recogniser.height
    scores = recogniser.score(manifests["test"])
    assert set(scores) == {"model", "model_beam", "model_beam_lm", "framewise",
                           "most_frequent", "empty"}  # fmt: skip
    loaded = Transcriber.load(recogniser.save(tmp_path / "run"))
    assert loaded.predict(manifests["test"]) == recogniser.predict(manifests["test"])


def test_the_line_renderer_reads_back_ink_as_one(tmp_path):
    rng = np.random.default_rng(0)
    font = text_lines.font_files()[0]
    pixels = text_lines.render_line("ink", font, 32, rng)
    assert pixels.shape[0] == 32 and pixels.dtype == np.uint8
    from PIL import Image

    Image.fromarray(pixels).save(tmp_path / "dark_on_light.png")
    Image.fromarray(255 - pixels).save(tmp_path / "light_on_dark.png")
    a = text_lines.read_line_image(tmp_path / "dark_on_light.png")
    b = text_lines.read_line_image(tmp_path / "light_on_dark.png")
    assert a.shape == (pixels.shape[1], 32)
    torch.testing.assert_close(a, b, atol=1 / 255, rtol=0)
    assert a.mean() < 0.5  # mostly paper: 0


def test_fonts_are_split_by_family():
    train, test = text_lines.split_fonts(text_lines.font_files())
    assert test and {text_lines.family(f) for f in train}.isdisjoint(
        {text_lines.family(f) for f in test}
    )


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_spoken_digits_are_made_with_unseen_test_voices(tmp_path):
    from rnnkit.data import spoken_digits

    manifests = spoken_digits.make_spoken_digits(tmp_path, train=6, test=3, rate=8000)
    train, test = (read_manifest(manifests[p]) for p in ("train", "test"))
    assert len(train) == 6 and len(test) == 3
    variants = [{u.speaker.split("+")[1] for u in part} for part in (train, test)]
    assert variants[0].isdisjoint(variants[1])
    for utterance in train:
        assert set(utterance.transcript.split()) <= set(spoken_digits.DIGITS)


# --- the command line -------------------------------------------------------------------------


def test_the_cli_trains_evaluates_and_predicts_and_loads_back_identically(tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    trained = runner.invoke(main, [
        "transcribe", "train", "--data", str(DIGITS / "train.tsv"), "--test",
        str(DIGITS / "test.tsv"), "--epochs", "2", "--hidden-size", "16", "--num-layers", "1",
        "--progress", "none", "--out", str(run),
    ])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    for row in ("greedy", "beam 8 + char 5-gram", "frame-wise MLP-CTC", "most frequent"):
        assert row in trained.output
    evaluated = runner.invoke(
        main, ["transcribe", "evaluate", "--run", str(run), "--data", str(DIGITS / "test.tsv")]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "CER" in evaluated.output
    wav = DIGITS / "wav" / "test-00000.wav"
    png = tmp_path / "alignment.png"
    predicted = runner.invoke(
        main, ["transcribe", "predict", "--run", str(run), str(wav), "--alignment-png", str(png)]
    )
    assert predicted.exit_code == 0, predicted.output
    assert png.stat().st_size > 0
    expected = Transcriber.load(run).predict([wav])
    assert predicted.output.splitlines() == expected
    piped = runner.invoke(
        main, ["transcribe", "predict", "--run", str(run), "-"], input=wav.read_bytes()
    )
    assert piped.exit_code == 0, piped.output
    assert piped.output.splitlines() == expected


def test_the_cli_names_a_bad_file(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    (tmp_path / "m.tsv").write_text("bad.wav\tone\n")
    result = CliRunner().invoke(main, [
        "transcribe", "train", "--data", str(tmp_path / "m.tsv"), "--out", str(tmp_path / "run"),
        "--val", "0", "--progress", "none",
    ])  # fmt: skip
    assert result.exit_code != 0
    assert "bad.wav" in result.output and "not a readable PCM WAV" in result.output
    assert not (tmp_path / "run").exists()


def test_make_data_writes_image_lines(tmp_path):
    result = CliRunner().invoke(main, [
        "transcribe", "make-data", "--kind", "image", "--out", str(tmp_path / "lines"),
        "--train", "3", "--test", "2",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(read_manifest(tmp_path / "lines" / "test.tsv")) == 2


def test_predict_runs_as_a_module(tmp_path):
    # The same command as a user types it: a subprocess, standard input a WAV file.
    run = Transcriber(**TINY, val=0).fit(DIGITS / "train.tsv").save(tmp_path / "run")
    wav = (DIGITS / "wav" / "test-00001.wav").read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit", "transcribe", "predict", "--run", str(run), "-",
         "--decoding", "greedy"],
        input=wav, capture_output=True, check=True,
    )  # fmt: skip
    assert done.stdout.decode().splitlines() == Transcriber.load(run).predict(
        [DIGITS / "wav" / "test-00001.wav"], decoding="greedy"
    )


def test_make_data_without_espeak_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = CliRunner().invoke(main, [
        "transcribe", "make-data", "--kind", "speech", "--out", str(tmp_path / "digits"),
    ])  # fmt: skip
    assert result.exit_code == 1
    assert "espeak-ng is not installed" in result.output and "apt-get install" in result.output


def test_fonts_of_one_family_cannot_be_split():
    dejavu = [f for f in text_lines.font_files() if text_lines.family(f) == "DejaVu Sans"]
    with pytest.raises(ValueError, match="1 families: need two or more"):
        text_lines.split_fonts(dejavu)
