"""File readers: what each format returns, and every refusal naming the file and the line."""

import gzip
import io
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.readers import (
    FORMATS,
    detect_format,
    read_conll,
    read_idx,
    read_lines,
    read_numpy,
    read_table,
    read_ts,
)

VOWELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sequences"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def write(path: Path, text: str) -> Path:
    """Write ``text`` (gzip-compressed when the name ends in .gz) and return the path."""
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def at(path: Path, line: int | None = None) -> str:
    """The regex for the start of an error about ``path`` (and ``line``)."""
    return re.escape(f"{path}:{line}: " if line is not None else f"{path}: ")


# --- detect_format -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("reviews.csv", "table"),
        ("reviews.TSV", "table"),
        ("a.tab.gz", "table"),
        ("train.ts", "ts"),
        ("train.ts.gz", "ts"),
        ("ner.conll", "conll"),
        ("ner.bio", "conll"),
        ("x.iob.gz", "conll"),
        ("x.bioes", "conll"),
        ("t10k-images-idx3-ubyte.gz", "idx"),
        ("train-labels-idx1-ubyte", "idx"),
        ("data.idx", "idx"),
        ("x.npy", "numpy"),
        ("x.npz", "numpy"),
        ("lines.txt", "text"),
        ("dir.with.dots/lines.txt.gz", "text"),
    ],
)
def test_detect_format_from_the_extension(name, expected):
    assert detect_format(name) == expected


def test_detect_format_override_is_validated_and_unknown_endings_list_the_known():
    assert detect_format("sentences.txt", fmt="conll") == "conll"
    assert set(FORMATS) == {"table", "ts", "conll", "idx", "numpy", "text"}
    with pytest.raises(ValueError, match=r"format 'csv' is not one of \['table', 'ts'"):
        detect_format("a.csv", fmt="csv")
    with pytest.raises(ValueError, match=r"data\.json: cannot tell the format.*\.csv.*--format"):
        detect_format("data.json")
    with pytest.raises(ValueError, match="numpy files cannot be read gzip-compressed"):
        detect_format("x.npy.gz")


# --- read_table ----------------------------------------------------------------------------------


def test_read_table_csv_with_quotes_blank_lines_and_labels_as_strings(tmp_path):
    path = write(
        tmp_path / "data.csv",
        'id,text,label\n1,"Great, really great",1\n\n2,NA,pos\n3,"two\nlines", 1.0 \n',
    )
    texts, labels = read_table(path)
    assert texts == ["Great, really great", "NA", "two\nlines"]
    assert labels == ["1", "pos", "1.0"]
    texts, labels = read_table(path, label_col=None)
    assert labels is None and len(texts) == 3


def test_read_table_tsv_gz_and_other_column_names(tmp_path):
    path = write(tmp_path / "data.tsv.gz", "sentence\tsentiment\na, b\t0\nc\t1\n")
    assert read_table(path, text_col="sentence", label_col="sentiment") == (
        ["a, b", "c"],
        ["0", "1"],
    )
    semicolons = write(tmp_path / "data.txt", "text;label\nx;1\n")
    assert read_table(semicolons, sep=";") == (["x"], ["1"])


def test_read_table_quotes_false_keeps_double_quotes_as_written(tmp_path):
    path = write(tmp_path / "glue.tsv", 'sentence\tlabel\n"Great" movie\t1\nsay "hi\t0\n')
    assert read_table(path, "sentence", quotes=False) == (['"Great" movie', 'say "hi'], ["1", "0"])
    assert read_table(path, "sentence")[0][0] == "Great movie"  # the CSV rule
    with pytest.raises(TypeError, match="quotes must be True or False, got 'no'"):
        read_table(path, "sentence", quotes="no")


def test_read_table_missing_column_names_it_and_the_columns_present(tmp_path):
    path = write(tmp_path / "data.csv", "review,stars\ngood,5\n")
    with pytest.raises(
        ValueError, match=at(path) + r"no column 'text'; the columns are \['review', 'stars'\]"
    ):
        read_table(path)
    with pytest.raises(ValueError, match=r"no column 'label'"):
        read_table(path, text_col="review")
    tabs = write(tmp_path / "data2.csv", "text\tlabel\na\t1\n")
    with pytest.raises(ValueError, match=r"one column only: is sep=',' the file's separator"):
        read_table(tabs)


