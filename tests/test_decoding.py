"""Decoding against first principles: argmax loops, counted frequencies and exhaustive search.

Two toy decoders stand in for models: a Markov chain (logits depend on the previous token only,
no state) and a seeded GRU cell whose state (h, step count) has a batch dimension, so beam
search's reorder_state matters. Everything is float64.
"""

import pytest
import torch
from torch import nn

from rnnkit.decoding import (
    Decoded,
    Hypothesis,
    beam_search,
    filter_logits,
    greedy,
    sample,
    stream,
)

D = torch.float64
V, EOS = 6, 5


class TableDecoder:
    """A Markov chain: ``logits = table[previous token]``; the state is passed through."""

    def __init__(self, vocab_size=V, seed=0, scale=2.0, eos=None, eos_bias=0.0):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(vocab_size, vocab_size, generator=g, dtype=D) * scale
        if eos is not None:
            self.table[:, eos] += eos_bias
        self.calls = 0

    def decode_step(self, tokens, state):
        self.calls += 1
        return self.table[tokens], state

    def reorder_state(self, state, index):
        return state


class GRUDecoder(nn.Module):
    """Embedding -> GRU cell -> linear, plus a learned score per step number.

    The state is a tuple ``(h (N, H), steps (N,))``; rows start at different step counts, so
    a beam search that reorders one part of the state and not the other gets other numbers.
    """

    def __init__(self, vocab_size=V, hidden=8, seed=0, eos=None, eos_bias=0.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embed = nn.Embedding(vocab_size, hidden)
        self.cell = nn.GRUCell(hidden, hidden)
        self.out = nn.Linear(hidden, vocab_size)
        self.position = nn.Parameter(torch.zeros(64, vocab_size))
        self.to(D).requires_grad_(False)
        for parameter in self.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=g, dtype=D))
        if eos is not None:
            self.out.bias[eos] += eos_bias
        self.hidden = hidden
        self.batch_sizes = []  # rows fed at each step

    def initial_state(self, batch, seed=1):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(batch, self.hidden, generator=g, dtype=D), torch.arange(batch) % 3

    def decode_step(self, tokens, state):
        self.batch_sizes.append(len(tokens))
        h, steps = state
        h = self.cell(self.embed(tokens), h)
        return self.out(h) + self.position[steps], (h, steps + 1)

    def reorder_state(self, state, index):
        h, steps = state
        return h[index], steps[index]


def row_state(decoder, state, b):
    return decoder.reorder_state(state, torch.tensor([b]))


def teacher_forced_log_prob(decoder, state, start, tokens, eos=None):
    """``Σ log_softmax`` of ``tokens`` (then ``eos`` if given), fed one at a time to one row."""
    total, previous = 0.0, start
    for token in [*tokens, *([] if eos is None else [eos])]:
        logits, state = decoder.decode_step(torch.tensor([previous]), state)
        total += torch.log_softmax(logits[0], -1)[token].item()
        previous = token
    return total


def row_tokens(decoded: Decoded, b: int) -> list[int]:
    return decoded.tokens[b, : decoded.lengths[b]].tolist()


# --- filter_logits ---------------------------------------------------------------------------


def test_top_k_keeps_exactly_the_k_largest_scaled():
    logits = torch.randn(3, 10, dtype=D)
    for k in [1, 2, 5, 9, 10, 15]:
        out = filter_logits(logits, temperature=0.5, top_k=k)
        kept = torch.isfinite(out)
        assert kept.sum(1).tolist() == [min(k, 10)] * 3
        largest = logits.topk(min(k, 10), dim=1).indices
        assert kept.gather(1, largest).all()
        assert torch.equal(out[kept], (logits / 0.5)[kept])
        assert (out[~kept] == float("-inf")).all()


def test_top_k_breaks_ties_towards_lower_ids():
    logits = torch.tensor([[1.0, 3.0, 3.0, 3.0, 0.0], [0.0] * 5])
    inf = float("-inf")
    assert filter_logits(logits, top_k=2).tolist() == [[inf, 3, 3, inf, inf], [0, 0, inf, inf, inf]]
    assert filter_logits(logits, top_k=1).tolist() == [
        [inf, 3, inf, inf, inf],
        [0, inf, inf, inf, inf],
    ]


