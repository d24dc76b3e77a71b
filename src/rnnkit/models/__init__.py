"""The topologies as modules: forecasters (many-to-one) and the baselines they are compared with."""

from .baselines import (
    BASELINES,
    Baseline,
    Drift,
    LinearAR,
    Persistence,
    SeasonalNaive,
    make_baselines,
)
from .forecaster import FORECASTERS, DirectForecaster, RecursiveForecaster, Seq2SeqForecaster

__all__ = [
    "BASELINES",
    "FORECASTERS",
    "Baseline",
    "DirectForecaster",
    "Drift",
    "LinearAR",
    "Persistence",
    "RecursiveForecaster",
    "SeasonalNaive",
    "Seq2SeqForecaster",
    "make_baselines",
]
