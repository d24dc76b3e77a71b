"""Malformed files, generated (hypothesis, seeded and bounded): every reader either reads
them or refuses them with a ValueError that names the file, never another exception
(issue 29, the fuzz suite's first part: the file readers, WAV and MIDI included)."""

import gzip
import struct
import wave

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.data import readers
from rnnkit.data.speech import read_wav

FUZZ = settings(max_examples=60, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip

# Pieces real files are made of, and the ways they go wrong: separators, quotes, blank lines,
# numbers, NaN and '?', headers, binary junk and non-UTF-8 bytes.
PIECES = st.sampled_from([
    b"text", b"label", b",", b"\t", b"\n", b"\r\n", b'"', b'""', b"good film", b"pos", b"neg",
    b"1.5", b"-3", b"nan", b"inf", b"?", b":", b"@problemName x", b"@classLabel true a b",
    b"@data", b"@univariate true", b"#", b"O", b"B-loc", b"I-loc", b" ", b"\x00", b"\xff\xfe",
    b"\xe9", b"\x1f\x8b",
])  # fmt: skip
CONTENT = st.lists(PIECES, max_size=40).map(b"".join)


def _check(read, path):
    try:
        read(path)
    except ValueError as error:  # the one error a reader raises for a bad file
        assert path.name in str(error), f"the message does not name the file: {error}"


@pytest.mark.parametrize(("name", "read"), [
    ("data.csv", readers.read_table),
    ("data.tsv", readers.read_table),
    ("data.ts", readers.read_ts),
    ("data.txt", readers.read_lines),
    ("data.bio", readers.read_conll),
])  # fmt: skip
@FUZZ
@given(content=CONTENT)
def test_a_text_reader_reads_or_names_the_file(tmp_path, name, read, content):
    path = tmp_path / name
    path.write_bytes(content)
    _check(read, path)


@FUZZ
@given(content=CONTENT)
def test_a_gzipped_table_reads_or_names_the_file(tmp_path, content):
    path = tmp_path / "data.csv.gz"
    path.write_bytes(gzip.compress(content))
    _check(readers.read_table, path)


@FUZZ
@given(content=st.binary(max_size=64))
def test_binary_readers_read_or_name_the_file(tmp_path, content):
    for name, read in (("images-idx3-ubyte", readers.read_idx), ("data.npz", readers.read_numpy)):
        path = tmp_path / name
        path.write_bytes(content)
        _check(read, path)


@FUZZ
@given(
    rows=st.integers(0, 3), width=st.integers(0, 3), values=st.sampled_from([0.0, np.nan, np.inf])
)
def test_an_npz_of_odd_shapes_reads_or_names_the_file(tmp_path, rows, width, values):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.full((rows, width), values), y=np.arange(max(rows - 1, 0)))
    _check(readers.read_numpy, path)


# --- audio and scores ----------------------------------------------------------------------------


def _wav(channels, width, rate, frames, *, tag=1, data_size=None, cut=None) -> bytes:
    """A RIFF WAV file whose header says what the arguments say, true or not."""
    block = channels * width % 2**16
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block % 2**32, block, 8 * width)
    size = len(frames) if data_size is None else data_size
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size)
    whole = b"RIFF" + struct.pack("<I", len(body) + len(frames)) + body + frames
    return whole if cut is None else whole[:cut]


@FUZZ
@given(
    channels=st.sampled_from([0, 1, 2, 3, 65535]),
    width=st.integers(0, 5),
    rate=st.sampled_from([0, 1, 8000, 16000, 2**32 - 1]),
    frames=st.binary(max_size=48),
    tag=st.sampled_from([1, 1, 3, 0xFFFE, 0]),
    data_size=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    cut=st.one_of(st.none(), st.integers(0, 80)),
)
def test_a_wav_file_reads_or_names_the_file(tmp_path, channels, width, rate, frames, tag,
                                            data_size, cut):  # fmt: skip
    path = tmp_path / "speech.wav"
    path.write_bytes(_wav(channels, width, rate, frames, tag=tag, data_size=data_size, cut=cut))
    try:
        samples, read_rate = read_wav(path)
    except ValueError as error:
        assert path.name in str(error), f"the message does not name the file: {error}"
    else:  # what is read is sound: mono samples in [-1, 1) at a real rate
        assert samples.ndim == 1 and len(samples) and read_rate > 0
        assert np.isfinite(samples).all() and np.abs(samples).max(initial=0) <= 1


@FUZZ
@given(values=st.lists(st.integers(-(2**15), 2**15 - 1), min_size=1, max_size=40))
def test_a_well_formed_wav_reads_back_exactly(tmp_path, values):
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1), writer.setsampwidth(2), writer.setframerate(8000)
        writer.writeframes(np.array(values, "<i2").tobytes())
    samples, rate = read_wav(path)
    assert rate == 8000 and np.array_equal(samples, np.array(values, np.float32) / 2**15)


# The pieces of a standard MIDI file: its chunks, events of each kind, and wrong lengths.
MIDI_PIECES = st.sampled_from([
    b"MThd", b"\x00\x00\x00\x06", b"\x00\x00", b"\x00\x01", b"\x00\x02", b"\x00\x60", b"\x00\x00",
    b"MTrk", b"\x00\x00\x00\x10", b"\xff\xff\xff\xff", b"\x00\x90\x3c\x40", b"\x60\x80\x3c\x00",
    b"\x00\xff\x2f\x00", b"\x00\xff\x51\x03\x07\xa1\x20", b"\x00\xf0\x05\x7e", b"\x81\x80\x80\x00",
    b"\x00\xc0\x05", b"\x00\x99\x24\x64", b"\x00\xff\x58\x04\x04\x02\x18\x08", b"\x00", b"\xff",
])  # fmt: skip


@FUZZ
@given(content=st.lists(MIDI_PIECES, max_size=24).map(b"".join))
def test_a_midi_file_reads_or_names_the_file(tmp_path, content):
    pytest.importorskip("music21")
    from rnnkit.data.music import read_piece

    path = tmp_path / "score.mid"
    path.write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60" + content)
    _check(lambda where: read_piece(where, 4), path)
