"""Readers for the files sequence models learn from: tables, plain lines, CoNLL, .ts, IDX, numpy.

=======================  ==========  =========================================================
extension                 format      reader
=======================  ==========  =========================================================
.csv .tsv .tab [.gz]      ``table``   :func:`read_table`: a text column and a label column
.txt [.gz]                ``text``    :func:`read_lines`: one example per line (for predict)
.conll .bio .iob .bioes   ``conll``   :func:`read_conll`: one token per line, blank line between
[.gz]                                 sentences, the tag in the last column
.ts [.gz]                 ``ts``      :func:`read_ts`: the sktime / UEA multivariate series
                                      archive format
-idx1-ubyte -idx3-ubyte   ``idx``     :func:`read_idx`: the MNIST IDX format
.idx [.gz]
.npy .npz                 ``numpy``   :func:`read_numpy`: arrays ``x`` and optionally ``y``,
                                      ``lengths``
=======================  ==========  =========================================================

:func:`detect_format` maps a path to its format name. Text files are read as UTF-8; a ``.gz``
suffix means gzip. Every error about a file names the file, and an error about its content
names the 1-based line as ``FILE:LINE: what is wrong``, the way compilers do, so an editor can
jump to it. Nothing is repaired silently: a reader either returns what the file says or
refuses it.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._checks import check_flag, is_integer

__all__ = [
    "FORMATS",
    "detect_format",
    "read_conll",
    "read_idx",
    "read_lines",
    "read_numpy",
    "read_table",
    "read_ts",
]

#: The format names :func:`detect_format` returns, with the extensions that mean each.
FORMATS: dict[str, tuple[str, ...]] = {
    "table": (".csv", ".tsv", ".tab"),
    "ts": (".ts",),
    "conll": (".conll", ".bio", ".iob", ".bioes"),
    "idx": ("-idx1-ubyte", "-idx3-ubyte", ".idx"),
    "numpy": (".npy", ".npz"),
    "text": (".txt",),
}

PathLike = str | os.PathLike


# --- files and lines ----------------------------------------------------------------------------


def _existing(path: PathLike, argument: str = "path") -> str:
    """``path`` as a string, checked to be an existing file."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{argument} must be a file path, got {type(path).__name__}: {path!r:.80}")
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"{name}: no such file")
    if not os.path.isfile(name):
        raise ValueError(f"{name}: not a file (a directory?)")
    return name