def test_top_p_keeps_the_smallest_prefix_reaching_p():
    probs = torch.tensor([0.0625, 0.5, 0.125, 0.25, 0.0625], dtype=D)  # sorted: 1, 3, 2, 0|4
    logits = probs.log()
    cases = {
        0.3: [1],
        0.4999: [1],
        0.6: [1, 3],
        0.8: [1, 2, 3],
        0.9: [0, 1, 2, 3],
        1.0: [0, 1, 2, 3, 4],
    }
    for top_p, expected in cases.items():
        kept = torch.isfinite(filter_logits(logits, top_p=top_p))
        # 0.9 needs one of the two equal 0.0625 tokens: the lower id, 0.
        assert kept.nonzero().flatten().tolist() == expected, top_p


def test_top_p_stops_as_soon_as_p_is_reached_exactly():
    logits = torch.zeros(4, dtype=D)  # probabilities exactly 1/4: sums 1/4, 1/2, 3/4 exact
    for top_p, expected in {0.25: [0], 0.5: [0, 1], 0.75: [0, 1, 2], 0.76: [0, 1, 2, 3]}.items():
        kept = torch.isfinite(filter_logits(logits, top_p=top_p))
        assert kept.nonzero().flatten().tolist() == expected, top_p


def test_top_p_on_random_logits_is_minimal_and_sufficient():
    logits = torch.randn(200, 12, dtype=D) * 2
    probs = torch.softmax(logits, -1)
    for top_p in [0.05, 0.3, 0.7, 0.95]:
        kept = torch.isfinite(filter_logits(logits, top_p=top_p))
        mass = (probs * kept).sum(1)
        smallest_kept = probs.masked_fill(~kept, 2.0).amin(1)
        largest_dropped = probs.masked_fill(kept, -1.0).amax(1)
        assert (mass >= top_p).all()  # reaches p
        assert (mass - smallest_kept < top_p).all()  # ... and no token fewer would
        assert (largest_dropped <= smallest_kept).all()  # ... with the most probable tokens


def test_top_p_applies_to_what_top_k_left():
    logits = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=D).log()
    assert torch.isfinite(filter_logits(logits, top_p=0.5)).tolist() == [True, True, False, False]
    # After top_k=2 the distribution is (4/7, 3/7): 4/7 alone reaches 0.5.
    both = filter_logits(logits, top_k=2, top_p=0.5)
    assert torch.isfinite(both).tolist() == [True, False, False, False]


def test_the_most_probable_token_is_always_kept():
    logits = torch.randn(50, 8, dtype=D) * 3
    best = logits.argmax(1)
    for temperature in [0, 0.3, 1.0, 5.0]:
        for top_k in [None, 1, 3]:
            for top_p in [None, 1e-9, 0.5, 1.0]:
                out = filter_logits(logits, temperature, top_k, top_p)
                assert torch.equal(out.argmax(1), best)
                assert torch.isfinite(out.gather(1, best[:, None])).all()


def test_temperature_scales_and_zero_is_greedy():
    logits = torch.randn(4, 7, dtype=D)
    assert torch.equal(filter_logits(logits, temperature=2.5), logits / 2.5)
    assert torch.equal(filter_logits(logits), logits)
    zero = filter_logits(logits, temperature=0)
    best = logits.argmax(1, keepdim=True)
    assert torch.isfinite(zero).sum().item() == 4
    assert torch.equal(zero.gather(1, best), logits.gather(1, best))
    # Lower temperature, sharper distribution: the top token's probability grows.
    top = [torch.softmax(filter_logits(logits, t), -1).gather(1, best) for t in (2.0, 1.0, 0.5)]
    assert (top[0] < top[1]).all() and (top[1] < top[2]).all()


def test_filter_logits_takes_any_leading_dimensions():
    logits = torch.randn(2, 3, 9, dtype=D)
    out = filter_logits(logits, temperature=0.8, top_k=4, top_p=0.6)
    assert torch.equal(out.view(6, 9), filter_logits(logits.view(6, 9), 0.8, 4, 0.6))


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"temperature": -0.5}, ValueError, r"temperature must be >= 0.*-0\.5"),
        ({"temperature": float("nan")}, ValueError, "temperature must be a finite number"),
        ({"temperature": "hot"}, TypeError, "temperature must be a number"),
        ({"top_k": 0}, ValueError, "top_k must be an int >= 1, got 0"),
        ({"top_k": 2.5}, TypeError, r"top_k must be an int, got 2\.5"),
        ({"top_k": True}, TypeError, "top_k must be an int, got True"),
        ({"top_p": 0.0}, ValueError, r"top_p must be in \(0, 1\], got 0\.0"),
        ({"top_p": 1.5}, ValueError, r"top_p must be in \(0, 1\], got 1\.5"),
        ({"top_p": float("nan")}, ValueError, "top_p must be a finite number"),
    ],
)
def test_filter_logits_rejects_bad_arguments(options, error, message):
    with pytest.raises(error, match=message):
        filter_logits(torch.zeros(2, 3), **options)
    with pytest.raises(error, match=message):
        sample(TableDecoder(), None, torch.zeros(2, dtype=torch.long), 3, **options)


