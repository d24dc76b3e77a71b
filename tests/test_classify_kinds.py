"""The classifier's two kinds of input (``rnnkit.tasks.classify_inputs``): the data chooses
one, a run restores it, each does every job that differs between text and feature sequences,
and the classifier itself never asks which kind it holds."""

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from rnnkit.tasks import classify, classify_inputs, rundir
from rnnkit.tasks.classify import Classifier
from rnnkit.tasks.classify_inputs import KINDS, Inputs, SeriesInputs, TextInputs

TINY = {"hidden_size": 4, "embedding_dim": 4, "steps": 2, "progress": "none"}
TEXTS = ["a fine film", "a dull film", "witty and warm", "tedious and long"] * 5
SENTIMENT = ["pos", "neg", "pos", "neg"] * 5
KIND_NAMES = ("kind", "kind_")


def _series(count=20):
    rng = np.random.default_rng(0)
    series = [
        rng.normal(size=(int(rng.integers(6, 12)), 2)).astype(np.float32) for _ in range(count)
    ]
    return series, ["a", "b"] * (count // 2)


@pytest.mark.parametrize(
    ("data", "kind", "learnt", "baselines"),
    [
        (
            (TEXTS, SENTIMENT),
            TextInputs,
            ("vocabulary_", "tokenizer_"),
            {"nbsvm", "naive_bayes", "tfidf_logistic"},
        ),
        (_series(), SeriesInputs, ("scaler_", "length_"), {"nn_euclidean", "nn_dtw"}),
    ],
)
def test_the_data_chooses_the_kind_and_a_run_restores_it(data, kind, learnt, baselines, tmp_path):
    classifier = Classifier(conv_channels=(4,), conv_kernels=(3,), **TINY).fit(*data)
    assert type(classifier.inputs_) is kind
    assert classifier.kind_ == kind.kind
    for name in learnt:  # what the kind learnt reads on the classifier, as it always has
        assert getattr(classifier, name) is getattr(classifier.inputs_, name)
    other = next(k for k in KINDS.values() if k is not kind)
    for name in {"vocabulary_", "tokenizer_", "scaler_", "length_"} - set(learnt):
        assert not hasattr(classifier, name), name
    assert set(classifier.reference_) == baselines
    out = classifier.save(tmp_path / "run")
    state = rundir.read_json(out / "data_state.json")
    assert state["kind"] == kind.kind
    loaded = Classifier.load(out)
    assert type(loaded.inputs_) is kind
    assert set(loaded.reference_) == baselines
    inputs = data[0][:6]
    np.testing.assert_array_equal(loaded.predict_proba(inputs), classifier.predict_proba(inputs))
    assert loaded.score(*data) == classifier.score(*data)
    # The same settings fitted on the other kind's data: the other kind, nothing left over.
    refit = clone(classifier).fit(*(_series() if kind is TextInputs else (TEXTS, SENTIMENT)))
    assert type(refit.inputs_) is other
    for name in learnt:
        assert not hasattr(refit, name), name


def test_each_kind_defines_every_hook_and_nothing_the_other_lacks():
    def public(cls):
        return {name for name in dir(cls) if not name.startswith("_")}

    declared = public(Inputs) | set(Inputs.__annotations__)  # hooks and class attributes
    assert public(TextInputs) == public(SeriesInputs) == declared
    assert set(KINDS) == {"text", "features"}
    with pytest.raises(TypeError, match=r"Half \(kind 'half'\) does not define defaults, encode, "):

        class Half(Inputs):
            kind = "half"

            def fit(self, train):
                return []


def _self_attributes(tree) -> set[str]:
    """Every attribute and method name a class's source defines or assigns on ``self``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return names


def _class_tree(module, name):
    tree = ast.parse(Path(inspect.getfile(module)).read_text())
    return next(n for n in tree.body if getattr(n, "name", None) == name)


def test_the_classifier_never_asks_which_kind_it_holds():
    """What only one kind has (its state, its helpers) is that kind's: the classifier's own
    code names none of it, nor a kind, nor compares with a kind's name. A job added to the
    classifier for one kind fails here; it belongs in both kinds, as a hook of ``Inputs``."""
    text, series = (_self_attributes(_class_tree(classify_inputs, c.__name__))
                    for c in (TextInputs, SeriesInputs))  # fmt: skip
    shared = _self_attributes(_class_tree(classify_inputs, "Inputs"))
    one_kind_only = (text ^ series) - shared
    assert {"vocabulary_", "tokenizer_", "scaler_", "length_", "_prepared"} <= one_kind_only
    kinds = {cls.__name__ for cls in KINDS.values()}
    for name in ("Classifier", "predict_lines"):
        for node in ast.walk(_class_tree(classify, name)):
            where = f"{name}, line {getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Attribute):
                assert node.attr not in one_kind_only, f"{where} uses {node.attr}"
            if isinstance(node, ast.Name):
                assert node.id not in kinds, f"{where} names {node.id}"
            if isinstance(node, ast.Compare):  # kind == "text" (a format's "text" is fine)
                parts = list(ast.walk(node))
                constants = {n.value for n in parts if isinstance(n, ast.Constant)}
                kind = any(getattr(n, "attr", getattr(n, "id", "")) in KIND_NAMES for n in parts)
                assert not (kind and constants & set(KINDS)), f"{where} asks for a kind"
