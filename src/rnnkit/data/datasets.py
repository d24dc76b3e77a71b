"""Datasets that ship inside the package, so the main job runs offline on a fresh machine."""

from __future__ import annotations

from importlib import resources

STOCKS = "stocks.csv.gz"
TICKERS = ("AAPL", "FB", "GOOG", "IBM", "MSFT")


def stocks_path() -> str:
    """Path of the bundled daily stock prices (see ``rnnkit/data/README.md`` for source and
    licence): columns Ticker, Date, Open, High, Low, Close, Volume, Adj Close."""
    return str(resources.files(__package__) / STOCKS)


def load_stocks(ticker: str | None = None):
    """The bundled daily prices as a DataFrame, all tickers or one of ``TICKERS``."""
    import pandas as pd

    frame = pd.read_csv(stocks_path(), parse_dates=["Date"])
    if ticker is None:
        return frame
    if ticker not in TICKERS:
        raise ValueError(f"ticker={ticker!r} is not one of the bundled {TICKERS}")
    return frame[frame["Ticker"] == ticker].reset_index(drop=True)