def test_filter_logits_rejects_a_scalar():
    with pytest.raises(ValueError, match=r"logits must be a tensor of shape \(\.\.\., V\)"):
        filter_logits(torch.tensor(1.0))


# --- greedy ----------------------------------------------------------------------------------


def test_greedy_takes_the_argmax_and_ends_each_row_at_its_eos():
    decoder = TableDecoder(seed=11, eos=EOS)
    start = torch.arange(5)
    out = greedy(decoder, None, start, 8, eos=EOS, pad=-1)
    expected_steps = 0
    for b in range(5):
        token, tokens, log_prob, finished = b, [], 0.0, False
        for _ in range(8):
            log_p = torch.log_softmax(decoder.table[token], -1)
            token = int(decoder.table[token].argmax())
            log_prob += log_p[token].item()
            if token == EOS:
                finished = True
                break
            tokens.append(token)
        expected_steps = max(expected_steps, len(tokens) + finished)
        assert row_tokens(out, b) == tokens
        assert out.lengths[b] == len(tokens) and bool(out.finished[b]) == finished
        assert out.log_probs[b].item() == pytest.approx(log_prob, abs=1e-12)
        assert (out.tokens[b, len(tokens) :] == -1).all()
    assert out.tokens.shape == (5, out.lengths.max())
    assert decoder.calls == expected_steps  # stopped when the last row ended
    # The seed gives rows that end at different steps and a row that never ends.
    assert len(set(out.lengths[out.finished].tolist())) > 1 and not out.finished.all()


def test_greedy_without_eos_runs_max_length_steps():
    out = greedy(TableDecoder(), None, torch.arange(V), 7)
    assert out.tokens.shape == (V, 7) and out.lengths.tolist() == [7] * V
    assert not out.finished.any() and out.state is None


def test_greedy_ends_at_once_when_every_row_starts_with_eos():
    decoder = TableDecoder(eos=EOS, eos_bias=100.0)
    out = greedy(decoder, None, torch.arange(3), 5, eos=EOS)
    assert out.tokens.shape == (3, 0) and out.lengths.tolist() == [0, 0, 0]
    assert out.finished.all() and decoder.calls == 1


def test_greedy_continues_from_the_returned_state():
    decoder = GRUDecoder()
    state, start = decoder.initial_state(4), torch.tensor([0, 1, 2, 3])
    whole = greedy(decoder, state, start, 7)
    first = greedy(decoder, state, start, 3)
    rest = greedy(decoder, first.state, first.tokens[:, -1], 4)
    assert torch.equal(torch.cat([first.tokens, rest.tokens], 1), whole.tokens)
    torch.testing.assert_close(
        first.log_probs + rest.log_probs, whole.log_probs, rtol=0, atol=1e-12
    )
    torch.testing.assert_close(rest.state[0], whole.state[0], rtol=0, atol=1e-12)


# --- sampling and streaming ------------------------------------------------------------------


def test_sample_is_reproducible_by_seed():
    decoder = GRUDecoder(eos=EOS)
    state, start = decoder.initial_state(30), torch.zeros(30, dtype=torch.long)

    def draw(seed):
        generator = torch.Generator().manual_seed(seed)
        return sample(decoder, state, start, 10, EOS, top_p=0.95, generator=generator)

    a, b, c = draw(7), draw(7), draw(8)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.log_probs, b.log_probs)
    assert not torch.equal(a.tokens, c.tokens)


