"""Reading a time series from a CSV file or a DataFrame, and refusing what would mislead.

Everything a model later takes for granted is checked here, once: the columns exist, values are
numbers, dates parse, are unique and ordered. What can be repaired honestly (missing values,
unsorted rows) is repaired only when asked, and every repair is counted in the report that the
run directory keeps.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

FILLS = ("error", "ffill", "drop")


@dataclass
class Series:
    """A validated multivariate series: one row per time step, oldest first.

    ``values`` is float64 (T, len(columns)); ``dates`` is a DatetimeIndex, or None when the
    source has no date column (steps are then numbered). ``report`` counts what was repaired
    and describes the spacing of the dates.
    """

    values: np.ndarray
    columns: list[str]
    dates: pd.DatetimeIndex | None
    report: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    def label(self, row: int) -> str:
        """The date of ``row`` (or its step number) as a user would write it."""
        return str(self.dates[row].date()) if self.dates is not None else f"step {row}"


def read_frame(source, *, where: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A DataFrame from a CSV/TSV path (compressed or not) or a DataFrame, filtered by ``where``.

    ``where={"Ticker": "GOOG"}`` keeps the rows whose ``Ticker`` is ``GOOG``: one file often
    holds several series.
    """
    if isinstance(source, pd.DataFrame):
        frame = source
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"data={path!r}: no such file")
        stem = path[: -len(".gz")] if path.endswith(".gz") else path
        sep = "\t" if stem.endswith((".tsv", ".tab")) else ","
        try:
            frame = pd.read_csv(path, sep=sep)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError,
                OSError) as error:  # fmt: skip
            raise ValueError(f"data={path!r} could not be read as a table: {error}") from None
    else:
        raise TypeError(f"data must be a path or a pandas DataFrame, got {type(source).__name__}")
    for column, wanted in (where or {}).items():
        _require_columns(frame, [column], f"the data (where {column}={wanted!r})")
        keep = frame[column].astype(str) == str(wanted)
        if not keep.any():
            seen = sorted(map(str, frame[column].unique()))[:10]
            raise ValueError(
                f"where {column}={wanted!r} matches no row; {column} takes the values {seen}"
            )
        frame = frame[keep]
    return frame


def load_series(
    source,
    columns: Sequence[str],
    *,
    date_col: str | None = None,
    where: Mapping[str, str] | None = None,
    fill: str = "error",
) -> Series:
    """Read and validate the numeric ``columns`` of a table, ordered by ``date_col``.

    Args:
        source: a CSV/TSV path or a DataFrame.
        columns: the numeric columns to keep (targets first, then covariates).
        date_col: the column holding dates; None for a series without dates; "auto" for the
            column named "date" in any case, if there is one.
        where: keep only rows whose columns equal these values.
        fill: what to do with missing values: "error" (the default) refuses them, naming the
            first; "ffill" carries the last observation forward (leading gaps are dropped);
            "drop" removes the rows. Both repairs are counted in ``report``.

    Duplicate dates are always an error: two different values for one day cannot both be true.
    Unsorted rows are sorted, and the report says so. Gaps in the dates are allowed (markets
    close at weekends) and described in the report: rows are treated as consecutive steps.
    """
    if fill not in FILLS:
        raise ValueError(f"fill={fill!r} is not one of {FILLS}")
    columns = list(columns)
    if not columns:
        raise ValueError("columns is empty: name at least one target column")
    if len(set(columns)) != len(columns):
        raise ValueError(f"columns={columns} names a column twice")
    frame = read_frame(source, where=where)
    if date_col == "auto":
        date_col = next((c for c in frame.columns if str(c).lower() == "date"), None)
    _require_columns(frame, columns + ([date_col] if date_col else []), "the data")
    # A file's rows keep their numbers through where= until they are checked: a bad value
    # is named by the file and line, as an editor shows it.
    path = None if isinstance(source, pd.DataFrame) else os.fspath(source)
    values = pd.DataFrame({name: _numeric_column(frame[name], path) for name in columns})
    values = values.reset_index(drop=True)
    report: dict = {"rows_read": len(frame)}
    dates = None
    if date_col is not None:
        dates = _parse_dates(frame[date_col], date_col, path)
        order = np.argsort(dates.values, kind="stable")
        if (order != np.arange(len(order))).any():
            report["sorted_by_date"] = True
            dates, values = dates[order], values.iloc[order].reset_index(drop=True)
        duplicated = dates.duplicated()
        if duplicated.any():
            repeats = sorted({str(d.date()) for d in dates[duplicated]})
            raise ValueError(
                f"{date_col!r} has {int(duplicated.sum())} duplicate dates, e.g. {repeats[:3]}; "
                "keep one row per date (or filter with where=, e.g. one ticker)"
            )

    missing = values.isna()
    if missing.any(axis=None):
        counts = {c: int(n) for c, n in missing.sum().items() if n}
        if fill == "error":
            row = int(missing.any(axis=1).to_numpy().argmax())
            at = str(dates[row].date()) if dates is not None else f"row {row}"
            raise ValueError(
                f"missing values in {counts} (first at {at}); pass fill='ffill' to carry the "
                "last value forward or fill='drop' to remove those rows"
            )
        if fill == "ffill":
            values = values.ffill()
            report["forward_filled"] = counts
        keep = ~values.isna().any(axis=1).to_numpy()
        report["dropped_rows"] = int((~keep).sum())
        values = values[keep].reset_index(drop=True)
        dates = dates[keep] if dates is not None else None

    if dates is not None:
        report.update(describe_spacing(dates))
    report["rows"] = len(values)
    return Series(values.to_numpy(np.float64), columns, dates, report)