def test_read_table_empty_text_or_label_names_the_line(tmp_path):
    # Line 1 header, 2 a row, 3-4 one quoted two-line row, 5 blank, 6 the empty text.
    path = write(tmp_path / "data.csv", 'text,label\nfine,1\n"two\nlines",0\n\n   ,1\n,0\n')
    with pytest.raises(
        ValueError, match=at(path, 6) + r"the text \(column 'text'\) is empty \(2 rows in all\)"
    ):
        read_table(path)
    path = write(tmp_path / "labels.csv", "text,label\nfine,1\nno label,\n")
    with pytest.raises(ValueError, match=at(path, 3) + r"the label \(column 'label'\) is empty"):
        read_table(path)
    assert read_table(path, label_col=None)[0] == ["fine", "no label"]


def test_read_table_refuses_rows_with_more_fields_than_the_header(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\nhello,1\nhi, there,2\n")
    with pytest.raises(ValueError, match=at(path, 3) + "3 fields where the header has 2 .*quote"):
        read_table(path)
    # When every row has one field too many, pandas would silently make the first an index.
    path = write(tmp_path / "b.csv", "text,label\nhello, you,1\nhi, there,2\n")
    with pytest.raises(
        ValueError, match=at(path, 2) + "the rows have 3 fields where the header has 2"
    ):
        read_table(path)


def test_read_table_refuses_empty_files_and_headers_without_rows(tmp_path):
    with pytest.raises(ValueError, match=at(tmp_path / "e.csv") + "the file is empty"):
        read_table(write(tmp_path / "e.csv", ""))
    with pytest.raises(ValueError, match="no rows under the header"):
        read_table(write(tmp_path / "h.csv", "text,label\n"))
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="text_col and label_col are both 'text'"):
        read_table(write(tmp_path / "x.csv", "text\na\n"), label_col="text")


# --- read_lines ----------------------------------------------------------------------------------


def test_read_lines_strips_and_refuses_inner_blank_lines(tmp_path, monkeypatch):
    path = write(tmp_path / "in.txt.gz", "\ufefffirst line \n  second\r\n   \n\n")
    assert read_lines(path) == ["first line", "second"]
    with pytest.raises(ValueError, match=r"<stream>:2: the line is blank"):
        read_lines(io.StringIO("a\n\nb"))
    monkeypatch.setattr("sys.stdin", io.StringIO(" from stdin \n"))
    assert read_lines("-") == ["from stdin"]


def test_read_lines_refuses_a_blank_file_and_bad_bytes_with_the_line(tmp_path):
    blank = write(tmp_path / "blank.txt", "\n  \n")
    with pytest.raises(ValueError, match=at(blank) + "no text: every line is blank"):
        read_lines(blank)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"ok\nalso ok\ncaf\xe9\n")
    with pytest.raises(ValueError, match=at(latin, 3) + "not UTF-8 text"):
        read_lines(latin)
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(gzip.compress(b"a\n" * 1000)[:20])
    with pytest.raises(ValueError, match=re.escape(str(broken)) + ":[0-9]+: broken gzip data"):
        read_lines(broken)


# --- read_conll ----------------------------------------------------------------------------------

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER


