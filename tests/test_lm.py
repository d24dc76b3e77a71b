"""The language model, its data stream, the n-gram baselines and the `lm` task end to end."""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rnnkit.cli import main
from rnnkit.data.batching import TokenStream
from rnnkit.data.readers import read_text
from rnnkit.decoding import sample
from rnnkit.models.language_model import LanguageModel
from rnnkit.models.ngram import NGramModel
from rnnkit.tasks.lm import LanguageModeler, stream_loss
from rnnkit.tasks.rundir import train_run

SHAKESPEARE = "tests/data/shakespeare_sample.txt"


@pytest.fixture(scope="module")
def text() -> str:
    return read_text(SHAKESPEARE)


@pytest.fixture(scope="module")
def trained(text, tmp_path_factory):
    """A small char-level run on the sample, trained once for the module."""
    out = tmp_path_factory.mktemp("lm") / "run"
    modeler = LanguageModeler(
        hidden_size=96, epochs=2, batch_size=16, bptt=48, eval_every=40, progress="none"
    )
    report = train_run(modeler, SHAKESPEARE, out)
    return modeler, out, report


def small_lm(cell="lstm", **options) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(11, embedding_dim=6, hidden_size=8, num_layers=2, cell=cell, **options)


# --- the model ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_reading_in_chunks_with_the_carried_state_equals_reading_at_once(cell):
    lm = small_lm(cell).double()
    tokens = torch.randint(0, 11, (3, 20))
    whole, _ = lm(tokens)
    first, state = lm(tokens[:, :7])
    second, _ = lm(tokens[:, 7:], state=state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=0, atol=1e-12)


def test_decode_step_equals_the_forward_pass_step_by_step():
    lm = small_lm().double()
    tokens = torch.randint(0, 11, (4, 9))
    whole, _ = lm(tokens)
    state = None
    for t in range(9):
        logits, state = lm.decode_step(tokens[:, t], state)
        torch.testing.assert_close(logits, whole[:, t], rtol=0, atol=1e-12)


def test_reorder_state_selects_rows():
    lm = small_lm().double()
    tokens = torch.randint(0, 11, (4, 5))
    _, state = lm(tokens)
    index = torch.tensor([2, 2, 0])
    logits, _ = lm.decode_step(tokens[index, 0], lm.reorder_state(state, index))
    _, alone = lm(tokens[index])
    expected, _ = lm.decode_step(tokens[index, 0], alone)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-12)


def test_tied_weights_share_the_embedding_and_project_when_sizes_differ():
    lm = LanguageModel(20, embedding_dim=6, hidden_size=10, tie_weights=True)
    assert lm.output.linear.weight is lm.embedding.weight
    assert lm.output.projection is not None and lm.output.projection.out_features == 6
    untied = LanguageModel(20, embedding_dim=6, hidden_size=10)
    tied_count = sum(p.numel() for p in lm.parameters())
    assert tied_count < sum(p.numel() for p in untied.parameters())
    logits, _ = lm(torch.randint(0, 20, (2, 3)))
    assert logits.shape == (2, 3, 20)


def test_an_lstm_projection_sets_the_output_size():
    lm = LanguageModel(20, embedding_dim=6, hidden_size=10, rnn_options={"proj_size": 4})
    logits, _ = lm(torch.randint(0, 20, (2, 3)))
    assert logits.shape == (2, 3, 20) and lm.output.linear.in_features == 4


@pytest.mark.parametrize(
    "tokens, error",
    [
        (torch.tensor([[0, 11]]), "outside the vocabulary's 0..10"),
        (torch.tensor([[-1, 2]]), "outside"),
        (torch.zeros(2, 3), "integer ids"),
        (torch.zeros(5, dtype=torch.long), r"\(batch, steps\)"),
    ],
)
def test_bad_tokens_are_refused(tokens, error):
    with pytest.raises((ValueError, TypeError), match=error):
        small_lm()(tokens)


# --- generation ---------------------------------------------------------------------------------


def test_generation_from_the_carried_state_equals_recomputing_the_prefix():
    lm = small_lm().double().eval()
    prime = torch.randint(0, 11, (1, 6))
    generator = torch.Generator().manual_seed(3)
    _, state = lm(prime[:, :-1])
    carried = sample(lm, state, prime[:, -1], 12, generator=generator).tokens[0]
    # Recompute: at every step run the whole text so far from the start, no state kept.
    generator = torch.Generator().manual_seed(3)
    text = prime[0].tolist()
    for _ in range(12):
        logits, _ = lm(torch.tensor([text]))
        probs = torch.softmax(logits[0, -1], -1)
        text.append(int(torch.multinomial(probs[None], 1, generator=generator)))
    assert carried.tolist() == text[6:]


