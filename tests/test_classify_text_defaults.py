"""The text classifier's defaults that follow the size of the data (``text_defaults``), and
its blend with its best linear baseline: the weight chosen on the validation part, the
probabilities it gives, what a run keeps, and where it is refused."""

import json
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.readers import read_table
from rnnkit.tasks.classify import (
    BEFORE_RULES,
    BLEND_WEIGHTS,
    SMALL_BLEND_WEIGHT,
    Classifier,
    read_examples,
)
from rnnkit.tasks.classify_inputs import text_defaults

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


# --- the rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "rule", "word_dropout"),
    [(300, "tiny", 0.5), (999, "tiny", 0.5), (1000, "small", 0.5), (7_999, "small", 0.5),
     (8_000, "large", 0.3), (500_000, "large", 0.3)],
)  # fmt: skip
def test_the_rule_gives_its_documented_settings_by_size(count, rule, word_dropout):
    defaults = text_defaults(count)
    assert defaults["rule"] == rule
    assert defaults["embedding_dropout"] == word_dropout
    assert (defaults["min_freq"], defaults["ngrams"]) == (2, 2)
    assert (defaults["stop_on"], defaults["blend"]) == ("loss", "linear")
    assert f"{count:,} training texts" in defaults["reason"]


def test_a_setting_given_keeps_its_value_and_the_rest_follow_the_rule(mr):
    (texts, labels), _ = mr
    classifier = Classifier(embedding_dropout=0.2, blend="none", **SMALL)
    classifier.fit(texts[:300], labels[:300])
    assert classifier.metrics_["defaults"]["rule"] == "tiny"
    assert classifier.resolved("embedding_dropout") == 0.2
    assert classifier.model_.embedding_dropout == 0.2
    assert classifier.baseline_.embedding_dropout == 0.2, "given: the one-to-one's too"
    assert classifier.resolved("ngrams") == 2 and classifier.model_.ngram_bag.orders == 2
    assert classifier.vocabulary_.min_freq == 2
    assert classifier.blend_ is None
    assert "Defaults (tiny): 300 training texts, under 1,000" in classifier.report()


def test_feature_sequences_keep_their_own_rule():
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(12, 2)).astype(np.float32) + (i % 2) for i in range(60)]
    classifier = Classifier(**SMALL).fit(series, [str(i % 2) for i in range(60)])
    assert classifier.defaults_["rule"] == "features"
    assert classifier.resolved("ngrams") == 0 and classifier.resolved("stop_on") == "accuracy"


def test_a_run_saved_before_the_rules_loads_with_the_old_defaults(mr, tmp_path):
    (texts, labels), (test, _) = mr
    old = {name: value for name, value in BEFORE_RULES.items() if name not in ("rule", "reason")}
    classifier = Classifier(**old, **SMALL).fit(texts[:300], labels[:300])
    run = tmp_path / "run"
    classifier.save(run)
    config = json.loads((run / "config.json").read_text())
    state = json.loads((run / "data_state.json").read_text())
    settings = config["settings"]
    for name in ("stop_on", "blend"):  # settings that did not exist
        settings.pop(name)
    for name in ("embedding_dropout", "min_freq", "ngrams"):  # the old defaults, explicit
        settings[name] = old[name]
    del state["defaults"], state["blend"]
    (run / "config.json").write_text(json.dumps(config))
    (run / "data_state.json").write_text(json.dumps(state))
    loaded = Classifier.load(run)
    assert loaded.resolved("blend") == "none" and loaded.blend_ is None
    np.testing.assert_allclose(
        loaded.predict_proba(test), classifier.predict_proba(test), rtol=1e-6
    )


def test_the_one_to_one_baseline_is_fitted_its_own_way(mr, monkeypatch):
    (texts, labels), _ = mr
    monitors = []
    original = Classifier._trainer

    def recording(self, **options):
        monitors.append((options.get("checkpoint"), options.get("monitor")))
        return original(self, **options)

    monkeypatch.setattr(Classifier, "_trainer", recording)
    classifier = Classifier(stop_on="loss", val=0.2, **SMALL).fit(texts[:300], labels[:300])
    assert monitors == [("", "val_loss"), ("one_to_one", "val_accuracy")]
    # Nor does it take the rule's word-type dropout, which kept it at the majority class.
    assert classifier.model_.embedding_dropout == 0.5
    assert classifier.baseline_.embedding_dropout == 0.0


# --- end to end: a small unbalanced set, from the command line -------------------------------


def test_a_small_unbalanced_set_is_scored_beside_fitted_baselines(tmp_path):
    """Two positive sentences to one negative, 900 of them: the rule is "tiny", every linear
    baseline finds some of the minority class (measured: NB-SVM with the paper's threshold
    finds none, macro-F1 0.40, the majority class's), and the model reports its blend and
    the network alone."""
    from click.testing import CliRunner

    from rnnkit.cli import main

    texts, labels = read_table(DATA / "mr_sample.tsv")
    positive = [i for i, y in enumerate(labels) if y == "positive"]
    negative = [i for i, y in enumerate(labels) if y == "negative"]
    parts = {
        "train": positive[:600] + negative[:300],
        "test": positive[600:800] + negative[300:400],
    }
    for part, rows in parts.items():
        lines = ["text\tlabel", *(f"{texts[i]}\t{labels[i]}" for i in rows)]
        (tmp_path / f"{part}.tsv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "classify", "train", "--data", str(tmp_path / "train.tsv"),
        "--test", str(tmp_path / "test.tsv"), "--steps", "150", "--out", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["defaults"]["rule"] == "tiny" and metrics["blend"]["weight"] == 0.5
    test = metrics["test"]
    assert test["majority"]["macro_f1"] == pytest.approx(0.4)
    for name in ("nbsvm", "naive_bayes", "tfidf_logistic"):
        assert test[name]["macro_f1"] > 0.45, (name, test[name]["macro_f1"])
    assert "network" in test and "Defaults (tiny)" in result.output
    assert "Blend: no validation part" in result.output
