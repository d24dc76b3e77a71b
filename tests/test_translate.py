"""The translate task end to end on a small extract of the Bible pairs, and its bad input."""

import json
import warnings

import pytest
import torch
from click.testing import CliRunner

from rnnkit.cli import main
from rnnkit.data.text import WordTokenizer
from rnnkit.tasks.rundir import train_run
from rnnkit.tasks.translate import Translator, bleu_chrf, read_pairs

PAIRS = "tests/data/bible_en_es_sample.tsv"
# Scoring warns of source tokens outside the vocabulary; the test pairs hold a few.
UNKNOWN = r"\d+ of \d+ source tokens are not in the vocabulary"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("translate") / "run"
    translator = Translator(
        vocab_size=600, hidden_size=48, embedding_dim=32, epochs=3, batch_size=32,
        max_length=80, val=0.1, test=0.1, progress="none",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", UNKNOWN, UserWarning)
        report = train_run(translator, PAIRS, out)
    return translator, out, report


def test_read_pairs_names_the_bad_line(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("a b\tc d\none side only\n")
    with pytest.raises(ValueError, match=r"pairs.tsv:2: expected 'source<TAB>target'"):
        read_pairs(path)
    path.write_text("a b\t \n")
    with pytest.raises(ValueError, match=r":1: expected"):
        read_pairs(path)
    assert read_pairs(PAIRS)[0][0].startswith("In the beginning")


def test_bleu_and_chrf_are_sacrebleus():
    scores = bleu_chrf(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert scores == {"bleu": pytest.approx(100.0), "chrf": pytest.approx(100.0)}
    assert bleu_chrf(["a b c d"], ["w x y z"])["bleu"] == 0.0


def test_training_reports_greedy_beam_and_the_copy_baseline(trained):
    translator, out, report = trained
    metrics = translator.metrics_
    test = metrics["test"]
    assert set(test) == {"model", "model_beam5", "copy"}
    for name in ("model", "model_beam5", "copy"):
        assert set(test[name]) == {"bleu", "chrf"}
        assert name in report
    assert metrics["bleu"] == test["model_beam5"]["bleu"]  # the headline is the beam's
    assert metrics["chrf"] == test["model_beam5"]["chrf"]
    assert metrics["scored_on"] == "test"
    assert set(metrics["validation"]) == {"model", "model_beam5", "copy"}
    pairs = read_pairs(PAIRS)
    counts = metrics["data"]
    assert set(counts) == {"train", "too_long", "validation", "test"}
    assert counts["test"] == round(0.1 * len(pairs))
    assert counts["train"] + counts["too_long"] + counts["validation"] + counts["test"] == len(
        pairs
    )
    assert len(metrics["examples"]) == 5
    held = metrics["examples"][0]
    assert {"source", "reference", "greedy"} == set(held)
    assert held["greedy"] == translator.translate([held["source"]], beam_size=1)[0]
    assert json.loads((out / "metrics.json").read_text())["bleu"] == metrics["bleu"]
    assert translator.history_[-1]["val_loss"] < translator.history_[0]["val_loss"]
    for name in ("config.json", "model.safetensors", "data_state.json", "metrics.json",
                 "history.csv", "steps.csv", "learning_curves.png",
                 "attention.png"):  # fmt: skip
        assert (out / name).is_file(), name


def test_beam_of_one_equals_greedy_and_the_run_loads_back(trained):
    translator, out, _ = trained
    sources = [s for s, _ in read_pairs(PAIRS)[:12]]
    greedy = translator.translate(sources, beam_size=1)
    assert translator.translate(sources, beam_size=1) == greedy
    loaded = Translator.load(out)
    assert loaded.translate(sources, beam_size=1) == greedy
    assert loaded.translate(sources[:3], beam_size=3) == translator.translate(
        sources[:3], beam_size=3
    )


def test_translations_hold_no_padding_start_or_unk_unless_asked(trained):
    translator, _, _ = trained
    sources = [s for s, _ in read_pairs(PAIRS)[:40]]
    vocabulary = translator.target_vocabulary_
    never = {vocabulary.pad_id, vocabulary.unk_id, 2}  # 2: <s>
    for beam in (1, 3):
        ids = translator.translate_ids(sources, beam_size=beam)
        assert not never & {t for row in ids for t in row}, beam
        asked = translator.translate_ids(sources, beam_size=beam, allow_unk=True)
        assert not {vocabulary.pad_id, 2} & {t for row in asked for t in row}, beam


def test_batched_translation_equals_one_sentence_at_a_time(trained):
    translator, _, _ = trained
    sources = [s for s, _ in read_pairs(PAIRS)[20:28]]
    together = translator.translate(sources, beam_size=1)
    assert together == [translator.translate([s], beam_size=1)[0] for s in sources]


def test_attention_map_is_what_greedy_decoding_attended_to(trained):
    translator, _, _ = trained
    sentence = "And God said, Let there be light."
    source, target, weights = translator.attention_map(sentence)
    emitted = translator.translate_ids([sentence], beam_size=1)[0]
    assert target == [*translator.target_vocabulary_.decode(emitted), "</s>"]
    assert weights.shape == (len(emitted) + 1, len(source))
    # Step the decoder over what it emitted: each step's weights are one row of the map.
    model = translator.model_
    ids = torch.tensor([translator.vocabulary_.encode(source)])
    state = model.encode(ids, torch.tensor([ids.shape[1]]))
    with torch.no_grad():
        for row, token in enumerate([2, *emitted]):  # <s> first
            _, state = model.decode_step(torch.tensor([token]), state)
            torch.testing.assert_close(state.attention[0].numpy(), weights[row])
    torch.testing.assert_close(torch.tensor(weights.sum(1)), torch.ones(len(target)))


def test_unknown_tokens_are_counted_and_long_sources_cut(trained):
    translator, _, _ = trained
    with pytest.warns(UserWarning, match=UNKNOWN):
        scores = translator.score([("Zyxq \u03bb\u03bb and God", "Y Dios")], beam_size=1)
    assert set(scores) == {"model", "copy"}  # the count is a warning, not a score
    with pytest.warns(UserWarning, match="more than max_length=80 tokens and are cut"):
        (out,) = translator.translate([" ".join(["light"] * 100)], beam_size=1)
    assert isinstance(out, str)


def test_an_empty_source_is_refused(trained):
    translator, _, _ = trained
    with pytest.raises(ValueError, match="sentence 1 has no tokens"):
        translator.translate(["God", "   "])
    with pytest.raises(TypeError, match="list of strings"):
        translator.translate("God said")


@pytest.mark.parametrize(
    "settings, error",
    [
        ({"attention": "cosine"}, "attention='cosine' is not one of"),
        ({"tokenizer": "char"}, "tokenizer='char' is not one of"),
        ({"max_length": 0}, "max_length=0 must be an integer >= 1"),
        ({"sampling": 1.5}, "sampling=1.5 must be a probability"),
        ({"length_penalty": float("nan")}, "length_penalty=nan must be a finite number"),
        ({"rnn_options": {"attention": "dot"}}, "settings of EncoderDecoder itself"),
    ],
)
def test_bad_settings_are_refused(settings, error):
    with pytest.raises(ValueError, match=error):
        Translator(progress="none", **settings).fit(read_pairs(PAIRS)[:50])


def test_a_test_fraction_that_holds_out_nothing_is_refused_before_training(tmp_path):
    path = tmp_path / "few.tsv"
    path.write_text("".join(f"a{i} b\tc{i} d\n" for i in range(9)))
    with pytest.raises(ValueError, match=r"test=0\.05 of 9 pairs holds out none"):
        train_run(Translator(progress="none"), path, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_cli_evaluate_and_predict(trained, tmp_path):
    _, out, _ = trained
    runner = CliRunner()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", UNKNOWN, UserWarning)
        result = runner.invoke(
            main, ["translate", "evaluate", "--run", str(out), "--data", PAIRS, "--beam", "2"]
        )
    assert result.exit_code == 0, result.output
    assert "copy" in result.output and "model_beam2" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    evaluation = metrics["evaluations"][-1]
    assert evaluation["data"] == PAIRS and evaluation["beam_size"] == 2
    assert set(evaluation["scores"]) == {"model", "model_beam2", "copy"}
    assert "bleu" in evaluation["scores"]["model_beam2"]
    # The headline is the beam the evaluation searched with.
    assert metrics["bleu"] == evaluation["scores"]["model_beam2"]["bleu"]
    source = tmp_path / "en.txt"
    source.write_text("And God said.\nIn the beginning.\n")
    png = tmp_path / "map.png"
    args = ["translate", "predict", "--run", str(out), str(source), "--beam", "1",
            "--attention-png", str(png)]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 2 and png.is_file()


def test_cli_refuses_a_run_of_another_task(trained, tmp_path):
    run = tmp_path / "lm"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "lm", "settings": {}}))
    result = CliRunner().invoke(main, ["translate", "predict", "--run", str(run), PAIRS])
    assert result.exit_code != 0
    assert "holds a 'lm' run, not a 'translate' run" in result.output


def test_punctuation_is_attached_as_written(trained):
    words = Translator(tokenizer="word")
    words.tokenizer_ = words.target_tokenizer_ = WordTokenizer()
    tokens = ["Y", "dijo", "Dios", ":", "¿", "Sea", "la", "luz", "?", "(", "y", ")", "."]
    assert words._detokenize(tokens) == "Y dijo Dios: ¿Sea la luz? (y)."
    translator, _, _ = trained
    outputs = translator.translate([s for s, _ in read_pairs(PAIRS)[:20]], beam_size=1)
    assert not any(" ." in out or " ," in out for out in outputs)


def test_cli_train_holds_out_the_test_fraction_or_reads_the_test_pairs(tmp_path):
    """--test names the test pairs, --test-fraction the setting ``test``: two options."""
    pairs = read_pairs(PAIRS)
    test = tmp_path / "test.tsv"
    test.write_text("".join(f"{s}\t{t}\n" for s, t in pairs[:30]))
    small = ["--tokenizer", "word", "--hidden-size", "8", "--embedding-dim", "8", "--steps", "2"]
    for given, count in ((["--test-fraction", "0.2"], round(0.2 * len(pairs))),
                         (["--test", str(test)], 30)):  # fmt: skip
        out = tmp_path / given[0].strip("-")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", UNKNOWN, UserWarning)
            result = CliRunner().invoke(
                main, ["translate", "train", "--data", PAIRS, *small, *given, "--out", str(out)]
            )
        assert result.exit_code == 0, result.output
        counts = json.loads((out / "metrics.json").read_text())["data"]
        assert counts["test"] == count
        held = count if given[0] == "--test-fraction" else 0
        assert counts["train"] + counts["too_long"] + counts["validation"] == len(pairs) - held
    settings = json.loads((tmp_path / "test-fraction" / "config.json").read_text())["settings"]
    assert settings["test"] == 0.2
