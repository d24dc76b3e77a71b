"""The encoder–decoder: teacher forcing = its own step-by-step decoder, state reordering,
source padding, scheduled sampling, a task it learns, and its input checks."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from rnnkit.decoding import beam_search, greedy
from rnnkit.models.seq2seq import EncoderDecoder, Seq2SeqState

D = torch.float64
SOURCE_VOCAB, TARGET_VOCAB = 11, 9
ATTENTIONS = ["additive", "dot", "general", None]


def model(attention="additive", cell="lstm", input_feeding=True, **options):
    torch.manual_seed(0)
    options = {"embedding_dim": 4, "hidden_size": 6, "dropout": 0.0} | options
    net = EncoderDecoder(
        SOURCE_VOCAB,
        TARGET_VOCAB,
        cell=cell,
        attention=attention,
        input_feeding=input_feeding,
        **options,
    )
    return net.to(D).eval()


def data(batch=4, steps=5, target_steps=6, lengths=(5, 2, 1, 4), seed=1):
    """Source ids whose padding holds arbitrary ids (not only pad_id), lengths, target_in."""
    generator = torch.Generator().manual_seed(seed)
    source = torch.randint(0, SOURCE_VOCAB, (batch, steps), generator=generator)
    target_in = torch.randint(0, TARGET_VOCAB, (batch, target_steps), generator=generator)
    return source, torch.tensor(lengths), target_in


def step_by_step(net, source, lengths, target_in):
    """encode, then decode_step fed the gold tokens: logits (B, T, V), weights (B, T, S)."""
    state = net.encode(source, lengths)
    all_logits, all_weights = [], []
    for t in range(target_in.shape[1]):
        logits, state = net.decode_step(target_in[:, t], state)
        all_logits.append(logits)
        all_weights.append(state.attention)
    weights = None if net.attention is None else torch.stack(all_weights, 1)
    return torch.stack(all_logits, 1), weights


def assert_close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-10)


# -- teacher forcing is the step-by-step decoder ---------------------------------------------------


@pytest.mark.parametrize(
    ("attention", "input_feeding", "cell"),
    list(itertools.product(ATTENTIONS, [True, False], ["lstm", "gru"])),
)
def test_teacher_forcing_equals_the_step_by_step_decoder(attention, input_feeding, cell):
    net = model(attention, cell, input_feeding)
    source, lengths, target_in = data()
    target_out = torch.randint(1, TARGET_VOCAB, target_in.shape)
    if attention is None:
        logits = net(source, lengths, target_in)
    else:
        logits, weights = net(source, lengths, target_in, return_attention=True)
    expected, expected_weights = step_by_step(net, source, lengths, target_in)
    assert logits.shape == (4, 6, TARGET_VOCAB)
    assert_close(logits, expected)
    loss = F.cross_entropy(logits.transpose(1, 2), target_out, ignore_index=0)
    expected_loss = F.cross_entropy(expected.transpose(1, 2), target_out, ignore_index=0)
    assert_close(loss, expected_loss)
    if attention is not None:
        assert weights.shape == (4, 6, 5)
        assert_close(weights, expected_weights)
        valid = torch.arange(5) < lengths[:, None]
        assert_close(weights.sum(-1), torch.ones(4, 6, dtype=D))
        assert (weights[~valid[:, None].expand(-1, 6, -1)] == 0).all()


@pytest.mark.parametrize("attention", ["additive", "general", None])
def test_stacked_layers_teacher_forcing_equals_step_by_step(attention):
    net = model(attention, num_layers=2)
    source, lengths, target_in = data()
    assert_close(net(source, lengths, target_in), step_by_step(net, source, lengths, target_in)[0])


def test_the_luong_step_follows_its_equations():
    """One step of general attention with input feeding, recomputed by hand."""
    net = model("general", "gru")
    source, lengths, target_in = data()
    state = net.encode(source, lengths)
    for t in range(2):
        feed = state.feed
        logits, new = net.decode_step(target_in[:, t], state)
        x = torch.cat([net.target_embedding(target_in[:, t]), feed], 1)
        h = net.decoder.cells[0].step(x, state.rnn[0])[0]
        energy = torch.einsum("bq,qk,bsk->bs", h, net.attention.key_projection.weight, state.keys)
        a = torch.softmax(energy.masked_fill(~state.mask, float("-inf")), 1)
        c = torch.einsum("bs,bsk->bk", a, state.keys)
        expected_feed = torch.tanh(torch.cat([c, h], 1) @ net.combine.weight.T)
        assert_close(new.feed, expected_feed)
        assert_close(new.attention, a)
        assert_close(logits, net.output(expected_feed))
        state = new


def test_the_bahdanau_step_asks_with_the_previous_state():
    net = model("additive", "gru")
    source, lengths, target_in = data()
    state = net.encode(source, lengths)
    context, weights = net.attention(state.rnn[-1], state.keys, state.mask)  # s_0's top h
    x = torch.cat([net.target_embedding(target_in[:, 0]), context], 1)
    h = net.decoder.cells[0].step(x, state.rnn[0])[0]
    feed = torch.tanh(torch.cat([context, h], 1) @ net.combine.weight.T)
    logits, new = net.decode_step(target_in[:, 0], state)
    assert_close(new.attention, weights)
    assert_close(logits, net.output(feed))
    assert new.feed is None


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bridges(cell):
    net = model("general", cell, num_layers=2)
    source, lengths, _ = data()
    embedded = net.source_embedding(source)
    _, final = net.encoder(embedded, lengths=lengths)
    finals = final if isinstance(final, tuple) else (final,)
    state = net.encode(source, lengths)
    states = state.rnn if isinstance(state.rnn, tuple) else (state.rnn,)
    assert len(states) == (2 if cell == "lstm" else 1)
    for k, (encoded, decoded) in enumerate(zip(finals, states, strict=True)):
        assert decoded.shape == (2, 4, 6)
        for layer in range(2):
            both = torch.cat([encoded[2 * layer], encoded[2 * layer + 1]], 1)  # [fwd; bwd]
            linear = net.bridge[layer * len(states) + k]
            assert_close(decoded[layer], torch.tanh(linear(both)))
    zeros = model("general", cell, num_layers=2, bridge="zeros").encode(source, lengths)
    for part in zeros.rnn if isinstance(zeros.rnn, tuple) else (zeros.rnn,):
        assert part.shape == (2, 4, 6) and (part == 0).all()


def test_dot_attention_splits_the_encoder_between_directions():
    net = model("dot")
    state = net.encode(*data()[:2])
    assert state.keys.shape == (4, 5, 6)  # K = hidden_size: two directions of 3
    assert state.prepared is state.keys
    assert model("general").encode(*data()[:2]).keys.shape == (4, 5, 12)  # K = 2 * hidden


def test_rnn_options_reach_both_stacks():
    net = model("general", "gru", rnn_options={"layer_norm": True})
    assert net.encoder.cells[0].layer_norm and net.decoder.cells[0].layer_norm
    source, lengths, target_in = data()
    assert_close(net(source, lengths, target_in), step_by_step(net, source, lengths, target_in)[0])


# -- the state: reordering and padding ------------------------------------------------------------


@pytest.mark.parametrize(
    ("attention", "cell"), list(itertools.product(ATTENTIONS, ["lstm", "gru"]))
)
def test_reorder_state_then_step_equals_the_reordered_batch(attention, cell):
    net = model(attention, cell)
    source, lengths, target_in = data()
    index = torch.tensor([2, 0, 0, 3, 1, 2])  # rows repeat, as in beam search
    state = net.encode(source, lengths)
    reordered_state = net.encode(source[index], lengths[index])
    for t in range(2):  # reorder after two steps, so the feed and weights are not initial
        _, state = net.decode_step(target_in[:, t], state)
        _, reordered_state = net.decode_step(target_in[index, t], reordered_state)
    state = net.reorder_state(state, index)
    assert isinstance(state, Seq2SeqState)
    for t in range(2, 4):
        logits, state = net.decode_step(target_in[index, t], state)
        expected, reordered_state = net.decode_step(target_in[index, t], reordered_state)
        assert_close(logits, expected)
    for got, want in zip(state, reordered_state, strict=True):
        if got is None:
            assert want is None
            continue
        for a, b in zip(*(x if isinstance(x, tuple) else (x,) for x in (got, want)), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("attention", "cell"), list(itertools.product(ATTENTIONS, ["lstm", "gru"]))
)
def test_a_padded_source_gives_what_the_sentence_alone_gives(attention, cell):
    net = model(attention, cell)
    source, lengths, target_in = data(lengths=(5, 2, 1, 4))
    logits = net(source, lengths, target_in)
    for b, n in enumerate(lengths.tolist()):
        alone = net(source[b : b + 1, :n], lengths[b : b + 1], target_in[b : b + 1])
        assert_close(logits[b], alone[0])
    # The padding's ids change nothing either.
    garbage = source.clone()
    garbage[torch.arange(5) >= lengths[:, None]] = 7
    assert_close(net(garbage, lengths, target_in), logits)


def test_decode_step_leaves_the_attention_map_in_the_state():
    net = model("additive")
    source, lengths, _ = data()
    state = net.encode(source, lengths)
    assert state.attention is None
    rows = []
    tokens = torch.ones(4, dtype=torch.long)
    for _ in range(3):
        logits, state = net.decode_step(tokens, state)
        tokens = logits.argmax(-1)
        rows.append(state.attention)
    heat_map = torch.stack(rows, 1)  # (B, steps decoded, S)
    assert heat_map.shape == (4, 3, 5)
    assert_close(heat_map.sum(-1), torch.ones(4, 3, dtype=D))
    assert (heat_map[1, :, 2:] == 0).all() and (heat_map[2, :, 0] == 1).all()


# -- scheduled sampling ---------------------------------------------------------------------------


def own_predictions_loop(net, source, lengths, target_in, draw):
    """The scheduled-sampling computation written out: at t > 0, rows where ``draw()`` is True
    feed their previous argmax, the others the gold token."""
    state = net.encode(source, lengths)
    tokens, all_logits = target_in[:, 0], []
    for t in range(target_in.shape[1]):
        if t > 0:
            tokens = torch.where(draw(), all_logits[-1].argmax(-1), target_in[:, t])
        logits, state = net.decode_step(tokens, state)
        all_logits.append(logits)
    return torch.stack(all_logits, 1)


@pytest.mark.parametrize("attention", ["additive", "dot"])
def test_scheduled_sampling(attention):
    net = model(attention).train()  # dropout=0: training mode is deterministic but for sampling
    source, lengths, target_in = data()
    teacher = step_by_step(net, source, lengths, target_in)[0]
    assert_close(net(source, lengths, target_in, sampling=0.0), teacher)

    always = net(source, lengths, target_in, sampling=1.0)
    assert_close(
        always,
        own_predictions_loop(
            net, source, lengths, target_in, lambda: torch.ones(4, dtype=torch.bool)
        ),
    )
    assert not torch.allclose(always, teacher)  # the untrained argmax is not the gold

    torch.manual_seed(5)
    half = net(source, lengths, target_in, sampling=0.5)
    torch.manual_seed(5)
    draws = []

    def draw():
        draws.append(torch.rand(4) < 0.5)
        return draws[-1]

    assert_close(half, own_predictions_loop(net, source, lengths, target_in, draw))
    mixed = torch.stack(draws)
    assert mixed.any() and not mixed.all()
    half.sum().backward()  # the sampled tokens are inputs: the graph still reaches every weight
    assert net.output.weight.grad is not None

    net.eval()  # evaluation: teacher forcing whatever sampling says
    assert_close(net(source, lengths, target_in, sampling=1.0), teacher)


# -- a task it learns ------------------------------------------------------------------------------

PAD, BOS, EOS, DIGITS = 0, 1, 2, range(3, 13)


def reversal_batch(n, generator):
    """Random digit sequences of length 3-6 and their reversals: source, lengths, the
    decoder's input (BOS + reversed) and output (reversed + EOS), padded with PAD."""
    lengths = torch.randint(3, 7, (n,), generator=generator)
    source = torch.full((n, 6), PAD)
    target_in, target_out = torch.full((n, 7), PAD), torch.full((n, 7), PAD)
    for b, length in enumerate(lengths.tolist()):
        digits = torch.randint(DIGITS.start, DIGITS.stop, (length,), generator=generator)
        source[b, :length] = digits
        target_in[b, 0], target_in[b, 1 : length + 1] = BOS, digits.flip(0)
        target_out[b, :length], target_out[b, length] = digits.flip(0), EOS
    return source, lengths, target_in, target_out


