r"""The linear bag-of-n-grams baselines every text score is reported beside.

A recurrent text classifier's accuracy means little without the numbers linear models on the
same n-grams reach on the same data: on short snippets such as MR they are within a few points
of the best neural models (Kim 2014, Table 2: NBSVM 79.4 % on MR), and on a few thousand
texts they often win. Three, each fitted as its literature fits it, its regularisation chosen
by cross-validation on the training texts alone:

- :class:`NBSVM`, an SVM on naive-Bayes-scaled binary uni- and bigrams (Wang & Manning 2012),
  its decision threshold set on out-of-fold scores, which unbalanced classes need;
- :class:`NaiveBayes`, multinomial naive Bayes on word counts;
- :class:`TfidfLogistic`, logistic regression on TF-IDF-weighted uni- and bigrams.

All three end as the same thing, a :class:`LinearTextModel`: n-gram features of a text (binary,
counts or TF-IDF) and one linear score per class, which ``to_dict`` / ``from_dict`` keep as
plain JSON and predict from identically. scikit-learn does the vectorising and the fitting;
it is imported inside the methods, so that ``import rnnkit`` does not load it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from .._checks import check_flag, check_fraction, is_integer, is_number

# Joins the tokens of an n-gram into one vocabulary key. The ASCII unit separator is there for
# exactly this; a space would make the character bigram ("a", " ") and ("a ", ...) collide.
_JOIN = "\x1f"
CLASSIFIERS = ("svm", "logistic")
FEATURES = ("binary", "counts", "tfidf")
_FORMAT = 2  # the version of to_dict's layout; format 1 (NB-SVM alone, before 0.3) still reads
FOLDS = 5
"""Cross-validation folds on the training texts (fewer where a class has fewer texts)."""


class _NGrams:
    """CountVectorizer's analyzer: the distinct n-grams of one token list, n in ``ngram_range``.

    A class rather than a closure so that a fitted NBSVM pickles (and deep-copies).
    """

    def __init__(self, ngram_range: tuple[int, int]):
        self.ngram_range = ngram_range

    def __call__(self, tokens: list[str]) -> list[str]:
        shortest, longest = self.ngram_range
        return [
            _JOIN.join(tokens[start : start + n])
            for n in range(shortest, longest + 1)
            for start in range(len(tokens) - n + 1)
        ]


def _check_positive(name: str, value: Any) -> float:
    if not is_number(value, numpy=True):
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_ngram_range(value: Any) -> tuple[int, int]:
    is_pair = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
    if not is_pair or not all(is_integer(n, numpy=True) for n in value):
        raise ValueError(f"ngram_range must be a pair of integers (min_n, max_n), got {value!r}")
    shortest, longest = int(value[0]), int(value[1])
    if not 1 <= shortest <= longest:
        raise ValueError(f"ngram_range must have 1 <= min_n <= max_n, got {value!r}")
    return shortest, longest


def _as_token_lists(name: str, texts: Any) -> list[list[str]]:
    """Each text as its list of tokens: token lists as given, raw strings lowercased and split
    at whitespace (models sit below ``rnnkit.data``, whose tokenizers the Classifier passes)."""
    if isinstance(texts, str | bytes):
        raise ValueError(
            f"{name} must be a list of texts (strings or token lists), got a single "
            f"{type(texts).__name__}: {texts!r:.60}; wrap it in a list"
        )
    try:
        texts = list(texts)
    except TypeError:
        raise ValueError(
            f"{name} must be a list of texts (strings or token lists), got {type(texts).__name__}"
        ) from None
    token_lists = []
    for index, text in enumerate(texts):
        if isinstance(text, str):
            token_lists.append(text.lower().split())
        elif isinstance(text, list | tuple) and all(isinstance(token, str) for token in text):
            token_lists.append(list(text))
        else:
            raise ValueError(
                f"{name}[{index}] must be a string or a list of string tokens, got "
                f"{type(text).__name__}: {text!r:.60}"
            )
    return token_lists


def _check_labels(labels, texts: int) -> list[str]:
    if labels is None or isinstance(labels, str):
        raise ValueError(f"labels must be a list with one label per text, got {labels!r:.60}")
    labels = [str(label) for label in labels]
    if len(labels) != texts:
        raise ValueError(
            f"labels has {len(labels)} entries for {texts} texts; give one label per text"
        )
    if len(set(labels)) < 2:
        raise ValueError(
            f"labels has a single class {labels[0]!r}; a classifier needs at least two classes"
        )
    return labels


def _folds(labels: np.ndarray, folds: int):
    """Stratified folds over ``labels`` (shuffled, seed 0), as many as ``folds`` or as the
    rarest class has texts; None where a class has a single text and cannot be held out."""
    from sklearn.model_selection import StratifiedKFold

    rarest = min(np.unique(labels, return_counts=True)[1])
    if rarest < 2:
        return None
    return StratifiedKFold(min(folds, int(rarest)), shuffle=True, random_state=0)


class LinearTextModel:
    """What the linear baselines share once fitted: each text as a vector of its n-grams
    (``features``: binary indicators, counts, or TF-IDF), and linear scores
    ``x @ coef_.T + intercept_``. Two classes have one score (> 0 means ``classes_[1]``), more
    have one per class, the highest winning.

    A subclass names its settings in its constructor (scikit-learn's protocol: ``get_params``,
    ``set_params`` and ``sklearn.base.clone`` work; ``fit`` returns ``self``; learned state
    ends in ``_``) and fits ``coef_`` and ``intercept_`` in ``fit``.

    Attributes (after ``fit``):
        classes_: the labels as strings, sorted.
        vocabulary_: ``{n-gram as a tuple of tokens: column}``.
        coef_: (K, |V|) weights on the features; K = 1 for two classes, else the classes.
        intercept_: (K,) the biases.
        idf_: (|V|,) the inverse document frequencies (TF-IDF features only).
        cv_: the cross-validation that chose the regularisation: ``folds`` and each
            setting's mean held-out accuracy (``{}`` where nothing was chosen).
    """

    name: ClassVar[str]  # to_dict's name
    features: ClassVar[str]  # one of FEATURES
    # (setting, its name in the fitting pipeline, the values cross-validation chooses from
    # where the setting is None).
    regulariser: ClassVar[tuple[str, str, tuple[float, ...]]]
    # More than two classes' scores are the logits of one softmax (naive Bayes's joint
    # log-likelihoods, softmax regression), not one-vs-rest logits (whose sigmoids are
    # normalised).
    softmax: ClassVar[bool] = False

    def _check_settings(self) -> None:
        """Checked on construction and again by ``set_params`` and ``fit``, as they change."""
        _check_ngram_range(self.ngram_range)
        setting = self.regulariser[0]
        if getattr(self, setting) is not None:
            _check_positive(setting, getattr(self, setting))
        if not is_integer(self.folds, 2, None, numpy=True):
            raise ValueError(f"folds must be an integer >= 2, got {self.folds!r}")

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's settings."""
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    def set_params(self, **params) -> LinearTextModel:
        """Change settings by name (checked); a fitted model keeps its state until the next fit."""
        name = type(self).__name__
        unknown = sorted(set(params) - set(self.get_params()))
        if unknown:
            raise ValueError(
                f"{name} has no settings {unknown}; its settings are {sorted(self.get_params())}"
            )
        old = self.get_params()
        for setting, value in params.items():
            setattr(self, setting, value)
        try:
            self._check_settings()
        except ValueError:
            for setting, value in old.items():
                setattr(self, setting, value)
            raise
        return self

    def _vectorizer(self, vocabulary: list[str] | None = None):
        from sklearn.feature_extraction.text import CountVectorizer

        return CountVectorizer(
            analyzer=_NGrams(_check_ngram_range(self.ngram_range)),
            vocabulary=vocabulary,
            binary=self.features == "binary",
            dtype=np.float64,
        )

    def _prepare(self, texts, labels) -> tuple[list[list[str]], np.ndarray]:
        """The checked settings, token lists and labels (as strings) that ``fit`` takes."""
        self._check_settings()
        token_lists = _as_token_lists("texts", texts)
        if not token_lists:
            raise ValueError(f"texts is empty: {type(self).__name__}.fit needs texts of each class")
        labels = _check_labels(labels, len(token_lists))
        if not any(_NGrams(_check_ngram_range(self.ngram_range))(t) for t in token_lists):
            raise ValueError(
                f"texts contain no n-grams of lengths {tuple(self.ngram_range)} "
                f"(every text is shorter than {self.ngram_range[0]} tokens)"
            )
        return token_lists, np.asarray(labels)

    def _search(self, steps: list, token_lists, labels: np.ndarray):
        """The pipeline of the n-gram counts then ``steps``, fitted to all texts with the
        regulariser given, or chosen from its grid by scikit-learn's grid search (every fold
        learns its own vocabulary) and refitted; ``cv_`` records the search."""
        from sklearn.model_selection import GridSearchCV
        from sklearn.pipeline import Pipeline

        setting, parameter, grid = self.regulariser
        pipeline = Pipeline([("counts", self._vectorizer()), *steps])
        self.cv_ = {}
        if getattr(self, setting) is not None:
            return pipeline.set_params(**{parameter: float(getattr(self, setting))}).fit(
                token_lists, labels
            )
        splitter = _folds(labels, self.folds)
        if splitter is None:  # the grid's last (least regularised) value
            self.cv_ = {"folds": 0, "reason": "a class has a single text"}
            return pipeline.set_params(**{parameter: grid[-1]}).fit(token_lists, labels)
        search = GridSearchCV(pipeline, {parameter: list(grid)}, cv=splitter, scoring="accuracy")
        search.fit(token_lists, labels)
        accuracy = search.cv_results_["mean_test_score"].round(4).tolist()
        self.cv_ = {"folds": splitter.get_n_splits(),
                    "accuracy": dict(zip(map(str, grid), accuracy, strict=True))}  # fmt: skip
        return search.best_estimator_

    def _keep(self, classes, vocabulary: dict, coef, intercept, idf=None) -> None:
        """Store what prediction needs: ``vocabulary`` is a CountVectorizer's, by joined key."""
        self.classes_ = [str(label) for label in classes]
        self.vocabulary_ = {
            tuple(ngram.split(_JOIN)): column
            for ngram, column in sorted(vocabulary.items(), key=lambda kv: kv[1])
        }
        self.coef_ = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        self.intercept_ = np.atleast_1d(np.asarray(intercept, dtype=np.float64))
        if idf is not None:
            self.idf_ = np.asarray(idf, dtype=np.float64)
        self._transform = None

    def _check_fitted(self, method: str) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError(
                f"{type(self).__name__} is not fitted: call fit(texts, labels) before {method}"
            )

    def transform(self, texts):
        """The texts' features (sparse, N × |V|) as the weights read them."""
        self._check_fitted("transform")
        token_lists = _as_token_lists("texts", texts)
        if getattr(self, "_transform", None) is None:
            self._transform = self._vectorizer([_JOIN.join(ngram) for ngram in self.vocabulary_])
        counts = self._transform.transform(token_lists)
        return _tfidf(counts, self.idf_) if self.features == "tfidf" else counts

    def _scores(self, texts, method: str) -> np.ndarray:
        self._check_fitted(method)
        return np.asarray(self.transform(texts) @ self.coef_.T) + self.intercept_

    def decision_function(self, texts) -> np.ndarray:
        """The scores: (N,) for two classes (> 0 means ``classes_[1]``), else (N, classes)."""
        scores = self._scores(texts, "decision_function")
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, texts) -> list[str]:
        """The label of each text: the class of highest score."""
        scores = self._scores(texts, "predict")
        if len(self.classes_) == 2:
            chosen = (scores[:, 0] > 0).astype(int)
        else:
            chosen = scores.argmax(axis=1)
        return [self.classes_[k] for k in chosen]

    def _probabilities(self, scores: np.ndarray) -> np.ndarray:
        from scipy.special import expit, softmax

        if len(self.classes_) == 2:
            positive = expit(scores)
            return np.hstack([1 - positive, positive])
        if self.softmax:
            return softmax(scores, axis=1)
        positive = expit(scores)
        return positive / positive.sum(axis=1, keepdims=True)

    def predict_proba(self, texts) -> np.ndarray:
        """(N, classes) probabilities in ``classes_`` order: the logistic of each score, for
        more than two classes normalised over the one-vs-rest problems as scikit-learn does
        (naive Bayes and softmax regression: the softmax of the scores)."""
        return self._probabilities(self._scores(texts, "predict_proba"))

    def score(self, texts, labels) -> float:
        """Accuracy on texts with known labels."""
        predicted = self.predict(texts)
        labels = [str(label) for label in labels]
        if len(labels) != len(predicted):
            raise ValueError(f"labels has {len(labels)} entries for {len(predicted)} texts")
        if not labels:
            raise ValueError("texts is empty: there is nothing to score")
        return float(np.mean([p == y for p, y in zip(predicted, labels, strict=True)]))

    def to_dict(self) -> dict:
        """The fitted model as JSON-able data: settings, classes, n-grams, weights.

        Only what prediction needs: ``vocabulary`` (each n-gram as its list of tokens, in
        column order), ``coef`` (K lists of |V| floats), ``intercept``, ``idf`` (TF-IDF
        features only), and ``cv`` (what cross-validation chose). Floats are Python floats,
        which JSON writes and reads back exactly, so :meth:`from_dict` predicts
        identically. For a compact binary copy store ``np.asarray(d["coef"])`` in a
        safetensors file beside the rest.
        """
        self._check_fitted("to_dict")
        settings = self.get_params()
        settings["ngram_range"] = list(_check_ngram_range(settings["ngram_range"]))
        saved = {
            "name": self.name,
            "format": _FORMAT,
            "settings": settings,
            "classes": list(self.classes_),
            "vocabulary": [list(ngram) for ngram in self.vocabulary_],
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_.tolist(),
            "cv": self.cv_,
        }
        if self.features == "tfidf":
            saved["idf"] = self.idf_.tolist()
        return saved

    @classmethod
    def from_dict(cls, d: dict) -> LinearTextModel:
        """The fitted model that :meth:`to_dict` described."""
        kind = cls.__name__
        expected = {"name", "format", "settings", "classes", "vocabulary", "coef", "intercept"}
        if cls.features == "tfidf":
            expected.add("idf")
        if not isinstance(d, dict) or d.get("name") != cls.name or not expected <= set(d):
            keys = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(
                f"a saved {kind} is a dict with name {cls.name!r} and entries "
                f"{sorted(expected)}, got {keys}"
            )
        settings = cls._saved_settings(d)
        known = cls().get_params()
        if set(settings) != set(known):
            raise ValueError(
                f"the saved {kind}'s settings are {sorted(settings)}, this rnnkit's are "
                f"{sorted(known)}"
            )
        settings["ngram_range"] = tuple(settings["ngram_range"])
        model = cls(**settings)
        classes = [str(label) for label in d["classes"]]
        coef = np.asarray(d["coef"], dtype=np.float64)
        intercept = np.asarray(d["intercept"], dtype=np.float64)
        rows = 1 if len(classes) == 2 else len(classes)
        vocabulary = [tuple(ngram) for ngram in d["vocabulary"]]
        idf = np.asarray(d.get("idf", np.ones(len(vocabulary))), dtype=np.float64)
        if (
            len(classes) < 2
            or coef.shape != (rows, len(vocabulary))
            or intercept.shape != (rows,)
            or idf.shape != (len(vocabulary),)
            or len(set(vocabulary)) != len(vocabulary)
        ):
            raise ValueError(
                f"the saved {kind} is inconsistent: {len(classes)} classes need coef of shape "
                f"({rows}, {len(vocabulary)} n-grams) and intercept ({rows},), got "
                f"{coef.shape} and {intercept.shape} (or the n-grams repeat, or the idf)"
            )
        model.classes_ = classes
        model.vocabulary_ = {ngram: column for column, ngram in enumerate(vocabulary)}
        model.coef_, model.intercept_, model.cv_ = coef, intercept, d.get("cv", {})
        if cls.features == "tfidf":
            model.idf_ = idf
        return model

    @classmethod
    def _saved_settings(cls, d: dict) -> dict:
        """The settings of a saved model, checked for its format."""
        if d["format"] != _FORMAT:
            raise ValueError(
                f"the saved {cls.__name__} has format {d['format']!r}; this rnnkit reads "
                f"format {_FORMAT}"
            )
        return dict(d["settings"])

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={value!r}" for name, value in self.get_params().items())
        return f"{type(self).__name__}({settings})"


