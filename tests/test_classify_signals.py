"""Classification on data nobody tuned for: the budget rule, inputs prepared on the training
part only (gaps, z-normalisation, channel scaling), the convolutional front-end, and the
baselines a time-series or sentiment user compares with, end to end on small extracts."""

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rnnkit.cli import main
from rnnkit.data.series import Gaps, fill_gaps, z_normalise
from rnnkit.models.classifier import ConvFrontEnd, NgramBag, SequenceClassifier
from rnnkit.tasks import supervised
from rnnkit.tasks.classify import (
    LARGE_EPOCHS,
    SMALL_DATA,
    SMALL_STEPS,
    Classifier,
    Examples,
    training_budget,
)

DATA = Path(__file__).parent / "data"
MR = DATA / "mr_sample.tsv"
VOWELS_TRAIN = DATA / "JapaneseVowels_sample_TRAIN.ts"
VOWELS_TEST = DATA / "JapaneseVowels_sample_TEST.ts"
TINY = {"hidden_size": 8, "conv_channels": (8,), "conv_kernels": (3,), "progress": "none"}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# --- the budget rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "rule", "batch", "steps", "epochs", "val"),
    [
        (36, "small", 8, SMALL_STEPS, None, 0.0),  # a tenth is 3 examples: batches of 8
        (270, "small", 27, SMALL_STEPS, None, 0.0),  # JapaneseVowels: a tenth per batch
        (999, "small", 32, SMALL_STEPS, None, 0.0),
        # 900 to train in batches of 32: 29 steps an epoch, 15 epochs < the 1,000-step floor
        (SMALL_DATA, "large", 32, SMALL_STEPS, 35, 0.1),
        (10_453, "large", 32, 4410, LARGE_EPOCHS, 0.1),  # MR: 294 steps an epoch
        (60_000, "large", 32, 25_320, LARGE_EPOCHS, 0.1),  # Fashion-MNIST
    ],
)
def test_the_budget_follows_the_size_of_the_data(count, rule, batch, steps, epochs, val):
    budget = training_budget(count)
    assert (budget["rule"], budget["batch_size"], budget["steps"]) == (rule, batch, steps)
    assert (budget["epochs"], budget["val"]) == (epochs, val)
    assert budget["schedule"] == "cosine"
    assert str(count) in budget["reason"]
    # Text keeps a constant rate on large data (measured on MR), and the small rule.
    for_text = training_budget(count, text=True)
    assert for_text["schedule"] == ("cosine" if rule == "small" else None)
    assert ("cosine" if rule == "small" else "constant") in for_text["reason"]


def test_given_settings_win_over_the_rule():
    budget = training_budget(50, epochs=30, batch_size=4, val=0.2, schedule="plateau")
    assert budget["rule"] == "given"
    assert (budget["epochs"], budget["steps"], budget["batch_size"]) == (30, None, 4)
    assert (budget["val"], budget["schedule"]) == (0.2, "plateau")
    assert training_budget(50, steps=7)["steps"] == 7
    # A small set with a validation part anyway waits a fifth of the budget to stop.
    validated = training_budget(100, val=0.2)
    per_epoch = math.ceil(80 / 10)
    assert validated["patience"] == math.ceil(0.2 * SMALL_STEPS / per_epoch)
    # So does a large set whose epochs are few steps: 1,500 examples, 43 steps an epoch.
    assert training_budget(1500)["patience"] == math.ceil(0.2 * SMALL_STEPS / 43)
    assert training_budget(10_453)["patience"] == 3  # 15 epochs: a fifth is 3


def test_a_fit_reports_the_rule_it_applied(tmp_path):
    classifier = Classifier(steps=3, **TINY).fit(VOWELS_TRAIN)
    assert classifier.metrics_["budget"]["rule"] == "given"
    assert len(classifier.steps_) == 3
    assert classifier.metrics_["data"]["validation"] == 0  # 108 series: none held out
    assert "Budget (given): 108 training examples" in classifier.report()