def describe_spacing(dates: pd.DatetimeIndex) -> dict:
    """How far apart consecutive dates are: the usual step and the gaps longer than it.

    Trading days skip weekends and holidays, so weekday-only dates are measured in business
    days, and a gap is a step of more than one business day.
    """
    if len(dates) < 2:
        return {}
    days = dates.values.astype("datetime64[D]")
    if (dates.day_of_week < 5).all():
        steps = np.busday_count(days[:-1], days[1:])
        unit = "business days"
    else:
        steps = np.diff(days).astype(np.int64)
        unit = "days"
    usual = int(np.median(steps))
    gaps = steps > usual
    spacing = {"spacing": f"{usual} {unit}", "gaps": int(gaps.sum())}
    if gaps.any():
        spacing["longest_gap"] = (
            f"{int(steps.max())} {unit} before {dates[1:][steps.argmax()].date()}"
        )
    return spacing


def _require_columns(frame: pd.DataFrame, wanted: Sequence[str], where: str) -> None:
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise ValueError(f"column {absent[0]!r} is not in {where}; it has {list(frame.columns)}")


def _first_bad(column: pd.Series, bad: pd.Series, path: str | None) -> tuple[str, object]:
    """(where the first ``bad`` value of ``column`` is, its value): "data.csv:3" (the line of
    the file ``path``, under its header) or "row 1" (a DataFrame's position)."""
    row = int(bad.to_numpy().argmax())
    value = column.iloc[row]
    value = value.item() if isinstance(value, np.generic) else value  # inf, not np.float64(inf)
    return (f"{path}:{int(column.index[row]) + 2}" if path else f"row {row}"), value


def _numeric_column(column: pd.Series, path: str | None = None) -> pd.Series:
    """The column as floats; a value that is not a number is an error that shows it."""
    numbers = pd.to_numeric(column, errors="coerce")
    bad = (numbers.isna() & column.notna()) | numbers.isin([np.inf, -np.inf])
    if bad.any():
        where, value = _first_bad(column, bad, path)
        raise ValueError(f"{where}: column {column.name!r} holds {value!r}, not a finite number")
    return numbers.astype(np.float64)


def _parse_dates(column: pd.Series, name: str, path: str | None = None) -> pd.DatetimeIndex:
    dates = pd.to_datetime(column, errors="coerce")
    bad = dates.isna()
    if bad.any():
        where, value = _first_bad(column, bad, path)
        raise ValueError(f"{where}: date column {name!r} holds {value!r}, not a date")
    return pd.DatetimeIndex(dates)