@pytest.mark.parametrize("eos", [EOS, None])
def test_sample_with_temperature_zero_or_top_k_one_is_greedy(eos):
    decoder = GRUDecoder()
    state, start = decoder.initial_state(8), torch.arange(8) % V
    expected = greedy(decoder, state, start, 9, eos)
    for options in [{"temperature": 0}, {"top_k": 1}, {"top_k": 1, "temperature": 3.0}]:
        got = sample(decoder, state, start, 9, eos, generator=torch.Generator(), **options)
        assert torch.equal(got.tokens, expected.tokens), options
        assert torch.equal(got.log_probs, expected.log_probs), options


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"), [(1.0, None, None), (0.7, 3, None), (1.5, None, 0.8)]
)
def test_first_sampled_tokens_follow_the_filtered_distribution(temperature, top_k, top_p):
    decoder, rows = TableDecoder(scale=1.0), 20_000
    out = sample(
        decoder,
        None,
        torch.zeros(rows, dtype=torch.long),
        1,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        generator=torch.Generator().manual_seed(0),
    )
    frequency = torch.bincount(out.tokens[:, 0], minlength=V).to(D) / rows
    p = torch.softmax(filter_logits(decoder.table[0], temperature, top_k, top_p), -1)
    assert (p < 0.9).all() and (p > 0).sum() >= 3  # a spread-out distribution to test against
    # Each count is Binomial(rows, p): 5 standard deviations. Filtered tokens: exactly 0.
    bound = 5 * (p * (1 - p) / rows).sqrt()
    assert ((frequency - p).abs() <= bound).all(), (frequency, p)


def test_sampled_output_is_consistent_and_log_probs_are_the_models():
    decoder = GRUDecoder(eos=EOS, eos_bias=-0.5)
    state, start = decoder.initial_state(12), torch.arange(12) % V
    generator = torch.Generator().manual_seed(3)
    out = sample(
        decoder, state, start, 8, EOS, temperature=1.3, top_p=0.9, generator=generator, pad=-1
    )
    assert out.finished.any() and not out.finished.all()
    for b in range(12):
        tokens = row_tokens(out, b)
        assert EOS not in tokens and (out.tokens[b, len(tokens) :] == -1).all()
        assert len(tokens) == 8 or out.finished[b]
        eos = EOS if out.finished[b] else None
        expected = teacher_forced_log_prob(
            decoder, row_state(decoder, state, b), b % V, tokens, eos
        )
        assert out.log_probs[b].item() == pytest.approx(expected, abs=1e-10)


def test_stream_yields_what_sample_draws():
    decoder = GRUDecoder(eos=EOS, eos_bias=1.5)
    state, start = decoder.initial_state(6), torch.arange(6) % V
    options = {"temperature": 0.9, "top_k": 4}
    out = sample(
        decoder, state, start, 12, EOS, generator=torch.Generator().manual_seed(5), **options
    )
    assert out.finished.all()
    decoder.batch_sizes.clear()
    steps = list(
        stream(
            decoder, state, start, 12, EOS, generator=torch.Generator().manual_seed(5), **options
        )
    )
    tokens = torch.stack([t for t, _ in steps], 1)
    assert len(steps) == len(decoder.batch_sizes) == out.lengths.max() + 1  # stops at the last eos
    for b in range(6):
        length = int(out.lengths[b])
        assert tokens[b, :length].tolist() == row_tokens(out, b)
        assert (tokens[b, length:] == EOS).all()  # the eos, then eos again once ended
    assert torch.equal(steps[-1][1][0], out.state[0])


def test_stream_checks_arguments_when_called():
    with pytest.raises(ValueError, match="max_length must be an int >= 1, got 0"):
        stream(TableDecoder(), None, torch.zeros(1, dtype=torch.long), 0)


# --- beam search -----------------------------------------------------------------------------


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
@pytest.mark.parametrize("eos", [EOS, None])
def test_beam_size_one_is_greedy(eos, length_penalty):
    decoder = GRUDecoder(eos=EOS, eos_bias=0.5)
    state, start = decoder.initial_state(8), torch.arange(8) % V
    expected = greedy(decoder, state, start, 10, eos)
    if eos is not None:
        assert expected.finished.any() and not expected.finished.all()
    found = beam_search(decoder, state, start, 10, eos, beam_size=1, length_penalty=length_penalty)
    for b, [best] in enumerate(found):
        assert best.tokens == row_tokens(expected, b)
        assert best.finished == bool(expected.finished[b])
        assert best.log_prob == pytest.approx(expected.log_probs[b].item(), abs=1e-12)


