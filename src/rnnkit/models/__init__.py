"""The topologies as modules: forecasters and classifiers (many-to-one), taggers (many-to-many,
aligned), and the baselines they are compared with."""

from .baselines import (
    BASELINES,
    Baseline,
    Drift,
    LinearAR,
    Persistence,
    SeasonalNaive,
    make_baselines,
)
from .classifier import AttentionPooling, BagClassifier, SequenceClassifier
from .crf import CRF, bio_constraints
from .forecaster import FORECASTERS, DirectForecaster, RecursiveForecaster, Seq2SeqForecaster
from .tagger import CharEncoder, SequenceTagger

__all__ = [
    "BASELINES",
    "CRF",
    "FORECASTERS",
    "AttentionPooling",
    "BagClassifier",
    "Baseline",
    "CharEncoder",
    "DirectForecaster",
    "Drift",
    "LinearAR",
    "Persistence",
    "RecursiveForecaster",
    "SeasonalNaive",
    "Seq2SeqForecaster",
    "SequenceClassifier",
    "SequenceTagger",
    "bio_constraints",
    "make_baselines",
]