-DOCSTART- -X- O O
New\tS-LOC
York\tO
"""


def test_read_conll_sentences_documents_and_columns(tmp_path):
    path = write(tmp_path / "train.conll.gz", CONLL)
    sentences = read_conll(path)
    assert sentences == [
        (["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"]),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
        (["New", "York"], ["S-LOC", "O"]),
    ]
    chunks = read_conll(write(tmp_path / "a.conll", CONLL.split("\n\n\n")[0]), tag_col=2)
    assert chunks[0][1] == ["B-NP", "B-VP", "B-NP", "I-NP"]


def test_read_conll_tabs_keep_spaces_inside_tokens(tmp_path):
    path = write(tmp_path / "a.bio", "New York\tB-LOC\ncity\tO\n")
    assert read_conll(path) == [(["New York", "city"], ["B-LOC", "O"])]


def test_read_conll_untagged_input_for_predict(tmp_path):
    path = write(tmp_path / "in.txt", "Peter\nruns\n\nHello\n")
    assert read_conll(path, tags=False) == [(["Peter", "runs"], None), (["Hello"], None)]


def test_read_conll_too_few_columns_names_file_and_line(tmp_path):
    path = write(tmp_path / "a.conll", "EU B-ORG\nrejects\n")
    with pytest.raises(
        ValueError,
        match=at(path, 2)
        + r"1 column \('rejects'\), too few for the token column 0 and tag column -1 \(pass tags=False",
    ):
        read_conll(path)
    path = write(tmp_path / "b.conll", "EU NNP B-ORG\n\nx y\n")
    with pytest.raises(ValueError, match=at(path, 3) + "2 columns"):
        read_conll(path, tag_col=2)
    with pytest.raises(ValueError, match="token_col and tag_col are both 1"):
        read_conll(path, token_col=1, tag_col=1)


def test_read_conll_refuses_tags_outside_bio_and_bioes(tmp_path):
    path = write(tmp_path / "a.conll", "EU B-ORG\nx O\n\ny U-PER\n")
    with pytest.raises(ValueError, match=at(path, 4) + r"tag 'U-PER' is not 'O' or B-/I-/E-/S-"):
        read_conll(path)
    path = write(tmp_path / "b.conll", "EU B-\n")
    with pytest.raises(ValueError, match=at(path, 1) + "tag 'B-'"):
        read_conll(path)
    path = write(tmp_path / "c.conll", "EU o\n")
    with pytest.raises(ValueError, match=at(path, 1) + "tag 'o'"):
        read_conll(path)


def test_read_conll_refuses_a_file_without_sentences(tmp_path):
    path = write(tmp_path / "a.conll", "-DOCSTART- O\n\n\n")
    with pytest.raises(ValueError, match=at(path) + "no sentences"):
        read_conll(path)


# --- read_ts -------------------------------------------------------------------------------------

TS_HEADER = """# a comment
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b
@data
"""


def test_read_ts_small_multivariate_file_with_missing_values(tmp_path):
    path = write(tmp_path / "tiny.ts", TS_HEADER + "1,2,3:4,?,6:a\n\n0.5:-1e3:b\n")
    series, labels = read_ts(path)
    assert labels == ["a", "b"]
    assert [s.shape for s in series] == [(3, 2), (1, 2)]
    assert all(s.dtype == np.float32 for s in series)
    np.testing.assert_array_equal(series[0], [[1, 4], [2, np.nan], [3, 6]])
    np.testing.assert_array_equal(series[1], [[0.5, -1000]])


def test_read_ts_univariate_equal_length_and_regression_targets(tmp_path):
    text = "@univariate true\n@equalLength true\n@seriesLength 2\n@targetLabel true\n@data\n"
    path = write(tmp_path / "reg.ts.gz", text + "1,2:0.5\n3,4:-2\n")
    series, labels = read_ts(path)
    assert labels == ["0.5", "-2"] and [s.tolist() for s in series] == [[[1], [2]], [[3], [4]]]
    unlabelled = write(tmp_path / "nolabel.ts", "@classLabel false\n@data\n1,2:3,4\n5:6\n")
    series, labels = read_ts(unlabelled)
    assert labels is None and [s.shape for s in series] == [(2, 2), (1, 2)]


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        ("1:2:3:a\n", 10, "3 dimensions, but @dimensions says 2"),
        ("1,2:a\n", 10, r"1 dimensions, but @dimensions says 2 \(is the label missing\?\)"),
        (
            "1,2:3,4:a\n1,2:3:b\n",
            11,
            r"the dimensions of one case must have one length, got \[2, 1\]",
        ),
        ("1,2:3,4:c\n", 10, r"label 'c' is not one of the @classLabel labels \['a', 'b'\]"),
        ("1,x:3,4:a\n", 10, "dimension 1 holds 'x', not a number or '\\?'"),
        ("1,2::a\n", 10, "dimension 2 has no values"),
    ],
)
def test_read_ts_content_errors_name_file_and_line(tmp_path, data, line, message):
    path = write(tmp_path / "bad.ts", TS_HEADER + data)
    with pytest.raises(ValueError, match=at(path, line) + message):
        read_ts(path)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("@timeStamps true\n@data\n(0,1):a\n", 1, "@timeStamps true is not supported"),
        ("@univariate maybe\n", 1, "@univariate must be followed by true or false"),
        ("@dimensions two\n", 1, "@dimensions must be followed by a positive integer"),
        ("@classLabel true\n", 1, "@classLabel true must be followed by the labels"),
        ("@problemName x\n1,2:a\n", 2, "a data line before @data"),
        (
            "@univariate true\n@dimensions 3\n@data\n",
            3,
            "@univariate true contradicts @dimensions 3",
        ),
        (
            "@equalLength true\n@data\n1,2\n1\n",
            4,
            "the case has 1 time steps, but the first has 2 and @equalLength is true",
        ),
        ("@seriesLength 3\n@data\n1,2\n", 3, "the case has 2 time steps, but @seriesLength says 3"),
        ("@targetLabel true\n@data\n1,2:high\n", 3, "target label 'high' is not a number"),
        ("@classLabel true a\n@data\n", 2, "no cases after @data"),
    ],
)
def test_read_ts_header_errors_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path / "bad.ts", text)
    with pytest.raises(ValueError, match=at(path, line) + message):
        read_ts(path)


def test_read_ts_without_data_section(tmp_path):
    path = write(tmp_path / "bad.ts", "@problemName x\n")
    with pytest.raises(ValueError, match=at(path) + "no @data line"):
        read_ts(path)


def test_read_ts_japanese_vowels_extract():
    """The extract in tests/data (the first 12 utterances of each speaker): always in CI."""
    series, labels = read_ts(Path(__file__).parent / "data" / "JapaneseVowels_sample_TRAIN.ts")
    assert len(series) == 108 and {s.shape[1] for s in series} == {12}
    assert [labels.count(str(i)) for i in range(1, 10)] == [12] * 9
    assert all(7 <= len(s) <= 29 for s in series)
    np.testing.assert_allclose(series[0][0, :2], [1.860936, -0.207383], rtol=1e-6)


@pytest.mark.skipif(not (VOWELS / "JapaneseVowels_TRAIN.ts").exists(), reason="no UEA data")
def test_read_ts_japanese_vowels():
    series, labels = read_ts(VOWELS / "JapaneseVowels_TRAIN.ts")
    assert len(series) == len(labels) == 270
    assert {s.shape[1] for s in series} == {12}
    assert min(len(s) for s in series) == 7 and max(len(s) for s in series) == 26
    assert sorted(set(labels)) == [str(i) for i in range(1, 10)]
    assert labels.count("1") == 30 and not any(np.isnan(s).any() for s in series)
    np.testing.assert_allclose(series[0][0, :2], [1.860936, -0.207383], rtol=1e-6)
    test_series, _ = read_ts(VOWELS / "JapaneseVowels_TEST.ts")
    assert len(test_series) == 370 and max(len(s) for s in test_series) == 29


# --- read_idx ------------------------------------------------------------------------------------


def idx_bytes(values: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    return header + values.astype(values.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize(
    ("dtype", "code"),
    [
        (np.uint8, 0x08),
        (np.int8, 0x09),
        (np.int16, 0x0B),
        (np.int32, 0x0C),
        (np.float32, 0x0D),
        (np.float64, 0x0E),
    ],
)
def test_read_idx_every_type_in_native_byte_order(tmp_path, dtype, code):
    values = (np.arange(24).reshape(2, 3, 4) - (0 if dtype == np.uint8 else 5)).astype(dtype)
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(idx_bytes(values, code))
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, values)
    gz = tmp_path / "x-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(idx_bytes(values, code)))
    np.testing.assert_array_equal(read_idx(gz), values)


def test_read_idx_size_errors_give_expected_and_actual_bytes(tmp_path):
    data = idx_bytes(np.arange(10, dtype=np.int32), 0x0C)  # 8 bytes of header + 40
    path = tmp_path / "a.idx"
    path.write_bytes(data[:-3])
    with pytest.raises(
        ValueError,
        match=at(path)
        + r"truncated: shape \(10,\) of int32 needs 48 bytes with the header, the file has 45",
    ):
        read_idx(path)
    path.write_bytes(data + b"\0")
    with pytest.raises(
        ValueError, match=at(path) + "longer than its header says.*needs 48 bytes.*has 49"
    ):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x08, 3, 0, 0]))
    with pytest.raises(
        ValueError,
        match="truncated: the header of a 3-dimensional IDX file takes 16 bytes, the file has 6",
    ):
        read_idx(path)
    path.write_bytes(b"\x89PNG")
    with pytest.raises(
        ValueError, match=at(path) + "not an IDX file: the magic number is 89 50 4e 47"
    ):
        read_idx(path)
    path.write_bytes(b"\0\0")
    with pytest.raises(ValueError, match="4-byte magic number, but the file has 2 bytes"):
        read_idx(path)


@pytest.mark.skipif(not FASHION.exists(), reason="no fashion-mnist files")
def test_read_idx_fashion_mnist():
    labels = read_idx(FASHION / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert sorted(np.unique(labels)) == list(range(10))
    images = read_idx(FASHION / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and images.max() == 255


# --- read_numpy ----------------------------------------------------------------------------------


def test_read_numpy_npy_and_npz(tmp_path):
    x = np.arange(24, dtype=np.float32).reshape(4, 3, 2)
    np.save(tmp_path / "x.npy", x)
    got = read_numpy(tmp_path / "x.npy")
    assert got["y"] is None and got["lengths"] is None
    np.testing.assert_array_equal(got["x"], x)
    np.savez_compressed(tmp_path / "d.npz", x=x, y=np.arange(4), lengths=np.array([3, 1, 2, 3]))
    got = read_numpy(tmp_path / "d.npz")
    assert set(got) == {"x", "y", "lengths"} and got["lengths"].tolist() == [3, 1, 2, 3]
    np.savez(tmp_path / "xy.npz", x=x, y=np.arange(4))
    assert read_numpy(tmp_path / "xy.npz")["lengths"] is None


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.zeros((2, 3))}, r"has no array 'x'.*its arrays: \['X'\]"),
        ({"x": np.zeros((2, 3)), "labels": np.zeros(2)}, r"has arrays \['labels'\]"),
        ({"x": np.zeros((2, 3)), "y": np.zeros(3)}, r"y has shape \(3,\), x has shape \(2, 3\)"),
        (
            {"x": np.zeros((2, 3)), "lengths": np.array([1.0, 2.0])},
            "lengths has shape .* dtype float64",
        ),
        (
            {"x": np.zeros((2, 3)), "lengths": np.array([1, 4])},
            r"lengths must lie in 1\.\.3 .* got 1\.\.4",
        ),
        (
            {"x": np.zeros((2, 3)), "lengths": np.array([0, 3])},
            r"lengths must lie in 1\.\.3 .* got 0\.\.3",
        ),
        ({"x": np.float32(1.0)}, "x is a scalar"),
    ],
)
def test_read_numpy_refusals_name_the_file(tmp_path, arrays, message):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=at(path) + message):
        read_numpy(path)


def test_read_numpy_refuses_pickles_and_garbage(tmp_path):
    path = tmp_path / "o.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=at(path) + "cannot be read as a numpy file"):
        read_numpy(path)
    garbage = tmp_path / "g.npy"
    garbage.write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=at(garbage) + "cannot be read as a numpy file"):
        read_numpy(garbage)
