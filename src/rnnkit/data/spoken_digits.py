"""Connected spoken digits made with a real synthesiser: the data the ``transcribe`` task
trains and tests its speech recogniser on where no recorded corpus can be installed.

No transcribed speech corpus installs from PyPI or Debian (looked for on 2026-12-06:
FSDD, AudioMNIST, Speech Commands, VoxForge, CMU ARCTIC, TIMIT samples; none is packaged),
so this module speaks digit strings, as in TIDIGITS ("three oh nine"), with espeak-ng (GPL-3,
Debian package ``espeak-ng``) in many voices: an accent (``ACCENTS``) with a voice variant of
espeak-ng's (``variants()``: m1..m8, f1..f5, klatt, croak, whisper and some eighty more), a
speaking rate, a pitch and a gap between words drawn at random, and white noise at a random
signal-to-noise ratio. The variants are split once, by a seeded shuffle: the test part is
spoken only by variants that never speak in training, so its scores are on unseen voices.

It is synthetic speech, not recorded speech: what a model learns here says how well the
recogniser trains, not how it fares on people.

    >>> make_spoken_digits("digits", train=2000, test=400)  # digits/train.tsv, test.tsv, wav/
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from .speech import read_wav, resample

DIGITS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
TEST_VARIANTS = 0.2  # of espeak-ng's voice variants, speaking only in the test part
RATES = (120, 200)  # words per minute
PITCHES = (20, 80)  # espeak-ng's 0..99
GAPS = (0, 8)  # pause between words, units of 10 ms
SNR_DB = (10.0, 40.0)


def espeak() -> str:
    """The espeak-ng program, or a clear error saying how to install it."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise FileNotFoundError(
            "espeak-ng is not installed: the spoken-digit data are made with it "
            "(Debian/Ubuntu: apt-get install espeak-ng; macOS: brew install espeak-ng)"
        )
    return program


def variants() -> list[str]:
    """espeak-ng's voice variants (the files of its ``voices/!v`` folder), sorted."""
    found = subprocess.run(
        [espeak(), "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[1:]
    # Lines: "Pty Language Age/Gender VoiceName File ..."; File is "!v/<name>".
    names = {line.split()[4].split("/", 1)[1] for line in found if "!v/" in line}
    if not names:
        raise FileNotFoundError("espeak-ng lists no voice variants: is espeak-ng-data installed?")
    return sorted(names)


def split_variants(names: list[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """(training variants, test variants): ``TEST_VARIANTS`` of them held out by a seeded
    shuffle, so the same espeak-ng gives the same split."""
    order = np.random.default_rng(seed).permutation(len(names))
    held = max(1, round(TEST_VARIANTS * len(names)))
    test = sorted(names[i] for i in order[:held])
    return sorted(names[i] for i in order[held:]), test


def speak(text: str, voice: str, rate: int, pitch: int, gap: int) -> tuple[np.ndarray, int]:
    """(samples, sample rate) of espeak-ng saying ``text``."""
    command = [espeak(), "-v", voice, "-s", str(rate), "-p", str(pitch), "-g", str(gap)]
    wav = subprocess.run([*command, "--stdout", text], capture_output=True, check=True).stdout
    return read_wav(io.BytesIO(wav))


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``samples`` with white noise at ``snr_db`` decibels below their mean power."""
    power = float(np.mean(samples.astype(np.float64) ** 2)) or 1e-12
    noise = rng.standard_normal(len(samples)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (samples + noise).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """16-bit mono PCM, scaled down only where a sample would clip."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    scaled = samples / peak * 0.99 if peak > 0.99 else samples
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes((scaled * 32767).astype("<i2").tobytes())


def digit_string(rng: np.random.Generator, longest: int) -> str:
    """1..``longest`` digit words, as TIDIGITS' strings."""
    count = int(rng.integers(1, longest + 1))
    return " ".join(DIGITS[i] for i in rng.integers(0, len(DIGITS), count))


def make_spoken_digits(
    out,
    *,
    train: int = 2000,
    test: int = 400,
    longest: int = 5,
    rate: int = 16000,
    seed: int = 0,
) -> dict[str, Path]:
    """Write ``train`` and ``test`` utterances of connected digits under ``out``: WAV files
    (mono, 16-bit, ``rate`` Hz) in ``out/wav`` and the manifests ``train.tsv`` and
    ``test.tsv`` (``path``, ``transcript``, ``speaker``: the voice). Test voices are never
    heard in training (see the module docstring). Returns the manifests' paths."""
    out = Path(out)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_variants, test_variants = split_variants(variants(), seed)
    manifests = {}
    for part, count, pool in (("train", train, train_variants), ("test", test, test_variants)):
        rows = []
        for index in range(count):
            voice = f"{ACCENTS[rng.integers(len(ACCENTS))]}+{pool[rng.integers(len(pool))]}"
            text = digit_string(rng, longest)
            samples, recorded = speak(
                text, voice, int(rng.integers(*RATES)), int(rng.integers(*PITCHES)),
                int(rng.integers(*GAPS)),
            )  # fmt: skip
            samples = add_noise(resample(samples, recorded, rate), rng.uniform(*SNR_DB), rng)
            name = f"wav/{part}-{index:05d}.wav"
            write_wav(out / name, samples, rate)
            rows.append((name, text, voice))
        manifests[part] = out / f"{part}.tsv"
        with open(manifests[part], "w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerows([("path", "transcript", "speaker"), *rows])
    return manifests
