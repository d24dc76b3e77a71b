"""Malformed files, generated (hypothesis, seeded and bounded): every reader either reads
them or refuses them with a ValueError that names the file, never another exception
(issue 29, the fuzz suite's first part: the file readers)."""

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.data import readers

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
