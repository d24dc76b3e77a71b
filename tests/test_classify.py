"""The classify pipeline end to end on small real data: MR sentences, JapaneseVowels, and
Fashion-MNIST where its Debian package is installed. Short runs: they prove the pipeline
(shapes, better than chance, save/load identical), not the accuracy targets, which come
from experiments/ (see the README)."""

import gzip
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rnnkit.cli import main
from rnnkit.tasks.classify import Classifier, read_examples

DATA = Path(__file__).parent / "data"
MR = DATA / "mr_sample.tsv"
VOWELS_TRAIN = DATA / "JapaneseVowels_sample_TRAIN.ts"
VOWELS_TEST = DATA / "JapaneseVowels_sample_TEST.ts"
FASHION = Path("/usr/share/datasets/fashion-mnist")
SMALL = {"hidden_size": 32, "embedding_dim": 32, "progress": "none", "batch_size": 32}


def run(*args, input=None):
    result = CliRunner().invoke(main, [str(a) for a in args], input=input)
    return result


# What a text run scores: the model (by default the network blended with a linear baseline),
# the network alone, its baselines and the majority class.
TEXT_SCORES = {"model", "network", "one_to_one", "nbsvm", "naive_bayes", "tfidf_logistic",
               "majority"}  # fmt: skip


@pytest.fixture(scope="module")
def mr_run(tmp_path_factory):
    """A text classifier trained on 2,000 MR sentences, tested on the other 400."""
    folder = tmp_path_factory.mktemp("mr")
    lines = MR.read_text().splitlines()
    (folder / "train.tsv").write_text("\n".join(lines[:2001]) + "\n")
    (folder / "test.tsv").write_text("\n".join([lines[0], *lines[2001:]]) + "\n")
    out = folder / "run"
    result = run(
        "classify", "train", "--data", folder / "train.tsv", "--test", folder / "test.tsv",
        "--epochs", 5, "--hidden-size", 32, "--embedding-dim", 32, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder, out, result.output


def test_train_writes_a_complete_run_with_baselines(mr_run):
    _, out, printed = mr_run
    names = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "one_to_one.safetensors",
        "data_state.json",
        "metrics.json",
        "history.csv",
        "steps.csv",
        "learning_curves.png",
        "confusion_matrix.png",
    } <= names
    assert not out.with_name("run.partial").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scored_on"] == "test"
    test = metrics["test"]
    assert metrics["data"]["test"] == 400
    assert metrics["accuracy"] == test["model"]["accuracy"]
    assert metrics["macro_f1"] == test["model"]["macro_f1"]
    assert set(test) == TEXT_SCORES
    assert np.array(test["model"]["confusion_matrix"]).sum() == 400
    for line in ("LSTM (attention pooling)", "one-to-one (no recurrence)", "majority class"):
        assert line in printed


def test_the_text_model_beats_chance(mr_run):
    _, out, _ = mr_run
    test = json.loads((out / "metrics.json").read_text())["test"]
    # 400 balanced sentences: chance is 50 % (one standard error 2.5 %); 5 epochs on 2,000
    # sentences make a weak model (59-65 % over seeds), but one that learnt something.
    assert test["model"]["accuracy"] > 0.55
    assert test["majority"]["accuracy"] <= 0.6


def test_evaluate_records_accuracy_and_macro_f1(mr_run, tmp_path):
    folder, out, _ = mr_run
    copy = shutil.copytree(out, tmp_path / "run")  # evaluate writes into the run
    result = run("classify", "evaluate", "--run", copy, "--data", folder / "test.tsv")
    assert result.exit_code == 0, result.output
    metrics = json.loads((copy / "metrics.json").read_text())
    evaluation = metrics["evaluations"][-1]
    assert evaluation["data"] == str(folder / "test.tsv")
    scores = evaluation["scores"]
    assert set(scores) == TEXT_SCORES
    assert metrics["accuracy"] == scores["model"]["accuracy"]
    assert metrics["macro_f1"] == scores["model"]["macro_f1"]
    assert metrics["scored_on"] == str(folder / "test.tsv")
    # The same data as the training-time test: the same scores.
    assert scores["model"]["accuracy"] == metrics["test"]["model"]["accuracy"]