def _tfidf(counts, idf: np.ndarray):
    """scikit-learn's TF-IDF of ``TfidfTransformer(sublinear_tf=True)``: each count c as
    1 + log c, times the idf, each row scaled to unit length."""
    from scipy.sparse import diags
    from sklearn.preprocessing import normalize

    weighted = counts.tocsr(copy=True).astype(np.float64)
    weighted.data = 1 + np.log(weighted.data)
    return normalize(weighted @ diags(idf), norm="l2")


C_GRID = (0.01, 0.1, 1.0)
"""The inverse regularisation strengths NB-SVM's cross-validation chooses from."""


class NBSVM(LinearTextModel):
    r"""A linear classifier on NB log-count-ratio-scaled binary n-grams (Wang & Manning 2012).

    Sida Wang and Christopher D. Manning, "Baselines and Bigrams: Simple, Good Sentiment and
    Topic Classification", ACL 2012, §2.3. Each text is the binary vector
    :math:`\hat f \in \{0, 1\}^{|V|}` of the n-grams it contains (of the ``ngram_range``
    lengths, vocabulary from the training texts). With :math:`\alpha` the smoothing, the
    log-count ratio of the positive class against the rest is

    .. math::

        p = \alpha + \sum_{i:\, y_i = 1} \hat f_i, \qquad
        q = \alpha + \sum_{i:\, y_i \ne 1} \hat f_i, \qquad
        r = \log\left(\frac{p / \lVert p \rVert_1}{q / \lVert q \rVert_1}\right)

    and the linear classifier (``classifier``: an L2-regularised squared-hinge SVM, or logistic
    regression, both liblinear, inverse regularisation ``C``, intercept included) is fitted
    on the scaled features :math:`\tilde f = r \circ \hat f`, giving weights ``w`` and bias
    ``b``. The weights are then interpolated towards their mean magnitude, which is naive
    Bayes' equal trust in every ratio:

    .. math::

        w' = (1 - \beta)\,\bar w + \beta\, w, \qquad \bar w = \lVert w \rVert_1 / |V|,
        \qquad \text{score} = w'^\top (r \circ \hat f) + b

    ``beta=1`` is the plain SVM (or LR) on NB features; ``beta=0`` ranks texts as multinomial
    NB on binary counts does. The paper's NBSVM uses ``beta=0.25``, ``C=1``, ``alpha=1`` and
    uni+bigrams. With two classes the positive class is ``classes_[1]``; with more, there is
    one ratio and one classifier per class against the rest, and the class of highest score
    wins.

    **The threshold** (``calibrate``). The bias ``b`` was fitted for ``w``, not for the
    interpolated ``w'``, whose scores have another scale and centre; on balanced classes
    (MR) that hardly matters, but on unbalanced ones the paper's rule predicts the majority
    class far too often: on 3,000 Rotten Tomatoes snippets (58 % fresh) it scores 66 %
    accuracy and 0.57 macro-F1 where multinomial NB scores 74 % and 0.73. So each problem's
    scores are recalibrated, as Platt (1999) does for SVMs: ``a·score + c`` fitted by
    logistic regression to scores of texts the model did not see (those of each fold's model
    on its held-out fold), then folded into the weights and bias. The recalibrated NB-SVM
    scores 74 % / 0.73 there, and ``predict_proba`` gives calibrated probabilities.

    **The regularisation** ``C=None`` (the default) is chosen from ``C_GRID`` by the
    accuracy of those same out-of-fold scores (``folds`` stratified folds of the training
    texts; the smaller C on a tie); ``cv_`` records each C's accuracy and ``C_`` the choice.
    A given ``C`` is used as it is.

    Measured on MR over the 10 folds of ``experiments/mr_cv.py`` (``experiments/mr_nbsvm.py``),
    the paper's settings give 79.4 ± 1.6 % (the paper: 79.4); see that script for the rest.

    Texts are either lists of tokens (what rnnkit's tokenizer made, ``make_tokenizer(...)
    (text)``: :class:`~rnnkit.tasks.classify.Classifier` passes its own) or raw strings,
    which are lowercased and split at whitespace.

    Args:
        ngram_range: ``(min_n, max_n)``, the n-gram lengths used; ``(1, 2)`` = uni+bigrams.
        alpha: the smoothing added to every count of ``p`` and ``q`` (> 0).
        C: the classifier's inverse regularisation strength (> 0), or None: chosen by
            cross-validation from ``C_GRID``.
        beta: the interpolation in [0, 1] (1 = no interpolation).
        classifier: ``"svm"`` (squared hinge, as the paper) or ``"logistic"``.
        calibrate: set the threshold (and the scale) of each score on out-of-fold scores;
            False keeps the paper's bias, and ``predict_proba`` then needs the logistic
            classifier (and is calibrated only at ``beta=1``).
        folds: the cross-validation's folds (fewer where a class has fewer texts; with a
            class of a single text, no cross-validation: C = 1 and no recalibration).

    Attributes (after ``fit``), beside :class:`LinearTextModel`'s: ``log_count_ratio_``,
    (K, |V|) the ratios r; ``C_``, the C used; ``coef_`` is :math:`r \circ w'` (times
    Platt's ``a``), the weights on the *binary* indicators.

    Example::

        >>> model = NBSVM().fit([["good"], ["not", "good"]] * 3, ["pos", "neg"] * 3)
        >>> model.predict([["good", "film"], ["not", "good", "film"]])
        ['pos', 'neg']
    """

    name = "nbsvm"
    features = "binary"
    regulariser = ("C", "", C_GRID)  # searched by _cross_validate, with the threshold

    def __init__(
        self,
        ngram_range: tuple[int, int] = (1, 2),
        alpha: float = 1.0,
        C: float | None = None,
        beta: float = 0.25,
        classifier: str = "svm",
        calibrate: bool = True,
        folds: int = FOLDS,
    ):
        self.ngram_range = ngram_range
        self.alpha = alpha
        self.C = C
        self.beta = beta
        self.classifier = classifier
        self.calibrate = calibrate
        self.folds = folds
        self._check_settings()

    def _check_settings(self) -> None:
        super()._check_settings()
        _check_positive("alpha", self.alpha)
        check_fraction("beta", self.beta, "[0, 1]", noun="number", numpy=True, got=True)
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {self.classifier!r}")
        check_flag("calibrate", self.calibrate, got=True)

    def _linear_model(self, C: float):
        # liblinear for both, as the paper: its coordinate descent visits the examples in an
        # order drawn from random_state, so a fixed seed makes fits repeatable.
        if self.classifier == "svm":
            from sklearn.svm import LinearSVC

            # liblinear's default of 1,000 passes leaves large C unconverged on a few thousand
            # texts (spam SMS at C = 1); 10,000 converge, and cost nothing where it already did.
            return LinearSVC(C=C, loss="squared_hinge", dual=True, max_iter=10_000, random_state=0)
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=C, solver="liblinear", max_iter=10_000, random_state=0)

    def fit(self, texts, labels) -> NBSVM:
        """Learn the vocabulary, the ratios and the classifier(s) from texts and their labels,
        choosing C and the threshold on out-of-fold scores (see the class docstring).

        Args:
            texts: token lists or raw strings (see the class docstring).
            labels: one label per text, any type (kept as ``str``); at least two classes.
        """
        token_lists, labels = self._prepare(texts, labels)
        classes = sorted(set(labels))
        grid = C_GRID if self.C is None else (float(self.C),)
        splitter = _folds(labels, self.folds) if self.calibrate or len(grid) > 1 else None
        self.cv_ = {}
        if splitter is None:
            self.C_ = 1.0 if self.C is None else float(self.C)
            calibration = None
            if self.calibrate or self.C is None:
                self.cv_ = {"folds": 0, "reason": "a class has a single text"}
        else:
            self.C_, calibration = self._cross_validate(token_lists, labels, classes, grid,
                                                        splitter)  # fmt: skip
        vectorizer, ratios, coef, intercept = self._fit_once(token_lists, labels, classes, self.C_)
        if calibration is not None:  # a·(coef·f + b) + c
            scale, shift = calibration
            coef, intercept = coef * scale[:, None], intercept * scale + shift
        self._keep(classes, vectorizer.vocabulary_, coef, intercept)
        self.log_count_ratio_ = ratios
        return self

    def _fit_once(self, token_lists, labels: np.ndarray, classes: list[str], C: float):
        """The paper's NB-SVM with this C: (vectorizer, ratios, coef on f̂, intercept)."""
        vectorizer = self._vectorizer()
        indicators = vectorizer.fit_transform(token_lists).tocsr()
        # Two classes are one problem (classes[1] against classes[0]), as in the paper;
        # one-vs-rest with both rows would fit the same separation twice.
        positives = classes[1:] if len(classes) == 2 else classes
        ratios, coefs, intercepts = [], [], []
        for positive in positives:
            is_positive = labels == positive
            ratio = self._log_count_ratio(indicators, is_positive)
            linear = self._linear_model(C).fit(indicators @ _diagonal(ratio), is_positive)
            weights = linear.coef_.ravel()
            interpolated = (1 - self.beta) * np.abs(weights).mean() + self.beta * weights
            ratios.append(ratio)
            # Folding r into the weights makes prediction one sparse product on f̂, and makes
            # a model loaded by from_dict compute exactly the same numbers.
            coefs.append(ratio * interpolated)
            intercepts.append(float(linear.intercept_[0]))
        return vectorizer, np.vstack(ratios), np.vstack(coefs), np.asarray(intercepts)

    def _cross_validate(self, token_lists, labels, classes, grid, splitter):
        """(C, Platt's (a, c) per problem): the C whose recalibrated out-of-fold scores are
        the most accurate, and the recalibration fitted to them."""
        rows = 1 if len(classes) == 2 else len(classes)
        targets = labels[:, None] == np.asarray(classes[-rows:])[None, :]
        accuracy, calibrations = {}, {}
        for C in grid:
            scores = np.zeros((len(labels), rows))
            for train, held in splitter.split(np.zeros(len(labels)), labels):
                vectorizer, _, coef, intercept = self._fit_once(
                    [token_lists[i] for i in train], labels[train], classes, C
                )
                held_out = vectorizer.transform([token_lists[i] for i in held])
                scores[held] = np.asarray(held_out @ coef.T) + intercept
            scale, shift = np.transpose([_platt(s, t) for s, t in zip(scores.T, targets.T,
                                                                      strict=True)])  # fmt: skip
            calibrated = scores * scale + shift if self.calibrate else scores
            chosen = calibrated[:, 0] > 0 if rows == 1 else calibrated.argmax(axis=1)
            truth = targets[:, 0] if rows == 1 else targets.argmax(axis=1)
            accuracy[C] = float(np.mean(chosen == truth))
            calibrations[C] = (scale, shift) if self.calibrate else None
        best = max(grid, key=lambda C: (accuracy[C], -C))
        self.cv_ = {"folds": splitter.get_n_splits(),
                    "accuracy": {str(C): round(a, 4) for C, a in accuracy.items()}}  # fmt: skip
        return best, calibrations[best]

    def _log_count_ratio(self, indicators, is_positive: np.ndarray) -> np.ndarray:
        """r = log((p/|p|₁)/(q/|q|₁)) with p, q the smoothed document counts of each n-gram."""
        alpha = float(self.alpha)
        p = alpha + np.asarray(indicators[is_positive].sum(axis=0)).ravel()
        q = alpha + np.asarray(indicators[~is_positive].sum(axis=0)).ravel()
        return np.log(p / p.sum()) - np.log(q / q.sum())

    def predict_proba(self, texts) -> np.ndarray:
        """(N, classes) probabilities in ``classes_`` order (see ``LinearTextModel``);
        calibrated where ``calibrate`` is on; without it, only for ``classifier="logistic"``,
        whose probabilities ``beta < 1`` leaves uncalibrated (they still rank texts)."""
        if not self.calibrate and self.classifier != "logistic":
            raise AttributeError(
                f"predict_proba needs calibrate=True or classifier='logistic', this NBSVM has "
                f"calibrate=False, classifier={self.classifier!r} (an SVM's scores are not "
                "probabilities); use decision_function"
            )
        return super().predict_proba(texts)

    @classmethod
    def _saved_settings(cls, d: dict) -> dict:
        if d["format"] == 1:  # before 0.3: the paper's bias and a fixed C
            return dict(d["settings"]) | {"calibrate": False, "folds": FOLDS}
        return super()._saved_settings(d)