def exhaustive_search(decoder, state, start, max_length, eos, length_penalty):
    """Every sequence: those ending in eos within max_length, and those cut at max_length."""
    found = []

    def visit(prefix, state, log_prob):
        previous = prefix[-1] if prefix else start
        logits, state = decoder.decode_step(torch.tensor([previous]), state)
        for token, log_p in enumerate(torch.log_softmax(logits[0], -1).tolist()):
            total = log_prob + log_p
            if token == eos:
                length = len(prefix) + 1
                found.append(Hypothesis(prefix, total, total / length**length_penalty, True))
            elif len(prefix) + 1 == max_length:
                score = total / max_length**length_penalty
                found.append(Hypothesis([*prefix, token], total, score, False))
            else:
                visit([*prefix, token], state, total)

    visit([], state, 0.0)
    return sorted(found, key=lambda h: -h.score)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_wide_beam_finds_what_exhaustive_search_finds(length_penalty):
    vocab, eos, max_length = 4, 3, 4
    decoder = GRUDecoder(vocab_size=vocab, seed=2)
    state = decoder.initial_state(1)
    everything = exhaustive_search(decoder, state, 1, max_length, eos, length_penalty)
    assert len(everything) == 40 + 81  # 3^0+..+3^3 ending in eos, 3^4 cut
    start = torch.tensor([1])
    for n_best in [1, 3, 128]:
        [found] = beam_search(
            decoder,
            state,
            start,
            max_length,
            eos,
            beam_size=128,
            length_penalty=length_penalty,
            n_best=n_best,
        )
        expected = everything[:n_best]
        assert [h.tokens for h in found] == [h.tokens for h in expected]
        assert [h.finished for h in found] == [h.finished for h in expected]
        for got, want in zip(found, expected, strict=True):
            assert got.log_prob == pytest.approx(want.log_prob, abs=1e-10)
            assert got.score == pytest.approx(want.score, abs=1e-10)


def test_the_length_penalty_changes_the_winner():
    """Checks the exhaustive test's decoder is one where α matters (short wins at α=0)."""
    decoder = GRUDecoder(vocab_size=4, seed=2)
    state = decoder.initial_state(1)
    plain = exhaustive_search(decoder, state, 1, 4, 3, 0.0)[0]
    normalised = exhaustive_search(decoder, state, 1, 4, 3, 1.0)[0]
    assert plain.tokens != normalised.tokens
    assert len(plain.tokens) + plain.finished < len(normalised.tokens) + normalised.finished


def test_batched_beam_search_equals_each_row_alone_and_scores_recompute():
    decoder = GRUDecoder(eos=EOS, eos_bias=1.0, seed=4)
    B, K, max_length, alpha = 5, 3, 9, 1.0
    state, start = decoder.initial_state(B), torch.tensor([0, 1, 2, 3, 4])
    batched = beam_search(
        decoder, state, start, max_length, EOS, beam_size=K, length_penalty=alpha, n_best=K
    )
    # Some row stopped before the others and left the batch.
    assert any(0 < n < B * K for n in decoder.batch_sizes), decoder.batch_sizes
    for b in range(B):
        alone = beam_search(
            decoder,
            row_state(decoder, state, b),
            start[b : b + 1],
            max_length,
            EOS,
            beam_size=K,
            length_penalty=alpha,
            n_best=K,
        )[0]
        assert len(batched[b]) == K
        assert [(h.tokens, h.finished) for h in batched[b]] == [
            (h.tokens, h.finished) for h in alone
        ]
        for got, want in zip(batched[b], alone, strict=True):
            assert got.log_prob == pytest.approx(want.log_prob, abs=1e-10)
        for h in batched[b]:
            eos = EOS if h.finished else None
            log_prob = teacher_forced_log_prob(
                decoder, row_state(decoder, state, b), b, h.tokens, eos
            )
            assert h.log_prob == pytest.approx(log_prob, abs=1e-10)
            assert h.score == pytest.approx(
                log_prob / (len(h.tokens) + h.finished) ** alpha, abs=1e-12
            )
        assert [h.score for h in batched[b]] == sorted((h.score for h in batched[b]), reverse=True)


def test_beam_search_stops_when_no_open_beam_can_win():
    decoder = TableDecoder(eos=EOS, eos_bias=3.0, seed=1)
    found = beam_search(
        decoder, None, torch.arange(4), 30, EOS, beam_size=3, length_penalty=0.0, n_best=3
    )
    steps = decoder.calls
    assert steps < 10
    assert all(h.finished for row in found for h in row)
    # With length_penalty=0 the stop is exact: allowing more (or just enough) steps changes
    # nothing, since an open beam's log-probability can only fall.
    for max_length in [steps, steps + 3]:
        again = beam_search(
            decoder,
            None,
            torch.arange(4),
            max_length,
            EOS,
            beam_size=3,
            length_penalty=0.0,
            n_best=3,
        )
        assert again == found