def test_sampling_with_a_seed_is_reproducible(trained):
    modeler, _, _ = trained
    first = "".join(modeler.generate("ROMEO:", 80, top_k=10, seed=5))
    assert first == "".join(modeler.generate("ROMEO:", 80, top_k=10, seed=5))
    assert first != "".join(modeler.generate("ROMEO:", 80, top_k=10, seed=6))
    greedy = "".join(modeler.generate("ROMEO:", 40, temperature=0))
    assert greedy == "".join(modeler.generate("ROMEO:", 40, temperature=0, seed=9))


def test_generate_streams_one_piece_per_token(trained):
    modeler, _, _ = trained
    pieces = list(modeler.generate("", 25, seed=0))
    assert len(pieces) == 25 and all(len(p) == 1 for p in pieces)


# --- data ---------------------------------------------------------------------------------------


def test_token_stream_rows_continue_from_batch_to_batch():
    ids = torch.arange(103)
    stream = TokenStream(ids, rows=4, steps=5)
    assert stream.segments == 5  # 25 ids per row, 102 // 4 = 25
    batches = stream.epoch_batches(4, 0, 1, shuffle=False)
    rows = [torch.cat([stream.batch(b)[0][r] for b in batches]) for r in range(4)]
    for r, row in enumerate(rows):
        assert row.tolist() == list(range(25 * r, 25 * r + 25))
    tokens, following, lengths, reset = stream.batch(batches[0])
    assert torch.equal(following, tokens + 1)
    assert lengths.tolist() == [5] * 4 and reset.all()
    assert not stream.batch(batches[1])[3].any()


def test_token_stream_epochs_continue_through_the_text_and_wrap():
    stream = TokenStream(torch.arange(103), rows=4, steps=5, segments_per_epoch=3)
    assert len(stream) == 12
    second = stream.epoch_batches(4, 0, 2, shuffle=False)
    assert stream.batch(second[0])[0][0].tolist() == [15, 16, 17, 18, 19]
    wrapped = stream.batch(second[2])
    assert wrapped[0][0].tolist() == [0, 1, 2, 3, 4] and wrapped[3].all()  # state reset
    with pytest.raises(ValueError, match="shuffle=False and batch_size=4"):
        stream.epoch_batches(8, 0, 1, shuffle=False)
    with pytest.raises(ValueError, match="fewer than one segment"):
        TokenStream(torch.arange(10), rows=4, steps=5)
    with pytest.raises(ValueError, match="rows=0 must be an integer >= 1"):
        TokenStream(torch.arange(10), rows=0, steps=5)


def test_token_stream_reads_the_text_without_gaps():
    stream = TokenStream(torch.arange(1000), rows=3, steps=7)
    read = torch.cat([stream.streams[r, :-1] for r in range(3)])
    assert read.tolist() == list(range(len(read)))  # contiguous from the start
    assert 1000 - 1 - len(read) < 3 * 7


def test_stream_loss_predicts_every_token_but_the_first():
    lm = small_lm().double()
    ids = torch.randint(0, 11, (1000,))
    total, count = stream_loss(lm, ids, steps=64)
    assert count == 999
    # Reading the whole text as one stream predicts the same tokens; the streams' fresh
    # starts make a small difference only.
    logits, _ = lm(ids[None, :-1])
    whole = torch.nn.functional.cross_entropy(logits[0], ids[1:], reduction="sum").detach()
    assert total == pytest.approx(float(whole), rel=0.02)
    one_stream, _ = stream_loss(lm, ids[:100], steps=128)  # shorter than a chunk: one row
    logits, _ = lm(ids[None, :99])
    exact = torch.nn.functional.cross_entropy(logits[0], ids[1:100], reduction="sum").detach()
    assert one_stream == pytest.approx(float(exact), rel=1e-9)


# --- n-gram baselines ---------------------------------------------------------------------------


def test_ngram_probabilities_sum_to_one_over_the_vocabulary():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, 400)
    model = NGramModel(3, 5).fit(ids)
    history = [2, 4]
    total = sum(math.exp(model.log_probs(np.array([*history, w]))[-1]) for w in range(5))
    assert total == pytest.approx(1.0, abs=1e-12)
    # Histories never seen in training fall back to the lower orders and still sum to 1.
    sparse = NGramModel(3, 6).fit(np.array([0, 1, 2, 0, 1, 3, 0, 1, 2, 4, 4, 0]))
    for unseen in ([5, 5], [2, 5], [3, 4]):
        assert sparse._lookup(sparse.tables_[1][2], np.array([unseen[0] * 6 + unseen[1]]),
                              sparse.tables_[1][3])[0] == 0  # fmt: skip
        total = sum(math.exp(sparse.log_probs(np.array([*unseen, w]))[-1]) for w in range(6))
        assert total == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"at least 2 tokens in 0\.\.5"):
        sparse.log_probs(np.array([0, -1]))


