"""The topologies as modules: forecasters and classifiers (many-to-one), taggers and language
models (many-to-many, aligned), the conditional generator (one-to-many), the encoder-decoder
(many-to-many, unaligned), the CTC recogniser (many-to-many without alignment), the image
captioner (one-to-many), and the
baselines they are compared with (naive forecasts; 1-NN-ED and 1-NN-DTW for classification of
time series; NB-SVM, naive Bayes and TF-IDF logistic regression for texts)."""

from .baselines import (
    BASELINES,
    Baseline,
    Drift,
    LinearAR,
    Persistence,
    SeasonalNaive,
    make_baselines,
)
from .captioner import CaptionState, ConvEncoder, ImageCaptioner
from .classifier import AttentionPooling, BagClassifier, SequenceClassifier
from .crf import CRF, bio_constraints
from .forecaster import FORECASTERS, DirectForecaster, RecursiveForecaster, Seq2SeqForecaster
from .generator import ConditionalGenerator
from .language_model import LanguageModel
from .linear_text import LINEAR_BASELINES, NBSVM, LinearTextModel, NaiveBayes, TfidfLogistic
from .neighbours import NearestNeighbour
from .ngram import NGramModel
from .recogniser import CTCRecogniser, FramewiseCTC
from .seq2seq import EncoderDecoder, Seq2SeqState
from .tagger import CharEncoder, SequenceTagger

__all__ = [
    "BASELINES",
    "CRF",
    "FORECASTERS",
    "LINEAR_BASELINES",
    "NBSVM",
    "AttentionPooling",
    "BagClassifier",
    "Baseline",
    "CTCRecogniser",
    "CaptionState",
    "CharEncoder",
    "ConditionalGenerator",
    "ConvEncoder",
    "DirectForecaster",
    "Drift",
    "EncoderDecoder",
    "FramewiseCTC",
    "ImageCaptioner",
    "LanguageModel",
    "LinearAR",
    "LinearTextModel",
    "NGramModel",
    "NaiveBayes",
    "NearestNeighbour",
    "Persistence",
    "RecursiveForecaster",
    "SeasonalNaive",
    "Seq2SeqForecaster",
    "Seq2SeqState",
    "SequenceClassifier",
    "SequenceTagger",
    "TfidfLogistic",
    "bio_constraints",
    "make_baselines",
]