def test_ties_go_to_the_lower_id_in_every_search():
    decoder = TableDecoder()
    decoder.table.zero_()  # every token equally likely: greedy takes 0 each step
    start = torch.tensor([1, 2])
    out = greedy(decoder, None, start, 4, eos=EOS)
    assert out.tokens.tolist() == [[0] * 4] * 2
    picked = sample(decoder, None, start, 4, EOS, top_k=1, generator=torch.Generator())
    assert torch.equal(picked.tokens, out.tokens)
    for row in beam_search(decoder, None, start, 4, EOS, beam_size=1):
        assert row[0].tokens == [0] * 4
    [[first, second]] = beam_search(decoder, None, start[:1], 1, None, beam_size=2, n_best=2)
    assert (first.tokens, second.tokens) == ([0], [1])


def test_beam_search_without_eos_runs_to_max_length():
    decoder = GRUDecoder()
    state, start = decoder.initial_state(2), torch.tensor([0, 1])
    found = beam_search(decoder, state, start, 5, None, beam_size=4, n_best=4)
    assert [len(row) for row in found] == [4, 4]
    assert all(len(h.tokens) == 5 and not h.finished for row in found for h in row)
    assert len(decoder.batch_sizes) == 5 and set(decoder.batch_sizes) == {8}


def test_beam_search_returns_fewer_when_fewer_sequences_exist():
    [found] = beam_search(
        TableDecoder(vocab_size=3), None, torch.tensor([0]), 1, 2, beam_size=8, n_best=8
    )
    assert sorted((h.tokens, h.finished) for h in found) == [([], True), ([0], False), ([1], False)]


# --- bad input -------------------------------------------------------------------------------


class NoReorder:
    def decode_step(self, tokens, state):
        return torch.zeros(len(tokens), V), state


class NaNLogits:
    def decode_step(self, tokens, state):
        return torch.full((len(tokens), V), float("nan")), state

    def reorder_state(self, state, index):
        return state


class WrongShape:
    def decode_step(self, tokens, state):
        return torch.zeros(len(tokens), 1, V), state

    def reorder_state(self, state, index):
        return state


ONE = torch.zeros(1, dtype=torch.long)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: greedy(TableDecoder(), None, ONE, 0),
            ValueError,
            "max_length must be an int >= 1, got 0",
        ),
        (
            lambda: greedy(TableDecoder(), None, ONE, 2.0),
            TypeError,
            r"max_length must be an int, got 2\.0",
        ),
        (
            lambda: greedy(TableDecoder(), None, torch.zeros(2, 1, dtype=torch.long), 3),
            ValueError,
            r"start must have shape \(B,\).*\(2, 1\)",
        ),
        (
            lambda: greedy(TableDecoder(), None, torch.zeros(0, dtype=torch.long), 3),
            ValueError,
            r"B >= 1.*\(0,\)",
        ),
        (
            lambda: greedy(TableDecoder(), None, torch.zeros(2), 3),
            TypeError,
            "start must hold integer token ids, got dtype torch.float32",
        ),
        (
            lambda: greedy(TableDecoder(), None, [0, 1], 3),
            TypeError,
            "start must be a LongTensor of shape",
        ),
        (
            lambda: greedy(TableDecoder(), None, ONE, 3, eos=-1),
            ValueError,
            "eos must be an int >= 0, got -1",
        ),
        (
            lambda: greedy(TableDecoder(), None, ONE, 3, eos=V),
            ValueError,
            r"eos=6 is not a token.*V=6.*\[0, 6\)",
        ),
        (
            lambda: greedy(TableDecoder(), None, ONE, 3, pad=0.5),
            TypeError,
            r"pad must be an int, got 0\.5",
        ),
        (
            lambda: greedy(object(), None, ONE, 3),
            TypeError,
            r"decoder must have a method decode_step\(\)",
        ),
        (
            lambda: greedy(WrongShape(), None, ONE, 3),
            ValueError,
            r"logits of shape \(N, V\) with N=1.*\(1, 1, 6\)",
        ),
        (
            lambda: sample(NaNLogits(), None, ONE, 3),
            ValueError,
            "decode_step returned NaN logits",
        ),
        (
            lambda: beam_search(NaNLogits(), None, ONE, 3, 1),
            ValueError,
            "decode_step returned NaN logits",
        ),
        (
            lambda: sample(TableDecoder(), None, ONE, 3, generator=0),
            TypeError,
            "generator must be a torch.Generator",
        ),
        (lambda: beam_search(NoReorder(), None, ONE, 3, 1), TypeError, r"method reorder_state\(\)"),
        (
            lambda: beam_search(TableDecoder(), None, ONE, 3, 1, beam_size=0),
            ValueError,
            "beam_size must be an int >= 1, got 0",
        ),
        (
            lambda: beam_search(TableDecoder(), None, ONE, 3, 1, n_best=0),
            ValueError,
            "n_best must be an int >= 1, got 0",
        ),
        (
            lambda: beam_search(TableDecoder(), None, ONE, 3, 1, beam_size=2, n_best=3),
            ValueError,
            r"n_best must be in \[1, beam_size=2\].*got 3",
        ),
        (
            lambda: beam_search(TableDecoder(), None, ONE, 3, 1, length_penalty=float("inf")),
            ValueError,
            "length_penalty must be a finite number",
        ),
        (
            lambda: beam_search(TableDecoder(), None, ONE, 3, V + 1),
            ValueError,
            r"eos=7 is not a token",
        ),
        (
            lambda: beam_search(WrongShape(), None, ONE, 3, 1),
            ValueError,
            r"N=5 \(one row per token fed\)",
        ),
    ],
)
def test_bad_input_is_refused_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- banned tokens ---------------------------------------------------------------------------