def _platt(scores: np.ndarray, is_positive: np.ndarray) -> tuple[float, float]:
    """Platt's (1999) sigmoid fit: (a, c) minimising the cross-entropy of
    ``sigmoid(a·score + c)`` against targets smoothed to (N₊ + 1)/(N₊ + 2) and 1/(N₋ + 2),
    which keeps ``a`` finite where the scores separate the classes."""
    from scipy.optimize import minimize
    from scipy.special import expit

    positives = int(is_positive.sum())
    negatives = len(is_positive) - positives
    target = np.where(is_positive, (positives + 1) / (positives + 2), 1 / (negatives + 2))

    def loss(parameters):
        logits = parameters[0] * scores + parameters[1]
        residual = expit(logits) - target
        value = np.sum(np.logaddexp(0, logits) - target * logits)
        return value, np.array([residual @ scores, residual.sum()])

    result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


NB_ALPHA_GRID = (0.1, 0.3, 1.0)
"""The smoothings naive Bayes's cross-validation chooses from."""

LOGISTIC_C_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0)
"""The inverse regularisation strengths TF-IDF logistic regression chooses from."""


class NaiveBayes(LinearTextModel):
    r"""Multinomial naive Bayes on n-gram counts: scikit-learn's ``MultinomialNB``.

    Each class c has a prior :math:`\pi_c` (its share of the training texts) and a
    distribution over n-grams, :math:`\theta_{cj} = (N_{cj} + \alpha) / (N_c + \alpha |V|)`
    from the counts :math:`N_{cj}` of n-gram j in the class's texts; a text of counts x
    scores :math:`\log \pi_c + \sum_j x_j \log \theta_{cj}` per class, and the posterior is
    their softmax. Two classes keep the difference of their two scores (> 0:
    ``classes_[1]``), which predicts and gives probabilities exactly as the two do.

    The smoothing ``alpha=None`` (the default) is chosen from ``NB_ALPHA_GRID`` by
    ``folds``-fold cross-validated accuracy on the training texts (scikit-learn's
    ``GridSearchCV``, every fold with its own vocabulary). Word unigrams by default: on
    3,000-text subsets of Rotten Tomatoes they score 73.3 % to uni+bigrams' 72.4 (the best
    smoothing of each, four subsets).

    Args:
        ngram_range: ``(min_n, max_n)``, the n-gram lengths counted.
        alpha: additive smoothing (> 0), or None: chosen by cross-validation.
        folds: the cross-validation's folds.

    Attributes: :class:`LinearTextModel`'s, and ``alpha_``, the smoothing used.
    """

    name = "naive_bayes"
    features = "counts"
    regulariser = ("alpha", "nb__alpha", NB_ALPHA_GRID)
    softmax = True

    def __init__(self, ngram_range: tuple[int, int] = (1, 1), alpha: float | None = None,
                 folds: int = FOLDS):  # fmt: skip
        self.ngram_range = ngram_range
        self.alpha = alpha
        self.folds = folds
        self._check_settings()

    def fit(self, texts, labels) -> NaiveBayes:
        """Count the n-grams of each class, the smoothing chosen by cross-validation."""
        from sklearn.naive_bayes import MultinomialNB

        token_lists, labels = self._prepare(texts, labels)
        fitted = self._search([("nb", MultinomialNB())], token_lists, labels)
        nb = fitted.named_steps["nb"]
        coef, intercept = nb.feature_log_prob_, nb.class_log_prior_
        if len(nb.classes_) == 2:  # one score: the difference of the two
            coef, intercept = coef[1] - coef[0], intercept[1] - intercept[0]
        self._keep(nb.classes_, fitted.named_steps["counts"].vocabulary_, coef, intercept)
        self.alpha_ = float(nb.alpha)
        return self


