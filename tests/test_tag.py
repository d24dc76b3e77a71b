"""The tag pipeline end to end on 400 real WNUT-2016 tweets, with and without the CRF. Short
runs prove the pipeline (better than chance, save/load identical, the CLI verbs); the F1
numbers come from experiments/wnut_ner.py (see the README)."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnkit.cli import main
from rnnkit.data.readers import read_conll
from rnnkit.tasks.tag import Tagger, to_iob2

DATA = Path(__file__).parent / "data" / "wnut16_sample.bio"


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wnut")
    blocks = [b for b in DATA.read_text().split("\n\n") if b.strip()]
    (folder / "train.bio").write_text("\n\n".join(blocks[:320]) + "\n")
    (folder / "test.bio").write_text("\n\n".join(blocks[320:]) + "\n")
    return folder


@pytest.fixture(scope="module", params=[True, False], ids=["crf", "softmax"])
def tag_run(request, split):
    out = split / f"run-{request.param}"
    result = run(
        "tag", "train", "--data", split / "train.bio", "--test", split / "test.bio",
        "--crf" if request.param else "--no-crf", "--epochs", 12, "--lr", 0.01, "--val", 0,
        "--hidden-size", 32, "--embedding-dim", 32, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out, result.output, request.param


def test_train_reports_entity_scores_beside_the_baseline(tag_run):
    out, printed, crf = tag_run
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert metrics["data"]["test"] == 80
    assert set(test) == {"model", "most_frequent_tag"}
    for key in ("precision", "recall", "f1"):
        assert metrics[key] == test["model"][key]
    for key in ("precision", "recall", "f1", "token_accuracy"):
        assert 0 <= test["model"][key] <= 1
        assert key in test["most_frequent_tag"]
    assert ("BiLSTM-CRF" if crf else "BiLSTM-softmax") in printed
    assert "most frequent tag" in printed
    assert {"config.json", "model.safetensors", "data_state.json", "history.csv", "steps.csv"} <= {
        p.name for p in out.iterdir()
    }


def test_the_tagger_finds_entities(tag_run):
    """Better than chance: a tagger that says O everywhere has F1 0; this one finds some."""
    out, _, _ = tag_run
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert test["model"]["f1"] > 0.02
    assert test["model"]["token_accuracy"] > 0.85


def test_save_load_gives_identical_tags(tag_run, split):
    out, _, _ = tag_run
    sentences = [tokens for tokens, _ in read_conll(split / "test.bio")]
    first, second = Tagger.load(out), Tagger.load(out)
    assert first.predict(sentences) == second.predict(sentences)
    metrics = json.loads((out / "metrics.json").read_text())
    assert first.score(split / "test.bio")["model"]["f1"] == metrics["test"]["model"]["f1"]


def test_in_memory_and_reloaded_taggers_agree(tmp_path, split):
    tagger = Tagger(epochs=1, hidden_size=16, embedding_dim=16, progress="none")
    tagger.fit(split / "train.bio")
    sentences = [tokens for tokens, _ in read_conll(split / "test.bio")]
    loaded = Tagger.load(tagger.save(tmp_path / "run"))
    assert loaded.predict(sentences) == tagger.predict(sentences)


def test_predict_and_evaluate_through_the_cli(tag_run, split, tmp_path):
    out, _, _ = tag_run
    result = run("tag", "predict", "--run", out, input="Obama visited Paris today\nhi\n")
    assert result.exit_code == 0, result.output
    sentences = result.output.strip().split("\n\n")
    assert len(sentences) == 2
    first = [line.split("\t") for line in sentences[0].splitlines()]
    assert [token for token, _ in first] == ["Obama", "visited", "Paris", "today"]
    assert all(tag == "O" or tag[:2] in ("B-", "I-") for _, tag in first)

    copy = shutil.copytree(out, tmp_path / "run")  # evaluate writes into the run
    result = run("tag", "evaluate", "--run", copy, "--data", split / "test.bio")
    assert result.exit_code == 0, result.output
    metrics = json.loads((copy / "metrics.json").read_text())
    evaluation = metrics["evaluations"][-1]
    assert evaluation["data"] == str(split / "test.bio")
    scores = evaluation["scores"]
    assert metrics["f1"] == scores["model"]["f1"] == metrics["test"]["model"]["f1"]
    assert scores["most_frequent_tag"] == metrics["test"]["most_frequent_tag"]


def test_mismatched_tokens_and_tags_are_refused():
    with pytest.raises(ValueError, match="sentence 2 has 2 tokens but 1 tags"):
        Tagger(epochs=1).fit([(["a"], ["O"]), (["b", "c"], ["O"])])


def test_malformed_conll_line_is_named_with_its_line(tmp_path):
    data = tmp_path / "bad.bio"
    data.write_text("Paris\tB-geo-loc\nis\tO\n\nnice\tX-thing\n")
    result = run("tag", "train", "--data", data, "--out", tmp_path / "run")
    assert result.exit_code != 0
    assert f"{data}:4:" in result.output
    assert not (tmp_path / "run").exists()


def test_unknown_tags_in_evaluation_are_refused(tag_run, tmp_path):
    out, _, _ = tag_run
    data = tmp_path / "odd.bio"
    data.write_text("Paris\tB-city\n")
    result = run("tag", "evaluate", "--run", out, "--data", data)
    assert result.exit_code != 0
    assert "tags the model never saw: ['B-city']" in result.output


def test_iob1_tags_become_iob2():
    assert to_iob2(["I-PER", "I-PER", "O", "I-LOC", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-ORG",
    ]
    assert to_iob2(["S-PER", "O", "B-LOC", "E-LOC"]) == ["S-PER", "O", "B-LOC", "E-LOC"]


def test_early_stopping_waits_out_epochs_of_zero_f1():
    """Entity F1 is 0 for a tagger's first epochs; ties are decided by val_loss, so patience
    does not run out at epoch 1 + patience with the epoch-1 model kept."""
    tagger = Tagger(epochs=8, patience=2, hidden_size=16, embedding_dim=16, progress="none")
    tagger.fit(DATA)
    f1 = [row["val_f1"] for row in tagger.history_]
    assert f1[0] == 0 and tagger.best_epoch_ > 1


def test_tags_of_validation_data_are_known_and_iob1_is_read_as_iob2():
    train = [(["a", "b", "c"], ["O", "B-x", "I-x"])] * 10
    val = [(["z", "q"], ["I-rare", "I-rare"])]  # IOB1: the entity opens with I-
    tagger = Tagger(epochs=1, hidden_size=8, embedding_dim=8, progress="none")
    tagger.fit(train, val_data=val)
    assert "B-rare" in tagger.labels_.tokens and "I-rare" in tagger.labels_.tokens
    with pytest.warns(DeprecationWarning, match="Tagger.tags_ is now labels_"):
        assert tagger.tags_ is tagger.labels_
    assert tagger.score(val)["most_frequent_tag"]["token_accuracy"] == 0  # words never seen


def test_raw_text_is_split_at_whitespace_like_the_training_data(tag_run):
    out, _, _ = tag_run
    tagged = Tagger.load(out).predict(["@paulwalk It's http://t.co/x #NYC"])
    assert [token for token, _ in tagged[0]] == ["@paulwalk", "It's", "http://t.co/x", "#NYC"]