def test_save_load_gives_identical_predictions(mr_run):
    folder, out, _ = mr_run
    texts = read_examples(folder / "test.tsv").inputs
    loaded = Classifier.load(out)
    again = Classifier.load(out)
    np.testing.assert_array_equal(loaded.predict_proba(texts), again.predict_proba(texts))
    metrics = json.loads((out / "metrics.json").read_text())
    scores = loaded.score(folder / "test.tsv")
    assert scores["model"]["accuracy"] == metrics["test"]["model"]["accuracy"]


def test_predict_reads_stdin_and_explains_with_attention(mr_run):
    _, out, _ = mr_run
    text = "a gorgeous , witty film\ntedious and overlong\n"
    result = run("classify", "predict", "--run", out, "--explain", input=text)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 4
    label, probability, shown = lines[0].split("\t")
    assert label in ("positive", "negative") and 0.5 <= float(probability) <= 1
    assert shown == "a gorgeous , witty film"
    weights = [float(part.rsplit("(", 1)[1][:-1]) for part in lines[1].split()]
    assert len(weights) == 5 and sum(weights) == pytest.approx(1, abs=0.03)


def test_predict_refuses_an_empty_line(mr_run):
    _, out, _ = mr_run
    result = run("classify", "predict", "--run", out, input="fine film\n\ngood\n")
    assert result.exit_code != 0
    assert "<stdin>:2: the line is blank" in result.output


def test_evaluate_refuses_labels_the_model_never_saw(mr_run, tmp_path):
    _, out, _ = mr_run
    data = tmp_path / "odd.tsv"
    data.write_text("text\tlabel\na fine film\tpositive\na dull film\tneutral\n")
    result = run("classify", "evaluate", "--run", out, "--data", data)
    assert result.exit_code != 0
    assert "labels the model never saw: ['neutral']" in result.output
    assert "'negative', 'positive'" in result.output


def test_a_run_of_another_task_is_refused(mr_run, tmp_path):
    _, out, _ = mr_run
    result = run("tag", "predict", "--run", out, input="Paris\n")
    assert result.exit_code != 0
    assert "holds a 'classify' run, not a 'tag' run" in result.output


def test_bad_training_data_leaves_no_run_directory(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("review,label\nfine,pos\n")
    out = tmp_path / "run"
    result = run("classify", "train", "--data", data, "--out", out)
    assert result.exit_code != 0
    assert "text" in result.output and "review" in result.output  # the missing column
    assert not out.exists() and not out.with_name("run.partial").exists()


def test_text_that_has_no_tokens_is_named():
    with pytest.raises(ValueError, match=r"example 2.*has no tokens"):
        Classifier(epochs=1, val=0, **SMALL).fit(["good film", "   "], ["pos", "neg"])


def test_bpe_and_char_tokenizers_train_and_reload(tmp_path):
    texts = read_examples(MR)
    for tokenizer in ("bpe", "char"):
        classifier = Classifier(tokenizer=tokenizer, bpe_vocab_size=300, epochs=1, **SMALL)
        classifier.fit(texts.inputs[:200], texts.labels[:200])
        out = classifier.save(tmp_path / tokenizer)
        loaded = Classifier.load(out)
        sample = texts.inputs[200:230]
        assert loaded.tokenizer_(sample[0]) == classifier.tokenizer_(sample[0])
        np.testing.assert_array_equal(
            loaded.predict_proba(sample), classifier.predict_proba(sample)
        )


def test_signals_from_ts_files_beat_chance(tmp_path):
    """JapaneseVowels (9 speakers, 12 coefficients per frame, 7-29 frames): 108 to train."""
    classifier = Classifier(pooling="mean", val=0.0, epochs=15, lr=5e-3, **SMALL)
    classifier.fit(VOWELS_TRAIN)
    scores = classifier.score(VOWELS_TEST)
    assert len(read_examples(VOWELS_TEST)) == 90
    assert np.array(scores["model"]["confusion_matrix"]).sum() == 90  # every example scored
    assert scores["model"]["accuracy"] > 0.6  # chance is 1/9
    assert classifier.labels_.tokens == [str(i) for i in range(1, 10)]
    probabilities = classifier.predict_proba(VOWELS_TEST)
    assert probabilities.shape == (90, 9)
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-5)
    out = classifier.save(tmp_path / "vowels")
    loaded = Classifier.load(out)
    np.testing.assert_array_equal(loaded.predict_proba(VOWELS_TEST), probabilities)


