"""The text classifier's blend with its best linear baseline: the weight chosen on the
validation part, the probabilities it gives, what a run keeps, and where it is refused."""

import json
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.readers import read_table
from rnnkit.tasks.classify import BLEND_WEIGHTS, SMALL_BLEND_WEIGHT, Classifier, read_examples

DATA = Path(__file__).parent / "data"
SMALL = {"hidden_size": 8, "embedding_dim": 8, "epochs": 2, "progress": "none"}


@pytest.fixture(scope="module")
def mr():
    texts, labels = read_table(DATA / "mr_sample.tsv")
    return (texts[:1200], labels[:1200]), (texts[2000:2200], labels[2000:2200])


@pytest.fixture(scope="module")
def blended(mr):
    (texts, labels), _ = mr
    return Classifier(blend="linear", val=0.2, **SMALL).fit(texts, labels)


def test_the_weight_is_the_least_cross_entropy_on_the_validation_part(blended):
    blend = blended.blend_
    assert blend["partner"] in {"nbsvm", "naive_bayes", "tfidf_logistic"}
    # The partner is the linear model of the best cross-validated accuracy.
    accuracy = {k: max(m.cv_["accuracy"].values()) for k, m in blended.reference_.items()}
    assert accuracy[blend["partner"]] == max(accuracy.values())
    assert blend["weight"] in BLEND_WEIGHTS
    assert "cross-entropy on the validation part" in blend["reason"]
    # Two epochs of a network 8 wide learn little: the linear model carries weight.
    assert blend["weight"] > 0


def test_probabilities_average_the_network_and_its_partner(blended, mr):
    _, (texts, labels) = mr
    weight, partner = blended.blend_["weight"], blended.reference_[blended.blend_["partner"]]
    examples = read_examples(texts, need_labels=False)
    tokens = blended.inputs_.tokens(examples)
    network = blended._probabilities(blended.members_, blended._dataset(examples))
    linear = partner.predict_proba(tokens)[
        :, [partner.classes_.index(c) for c in blended.labels_.tokens]
    ]
    expected = (1 - weight) * network + weight * linear
    np.testing.assert_allclose(blended.predict_proba(texts), expected, rtol=1e-6)
    scores = blended.score(texts, labels)
    predicted = [blended.labels_.tokens[k] for k in expected.argmax(1)]
    assert scores["model"]["accuracy"] == np.mean(np.array(predicted) == np.array(labels))
    assert scores["network"]["accuracy"] == np.mean(
        np.array([blended.labels_.tokens[k] for k in network.argmax(1)]) == np.array(labels)
    )


def test_a_run_keeps_the_blend(blended, mr, tmp_path):
    _, (texts, _) = mr
    blended.save(tmp_path / "run")
    state = json.loads((tmp_path / "run" / "data_state.json").read_text())
    assert state["blend"] == blended.blend_
    loaded = Classifier.load(tmp_path / "run")
    np.testing.assert_allclose(loaded.predict_proba(texts), blended.predict_proba(texts), rtol=1e-6)
    assert "Blend: " in loaded.report() and "(weight" in "\n".join(
        loaded.table(loaded.metrics_["validation"])
    )


def test_without_a_validation_part_the_weight_is_the_measured_default(mr):
    (texts, labels), _ = mr
    classifier = Classifier(blend="linear", **SMALL).fit(texts[:300], labels[:300])
    assert classifier.budget_["val"] == 0, "under 1,000 texts: no validation part"
    assert classifier.blend_["weight"] == SMALL_BLEND_WEIGHT
    assert "no validation part" in classifier.blend_["reason"]


def test_none_is_the_network_alone_and_series_have_no_partner(mr):
    (texts, labels), _ = mr
    alone = Classifier(blend="none", val=0.2, **SMALL).fit(texts[:400], labels[:400])
    assert alone.blend_ is None and "network" not in alone.score(texts[:50], labels[:50])
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(12, 2)).astype(np.float32) + (i % 2) for i in range(60)]
    signals = Classifier(blend="linear", **SMALL).fit(series, [str(i % 2) for i in range(60)])
    assert signals.blend_ is None


def test_a_blended_classifier_does_not_stream(mr):
    (texts, labels), _ = mr
    classifier = Classifier(
        blend="linear", pooling="last", bidirectional=False, val=0.2, **SMALL
    ).fit(texts[:400], labels[:400])
    with pytest.raises(ValueError, match=r"blend the network's with .* blend='none'"):
        classifier.stream()