@pytest.fixture(scope="module")
def reverser():
    """The default model (additive attention, LSTM), small, trained to reverse digits: 200
    Adam steps, about 3 s on an idle core; 98-100% of sequences right with three seeds."""
    torch.manual_seed(0)
    vocab = DIGITS.stop
    net = EncoderDecoder(vocab, vocab, embedding_dim=16, hidden_size=32, dropout=0.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        source, lengths, target_in, target_out = reversal_batch(64, generator)
        logits = net(source, lengths, target_in)
        loss = F.cross_entropy(logits.transpose(1, 2), target_out, ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


def test_learns_to_reverse_digit_sequences(reverser):
    source, lengths, _, target_out = reversal_batch(200, torch.Generator().manual_seed(1))
    with torch.no_grad():
        state = reverser.encode(source, lengths)
        decoded = greedy(reverser, state, torch.full((200,), BOS), max_length=10, eos=EOS)
    right = torch.tensor(
        [
            bool(decoded.finished[b]) and torch.equal(decoded.tokens[b, :n], target_out[b, :n])
            for b, n in enumerate(lengths.tolist())
        ]
    )
    assert right.double().mean() >= 0.95
    assert torch.equal(decoded.lengths[right], lengths[right])
    assert decoded.state.attention.shape == (200, 6)  # the last step's row of the heat map


def test_beam_of_one_is_greedy(reverser):
    source, lengths, _, _ = reversal_batch(20, torch.Generator().manual_seed(2))
    start = torch.full((20,), BOS)
    with torch.no_grad():
        decoded = greedy(reverser, reverser.encode(source, lengths), start, 10, eos=EOS)
        beams = beam_search(reverser, reverser.encode(source, lengths), start, 10, EOS, beam_size=1)
    for b, (best,) in enumerate(beams):
        assert best.tokens == decoded.tokens[b, : decoded.lengths[b]].tolist()
        assert best.finished == bool(decoded.finished[b])
        assert best.log_prob == pytest.approx(float(decoded.log_probs[b]), abs=1e-5)


# -- bad input -------------------------------------------------------------------------------------


def test_bad_inputs_raise():
    net = model("additive")
    source, lengths, target_in = data()
    with pytest.raises(ValueError, match=r"source_lengths\[2\] = 0: every source needs"):
        net(source, torch.tensor([5, 2, 0, 4]), target_in)
    with pytest.raises(ValueError, match=r"source_lengths\[0\] = 6 is longer than the 5 steps"):
        net(source, torch.tensor([6, 2, 1, 4]), target_in)
    with pytest.raises(ValueError, match=r"source holds id 11, outside the vocabulary \[0, 11\)"):
        net(torch.where(source == source[0, 0], 11, source), lengths, target_in)
    negative = source.clone()
    negative[1, 3] = -1
    with pytest.raises(ValueError, match=r"source holds id -1, outside the vocabulary"):
        net(negative, lengths, target_in)
    too_high = target_in.clone()
    too_high[2, 1] = 9
    with pytest.raises(ValueError, match=r"target_in holds id 9, outside the vocabulary \[0, 9\)"):
        net(source, lengths, too_high)
    with pytest.raises(ValueError, match=r"source_lengths must have shape \(batch,\) = \(4,\)"):
        net(source, lengths[:3], target_in)
    with pytest.raises(ValueError, match="target_in has 3 rows but source has 4"):
        net(source, lengths, target_in[:3])
    with pytest.raises(ValueError, match=r"source must be 2-D \(batch, steps\)"):
        net(source[0], lengths[:1], target_in[:1])
    with pytest.raises(TypeError, match="source must hold integer token ids"):
        net(source.to(D), lengths, target_in)
    with pytest.raises(TypeError, match="source_lengths must hold integers"):
        net(source, lengths.to(D), target_in)
    with pytest.raises(ValueError, match=r"sampling=1.5 must be a probability in \[0, 1\]"):
        net(source, lengths, target_in, sampling=1.5)
    state = net.encode(source, lengths)
    with pytest.raises(ValueError, match="tokens has 3 rows but the state has 4"):
        net.decode_step(target_in[:3, 0], state)
    with pytest.raises(ValueError, match=r"tokens must be 1-D \(batch,\)"):
        net.decode_step(target_in, state)
    with pytest.raises(ValueError, match="tokens holds id 9"):
        net.decode_step(torch.full((4,), 9), state)
    with pytest.raises(ValueError, match="return_attention=True needs a model with attention"):
        model(None)(source, lengths, target_in, return_attention=True)


def test_bad_settings_raise():
    def build(**options):
        return EncoderDecoder(SOURCE_VOCAB, TARGET_VOCAB, **options)

    with pytest.raises(ValueError, match="attention='cosine' is not one of"):
        build(attention="cosine")
    with pytest.raises(ValueError, match="bridge='mean' is not one of"):
        build(bridge="mean")
    with pytest.raises(ValueError, match="leaves the decoder blind to the source"):
        build(attention=None, bridge="zeros")
    with pytest.raises(ValueError, match=r"hidden_size=7 .* must be even"):
        build(attention="dot", hidden_size=7)
    with pytest.raises(ValueError, match=r"pad_id=9 must be an id in \[0, 9\)"):
        build(pad_id=9)
    with pytest.raises(ValueError, match=r"dropout=1\.0 must be a rate"):
        build(dropout=1.0)
    with pytest.raises(ValueError, match="target_vocab_size=0 must be a positive integer"):
        EncoderDecoder(SOURCE_VOCAB, 0)
    with pytest.raises(ValueError, match="cell='lstmm' is not one of"):
        build(cell="lstmm")
    with pytest.raises(ValueError, match=r"layer options \['bidirectional'\] are set by the model"):
        build(rnn_options={"bidirectional": False})