# --- inputs prepared as the field prepares them -------------------------------------------


def test_gaps_at_the_ends_are_trimmed_and_inside_interpolated():
    x = np.array([[np.nan, np.nan], [1.0, 10.0], [np.nan, 20.0], [3.0, np.nan],
                  [np.nan, np.nan]], dtype=np.float32)  # fmt: skip
    gaps = Gaps()
    filled = fill_gaps(x, "series 1", gaps)
    np.testing.assert_array_equal(filled, [[1, 10], [2, 20], [3, 20]])
    assert gaps.as_dict() == {"series": 1, "filled": 2, "trimmed": 2}
    clean = np.ones((3, 2), np.float32)
    assert fill_gaps(clean, "series 2", gaps) is clean
    with pytest.raises(ValueError, match="series 3: every value of the series is missing"):
        fill_gaps(np.full((2, 1), np.nan), "series 3")
    with pytest.raises(ValueError, match="series 4: channel 2 has no value at all"):
        fill_gaps(np.array([[1.0, np.nan], [2.0, np.nan]]), "series 4")
    with pytest.raises(ValueError, match="series 5: step 2 has an infinite value"):
        fill_gaps(np.array([[1.0], [np.inf]]), "series 5")


def test_z_normalise_gives_each_channel_of_a_series_mean_0_and_deviation_1():
    x = np.random.default_rng(0).normal(5, 3, size=(40, 3))
    x[:, 2] = 7.0  # a constant channel becomes 0, not NaN
    z = z_normalise(x)
    np.testing.assert_allclose(z[:, :2].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z[:, :2].std(0), 1, atol=1e-12)
    np.testing.assert_array_equal(z[:, 2], 0)


def _signals(count, seed, length=30):
    """Two classes of noisy series: a bump early or late, on an offset that varies."""
    rng = np.random.default_rng(seed)
    series, labels = [], []
    steps = np.arange(length)
    for i in range(count):
        centre = 8 if i % 2 else 22
        bump = np.exp(-((steps - centre) ** 2) / 8.0)
        x = 50 + rng.normal(0, 5) + 20 * bump + rng.normal(0, 1, length)
        series.append(x[:, None].astype(np.float32))
        labels.append("early" if i % 2 else "late")
    return series, labels


def test_the_scaler_is_fitted_on_the_training_part_only():
    series, labels = _signals(40, 0)
    other = [x * 100 - 3 for x in series]
    first = Classifier(steps=2, val=0.25, **TINY).fit(series, labels)
    # The same training rows beside changed validation rows: the same scaler, bit for bit.
    held = set(supervised.hold_out(40, 0.25, first.seed, "examples", labels)[1].tolist())
    changed = [other[i] if i in held else x for i, x in enumerate(series)]
    second = Classifier(steps=2, val=0.25, **TINY).fit(changed, labels)
    assert first.scaler_.mean.tobytes() == second.scaler_.mean.tobytes()
    assert first.scaler_.std.tobytes() == second.scaler_.std.tobytes()
    third = Classifier(steps=2, **TINY).fit(
        series, labels, val_data=Examples(other, labels, "features")
    )
    fourth = Classifier(steps=2, **TINY).fit(
        series, labels, val_data=Examples(series, labels, "features")
    )
    assert third.scaler_.mean.tobytes() == fourth.scaler_.mean.tobytes()
    assert third.scaler_.std.tobytes() == fourth.scaler_.std.tobytes()
    train = np.concatenate([series[i] for i in range(40) if i not in held])
    np.testing.assert_allclose(first.scaler_.mean, train.mean(0), rtol=1e-6)


def test_series_normalisation_removes_each_series_offset():
    series, labels = _signals(20, 1)
    classifier = Classifier(steps=1, normalize="series", baseline=False, **TINY)
    classifier.fit(series, labels)
    shifted = [x + 1000 for x in series]  # the offset no longer reaches the model
    np.testing.assert_allclose(
        classifier.predict_proba(shifted), classifier.predict_proba(series), atol=1e-5
    )
    with pytest.raises(ValueError, match=r"normalize='unit' is not one of \('channel', 'series'\)"):
        Classifier(normalize="unit").fit(series, labels)