def test_features_of_the_wrong_width_are_refused():
    classifier = Classifier(val=0.0, epochs=1, **SMALL).fit(VOWELS_TRAIN)
    with pytest.raises(ValueError, match="3 features per step, the model reads 12"):
        classifier.predict([np.zeros((5, 3), dtype=np.float32)])


def _write_idx(path: Path, array: np.ndarray) -> None:
    codes = {np.dtype(np.uint8): 0x08}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.tobytes())


@pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_row_by_row_from_idx_files(tmp_path):
    """2,000 training images read as 28 steps of 28 pixels, through the idx reader and CLI."""
    from rnnkit.data.readers import read_idx

    for part, rows in (("train", 2000), ("t10k", 500)):
        images = read_idx(FASHION / f"{part}-images-idx3-ubyte.gz")[:rows]
        labels = read_idx(FASHION / f"{part}-labels-idx1-ubyte.gz")[:rows]
        _write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", images)
        _write_idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", labels)
    out = tmp_path / "run"
    result = run(
        "classify", "train", "--data", tmp_path / "train-images-idx3-ubyte.gz",
        "--test", tmp_path / "t10k-images-idx3-ubyte.gz", "--cell", "gru", "--epochs", 2,
        "--hidden-size", 32, "--batch-size", 64, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert metrics["data"]["test"] == 500
    assert test["model"]["accuracy"] > 0.5  # chance is 0.1
    assert len(test["model"]["confusion_matrix"]) == 10
    loaded = Classifier.load(out)
    assert loaded.fixed_length_ == 28  # fixed length: the one-to-one baseline is a plain MLP
    assert loaded.baseline_.steps == 28


def test_too_little_data_to_hold_out_is_named():
    with pytest.raises(ValueError, match=r"val=0.1 holds out nothing from 8 examples"):
        Classifier(epochs=1, val=0.1, **SMALL).fit(
            ["good", "bad", "fine", "awful"] * 2, list("pnpn") * 2
        )


def test_a_class_seen_only_in_validation_data_is_known():
    texts, labels = ["good film", "bad film"] * 6, ["pos", "neg"] * 6
    classifier = Classifier(epochs=1, **SMALL)
    classifier.fit(texts, labels, val_data=read_examples(["odd film"], ["odd"]))
    assert classifier.labels_.tokens == ["neg", "odd", "pos"]


def test_layer_options_the_model_sets_or_does_not_know_are_errors(tmp_path):
    for option, message in (
        ("bidirectional=false", "rnn_options ['bidirectional'] are settings of SequenceClassifier"),
        ("foo=1", "['foo'] are not options of the lstm layer"),
    ):
        out = tmp_path / option
        result = run("classify", "train", "--data", MR, "--option", option, "--out", out)
        assert result.exit_code != 0 and message in result.output, result.output
        assert not out.exists()


def test_numpy_sequences_of_any_length_are_scored(tmp_path):
    """Equal-length arrays are not images: the baseline pools them and accepts other lengths."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 9, 3)).astype(np.float32)
    y = (x[:, :, 0].mean(1) > 0).astype(int)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    np.savez(tmp_path / "short.npz", x=x[:10, :6], y=y[:10])
    classifier = Classifier(val=0, epochs=2, **SMALL).fit(tmp_path / "train.npz")
    assert classifier.fixed_length_ is None
    scores = classifier.score(tmp_path / "short.npz")
    assert np.array(scores["model"]["confusion_matrix"]).sum() == 10
    assert "one_to_one" in scores  # the pooling baseline scores the other length too