class TfidfLogistic(LinearTextModel):
    r"""Logistic regression on TF-IDF-weighted n-grams: scikit-learn's ``TfidfTransformer``
    and ``LogisticRegression``.

    Each count c of n-gram j becomes :math:`(1 + \log c)\,\mathrm{idf}_j`, with
    :math:`\mathrm{idf}_j = \log\frac{1 + n}{1 + \mathrm{df}_j} + 1` over the n training
    texts, and each text's vector is scaled to unit length; an L2-regularised logistic
    regression is fitted on them (liblinear for two classes; for more, lbfgs fits one softmax
    over the classes, whose probabilities are the softmax of the scores). ``C=None``
    (the default) is chosen from ``LOGISTIC_C_GRID`` by ``folds``-fold cross-validated
    accuracy on the training texts (scikit-learn's ``GridSearchCV``; every fold learns its
    own vocabulary and idf).

    Args:
        ngram_range: ``(min_n, max_n)``, the n-gram lengths weighted.
        C: inverse regularisation strength (> 0), or None: chosen by cross-validation.
        folds: the cross-validation's folds.

    Attributes: :class:`LinearTextModel`'s (``idf_`` among them), and ``C_``, the C used.
    """

    name = "tfidf_logistic"
    features = "tfidf"
    regulariser = ("C", "lr__C", LOGISTIC_C_GRID)
    softmax = True  # a softmax regression for more than two classes

    def __init__(self, ngram_range: tuple[int, int] = (1, 2), C: float | None = None,
                 folds: int = FOLDS):  # fmt: skip
        self.ngram_range = ngram_range
        self.C = C
        self.folds = folds
        self._check_settings()

    def fit(self, texts, labels) -> TfidfLogistic:
        """Weight the n-grams and fit the regression, C chosen by cross-validation."""
        from sklearn.feature_extraction.text import TfidfTransformer

        token_lists, labels = self._prepare(texts, labels)
        steps = [("tfidf", TfidfTransformer(sublinear_tf=True)),
                 ("lr", _logistic_regression(classes=len(set(labels))))]  # fmt: skip
        fitted = self._search(steps, token_lists, labels)
        lr = fitted.named_steps["lr"]
        self._keep(lr.classes_, fitted.named_steps["counts"].vocabulary_, lr.coef_,
                   lr.intercept_, idf=fitted.named_steps["tfidf"].idf_)  # fmt: skip
        self.C_ = float(lr.C)
        return self


def _logistic_regression(classes: int):
    """liblinear for two classes (a tenth of lbfgs's time on 3,000 texts); scikit-learn's
    liblinear no longer fits more, which lbfgs fits as one softmax regression."""
    from sklearn.linear_model import LogisticRegression

    if classes == 2:
        return LogisticRegression(solver="liblinear", random_state=0)
    return LogisticRegression(solver="lbfgs", max_iter=1000)


LINEAR_BASELINES: dict[str, type[LinearTextModel]] = {
    model.name: model for model in (NBSVM, NaiveBayes, TfidfLogistic)
}
"""The linear text baselines by the name ``to_dict`` gives them."""


def _diagonal(values: np.ndarray):
    from scipy.sparse import diags

    return diags(values)
