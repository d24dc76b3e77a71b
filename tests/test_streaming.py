"""Streams: a model fed a sequence piece by piece gives, at every step, what it gives on the
whole sequence so far."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.data.datasets import stocks_path
from rnnkit.tasks.forecast import Forecaster
from rnnkit.tasks.lm import LanguageModeler

TEXT = (Path(__file__).parent / "data" / "shakespeare_sample.txt").read_text()[:3000]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_language_model_fed_in_pieces_reads_as_the_whole_text(cell):
    lm = LanguageModeler(level="char", cell=cell, hidden_size=16, embedding_dim=8, steps=3,
                         bptt=32, progress="none").fit(TEXT)  # fmt: skip
    text = "ROMEO. But soft, what light"
    stream = lm.stream()
    pieces = [stream.feed(piece) for piece in ("ROMEO", ". But s", "oft, what light")]
    fed = np.concatenate(pieces)
    with torch.no_grad():
        logits, _ = lm.model_(lm.encode(text)[None])
    whole = torch.softmax(logits[0].double(), -1).numpy()
    np.testing.assert_allclose(fed, whole, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fed[-1], lm.predict(text), rtol=1e-5, atol=1e-7)
    stream.reset()
    np.testing.assert_allclose(stream.feed("ROMEO"), whole[:5], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="holds no token"):
        stream.feed("")


def test_a_forecaster_fed_row_by_row_forecasts_as_predict_on_the_series_so_far():
    prices = pd.read_csv(stocks_path()).query("Ticker == 'GOOG'")[["Date", "Close"]]
    prices = prices.reset_index(drop=True)
    forecaster = Forecaster(target="Close", date_col="Date", lookback=10, horizon=3,
                            hidden_size=4, epochs=1, progress="none").fit(prices)  # fmt: skip
    stream = forecaster.stream()
    assert stream.feed(prices.iloc[:5]) is None  # fewer rows than a window
    for end in range(5, 20):
        forecast = stream.feed(prices.iloc[end : end + 1])
        if end + 1 < 11:  # lookback + the row a change needs
            assert forecast is None
            continue
        expected = forecaster.predict(prices.iloc[: end + 1])
        pd.testing.assert_frame_equal(forecast, expected)
    with pytest.raises(TypeError, match="DataFrame of new rows"):
        stream.feed([1.0])


def test_a_classifier_fed_a_signal_in_chunks_classifies_as_on_the_signal_so_far():
    from rnnkit.tasks.classify import Classifier

    rng = np.random.default_rng(0)
    signals = [
        rng.normal(size=(int(rng.integers(20, 40)), 2)).astype(np.float32) for _ in range(40)
    ]
    labels = [str(int(s[:, 0].mean() > 0)) for s in signals]
    streamable = {"pooling": "last", "conv_channels": (), "resample": None, "val": 0,
                  "epochs": 1, "progress": "none"}  # fmt: skip
    classifier = Classifier(bidirectional=False, hidden_size=6, ensemble=2, **streamable)
    classifier.fit(signals, labels)
    long = rng.normal(size=(30, 2)).astype(np.float32)
    stream = classifier.stream()
    start = 0
    for end in (7, 8, 20, 30):
        got = stream.feed(long[start:end])
        np.testing.assert_allclose(got, classifier.predict_proba([long[:end]])[0], rtol=1e-5)
        start = end
    with pytest.raises(ValueError, match="cannot stream: each series is resampled"):
        Classifier(hidden_size=4, epochs=1, val=0, progress="none").fit(signals, labels).stream()
    with pytest.raises(ValueError, match="cannot stream: a bidirectional model"):
        Classifier(bidirectional=True, hidden_size=4, **streamable).fit(signals, labels).stream()