@pytest.mark.parametrize("history", [[3], [2, 4], [1, 1, 1], [0, 5, 5, 2], [5, 5, 5, 5, 5]])
def test_next_log_probs_are_log_probs_of_every_next_token(history):
    # Histories shorter than the order (where only the lower orders apply), longer, unseen.
    model = NGramModel(4, 6).fit(np.random.default_rng(1).integers(0, 5, 300))
    expected = [model.log_probs(np.array([*history, w]))[-1] for w in range(6)]
    np.testing.assert_allclose(model.next_log_probs(history), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="history"):
        model.next_log_probs([])


def test_unigram_entropy_is_the_add_one_frequencies():
    ids = np.array([0, 0, 0, 1, 2, 0])
    model = NGramModel(1, 4).fit(ids)
    # p(w) = (c(w) + 1) / (N + V) with counts 4, 1, 1, 0; N = 6, V = 4.
    p = {0: 5 / 10, 1: 2 / 10, 2: 2 / 10, 3: 1 / 10}
    held = np.array([1, 0, 3])
    assert model.cross_entropy(held) == pytest.approx(-(np.log(p[0]) + np.log(p[3])) / 2)


def test_higher_order_ngrams_beat_the_unigram_on_text(text):
    ids = np.frombuffer(text.encode(), dtype=np.uint8).astype(np.int64)
    cut = int(len(ids) * 0.9)
    scores = [NGramModel(n, 256).fit(ids[:cut]).cross_entropy(ids[cut:]) for n in (1, 3)]
    assert scores[1] < scores[0]


# --- the task end to end ------------------------------------------------------------------------


def test_training_goes_below_the_unigram_entropy(trained):
    modeler, _, report = trained
    scores = modeler.metrics_["validation"]
    assert scores["model"]["bpc"] < scores["1-gram"]["bpc"]
    assert "1-gram" in report and "5-gram" in report
    history = [row["held_out_bpc"] for row in modeler.history_]
    assert history[-1] < history[0]


def test_the_run_directory_is_complete_and_loads_back(trained, text):
    modeler, out, _ = trained
    for name in (
        "config.json",
        "model.safetensors",
        "data_state.json",
        "metrics.json",
        "history.csv",
        "steps.csv",
        "held_out_curve.png",
        "sample.txt",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"data", "validation", "training_seconds", "steps", "passes"} <= set(metrics)
    assert set(metrics["data"]) == {"train", "validation", "validation_characters"}
    assert set(metrics["validation"]) == {"model", "1-gram", "5-gram"}
    assert metrics["bpc"] == pytest.approx(modeler.metrics_["validation"]["model"]["bpc"])
    loaded = LanguageModeler.load(out)
    held = modeler.split(text)[1]
    assert metrics["data"]["validation_characters"] == len(held)
    scores = loaded.score(held)
    assert set(scores) == {"model", "1-gram"}  # the higher orders' counts are not saved
    assert scores["model"]["bpc"] == pytest.approx(metrics["bpc"], rel=1e-6)
    assert scores["1-gram"] == pytest.approx(modeler.metrics_["validation"]["1-gram"])
    assert "".join(loaded.generate("KING", 30, seed=1)) == "".join(
        modeler.generate("KING", 30, seed=1)
    )


def test_word_level_model_trains_and_reports_perplexity(text, tmp_path):
    path = tmp_path / "words.txt"
    path.write_text(text[:60000])
    modeler = LanguageModeler(
        level="word", hidden_size=32, epochs=1, batch_size=8, bptt=20, progress="none"
    )
    train_run(modeler, path, tmp_path / "run")
    scores = modeler.metrics_["validation"]
    assert "bpc" not in scores["model"]
    assert scores["model"]["perplexity"] < scores["1-gram"]["perplexity"]
    words = "".join(modeler.generate("the king", 20, seed=0))
    assert len(words.split()) >= 10


def test_unknown_characters_are_read_as_unk_and_counted(trained):
    modeler, _, _ = trained
    with pytest.warns(UserWarning, match="2 of 5 tokens are not in the vocabulary"):
        ids = modeler.encode("ab\u00e9\u00e9c")
    assert (ids == modeler.vocabulary_.unk_id).sum() == 2


@pytest.mark.parametrize(
    "settings, error",
    [
        ({"level": "byte"}, "level='byte' is not one of"),
        ({"val": 0}, "val=0 must be a fraction in \\(0, 1\\)"),
        ({"bptt": 0}, "bptt=0 must be an integer >= 1"),
        ({"minutes": -1}, "minutes=-1 must be a finite number > 0"),
        ({"rnn_options": {"hidden_size": 3}}, "settings of LanguageModel itself"),
    ],
)
def test_bad_settings_are_refused(text, settings, error):
    with pytest.raises(ValueError, match=error):
        LanguageModeler(progress="none", **settings).fit(text)


