"""The conditional generator: teacher forcing equals step-by-step decoding, the condition
matters, padding does not, a tiny model learns to spell, and bad input is refused clearly."""

# One bad input per line, with the error it must give (as in test_errors.py).

import pytest
import torch
import torch.nn.functional as F

from rnnkit.models.generator import ConditionalGenerator

V, FEATURES, CLASSES = 11, 6, 3
MODES = ("init", "input", "both")
CONDITIONS = ("features", "classes")


def make(kind: str, mode: str, cell: str = "lstm", **options) -> ConditionalGenerator:
    condition = {"condition_size": FEATURES} if kind == "features" else {"num_classes": CLASSES}
    settings = {"embedding_dim": 4, "hidden_size": 5, "num_layers": 2, "condition_dim": 3}
    model = ConditionalGenerator(
        V, condition_mode=mode, cell=cell, **condition, **(settings | options)
    ).double()
    if kind == "classes":  # class vectors start at 0, alike; make them differ, as if trained
        torch.nn.init.normal_(model.condition_encoder.weight)
    return model


def conditions(kind: str, batch: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if kind == "features":
        return torch.randn(batch, FEATURES, generator=generator, dtype=torch.float64)
    return torch.randint(CLASSES, (batch,), generator=generator)


def step_by_step(model, condition, tokens):
    """The logits of feeding ``tokens`` one step at a time through the decoder protocol."""
    state = model.start(condition)
    logits = []
    for t in range(tokens.shape[1]):
        step_logits, state = model.decode_step(tokens[:, t], state)
        logits.append(step_logits)
    return torch.stack(logits, 1)


# ---------------------------------------------------------------- the network


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("kind", CONDITIONS)
@pytest.mark.parametrize("mode", MODES)
def test_teacher_forcing_equals_step_by_step_decoding(mode, kind, cell):
    model = make(kind, mode, cell)
    condition = conditions(kind, 4)
    tokens = torch.randint(V, (4, 7))
    logits = model(condition, tokens)
    assert logits.shape == (4, 7, V)
    torch.testing.assert_close(logits, step_by_step(model, condition, tokens), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", CONDITIONS)
@pytest.mark.parametrize("mode", MODES)
def test_the_condition_changes_the_logits(mode, kind):
    model = make(kind, mode)
    condition = conditions(kind, 3)
    other = condition + 1 if kind == "features" else (condition + 1) % CLASSES
    tokens = torch.randint(V, (3, 5))
    differences = (model(condition, tokens) - model(other, tokens)).abs().amax(dim=(1, 2))
    assert (differences > 1e-6).all()  # in every row


@pytest.mark.parametrize("mode", MODES)
def test_classes_start_alike_and_as_one_class(mode):
    """Class vectors start at 0: before training every class gives the same logits, those of
    the one-class (unconditional) model built with the same seed."""
    tokens = torch.randint(V, (3, 5))
    models = {}
    for classes in (1, 4):
        torch.manual_seed(7)
        models[classes] = ConditionalGenerator(V, num_classes=classes, condition_mode=mode)
    logits = models[4](torch.tensor([0, 1, 3]), tokens)
    one_class = models[1](torch.tensor([0, 0, 0]), tokens)
    torch.testing.assert_close(logits, one_class, rtol=0, atol=0)
    torch.testing.assert_close(logits, models[4](torch.tensor([2, 2, 2]), tokens), rtol=0, atol=0)


def test_start_state_follows_the_mode():
    for mode, sets_state, carries_vector in [
        ("init", True, False),
        ("input", False, True),
        ("both", True, True),
    ]:
        model = make("classes", mode)
        rnn_state, vector = model.start(torch.tensor([0, 2]))
        assert (rnn_state is not None) == sets_state
        assert (vector is not None) == carries_vector
        if sets_state:  # the LSTM's h and c, each (layers, batch, hidden), inside (-1, 1)
            assert [tuple(s.shape) for s in rnn_state] == [(2, 2, 5), (2, 2, 5)]
            assert all(s.abs().max() < 1 for s in rnn_state)
        if carries_vector:
            assert vector.shape == (2, 3)
    gru_state, _ = make("features", "init", "gru").start(conditions("features", 4))
    assert isinstance(gru_state, torch.Tensor) and gru_state.shape == (2, 4, 5)


@pytest.mark.parametrize("mode", MODES)
def test_padding_does_not_change_the_valid_steps(mode):
    model = make("features", mode, "gru")
    condition = conditions("features", 3)
    lengths = torch.tensor([6, 2, 4])
    tokens = torch.randint(V, (3, 6))
    padded = model(condition, tokens, lengths=lengths)
    for row, length in enumerate(lengths.tolist()):
        alone = model(condition[row : row + 1], tokens[row : row + 1, :length])
        torch.testing.assert_close(padded[row : row + 1, :length], alone, rtol=0, atol=1e-10)
    more_padding = torch.cat([tokens, torch.zeros(3, 3, dtype=torch.long)], 1)
    longer = model(condition, more_padding, lengths=lengths)
    for row, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(longer[row, :length], padded[row, :length], rtol=0, atol=1e-10)


def test_reorder_state_selects_rows():
    model = make("features", "both")
    condition = conditions("features", 3)
    state = model.start(condition)
    index = torch.tensor([2, 0, 0, 1])
    tokens = torch.tensor([4, 1, 1, 7])
    reordered, _ = model.decode_step(tokens, model.reorder_state(state, index))
    direct, _ = model.decode_step(tokens, model.start(condition[index]))
    torch.testing.assert_close(reordered, direct, rtol=0, atol=1e-10)


def test_layer_options_reach_the_state_and_the_output():
    # A projected LSTM's h is proj_size wide: the initial state and the output layer follow.
    model = make("classes", "both", rnn_options={"proj_size": 3, "layer_norm": True})
    (h, c), _ = model.start(torch.tensor([0, 2]))
    assert h.shape == (2, 2, 3) and c.shape == (2, 2, 5)
    tokens = torch.randint(V, (2, 4))
    torch.testing.assert_close(
        model(torch.tensor([0, 2]), tokens),
        step_by_step(model, torch.tensor([0, 2]), tokens),
        rtol=0,
        atol=1e-10,
    )
    tied = make("classes", "init", rnn_options={"proj_size": 3}, tie_weights=True)
    assert tied.output.projection.in_features == 3
    assert tied.output.linear.weight is tied.embedding.weight


def test_tied_weights_share_the_embedding():
    model = ConditionalGenerator(V, num_classes=2, embedding_dim=4, hidden_size=6, tie_weights=True)
    assert model.output.linear.weight is model.embedding.weight
    logits = model(torch.tensor([0, 1]), torch.randint(V, (2, 3)))
    assert logits.shape == (2, 3, V)


# ---------------------------------------------------------------- generation


@pytest.mark.parametrize("kind", CONDITIONS)
def test_generation_methods_agree_where_they_must(kind):
    model = make(kind, "both")
    condition = conditions(kind, 5)
    greedy = model.generate(condition, bos=1, eos=2, max_length=8)
    assert len(greedy) == 5 and all(len(row) <= 8 and 2 not in row for row in greedy)
    assert model.generate(condition, 1, 2, 8, method="beam", beam_size=1) == greedy
    assert model.generate(condition, 1, 2, 8, method="sample", top_k=1) == greedy
    assert model.generate(condition, 1, 2, 8, method="sample", temperature=0) == greedy

    def draw(seed):
        generator = torch.Generator().manual_seed(seed)
        return model.generate(condition, 1, 2, 8, method="sample", generator=generator)

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_generate_runs_without_dropout_and_restores_the_mode():
    model = ConditionalGenerator(V, num_classes=2, hidden_size=8, output_dropout=0.9)
    condition = torch.tensor([0, 1, 1])
    model.train()
    first = model.generate(condition, 1, 2, 10)
    assert model.training
    assert model.generate(condition, 1, 2, 10) == first  # no dropout noise
    model.eval()
    assert model.generate(condition, 1, 2, 10) == first
    assert not model.training


WORDS = ["cat", "dog", "bird", "fish"]
PAD, BOS, EOS = 0, 1, 2
LETTERS = sorted(set("".join(WORDS)))


def spelled(words):
    """(inputs <s> c_1 .. c_n, targets c_1 .. c_n </s>, lengths), padded with 0."""
    ids = [[3 + LETTERS.index(ch) for ch in word] for word in words]
    longest = max(map(len, ids)) + 1
    inputs = torch.full((len(ids), longest), PAD)
    targets = torch.full((len(ids), longest), PAD)
    for row, word in enumerate(ids):
        inputs[row, : len(word) + 1] = torch.tensor([BOS, *word])
        targets[row, : len(word) + 1] = torch.tensor([*word, EOS])
    return inputs, targets, torch.tensor([len(word) + 1 for word in ids])


@pytest.mark.parametrize("mode", MODES)
def test_learns_to_spell_class_names(mode):
    torch.manual_seed(0)
    model = ConditionalGenerator(
        3 + len(LETTERS), num_classes=4, condition_mode=mode, embedding_dim=8, hidden_size=24
    )
    classes = torch.arange(4)
    inputs, targets, lengths = spelled(WORDS)
    valid = torch.arange(inputs.shape[1]) < lengths[:, None]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(150):
        logits = model(classes, inputs, lengths=lengths)
        loss = F.cross_entropy(logits[valid], targets[valid])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    expected = [[3 + LETTERS.index(ch) for ch in word] for word in WORDS]
    assert model.generate(classes, BOS, EOS, 10) == expected
    assert model.generate(classes, BOS, EOS, 10, method="beam", beam_size=1) == expected
    assert model.generate(classes, BOS, EOS, 10, method="beam", beam_size=5) == expected
    reversed_order = model.generate(classes.flip(0), BOS, EOS, 10)
    assert reversed_order == expected[::-1]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, r"give condition_size .* or num_classes .*exactly one; got condition_size=None"),
        ({"condition_size": 4, "num_classes": 2}, "exactly one; got condition_size=4"),
        ({"num_classes": 0}, "num_classes=0 must be an integer >= 1"),
        ({"condition_size": 2.5}, "condition_size=2.5 must be an integer >= 1"),
        ({"num_classes": 2, "condition_mode": "hidden"}, "condition_mode='hidden' is not one of"),
        ({"num_classes": 2, "cell": "tcn"}, "cell='tcn' is not one of"),
        ({"num_classes": 2, "condition_dim": 0}, "condition_dim=0 must be an integer >= 1"),
        (
            {"num_classes": 2, "rnn_options": {"bidirectional": True}},
            r"layer options \['bidirectional'\] are set by the model itself",
        ),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        ConditionalGenerator(V, **settings)


def test_bad_vocab_size_is_refused():
    with pytest.raises(ValueError, match="vocab_size=1 must be an integer >= 2"):
        ConditionalGenerator(1, num_classes=2)


FEATURE_MODEL = ConditionalGenerator(V, condition_size=4, hidden_size=5)
CLASS_MODEL = ConditionalGenerator(V, num_classes=3, hidden_size=5)
TOKENS = torch.randint(V, (2, 3))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: FEATURE_MODEL(torch.randn(2, 5), TOKENS), ValueError, r"condition must be \(batch, 4\) floats, got shape \(2, 5\)"),
        (lambda: FEATURE_MODEL(torch.randn(4), TOKENS), ValueError, r"condition must be \(batch, 4\) floats, got shape \(4,\)"),
        (lambda: FEATURE_MODEL(torch.ones(2, 4, dtype=torch.uint8), TOKENS), TypeError, r"got dtype torch.uint8 \(scale integer data"),
        (lambda: FEATURE_MODEL(torch.randn(2, 4).double(), TOKENS), TypeError, "condition has dtype torch.float64 but the model's parameters are torch.float32"),
        (lambda: FEATURE_MODEL(torch.randn(3, 4), TOKENS), ValueError, "condition has batch size 3 but tokens have 2"),
        (lambda: FEATURE_MODEL([[0.0] * 4] * 2, TOKENS), TypeError, "condition must be a torch.Tensor, got list"),
        (lambda: CLASS_MODEL(torch.tensor([0, 3]), TOKENS), ValueError, r"class ids from 0 to 3, outside 0..2 \(num_classes=3\)"),
        (lambda: CLASS_MODEL(torch.tensor([-1, 0]), TOKENS), ValueError, "class ids from -1 to 0, outside"),
        (lambda: CLASS_MODEL(torch.tensor([0.0, 1.0]), TOKENS), TypeError, r"condition must be \(batch,\) integer class ids, got dtype torch.float32"),
        (lambda: CLASS_MODEL(torch.tensor([[0], [1]]), TOKENS), ValueError, r"condition must be \(batch,\) class ids, got shape \(2, 1\)"),
        (lambda: CLASS_MODEL(torch.tensor([], dtype=torch.long), TOKENS[:0]), ValueError, "condition has batch size 0"),
        (lambda: CLASS_MODEL(torch.tensor([0, 1]), torch.tensor([1, 2])), ValueError, r"tokens must be \(batch, steps\) ids, got \(2,\)"),
        (lambda: CLASS_MODEL(torch.tensor([0, 1]), TOKENS.float()), TypeError, "tokens must be integer ids, got dtype torch.float32"),
        (lambda: CLASS_MODEL(torch.tensor([0, 1]), TOKENS + V), ValueError, r"tokens hold ids from \d+ to \d+, outside the vocabulary's 0..10"),
        (lambda: CLASS_MODEL(torch.tensor([0, 1]), TOKENS, lengths=torch.tensor([3, 4])), ValueError, r"lengths\[1\] = 4 is longer than the 3 time steps"),
        (lambda: CLASS_MODEL.decode_step(TOKENS, CLASS_MODEL.start(torch.tensor([0, 1]))), ValueError, r"tokens must be \(N,\) ids, one per row, got \(2, 3\)"),
        (lambda: CLASS_MODEL.generate(torch.tensor([0]), bos=V, eos=2, max_length=5), ValueError, "bos=11 is not a token id: ids run from 0 to 10"),
        (lambda: CLASS_MODEL.generate(torch.tensor([0]), bos=1, eos=-1, max_length=5), ValueError, "eos=-1 is not a token id"),
        (lambda: CLASS_MODEL.generate(torch.tensor([0]), bos=1.0, eos=2, max_length=5), TypeError, r"bos must be a token id \(int\), got 1.0"),
        (lambda: CLASS_MODEL.generate(torch.tensor([0]), 1, 2, 5, method="top"), ValueError, "method='top' is not one of"),
        (lambda: CLASS_MODEL.generate(torch.tensor([0]), 1, 2, 0), ValueError, "max_length must be an int >= 1"),
        (lambda: CLASS_MODEL.generate(torch.tensor([0]), 1, 2, 5, method="sample", top_p=0.0), ValueError, "top_p must be in"),
        (lambda: CLASS_MODEL.generate(torch.tensor([0]), 1, 2, 5, method="beam", beam_size=0), ValueError, "beam_size must be an int >= 1"),
        (lambda: CLASS_MODEL.generate(torch.tensor([5]), 1, 2, 5), ValueError, "class ids from 5 to 5, outside"),
    ],
)  # fmt: skip
def test_bad_input_is_refused(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("method", ["greedy", "sample", "beam"])
def test_generation_never_emits_banned_tokens_or_the_start(method):
    model = make("classes", "init")
    with torch.no_grad():  # make token 0 (padding, say) and the start token the likeliest
        model.output.linear.bias[0] += 20.0
        model.output.linear.bias[1] += 20.0
    condition = torch.arange(CLASSES)
    options = {"generator": torch.Generator().manual_seed(0)} if method == "sample" else {}
    free = model.generate(condition, bos=1, eos=V - 1, max_length=12, method=method, **options)
    assert {0} & {t for row in free for t in row}, "the test's model prefers 0"
    if method == "sample":
        options = {"generator": torch.Generator().manual_seed(0)}
    found = model.generate(condition, bos=1, eos=V - 1, max_length=12, method=method,
                           banned=[0], **options)  # fmt: skip
    assert not {0, 1} & {t for row in found for t in row}