class FavouriteDecoder(TableDecoder):
    """A table decoder whose every step prefers tokens 0 and 1 (padding and <unk>, say)."""

    def __init__(self):
        super().__init__(eos=EOS, eos_bias=-1.0)
        self.table[:, :2] += 6.0


def test_no_search_emits_a_banned_token_and_log_probs_stay_the_models():
    decoder, start, banned = FavouriteDecoder(), torch.tensor([2, 3, 4]), (0, 1)
    unbanned = greedy(decoder, None, start, 8, EOS)
    assert set(unbanned.tokens.flatten().tolist()) & {0, 1}, "the test prefers 0 and 1"
    found = {
        "greedy": greedy(decoder, None, start, 8, EOS, banned=banned),
        "sample": sample(
            decoder, None, start, 8, EOS, banned=banned, generator=torch.Generator().manual_seed(0)
        ),
        "hot": sample(
            decoder,
            None,
            start,
            8,
            EOS,
            temperature=5.0,
            top_k=6,
            banned=banned,
            generator=torch.Generator().manual_seed(1),
        ),
    }
    for name, decoded in found.items():
        for b in range(3):
            tokens = row_tokens(decoded, b)
            assert not set(tokens) & {0, 1}, (name, tokens)
            expected = teacher_forced_log_prob(decoder, None, int(start[b]), tokens,
                                               EOS if decoded.finished[b] else None)  # fmt: skip
            assert decoded.log_probs[b].item() == pytest.approx(expected)
    # Greedy takes the best allowed token: the argmax of the table without columns 0 and 1.
    first = decoder.table[start][:, 2:].argmax(-1) + 2
    assert found["greedy"].tokens[:, 0].tolist() == first.tolist()
    for hypotheses in beam_search(decoder, None, start, 8, EOS, beam_size=4, n_best=4,
                                  banned=banned):  # fmt: skip
        for hypothesis in hypotheses:
            assert not set(hypothesis.tokens) & {0, 1}
    streamed = {
        t for step, _ in stream(decoder, None, start, 8, EOS, banned=banned) for t in step.tolist()
    }
    assert not streamed & {0, 1}


@pytest.mark.parametrize(
    ("banned", "error", "message"),
    [((7,), ValueError, r"ids \[7\] outside the vocabulary of 6"),
     (tuple(range(6)), ValueError, "every one of the 6 tokens"),
     (("pad",), TypeError, "sequence of token ids"),
     (0, TypeError, "sequence of token ids")],
)  # fmt: skip
def test_bad_banned_ids_are_refused(banned, error, message):
    with pytest.raises(error, match=message):
        greedy(TableDecoder(), None, torch.tensor([1]), 3, banned=banned)