def test_a_text_too_short_to_hold_out_is_refused():
    with pytest.raises(ValueError, match="fewer than one segment"):
        LanguageModeler(progress="none").fit("one line only")


def test_cli_evaluate_and_generate(trained):
    _, out, _ = trained
    runner = CliRunner()
    result = runner.invoke(
        main, ["lm", "evaluate", "--run", str(out), "--data", SHAKESPEARE, "--held-out"]
    )
    assert result.exit_code == 0, result.output
    assert "bpc" in result.output and "1-gram" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    evaluation = metrics["evaluations"][-1]
    assert evaluation["data"] == SHAKESPEARE and evaluation["held_out"] is True
    assert metrics["bpc"] == evaluation["scores"]["model"]["bpc"]
    assert metrics["scored_on"] == SHAKESPEARE
    result = runner.invoke(
        main, ["lm", "generate", "--run", str(out), "--prime", "To be", "--length", "40",
               "--seed", "2", "--top-p", "0.9"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("To be") and len(result.output) >= 45


def test_cli_refuses_a_run_of_another_task(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "classify", "settings": {}}))
    result = CliRunner().invoke(main, ["lm", "generate", "--run", str(run)])
    assert result.exit_code != 0
    assert "holds a 'classify' run, not a 'lm' run" in result.output


def test_cli_train_writes_a_run(tmp_path):
    out = tmp_path / "cli"
    args = ["lm", "train", "--data", SHAKESPEARE, "--hidden-size", "32", "--epochs", "1",
            "--batch-size", "8", "--bptt", "32", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "bpc" in result.output and (out / "model.safetensors").is_file()


def test_with_neither_epochs_nor_minutes_training_is_one_pass(text):
    modeler = LanguageModeler(hidden_size=16, batch_size=8, bptt=32, progress="none")
    modeler.fit(text[:20000])
    assert modeler.metrics_["passes"] == pytest.approx(1.0)


def test_a_word_prime_without_a_line_end_continues_its_line(text):
    modeler = LanguageModeler(level="word", hidden_size=8, epochs=1, batch_size=4, bptt=8,
                              progress="none")  # fmt: skip
    modeler.fit(text[:8000])
    assert modeler._tokens("the king") == ["the", "king"]
    assert modeler._tokens("the king\n") == ["the", "king", "<eos>"]


def test_a_tied_model_saves_and_loads(text, tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(text[:20000])
    modeler = LanguageModeler(hidden_size=16, embedding_dim=16, tie_weights=True, epochs=1,
                              batch_size=8, bptt=32, progress="none")  # fmt: skip
    train_run(modeler, path, tmp_path / "run")
    loaded = LanguageModeler.load(tmp_path / "run")
    assert loaded.model_.output.linear.weight is loaded.model_.embedding.weight
    assert "".join(loaded.generate("A", 20, seed=0)) == "".join(modeler.generate("A", 20, seed=0))


def test_generated_text_holds_no_padding_and_no_unk_unless_asked(text, tmp_path):
    """A word model that keeps 30 word types reads a text that is mostly <unk>, so <unk> is
    what it would say most; generation says the likeliest of the other words instead."""
    from click.testing import CliRunner

    from rnnkit.cli import main

    path = tmp_path / "words.txt"
    path.write_text(text[:20000])
    modeler = LanguageModeler(level="word", max_vocab=30, hidden_size=16, epochs=1,
                              batch_size=8, bptt=20, progress="none")  # fmt: skip
    train_run(modeler, path, tmp_path / "run")
    unk = modeler.vocabulary_.tokens[modeler.vocabulary_.unk_id]
    pad = modeler.vocabulary_.tokens[modeler.vocabulary_.pad_id]
    allowed = "".join(modeler.generate("the", 60, temperature=0, allow_unk=True))
    assert unk in allowed, "the test's model prefers <unk>"
    for options in ({"temperature": 0}, {"seed": 0}, {"seed": 1, "temperature": 3.0}):
        pieces = list(modeler.generate("the", 60, **options))
        words = "".join(pieces).split()
        assert len(pieces) == 60 and unk not in words and pad not in words, (options, words)
    command = ["lm", "generate", "--run", str(tmp_path / "run"), "--length", "60",
               "--temperature", "0"]  # fmt: skip
    printed = CliRunner().invoke(main, command)
    assert printed.exit_code == 0 and unk not in printed.output and pad not in printed.output
    asked = CliRunner().invoke(main, [*command, "--allow-unk"])
    assert asked.exit_code == 0 and unk in asked.output
