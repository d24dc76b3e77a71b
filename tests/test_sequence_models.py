"""Sequence classifiers, the bag baseline and the tagger: pooling, masking, padding invariance."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from rnnkit.models.classifier import (
    AttentionPooling,
    BagClassifier,
    SequenceClassifier,
    pool,
    valid_steps,
)
from rnnkit.models.tagger import CharEncoder, SequenceTagger

D = torch.float64
VOCAB = 12
TAGS = ["O", "B-PER", "I-PER"]


def batch_with(sentence, others, generator, high=VOCAB):
    """``sentence`` as row 1 of a batch with longer ``others``, padded with arbitrary ids."""
    rows = [others[0], sentence, *others[1:]]
    steps = max(len(r) for r in rows)
    x = torch.randint(1, high, (len(rows), steps), generator=generator)  # padding: any ids
    for b, row in enumerate(rows):
        x[b, : len(row)] = row
    return x, torch.tensor([len(r) for r in rows])


def tokens(generator, *lengths, high=VOCAB):
    return [torch.randint(1, high, (n,), generator=generator) for n in lengths]


def classifier(cell="lstm", bidirectional=True, pooling="last", **options):
    torch.manual_seed(0)
    model = SequenceClassifier(
        3,
        vocab_size=VOCAB,
        embedding_dim=4,
        hidden_size=5,
        cell=cell,
        bidirectional=bidirectional,
        pooling=pooling,
        **options,
    )
    return model.to(D).eval()


# -- attention ------------------------------------------------------------------------------------


def test_attention_weights_sum_to_one_and_vanish_on_padding():
    model = classifier(pooling="attention")
    x = torch.randint(1, VOCAB, (4, 7))
    lengths = torch.tensor([7, 3, 1, 5])
    logits, weights = model(x, lengths=lengths, return_attention=True)
    assert logits.shape == (4, 3) and weights.shape == (4, 7)
    valid = valid_steps(lengths, 4, 7, x.device)
    torch.testing.assert_close(weights.sum(1), torch.ones(4, dtype=D), rtol=0, atol=1e-12)
    assert (weights[~valid] == 0).all()
    assert (weights[valid] > 0).all()
    assert weights[2, 0] == 1


def test_attention_pooling_is_the_weighted_sum_of_its_softmax():
    attention = AttentionPooling(3, attention_size=4).to(D)
    h = torch.randn(2, 5, 3, dtype=D)
    valid = valid_steps(torch.tensor([5, 2]), 2, 5, "cpu")
    context, weights = attention(h, valid)
    for b, n in enumerate([5, 2]):
        energy = attention.score(torch.tanh(attention.project(h[b, :n]))).squeeze(-1)
        alpha = torch.softmax(energy, 0)
        torch.testing.assert_close(weights[b, :n], alpha)
        torch.testing.assert_close(context[b], alpha @ h[b, :n])


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_return_attention_needs_attention_pooling(pooling):
    model = classifier(pooling=pooling)
    with pytest.raises(ValueError, match=f"needs pooling='attention'.*{pooling!r}"):
        model(torch.ones(1, 2, dtype=torch.long), return_attention=True)


# -- padding invariance ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "bidirectional"), list(itertools.product(["lstm", "gru", "rnn"], [True, False]))
)
def test_classifier_logits_do_not_depend_on_batch_mates(cell, bidirectional):
    generator = torch.Generator().manual_seed(1)
    sentence = tokens(generator, 4)[0]
    others = tokens(generator, 9, 6, 4)
    x, lengths = batch_with(sentence, others, generator)
    for pooling in ("last", "mean", "max", "attention"):
        model = classifier(cell, bidirectional, pooling, num_layers=2)
        with torch.no_grad():
            alone = model(sentence[None])
            batched = model(x, lengths=lengths)
        torch.testing.assert_close(batched[1], alone[0], rtol=0, atol=1e-10, msg=pooling)
        # Another batch, other padding ids: the same row logits again.
        x2 = x.clone()
        x2[1, 4:] = (x2[1, 4:] + 5) % VOCAB + 0
        with torch.no_grad():
            torch.testing.assert_close(model(x2, lengths=lengths)[1], alone[0], rtol=0, atol=1e-10)


def test_classifier_on_features_is_padding_invariant():
    torch.manual_seed(0)
    model = SequenceClassifier(2, input_size=3, hidden_size=4, pooling="mean").to(D).eval()
    sentence = torch.randn(3, 3, dtype=D)
    x = torch.randn(2, 6, 3, dtype=D) * 100  # wild padding
    x[1, :3] = sentence
    with torch.no_grad():
        torch.testing.assert_close(
            model(x, lengths=torch.tensor([6, 3]))[1], model(sentence[None])[0], rtol=0, atol=1e-10
        )


def test_bag_classifier_is_padding_invariant():
    generator = torch.Generator().manual_seed(2)
    sentence = tokens(generator, 3)[0]
    x, lengths = batch_with(sentence, tokens(generator, 8, 5), generator)
    torch.manual_seed(0)
    model = BagClassifier(3, vocab_size=VOCAB, embedding_dim=4, hidden_size=6).to(D).eval()
    with torch.no_grad():
        torch.testing.assert_close(
            model(x, lengths=lengths)[1], model(sentence[None])[0], rtol=0, atol=1e-10
        )


def chars_of(words, generator, width=4, high=20):
    """A spelling (T, W) per word: a random length 1..width of nonzero ids, then zeros."""
    chars = torch.zeros(len(words), width, dtype=torch.long)
    for t in range(len(words)):
        n = int(torch.randint(1, width + 1, (1,), generator=generator))
        chars[t, :n] = torch.randint(1, high, (n,), generator=generator)
    return chars


def tagger(crf=True, chars=False, cell="lstm"):
    torch.manual_seed(0)
    model = SequenceTagger(
        VOCAB,
        3,
        embedding_dim=4,
        char_vocab_size=20 if chars else None,
        char_embedding_dim=3,
        char_hidden_size=2,
        cell=cell,
        hidden_size=5,
        dropout=0.5,
        crf=crf,
        tags=TAGS,
    )
    return model.to(D).eval()


@pytest.mark.parametrize(("crf", "chars"), list(itertools.product([False, True], [False, True])))
def test_tagger_is_padding_invariant(crf, chars):
    generator = torch.Generator().manual_seed(3)
    sentence = tokens(generator, 4)[0]
    x, lengths = batch_with(sentence, tokens(generator, 7, 5), generator)
    model = tagger(crf, chars)
    alone_chars = batch_chars = None
    if chars:
        spellings = [chars_of(row, generator, width=w) for row, w in zip(x, (6, 3, 5), strict=True)]
        # Row 1 alone: its own words, narrower spellings. In the batch: padded to width 6,
        # and the padded word positions get arbitrary (nonzero) spellings.
        alone_chars = spellings[1][None, :4, :3]
        batch_chars = torch.stack([F.pad(s, (0, 6 - s.shape[1])) for s in spellings])
    with torch.no_grad():
        alone = model(sentence[None], alone_chars)
        batched = model(x, batch_chars, lengths=lengths)
        torch.testing.assert_close(batched[1, :4], alone[0], rtol=0, atol=1e-10)
        decoded_alone = model.decode(sentence[None], alone_chars)
        decoded = model.decode(x, batch_chars, lengths=lengths)
    assert torch.equal(decoded[1, :4], decoded_alone[0])
    assert (decoded[1, 4:] == 0).all()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_char_encoder_reads_each_spelling_alone_and_zeros_padding(cell):
    torch.manual_seed(0)
    encoder = CharEncoder(9, 3, 2, cell).to(D).eval()
    chars = torch.tensor(
        [[[1, 2, 3, 0], [4, 0, 0, 0], [5, 6, 0, 0]], [[7, 8, 8, 8], [0, 0, 0, 0], [2, 2, 0, 0]]]
    )
    valid = torch.tensor([[True, True, True], [True, False, False]])
    with torch.no_grad():
        out = encoder(chars, valid)
        assert out.shape == (2, 3, 4)
        assert (out[~valid] == 0).all()
        for b, t in valid.nonzero().tolist():
            spelling = chars[b, t][chars[b, t] != 0]
            _, state = encoder.rnn(encoder.embedding(spelling[None]))
            h = state[0] if isinstance(state, tuple) else state
            expected = torch.cat([h[0, 0], h[1, 0]])
            torch.testing.assert_close(out[b, t], expected, rtol=0, atol=1e-12)


# -- pooling against hand loops -------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_last_pooling_is_forward_at_last_valid_step_and_backward_at_zero(cell, num_layers):
    model = classifier(cell, True, "last", num_layers=num_layers)
    x = torch.randint(1, VOCAB, (3, 6))
    lengths = torch.tensor([6, 2, 4])
    captured = {}
    model.head.register_forward_pre_hook(lambda _, args: captured.update(pooled=args[0]))
    with torch.no_grad():
        model(x, lengths=lengths)
        model.rnn.return_sequences = True  # the whole sequence, to pick the last steps by hand
        outputs, _ = model.rnn(model.embed(x), lengths=lengths)
    hidden = 5
    for b, n in enumerate(lengths.tolist()):
        expected = torch.cat([outputs[b, n - 1, :hidden], outputs[b, 0, hidden:]])
        torch.testing.assert_close(captured["pooled"][b], expected, rtol=0, atol=1e-12)


def test_last_pooling_unidirectional_is_output_at_last_valid_step():
    model = classifier("gru", False, "last")
    x = torch.randint(1, VOCAB, (3, 6))
    lengths = torch.tensor([1, 6, 3])
    captured = {}
    model.head.register_forward_pre_hook(lambda _, args: captured.update(pooled=args[0]))
    with torch.no_grad():
        model(x, lengths=lengths)
        model.rnn.return_sequences = True  # the whole sequence, to pick the last steps by hand
        outputs, _ = model.rnn(model.embed(x), lengths=lengths)
    expected = outputs[torch.arange(3), lengths - 1]
    torch.testing.assert_close(captured["pooled"], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("cell", "options"),
    [
        ("gru", {"merge": "sum"}),
        ("lstm", {"merge": "mean"}),
        ("rnn", {"output_size": 3, "bidirectional": False}),
    ],
)
def test_last_pooling_follows_the_layer_output_size(cell, options):
    torch.manual_seed(0)
    bidirectional = options.pop("bidirectional", True)
    model = SequenceClassifier(
        2, vocab_size=VOCAB, embedding_dim=3, hidden_size=5, cell=cell, pooling="last",
        bidirectional=bidirectional, rnn_options=options,
    )  # fmt: skip
    assert model(torch.ones(2, 4, dtype=torch.long), lengths=torch.tensor([4, 2])).shape == (2, 2)


def test_mean_and_max_pool_equal_a_loop_over_valid_steps():
    h = torch.randn(4, 6, 3, dtype=D) - 5  # all negative-ish: max must not see padding zeros
    h[:, :, 0] = h[:, :, 0].abs() + 100  # and a channel where padding values would win
    lengths = torch.tensor([6, 1, 3, 5])
    h_padded = h.clone()
    for b, n in enumerate(lengths.tolist()):
        h_padded[b, n:] = 1e6
    valid = valid_steps(lengths, 4, 6, "cpu")
    mean, maximum = pool(h_padded, valid, "mean"), pool(h_padded, valid, "max")
    for b, n in enumerate(lengths.tolist()):
        rows = [h[b, t] for t in range(n)]
        expected_mean = sum(rows) / n
        expected_max = rows[0]
        for row in rows[1:]:
            expected_max = torch.maximum(expected_max, row)
        torch.testing.assert_close(mean[b], expected_mean, rtol=0, atol=1e-12)
        torch.testing.assert_close(maximum[b], expected_max, rtol=0, atol=0)
    with pytest.raises(ValueError, match="pooling='sum'"):
        pool(h, valid, "sum")


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_classifier_mean_and_max_pool_its_outputs(pooling):
    model = classifier("lstm", True, pooling)
    x = torch.randint(1, VOCAB, (3, 5))
    lengths = torch.tensor([5, 2, 3])
    captured = {}
    model.head.register_forward_pre_hook(lambda _, args: captured.update(pooled=args[0]))
    with torch.no_grad():
        model(x, lengths=lengths)
        model.rnn.return_sequences = True  # the whole sequence, to pick the last steps by hand
        outputs, _ = model.rnn(model.embed(x), lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        steps = outputs[b, :n]
        expected = steps.mean(0) if pooling == "mean" else steps.max(0).values
        torch.testing.assert_close(captured["pooled"][b], expected, rtol=0, atol=1e-12)


# -- BagClassifier, input checks ------------------------------------------------------------------


def test_bag_fixed_length_flattens():
    torch.manual_seed(0)
    model = BagClassifier(4, input_size=3, steps=5, head_hidden=0, hidden_size=7).to(D).eval()
    x = torch.randn(2, 5, 3, dtype=D)
    first = model.head[0]
    captured = {}
    first.register_forward_pre_hook(lambda _, args: captured.update(flat=args[0]))
    logits = model(x)
    assert logits.shape == (2, 4)
    assert first.in_features == 15
    torch.testing.assert_close(captured["flat"], x.reshape(2, 15))
    with pytest.raises(ValueError, match="exactly 5 steps; got 4"):
        model(torch.randn(2, 4, 3, dtype=D))


def test_input_kind_checks_say_the_shape():
    by_ids = classifier()
    with pytest.raises(ValueError, match=r"token ids \(B, T\).*\(2, 3, 4\).*float64"):
        by_ids(torch.randn(2, 3, 4, dtype=D))
    with pytest.raises(ValueError, match=r"token ids.*\(2, 3, 1\)"):
        by_ids(torch.ones(2, 3, 1, dtype=torch.long))
    torch.manual_seed(0)
    by_features = SequenceClassifier(2, input_size=4, hidden_size=3)
    with pytest.raises(
        ValueError, match=r"features \(B, T, 4\); got \(2, 3\) of dtype torch.int64"
    ):
        by_features(torch.ones(2, 3, dtype=torch.long))
    bag = BagClassifier(2, input_size=4)
    with pytest.raises(ValueError, match=r"features \(B, T, 4\); got \(2, 3\)"):
        bag(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="not both or neither"):
        SequenceClassifier(2, vocab_size=5, input_size=3)
    with pytest.raises(ValueError, match="not both or neither"):
        BagClassifier(2)
    with pytest.raises(ValueError, match="pooling='sum'"):
        SequenceClassifier(2, vocab_size=5, pooling="sum")
    with pytest.raises(ValueError, match="num_classes=1"):
        SequenceClassifier(1, vocab_size=5)


# -- embedding dropout ----------------------------------------------------------------------------


def test_embedding_dropout_drops_whole_word_types():
    torch.manual_seed(0)
    model = SequenceClassifier(2, vocab_size=50, embedding_dim=6, embedding_dropout=0.5).to(D)
    x = torch.arange(1, 50).repeat(2).view(2, 49)  # every id twice, once per row
    weight = model.embedding.weight
    model.train()
    embedded = model.embed(x)
    dropped = (embedded == 0).all(-1)  # (2, 49)
    assert torch.equal(dropped[0], dropped[1])  # both occurrences share one fate
    assert 10 < int(dropped[0].sum()) < 39  # about half of the types
    kept = ~dropped[0]
    torch.testing.assert_close(embedded[0][kept], 2 * weight[1:][kept])
    torch.testing.assert_close(embedded[1][kept], 2 * weight[1:][kept])
    # A new draw on the next call.
    assert not torch.equal((model.embed(x) == 0).all(-1)[0], dropped[0])
    model.eval()
    torch.testing.assert_close(model.embed(x), weight[x])


# -- the tagger -----------------------------------------------------------------------------------


def test_tagger_softmax_loss_is_summed_token_cross_entropy():
    model = tagger(crf=False)
    x = torch.randint(1, VOCAB, (3, 5))
    lengths = torch.tensor([5, 2, 4])
    tags = torch.randint(0, 3, (3, 5))
    loss = model(x, lengths=lengths, tags=tags)
    assert loss.shape == (3,) and (loss >= 0).all()
    emissions = model(x, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        expected = sum(-torch.log_softmax(emissions[b, t], 0)[tags[b, t]] for t in range(n))
        torch.testing.assert_close(loss[b], expected, rtol=0, atol=1e-12)
    # The padding's tags do not matter, -100 included.
    padded = tags.clone()
    padded[1, 2:] = -100
    torch.testing.assert_close(model(x, lengths=lengths, tags=padded), loss)


def test_tagger_crf_loss_is_the_crf_nll_of_the_emissions():
    model = tagger(crf=True)
    x = torch.randint(1, VOCAB, (3, 5))
    lengths = torch.tensor([5, 1, 3])
    tags = torch.tensor([[1, 2, 0, 1, 2], [0, 0, 0, 0, 0], [1, 2, 2, 0, 0]])
    loss = model(x, lengths=lengths, tags=tags)
    assert loss.shape == (3,) and (loss >= 0).all()
    torch.testing.assert_close(loss, model.crf(model(x, lengths=lengths), tags, lengths))
    # Without lengths: every row full.
    assert model(x, tags=tags).shape == (3,)


@pytest.mark.parametrize("crf", [False, True])
def test_tagger_decode_shape_and_zeros_past_lengths(crf):
    model = tagger(crf=crf)
    x = torch.randint(1, VOCAB, (4, 6))
    lengths = torch.tensor([6, 1, 3, 5])
    decoded = model.decode(x, lengths=lengths)
    assert decoded.shape == (4, 6) and decoded.dtype == torch.long
    assert ((decoded >= 0) & (decoded < 3)).all()
    for b, n in enumerate(lengths.tolist()):
        assert (decoded[b, n:] == 0).all()
    assert model.decode(x).shape == (4, 6)


def test_crf_tagger_never_decodes_a_forbidden_transition():
    model = tagger(crf=True)
    with torch.no_grad():  # emissions that love I-PER everywhere
        model.emit.bias.copy_(torch.tensor([0.0, 0.0, 50.0], dtype=D))
    x = torch.randint(1, VOCAB, (8, 7))
    lengths = torch.tensor([7, 1, 2, 3, 4, 5, 6, 7])
    decoded = model.decode(x, lengths=lengths)
    softmax_choice = model(x, lengths=lengths).argmax(-1)
    assert (softmax_choice[:, 0] == 2).all()  # a softmax would start with I-PER
    for b, n in enumerate(lengths.tolist()):
        path = decoded[b, :n].tolist()
        assert path[0] != 2, path  # I-PER cannot start a sentence
        for previous, tag in itertools.pairwise(path):
            assert not (previous == 0 and tag == 2), path  # O -> I-PER


def test_tagger_chars_checks():
    with_chars = tagger(chars=True)
    x = torch.randint(1, VOCAB, (2, 3))
    with pytest.raises(ValueError, match="chars=None: this tagger needs chars"):
        with_chars(x)
    with pytest.raises(ValueError, match="chars=None"):
        with_chars.decode(x)
    without = tagger(chars=False)
    with pytest.raises(ValueError, match="has no character encoder"):
        without(x, torch.ones(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token ids \(B, T\); got \(2, 3, 1\)"):
        without(torch.ones(2, 3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="tags has 2 names for num_tags=3"):
        SequenceTagger(VOCAB, 3, tags=["O", "B-X"])


# -- gradients ------------------------------------------------------------------------------------


def test_gradcheck_through_attention_classifier():
    torch.manual_seed(0)
    model = SequenceClassifier(
        2,
        input_size=2,
        hidden_size=2,
        cell="gru",
        pooling="attention",
        rnn_options={"backend": "reference"},
    ).to(D)
    x = torch.randn(2, 3, 2, dtype=D, requires_grad=True)
    lengths = torch.tensor([3, 2])
    params = [model.attention.project.weight, model.head.weight]

    def function(x, *weights):
        return torch.func.functional_call(
            model,
            {"attention.project.weight": weights[0], "head.weight": weights[1]},
            (x,),
            {"lengths": lengths},
        )

    inputs = (x, *(p.detach().clone().requires_grad_() for p in params))
    assert torch.autograd.gradcheck(function, inputs, eps=1e-6, atol=1e-7)


def test_gradcheck_through_tagger_crf_loss():
    torch.manual_seed(0)
    model = SequenceTagger(
        6,
        3,
        embedding_dim=2,
        hidden_size=2,
        dropout=0.0,
        crf=True,
        tags=TAGS,
        rnn_options={"backend": "reference"},
    ).to(D)
    words = torch.tensor([[1, 2, 3], [4, 5, 0]])
    lengths = torch.tensor([3, 2])
    tags = torch.tensor([[1, 2, 0], [0, 1, 0]])
    names = ["embedding.weight", "emit.weight", "crf.transitions", "crf.start"]
    parameters = dict(model.named_parameters())

    def function(*weights):
        loss = torch.func.functional_call(
            model,
            dict(zip(names, weights, strict=True)),
            (words,),
            {"lengths": lengths, "tags": tags},
        )
        return loss

    inputs = tuple(parameters[n].detach().clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(function, inputs, eps=1e-6, atol=1e-7)


# -- learning -------------------------------------------------------------------------------------


def test_classifier_learns_whether_token_3_appears():
    generator = torch.Generator().manual_seed(0)
    count, steps = 128, 10
    x = torch.randint(1, 8, (count, steps), generator=generator)
    x[x == 3] = 4
    lengths = torch.randint(2, steps + 1, (count,), generator=generator)
    y = torch.randint(0, 2, (count,), generator=generator)
    for b in range(count):
        if y[b]:
            x[b, torch.randint(0, int(lengths[b]), (1,), generator=generator)] = 3
        else:  # a 3 in the padding must not count
            x[b, int(lengths[b]) :] = 3
    torch.manual_seed(0)
    model = SequenceClassifier(
        2, vocab_size=8, embedding_dim=8, hidden_size=16, cell="gru", pooling="max"
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        optimizer.zero_grad()
        F.cross_entropy(model(x, lengths=lengths), y).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x, lengths=lengths).argmax(1) == y).double().mean().item()
    assert accuracy >= 0.95