def _numbered_lines(name: str, stream: IO[str] | None = None) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its end-of-line) for each line of a file or stream.

    A file is decoded line by line, so undecodable bytes and broken gzip data become a
    ValueError naming the file and the exact line. A UTF-8 byte-order mark is dropped.
    """
    if stream is not None:
        for number, line in enumerate(stream, start=1):
            if number == 1:
                line = line.lstrip("\ufeff")
            yield number, line.rstrip("\r\n")
        return
    number = 0
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(name, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise ValueError(
                        f"{name}:{number}: not UTF-8 text ({error.reason} at column "
                        f"{error.start + 1})"
                    ) from None
                if number == 1:
                    line = line.lstrip("\ufeff")
                yield number, line.rstrip("\r\n")
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(f"{name}:{number + 1}: broken gzip data: {error}") from None


def _stem(name: str) -> str:
    """The file name without a trailing .gz, lower-cased: what its format is decided from."""
    base = os.path.basename(name).lower()
    return base[: -len(".gz")] if base.endswith(".gz") else base


# --- format detection ----------------------------------------------------------------------------


def detect_format(path: PathLike, fmt: str | None = None) -> str:
    """The format name of ``path`` (a key of :data:`FORMATS`), from its extension.

    ``fmt``, when given, is returned after checking that it is a format name: it overrides the
    extension (for a CoNLL file saved as ``.txt``, say). The file need not exist. A trailing
    ``.gz`` is looked through, except for numpy files, which ``np.load`` cannot read
    compressed.
    """
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"format {fmt!r} is not one of {list(FORMATS)}")
        return fmt
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}: {path!r:.80}")
    name = os.fspath(path)
    stem = _stem(name)
    for format_name, endings in FORMATS.items():
        if stem.endswith(endings):
            if format_name == "numpy" and name.lower().endswith(".gz"):
                raise ValueError(
                    f"{name}: numpy files cannot be read gzip-compressed; decompress it, or "
                    "save with np.savez_compressed to a .npz file"
                )
            return format_name
    known = ", ".join(
        f"{' '.join(endings)} ({format_name})" for format_name, endings in FORMATS.items()
    )
    raise ValueError(
        f"{name}: cannot tell the format from the file name; recognised endings, optionally "
        f"followed by .gz: {known}. Pass the format explicitly (--format / fmt=)"
    )


# --- tables --------------------------------------------------------------------------------------


def read_table(
    path: PathLike,
    text_col: str = "text",
    label_col: str | None = "label",
    sep: str | None = None,
    quotes: bool = True,
) -> tuple[list[str], list[str] | None]:
    """Texts and labels from a CSV or TSV file with a header row.

    Args:
        path: the file; ``.gz`` is decompressed.
        text_col: the column holding the texts.
        label_col: the column holding the labels; None to read texts only (labels is None).
        sep: the field separator; None picks a tab for ``.tsv`` / ``.tab`` files and a comma
            otherwise.
        quotes: follow the CSV quoting rules (a field in double quotes may hold the separator
            and line breaks; ``""`` inside it is one quote), as pandas and Excel write files.
            False reads double quotes as ordinary characters: right for TSV corpora written
            without quoting (the GLUE tasks, say), where a text like ``"Great" movie`` would
            otherwise lose its quotes.

    Returns:
        ``(texts, labels)``. Every cell is read as text, so labels are strings as written in
        the file ("1" and 1 are the same class; "1.0" is a different one), stripped of
        surrounding spaces; "NA" or "null" are ordinary strings, not missing values.

    Blank lines are skipped. An empty text or label is an error naming its line.
    """
    import pandas as pd

    name = _existing(path)
    for argument, value in (("text_col", text_col), ("label_col", label_col)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{argument} must be a column name (str), got {value!r}")
    if text_col is None:
        raise TypeError("text_col must be a column name (str), got None")
    if label_col == text_col:
        raise ValueError(f"text_col and label_col are both {text_col!r}; they must differ")
    if sep is None:
        sep = "\t" if _stem(name).endswith((".tsv", ".tab")) else ","
    elif not isinstance(sep, str) or not sep:
        raise ValueError(f"sep={sep!r} must be a non-empty string such as ',' or '\\t'")
    check_flag("quotes", quotes, got=True, error=TypeError)
    try:
        frame = pd.read_csv(
            name,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            encoding="utf-8",
            quoting=csv.QUOTE_MINIMAL if quotes else csv.QUOTE_NONE,
        )
    except pd.errors.EmptyDataError:
        raise ValueError(f"{name}: the file is empty (a header row is needed)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError, zlib.error) as error:
        fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if fields:
            wanted, line, seen = fields.groups()
            raise ValueError(
                f"{name}:{line}: {seen} fields where the header has {wanted} (sep={sep!r}); "
                "quote texts that contain the separator"
            ) from None
        raise ValueError(f"{name}: cannot be read as a table (sep={sep!r}): {error}") from None
    if not isinstance(frame.index, pd.RangeIndex):
        # Every row had more fields than the header: pandas took the extras as an index.
        raise ValueError(
            f"{name}:2: the rows have {frame.index.nlevels + len(frame.columns)} fields where the "
            f"header has {len(frame.columns)} (sep={sep!r}); quote texts that contain the separator"
        )
    columns = [str(column) for column in frame.columns]
    wanted = [text_col] + ([label_col] if label_col is not None else [])
    for column in wanted:
        if column not in columns:
            hint = ""
            if len(columns) == 1:
                hint = f" (one column only: is sep={sep!r} the file's separator?)"
            raise ValueError(
                f"{name}: no column {column!r}; the columns are {columns}{hint}. "
                "Name the right ones with text_col / label_col"
            )

    # Line numbers: the header is line 1, each row one more, plus the line breaks that quoted
    # fields of earlier rows hold.
    def line_of(row: int) -> int:
        breaks = 0
        if row:
            earlier = frame.iloc[:row]
            breaks = int(sum(earlier[c].str.count("\n").fillna(0).sum() for c in earlier.columns))
        return 2 + row + breaks

    blank = frame.isna().all(axis=1).to_numpy()
    texts_column = frame[text_col]
    empty = texts_column.isna() | (texts_column.str.strip() == "")
    bad = np.flatnonzero(empty.to_numpy() & ~blank)
    if bad.size:
        row = int(bad[0])
        raise ValueError(
            f"{name}:{line_of(row)}: the text (column {text_col!r}) is empty "
            f"({bad.size} row{'s' if bad.size > 1 else ''} in all)"
        )
    labels = None
    if label_col is not None:
        labels_column = frame[label_col].str.strip()
        missing = labels_column.isna() | (labels_column == "")
        bad = np.flatnonzero(missing.to_numpy() & ~blank)
        if bad.size:
            row = int(bad[0])
            raise ValueError(
                f"{name}:{line_of(row)}: the label (column {label_col!r}) is empty "
                f"({bad.size} row{'s' if bad.size > 1 else ''} in all)"
            )
        labels = labels_column[~blank].tolist()
    texts = texts_column[~blank].tolist()
    if not texts:
        raise ValueError(f"{name}: no rows under the header")
    return texts, labels


# --- plain lines ---------------------------------------------------------------------------------


def read_lines(path_or_stdin: PathLike | IO[str] = "-") -> list[str]:
    """Every line of a text file, stripped: one example per line.

    ``path_or_stdin`` is a path (``.gz`` is decompressed), ``"-"`` for standard input, or an
    open text stream. Blank lines at the end are dropped; a blank line before the last text is
    an error naming it (predictions are printed one per line, and would no longer line up with
    the input), and so is a file without any text.
    """
    if isinstance(path_or_stdin, (str, os.PathLike)) and os.fspath(path_or_stdin) == "-":
        name, stream = "<stdin>", sys.stdin
    elif hasattr(path_or_stdin, "read"):
        name, stream = str(getattr(path_or_stdin, "name", "<stream>")), path_or_stdin
    else:
        name, stream = _existing(path_or_stdin, "path_or_stdin"), None
    lines = [line.strip() for _, line in _numbered_lines(name, stream)]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ValueError(f"{name}: no text: every line is blank")
    if "" in lines:
        raise ValueError(
            f"{name}:{lines.index('') + 1}: the line is blank; give one example per line"
        )
    return lines


def read_text(path_or_stdin: PathLike = "-") -> str:
    """A whole text file as one string, line ends as ``"\\n"``: a corpus for a language model.

    ``path_or_stdin`` is a path (``.gz`` is decompressed) or ``"-"`` for standard input.
    Undecodable bytes are an error naming the line; so is a file with no text at all.
    """
    if isinstance(path_or_stdin, (str, os.PathLike)) and os.fspath(path_or_stdin) == "-":
        name, stream = "<stdin>", sys.stdin
    else:
        name, stream = _existing(path_or_stdin, "path_or_stdin"), None
    text = "".join(line + "\n" for _, line in _numbered_lines(name, stream))
    if not text.strip():
        raise ValueError(f"{name}: no text: the file is empty or blank")
    return text


# --- CoNLL ---------------------------------------------------------------------------------------

_TAG = re.compile(r"O|[BIES]-\S+")


def _column_index(index: int, count: int) -> int | None:
    """``index`` (negative counts from the end) resolved against ``count`` columns, or None."""
    resolved = index + count if index < 0 else index
    return resolved if 0 <= resolved < count else None


def read_conll(
    path: PathLike, token_col: int = 0, tag_col: int = -1, tags: bool = True
) -> list[tuple[list[str], list[str] | None]]:
    """Sentences of a CoNLL-style file: one token per line, a blank line between sentences.

    Columns are separated by tabs if the line has a tab (so tokens may hold spaces), else by
    runs of whitespace. ``-DOCSTART-`` lines (document breaks in CoNLL-2003) are skipped and
    end the sentence. Tags must be ``O`` or ``B-``, ``I-``, ``E-``, ``S-`` followed by a type:
    the BIO (IOB2) and BIOES schemes and any mix of them.

    Args:
        path: the file; ``.gz`` is decompressed.
        token_col: the column holding the token (0 = first; negative counts from the end).
        tag_col: the column holding the tag (-1 = last).
        tags: False for untagged input (a token per line, for predict): every sentence's tags
            are None and ``tag_col`` is not read.

    Returns:
        ``[(tokens, tags), ...]``, one pair per sentence, in file order.
    """
    name = _existing(path)
    for argument, value in (("token_col", token_col), ("tag_col", tag_col)):
        if not is_integer(value):
            raise TypeError(f"{argument} must be an integer column index, got {value!r}")
    check_flag("tags", tags, got=True, error=TypeError)
    if tags and token_col == tag_col:
        raise ValueError(f"token_col and tag_col are both {token_col}; they must differ")
    sentences: list[tuple[list[str], list[str] | None]] = []
    tokens: list[str] = []
    labels: list[str] = []

    def flush() -> None:
        if tokens:
            sentences.append((list(tokens), list(labels) if tags else None))
            tokens.clear()
            labels.clear()

    for number, line in _numbered_lines(name):
        if not line.strip():
            flush()
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        token_at = _column_index(token_col, len(fields))
        tag_at = _column_index(tag_col, len(fields)) if tags else None
        if token_at is not None and fields[token_at] == "-DOCSTART-":
            flush()
            continue
        if token_at is None or (tags and (tag_at is None or tag_at == token_at)):
            wanted = f"token column {token_col}" + (f" and tag column {tag_col}" if tags else "")
            raise ValueError(
                f"{name}:{number}: {len(fields)} column{'s' if len(fields) != 1 else ''} "
                f"({line.strip()!r:.80}), too few for the {wanted}"
                + (" (pass tags=False for untagged text)" if tags and len(fields) == 1 else "")
            )
        if not fields[token_at]:
            raise ValueError(f"{name}:{number}: the token (column {token_col}) is empty")
        tokens.append(fields[token_at])
        if tags:
            tag = fields[tag_at]
            if not _TAG.fullmatch(tag):
                raise ValueError(
                    f"{name}:{number}: tag {tag!r} is not 'O' or B-/I-/E-/S- followed by a type "
                    "(the BIO or BIOES scheme)"
                )
            labels.append(tag)
    flush()
    if not sentences:
        raise ValueError(f"{name}: no sentences (the file holds no token lines)")
    return sentences


# --- sktime / UEA .ts ----------------------------------------------------------------------------

_TS_BOOLEAN_TAGS = ("@timestamps", "@univariate", "@equallength", "@missing", "@targetlabel")


def _ts_boolean(name: str, number: int, tag: str, words: list[str]) -> bool:
    if len(words) < 2 or words[1].lower() not in ("true", "false"):
        raise ValueError(f"{name}:{number}: {tag} must be followed by true or false")
    return words[1].lower() == "true"


def _ts_positive(name: str, number: int, tag: str, words: list[str]) -> int:
    if len(words) != 2 or not words[1].isdigit() or int(words[1]) < 1:
        raise ValueError(f"{name}:{number}: {tag} must be followed by a positive integer")
    return int(words[1])


def _ts_values(name: str, number: int, dimension: int, field: str) -> np.ndarray:
    texts = [value.strip() for value in field.split(",")]
    if texts == [""]:
        raise ValueError(f"{name}:{number}: dimension {dimension} has no values")
    try:
        return np.array([math.nan if t == "?" else float(t) for t in texts], dtype=np.float64)
    except ValueError:
        bad = next(t for t in texts if t != "?" and not _is_float(t))
        raise ValueError(
            f"{name}:{number}: dimension {dimension} holds {bad!r}, not a number or '?'"
        ) from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_ts(path: PathLike) -> tuple[list[np.ndarray], list[str] | None]:
    """Multivariate series and their labels from the sktime / UEA ``.ts`` format.

    The header, before ``@data``, describes the data: ``@problemName``, ``@timeStamps``,
    ``@missing``, ``@univariate``, ``@dimensions D``, ``@equalLength``, ``@seriesLength T``,
    ``@classLabel true L1 L2 ...`` (or false) and ``@targetLabel true|false`` (a numeric
    regression target in place of a class). Tags are case-insensitive; unknown tags are
    ignored; lines starting with ``#`` are comments. Each line after ``@data`` is one case:
    ``dim1:dim2:...:label``, each dimension a comma-separated list of values, ``?`` for a
    missing value (read as NaN).

    Checked, each error naming the file and line: every case has the number of dimensions of
    ``@dimensions`` (else of the first case), all dimensions of one case have one length,
    lengths agree with ``@equalLength`` / ``@seriesLength``, and labels are among those that
    ``@classLabel`` lists (a target label must be a number). ``@timeStamps true`` files (values
    written as ``(time,value)``) are not supported and are refused.

    Returns:
        ``(series, labels)``: ``series[i]`` is a float32 array (T_i, D), time down the rows;
        ``labels[i]`` is the label as written (a string), or ``labels`` is None when the file
        has neither class nor target labels.
    """
    name = _existing(path)
    header: dict[str, Any] = {}
    class_labels: list[str] | None = None
    in_data = labelled = False
    series: list[np.ndarray] = []
    labels: list[str] = []
    dimensions: int | None = None
    data_line = 0
    for number, line in _numbered_lines(name):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if not in_data:
            if not text.startswith("@"):
                raise ValueError(
                    f"{name}:{number}: a data line before @data (header lines start with '@')"
                )
            words = text.split()
            tag = words[0].lower()
            if tag == "@data":
                in_data, data_line = True, number
                if header.get("@timestamps"):
                    raise ValueError(
                        f"{name}:{header['@timestamps_line']}: @timeStamps true is not supported "
                        "(values written as (time,value) pairs); resample to a regular grid "
                        "and write plain values"
                    )
                labelled = bool(class_labels) or header.get("@targetlabel", False)
                dimensions = header.get("@dimensions")
                if header.get("@univariate") and dimensions not in (None, 1):
                    raise ValueError(
                        f"{name}:{number}: @univariate true contradicts @dimensions {dimensions}"
                    )
                if header.get("@univariate"):
                    dimensions = 1
            elif tag in _TS_BOOLEAN_TAGS:
                header[tag] = _ts_boolean(name, number, words[0], words)
                header[tag + "_line"] = number
            elif tag in ("@dimensions", "@serieslength"):
                header[tag] = _ts_positive(name, number, words[0], words)
            elif tag == "@classlabel":
                if _ts_boolean(name, number, words[0], words):
                    class_labels = words[2:]
                    if not class_labels:
                        raise ValueError(
                            f"{name}:{number}: @classLabel true must be followed by the labels"
                        )
                elif len(words) > 2:
                    raise ValueError(
                        f"{name}:{number}: @classLabel false cannot list labels {words[2:]}"
                    )
            continue

        fields = text.split(":")
        label = None
        if labelled:
            label = fields.pop().strip()
            if class_labels is not None and label not in class_labels:
                hint = " (is the label missing?)" if "," in label else ""
                raise ValueError(
                    f"{name}:{number}: label {label!r:.40} is not one of the @classLabel labels "
                    f"{class_labels}{hint}"
                )
            if class_labels is None and not _is_float(label):
                raise ValueError(
                    f"{name}:{number}: target label {label!r} is not a number (@targetLabel true)"
                )
        if dimensions is None:
            dimensions = len(fields)
        elif len(fields) != dimensions:
            source = "@dimensions says" if "@dimensions" in header else "the first case has"
            if header.get("@univariate") and "@dimensions" not in header:
                source = "@univariate true says"
            raise ValueError(
                f"{name}:{number}: {len(fields)} dimensions, but {source} {dimensions}"
                + (" (is the label missing?)" if labelled and len(fields) < dimensions else "")
            )
        columns = [_ts_values(name, number, d + 1, field) for d, field in enumerate(fields)]
        lengths = [len(column) for column in columns]
        if len(set(lengths)) > 1:
            raise ValueError(
                f"{name}:{number}: the dimensions of one case must have one length, got {lengths}"
            )
        length = lengths[0]
        expected = header.get("@serieslength")
        if expected is not None and header.get("@equallength", True) and length != expected:
            raise ValueError(
                f"{name}:{number}: the case has {length} time steps, but @seriesLength says "
                f"{expected}"
            )
        if header.get("@equallength") and series and length != len(series[0]):
            raise ValueError(
                f"{name}:{number}: the case has {length} time steps, but the first has "
                f"{len(series[0])} and @equalLength is true"
            )
        series.append(np.stack(columns, axis=1).astype(np.float32))
        if label is not None:
            labels.append(label)
    if not in_data:
        raise ValueError(f"{name}: no @data line: not a .ts file, or the header is incomplete")
    if not series:
        raise ValueError(f"{name}:{data_line}: no cases after @data")
    return series, (labels if labelled else None)


# --- IDX -----------------------------------------------------------------------------------------

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: PathLike) -> np.ndarray:
    """An array from the IDX format of the MNIST family (``.gz`` is decompressed).

    The file is a 4-byte magic number (two zero bytes, a type code, the number of
    dimensions), one big-endian unsigned 32-bit size per dimension, then the values,
    big-endian, in C order. Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64. The array comes back in native byte order. A file shorter or
    longer than its header says is an error giving both sizes in bytes.
    """
    name = _existing(path)
    try:
        if name.endswith(".gz"):
            with gzip.open(name, "rb") as handle:
                data = handle.read()
        else:
            data = Path(name).read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(f"{name}: broken gzip data: {error}") from None
    if len(data) < 4:
        raise ValueError(
            f"{name}: an IDX file starts with a 4-byte magic number, but the file has "
            f"{len(data)} bytes"
        )
    zero1, zero2, code, ndim = data[:4]
    if zero1 or zero2 or code not in _IDX_TYPES:
        raise ValueError(
            f"{name}: not an IDX file: the magic number is {data[:4].hex(' ')}, expected "
            f"00 00 then a type code in {[f'{c:02x}' for c in _IDX_TYPES]} then the number "
            "of dimensions"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(
            f"{name}: truncated: the header of a {ndim}-dimensional IDX file takes "
            f"{header_size} bytes, the file has {len(data)}"
        )
    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[code]
    expected = header_size + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(
            f"{name}: {problem}: shape {shape} of {dtype.name} needs {expected} bytes with the "
            f"header, the file has {len(data)}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


# --- numpy ---------------------------------------------------------------------------------------

_NUMPY_KEYS = ("x", "y", "lengths")


def read_numpy(path: PathLike) -> dict[str, np.ndarray | None]:
    """Arrays from a ``.npy`` file (the inputs only) or a ``.npz`` file.

    A ``.npz`` file must hold an array ``x`` (the inputs, one row per example) and may hold
    ``y`` (the targets, one per example) and ``lengths`` (the valid steps of each padded
    sequence, 1-D integers in 1..T). Other names are refused, so a misnamed array ("X",
    "labels") is not silently ignored. Pickled objects are never loaded.

    Returns:
        ``{"x": array, "y": array or None, "lengths": array or None}``.
    """
    name = _existing(path)
    try:
        loaded = np.load(name, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{name}: cannot be read as a numpy file: {error}") from None
    if isinstance(loaded, np.ndarray):
        arrays: dict[str, np.ndarray | None] = {"x": loaded, "y": None, "lengths": None}
    else:
        with loaded:
            present = list(loaded.files)
            unknown = [key for key in present if key not in _NUMPY_KEYS]
            if "x" not in present or unknown:
                problem = "has no array 'x'" if "x" not in present else f"has arrays {unknown}"
                raise ValueError(
                    f"{name}: {problem}; a .npz file holds 'x' and optionally 'y' and "
                    f"'lengths' (its arrays: {present})"
                )
            try:
                arrays = {key: (loaded[key] if key in present else None) for key in _NUMPY_KEYS}
            except (ValueError, OSError, EOFError) as error:
                raise ValueError(f"{name}: cannot be read as a numpy file: {error}") from None
    x, y, lengths = arrays["x"], arrays["y"], arrays["lengths"]
    if x.ndim == 0:
        raise ValueError(f"{name}: x is a scalar; it needs one row per example")
    if y is not None and (y.ndim == 0 or len(y) != len(x)):
        raise ValueError(
            f"{name}: y has shape {y.shape}, x has shape {x.shape}: they need one row per "
            "example each"
        )
    if lengths is not None:
        if lengths.shape != (len(x),) or lengths.dtype.kind not in "iu":
            raise ValueError(
                f"{name}: lengths has shape {lengths.shape} and dtype {lengths.dtype}; it must "
                f"be 1-D integers, one per example ({len(x)})"
            )
        steps = x.shape[1] if x.ndim >= 2 else 0
        if lengths.size and (lengths.min() < 1 or lengths.max() > steps):
            raise ValueError(
                f"{name}: lengths must lie in 1..{steps} (x has {steps} time steps), got "
                f"{int(lengths.min())}..{int(lengths.max())}"
            )
    return arrays
