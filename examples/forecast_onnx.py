"""Forecast with an exported rnnkit forecaster, without rnnkit or PyTorch: numpy and
onnxruntime only (pip install numpy onnxruntime).

    rnnkit forecast train --data prices.csv --target Close --out runs/prices
    rnnkit export --run runs/prices --format onnx --out exported/prices
    python examples/forecast_onnx.py exported/prices prices.csv

It reads the forecaster's export.json (the settings and the scaler), takes the last rows of
the target column of a CSV file, prepares them as rnnkit does (the transform, then the
scaler), runs the graph, and turns its output back into prices: the same numbers as
``Forecaster.predict`` (to float32 rounding). For a model with one target and no covariates;
the export.json's ``outside_the_graph`` says what others need.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime


def changes(levels: np.ndarray, transform: str) -> np.ndarray:
    """The target as the model reads it, row for row (row 0 is lost to a change)."""
    if transform == "none":
        return levels
    if transform == "diff":
        return np.diff(levels, axis=0)
    if transform == "returns":
        return levels[1:] / levels[:-1] - 1
    return np.log(levels[1:] / levels[:-1])  # log_returns


def levels_from(steps: np.ndarray, last: np.ndarray, transform: str) -> np.ndarray:
    """Levels of the steps ahead from the transformed values the model forecast."""
    if transform == "none":
        return steps
    if transform == "diff":
        return last + np.cumsum(steps, axis=0)
    if transform == "returns":
        return last * np.cumprod(1 + steps, axis=0)
    return last * np.exp(np.cumsum(steps, axis=0))


def forecast(folder: Path, csv_path: Path) -> np.ndarray:
    """The next ``horizon`` values of the target column of ``csv_path``: (horizon,)."""
    described = json.loads((folder / "export.json").read_text())
    if described.get("schema") != 1 or described.get("task") != "forecast":
        raise SystemExit(f"{folder}: not an export of an rnnkit forecaster (schema 1)")
    settings = described["settings"]
    target = settings["target"]
    if not isinstance(target, str) or settings.get("covariates") or settings.get("known_future"):
        raise SystemExit("this example reads one target without covariates")
    with open(csv_path, newline="") as handle:
        values = np.array([float(row[target]) for row in csv.DictReader(handle)])
    lookback, transform = settings["lookback"], settings["transform"]
    rows = values[-(lookback + (transform != "none")) :, None]
    scaler = described["data_state"]["scaler"]
    shift, scale = np.array(scaler["shift"]), np.array(scaler["scale"])
    past = (changes(rows, transform) - shift) / scale
    graph = described["graphs"]["model"]
    session = onnxruntime.InferenceSession(str(folder / graph["file"]))
    (scaled,) = session.run(None, {"past": past[None].astype(np.float32)})
    steps = scaled[0].astype(np.float64) * scale[:1] + shift[:1]
    return levels_from(steps, rows[-1], transform)[:, 0]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python examples/forecast_onnx.py EXPORT_FOLDER DATA.csv")
    for step, value in enumerate(forecast(Path(sys.argv[1]), Path(sys.argv[2])), start=1):
        print(f"step {step}: {value:.4f}")