def test_series_of_unequal_length_are_resampled_to_the_longest(tmp_path):
    rng = np.random.default_rng(2)
    ramps = [np.linspace(0, 1, n, dtype=np.float32)[:, None] for n in rng.integers(5, 20, 12)]
    labels = ["a", "b"] * 6
    longest = max(map(len, ramps))
    classifier = Classifier(steps=1, baseline=False, **TINY).fit(ramps, labels)
    assert classifier.length_ == longest
    assert classifier.metrics_["data"]["resampled_to"] == longest
    # Stretched uniformly in time: a ramp of any length is the ramp of the longest length;
    # a test series longer than any in training is squeezed to it.
    wanted = np.linspace(0, 1, longest)[:, None]
    longer = Examples([np.linspace(0, 1, 40, dtype=np.float32)[:, None]], None, "features")
    prepared = classifier.inputs_._prepared  # the series before the channel scaler
    for x in prepared(Examples(ramps, labels, "features")) + prepared(longer):
        np.testing.assert_allclose(x, wanted, atol=1e-6)
    assert set(classifier._dataset(longer).lengths.tolist()) == {longest}
    kept = Classifier(steps=1, baseline=False, resample=None, **TINY).fit(ramps, labels)
    assert kept.length_ is None
    assert sorted(kept._dataset(Examples(ramps, labels, "features")).lengths.tolist()) == sorted(
        map(len, ramps)
    )
    assert Classifier(steps=1, baseline=False, resample=8, **TINY).fit(ramps, labels).length_ == 8
    for bad in (1, "short", True, 2.5):
        with pytest.raises(ValueError, match=rf"resample={bad!r} must be an integer >= 2"):
            Classifier(resample=bad).fit(ramps, labels)
    # On the command line "none" keeps every length, and the run keeps its setting.
    padded = np.stack([np.pad(r[:, 0], (0, 20 - len(r))) for r in ramps])
    np.savez(tmp_path / "ramps.npz", x=padded, y=np.array(labels),
             lengths=np.array(list(map(len, ramps))))  # fmt: skip
    out = tmp_path / "run"
    result = run("classify", "train", "--data", tmp_path / "ramps.npz", "--steps", 1,
                 "--resample", "none", "--hidden-size", 4, "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["data"]["resampled_to"] is None
    result = run("classify", "train", "--data", tmp_path / "ramps.npz", "--resample", "long",
                 "--out", tmp_path / "bad")  # fmt: skip
    expected = "'long' is not an integer, 'longest' or 'none'"
    assert result.exit_code != 0 and expected in result.output
    assert not (tmp_path / "bad").exists()


def test_missing_values_in_a_ts_file_are_filled_and_reported(tmp_path):
    lines = VOWELS_TRAIN.read_text().splitlines()
    data = lines.index("@data") + 1
    case = lines[data].split(":")
    dims = [d.split(",") for d in case[:-1]]
    dims[0][1] = "?"  # one value inside the series
    for d in dims:
        d.append("?")  # a last step missing everywhere: a shorter series
    lines[data] = ":".join([",".join(d) for d in dims] + [case[-1]])
    header = [line for line in lines[:data] if not line.lower().startswith("@equallength")]
    path = tmp_path / "gappy_TRAIN.ts"
    path.write_text("\n".join([*header[:-1], "@missing true", header[-1], *lines[data:]]))
    classifier = Classifier(steps=2, baseline=False, **TINY).fit(path)
    assert classifier.metrics_["data"]["missing"] == {"series": 1, "filled": 1, "trimmed": 1}


# --- the front-end ------------------------------------------------------------------------


def test_the_front_end_reads_a_sequence_the_same_whatever_its_batch_pads():
    torch.manual_seed(0)
    front = ConvFrontEnd(3, channels=(4, 5), kernels=(5, 3), downsample=3).eval()
    x = torch.randn(2, 11, 3)
    lengths = torch.tensor([11, 7])
    y, out_lengths = front(x, lengths)
    assert y.shape == (2, 4, 5) and out_lengths.tolist() == [4, 3]
    alone, _ = front(x[1:, :7], torch.tensor([7]))
    torch.testing.assert_close(y[1, :3], alone[0], rtol=0, atol=1e-6)


def test_the_front_end_settings_are_checked():
    with pytest.raises(ValueError, match=r"conv_channels=\(4,\) and conv_kernels=\(3, 3\)"):
        ConvFrontEnd(2, channels=(4,), kernels=(3, 3))
    with pytest.raises(ValueError, match="downsample=0 must be an integer >= 1"):
        ConvFrontEnd(2, channels=(4,), kernels=(3,), downsample=0)
    with pytest.raises(ValueError, match="give conv_channels too"):
        SequenceClassifier(2, input_size=3, downsample=2)


def test_feature_sequences_get_the_front_end_and_text_does_not(tmp_path):
    signals = Classifier(steps=1, baseline=False, progress="none", hidden_size=8)
    signals.fit(*_signals(20, 2))
    assert signals.conv_channels_ == (64, 64, 64)
    assert signals.model_.front_end is not None
    text = Classifier(steps=1, baseline=False, progress="none", hidden_size=8)
    text.fit(["good film", "bad film"] * 5, ["p", "n"] * 5)
    assert text.conv_channels_ == () and text.model_.front_end is None


# --- the baselines, end to end ------------------------------------------------------------


def test_signal_runs_score_one_nearest_neighbour_baselines_and_keep_them(tmp_path):
    out = tmp_path / "vowels"
    result = run(
        "classify", "train", "--data", VOWELS_TRAIN, "--test", VOWELS_TEST, "--steps", 30,
        "--hidden-size", 8, "--conv-channels", "8,8", "--conv-kernels", "3,3", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1-NN, Euclidean distance" in result.output and "1-NN, DTW" in result.output
    assert "Budget (given)" in result.output
    test = json.loads((out / "metrics.json").read_text())["test"]
    # Published 1-NN on the full set: ED 92.4 %, DTW 94.9 %; on this extract both are high.
    assert test["nn_euclidean"]["accuracy"] > 0.8 and test["nn_dtw"]["accuracy"] > 0.8
    again = run("classify", "evaluate", "--run", out, "--data", VOWELS_TEST)
    assert again.exit_code == 0, again.output
    evaluation = json.loads((out / "metrics.json").read_text())["evaluations"][-1]
    for name in ("model", "nn_euclidean", "nn_dtw", "one_to_one"):
        assert evaluation["scores"][name]["accuracy"] == test[name]["accuracy"], name


def _train_on_mr(tmp_path, train_rows, test_rows, *flags):
    """A one-epoch CLI run on the first ``train_rows`` sentences of the MR extract, tested on
    the next ``test_rows``: (result, run directory)."""
    header, *lines = MR.read_text().splitlines()
    (tmp_path / "train.tsv").write_text("\n".join([header, *lines[:train_rows]]) + "\n")
    test = lines[train_rows : train_rows + test_rows]
    (tmp_path / "test.tsv").write_text("\n".join([header, *test]) + "\n")
    out = tmp_path / "mr"
    result = run(
        "classify", "train", "--data", tmp_path / "train.tsv", "--test", tmp_path / "test.tsv",
        "--epochs", 1, "--hidden-size", 8, "--embedding-dim", 8, *flags, "--out", out,
    )  # fmt: skip
    return result, out


def test_text_runs_score_the_linear_baselines_beside_the_network(tmp_path):
    result, out = _train_on_mr(tmp_path, 1200, 400)
    assert result.exit_code == 0, result.output
    linear = {
        "nbsvm": "NB-SVM (word 1-2-grams)",
        "naive_bayes": "multinomial naive Bayes (words)",
        "tfidf_logistic": "logistic regression (TF-IDF 1-2-grams)",
    }
    test = json.loads((out / "metrics.json").read_text())["test"]
    scores = Classifier.load(out).score(tmp_path / "test.tsv")
    for name, shown in linear.items():
        assert shown in result.output
        assert test[name]["accuracy"] > test["majority"]["accuracy"] + 0.05, name
        assert scores[name] == test[name], "the run keeps what the baseline learnt"


# --- the n-gram bag beside the recurrence --------------------------------------------------


def test_the_ngram_bag_sums_the_weight_of_every_ngram_not_touching_padding():
    bag = NgramBag(3, orders=2, buckets=7)
    torch.nn.init.normal_(bag.weight, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([[4, 9, 2, 0, 0], [5, 5, 5, 5, 1]])

    def bucket(gram):
        key = len(gram)
        for token in gram:
            key = key * NgramBag.PRIME + token
        return key % 7

    for row, scores in zip(ids.tolist(), bag(ids), strict=True):
        tokens = [t for t in row if t]
        grams = [(t,) for t in tokens] + list(itertools.pairwise(tokens))
        expected = sum(bag.weight[bucket(g)] for g in grams)
        torch.testing.assert_close(scores, expected)
    # More padding changes nothing.
    torch.testing.assert_close(bag(torch.nn.functional.pad(ids, (0, 3))), bag(ids))


def test_the_ngram_bag_starts_at_zero_so_the_network_starts_alone():
    ids, lengths = torch.tensor([[3, 4, 5, 0], [6, 7, 8, 9]]), torch.tensor([3, 4])
    torch.manual_seed(0)
    alone = SequenceClassifier(2, vocab_size=10, hidden_size=4, embedding_dim=4).eval()
    torch.manual_seed(0)
    both = SequenceClassifier(2, vocab_size=10, hidden_size=4, embedding_dim=4, ngrams=2).eval()
    torch.testing.assert_close(both(ids, lengths), alone(ids, lengths), rtol=0, atol=0)
    both(ids, lengths).sum().backward()
    assert both.ngram_bag.weight.grad.abs().sum() > 0


def test_the_ngram_settings_are_checked():
    with pytest.raises(ValueError, match="ngrams=4 must be 1, 2 or 3"):
        Classifier(ngrams=4).fit(["good film", "bad film"], ["p", "n"])
    with pytest.raises(ValueError, match="ngram_buckets=0 must be a positive integer"):
        Classifier(ngrams=2, ngram_buckets=0).fit(["good film", "bad film"], ["p", "n"])
    with pytest.raises(ValueError, match="ngrams=2 bags token n-grams"):
        Classifier(ngrams=2, steps=1, progress="none").fit(*_signals(20, 2))
    with pytest.raises(ValueError, match=r"ngrams=2 needs token ids in"):
        SequenceClassifier(2, input_size=3, ngrams=2)


def test_a_text_run_with_the_ngram_bag_names_it_and_loads_it(tmp_path):
    result, out = _train_on_mr(tmp_path, 800, 200, "--ngrams", 2)
    assert result.exit_code == 0, result.output
    assert "+ word 1-2-gram bag" in result.output
    test = json.loads((out / "metrics.json").read_text())["test"]
    loaded = Classifier.load(out)
    assert loaded.model_.ngram_bag is not None
    assert loaded.score(tmp_path / "test.tsv")["model"] == test["model"]


def test_dtw_is_skipped_with_its_reason_where_it_would_take_too_long(monkeypatch):
    from rnnkit.models import neighbours

    monkeypatch.setattr(neighbours, "DTW_CELL_LIMIT", 10)
    classifier = Classifier(steps=1, **TINY).fit(*_signals(12, 3))
    scores = classifier.score(*_signals(6, 4))
    assert "nn_dtw" not in scores and "nn_euclidean" in scores
    assert "dynamic-programme cells would take about" in scores["skipped"]["nn_dtw"]
    assert any("not computed" in line for line in classifier.table(scores))
