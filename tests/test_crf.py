"""The CRF against brute force: every one of the K^T paths scored and summed by plain Python."""

import itertools
import math

import pytest
import torch

from rnnkit.models.crf import CRF, bio_allowed_end, bio_constraints

K, T = 3, 4
LENGTHS = torch.tensor([4, 2, 1, 3])  # mixed, including a row of one step


def make_crf(num_tags=K, constrained=False, dtype=torch.float64, **masks):
    """A CRF with random (not small) parameters, so transitions matter in every test."""
    crf = CRF(num_tags, **masks).to(dtype)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.copy_(torch.randn_like(parameter))
    return crf


def random_masks(num_tags=K):
    """Some forbidden transitions, starts and ends; the all-0 path stays allowed."""
    allowed = torch.rand(num_tags, num_tags) > 0.4
    allowed[:, 0] = True
    allowed_start = torch.tensor([True] + [False] * (num_tags - 1))
    allowed_start[-1] = True
    allowed_end = torch.rand(num_tags) > 0.5
    allowed_end[0] = True
    return {
        "allowed_transitions": allowed,
        "allowed_start": allowed_start,
        "allowed_end": allowed_end,
    }


def path_score(crf, emissions_row, path):
    """s(y) written out term by term, forbidden entries at -1e4: the docstring's formula."""

    def value(allowed, parameter):
        return parameter.item() if allowed else -1e4

    total = value(crf.allowed_start[path[0]], crf.start[path[0]])
    total += sum(emissions_row[t, tag].item() for t, tag in enumerate(path))
    for previous, tag in itertools.pairwise(path):
        total += value(crf.allowed_transitions[previous, tag], crf.transitions[previous, tag])
    return total + value(crf.allowed_end[path[-1]], crf.end[path[-1]])


def all_paths(crf, emissions_row, length):
    """{path: score} over all K^length paths of one row."""
    return {
        path: path_score(crf, emissions_row, path)
        for path in itertools.product(range(crf.num_tags), repeat=length)
    }


def brute_log_partition(scores):
    top = max(scores.values())
    return top + math.log(sum(math.exp(s - top) for s in scores.values()))


@pytest.mark.parametrize("masked", [False, True], ids=["free", "constrained"])
def test_log_partition_and_score_equal_brute_force(masked):
    crf = make_crf(**(random_masks() if masked else {}))
    emissions = torch.randn(len(LENGTHS), T, K, dtype=torch.float64)
    log_z = crf.log_partition(emissions, LENGTHS)
    tags = torch.randint(0, K, (len(LENGTHS), T))
    scores = crf.score(emissions, tags, LENGTHS)
    for b, length in enumerate(LENGTHS.tolist()):
        paths = all_paths(crf, emissions[b], length)
        assert log_z[b].item() == pytest.approx(brute_log_partition(paths), abs=1e-10)
        path = tuple(tags[b, :length].tolist())
        assert scores[b].item() == pytest.approx(paths[path], abs=1e-10)


def test_nll_is_a_distribution_over_all_paths():
    # exp(−NLL(y)) = p(y); over every path of each row these sum to 1, and each NLL is >= 0.
    crf = make_crf()
    emissions = torch.randn(len(LENGTHS), T, K, dtype=torch.float64)
    for b, length in enumerate(LENGTHS.tolist()):
        paths = torch.tensor(list(itertools.product(range(K), repeat=length)))
        n = len(paths)
        tags = torch.zeros(n, T, dtype=torch.long)
        tags[:, :length] = paths
        nll = crf(emissions[b].expand(n, T, K), tags, torch.full((n,), length))
        assert nll.shape == (n,)
        assert (nll >= 0).all()
        assert torch.exp(-nll).sum().item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("masked", [False, True], ids=["free", "constrained"])
def test_decode_equals_exhaustive_argmax(masked):
    torch.manual_seed(1)
    for _ in range(5):
        crf = make_crf(**(random_masks() if masked else {}))
        emissions = 2 * torch.randn(len(LENGTHS), T, K, dtype=torch.float64)
        decoded = crf.decode(emissions, LENGTHS)
        assert decoded.dtype == torch.long and decoded.shape == (len(LENGTHS), T)
        for b, length in enumerate(LENGTHS.tolist()):
            paths = all_paths(crf, emissions[b], length)
            best = max(paths, key=paths.get)
            assert tuple(decoded[b, :length].tolist()) == best
            assert decoded[b, length:].eq(0).all()
            if masked:  # an allowed path exists (all tag 0), so the best one is allowed
                assert paths[best] > -1e3


def test_padding_changes_nothing():
    # The same rows, padded to T + 3 with huge garbage emissions and invalid tag ids.
    crf = make_crf(**random_masks())
    emissions = torch.randn(len(LENGTHS), T, K, dtype=torch.float64)
    tags = crf.decode(emissions, LENGTHS)  # allowed paths, so forward accepts them
    padded = 100 * torch.randn(len(LENGTHS), T + 3, K, dtype=torch.float64)
    padded_tags = torch.full((len(LENGTHS), T + 3), -100)
    for b, length in enumerate(LENGTHS.tolist()):
        padded[b, :length] = emissions[b, :length]
        padded_tags[b, :length] = tags[b, :length]
    torch.testing.assert_close(
        crf(padded, padded_tags, LENGTHS), crf(emissions, tags, LENGTHS), rtol=0, atol=1e-12
    )
    assert torch.equal(crf.decode(padded, LENGTHS)[:, :T], crf.decode(emissions, LENGTHS))
    assert crf.decode(padded, LENGTHS)[:, T:].eq(0).all()


def test_rows_do_not_interact():
    crf = make_crf()
    emissions = torch.randn(len(LENGTHS), T, K, dtype=torch.float64)
    tags = torch.randint(0, K, (len(LENGTHS), T))
    together = crf(emissions, tags, LENGTHS)
    decoded = crf.decode(emissions, LENGTHS)
    for b, length in enumerate(LENGTHS.tolist()):
        alone = crf(emissions[b : b + 1, :length], tags[b : b + 1, :length])
        assert together[b].item() == pytest.approx(alone.item(), abs=1e-12)
        assert torch.equal(decoded[b, :length], crf.decode(emissions[b : b + 1, :length])[0])


def test_lengths_none_means_full_rows():
    crf = make_crf()
    emissions = torch.randn(2, T, K, dtype=torch.float64)
    tags = torch.randint(0, K, (2, T))
    full = torch.full((2,), T)
    assert torch.equal(crf(emissions, tags), crf(emissions, tags, full))
    assert torch.equal(crf.decode(emissions), crf.decode(emissions, full))


@pytest.mark.parametrize("steps", [1, 3])
def test_lengths_all_one(steps):
    # Only start + emission + end remain: log Z = logsumexp_k(start + e_1 + end).
    crf = make_crf()
    emissions = torch.randn(5, steps, K, dtype=torch.float64)
    lengths = torch.ones(5, dtype=torch.long)
    unary = crf.start + emissions[:, 0] + crf.end
    expected = torch.logsumexp(unary, dim=1)
    torch.testing.assert_close(crf.log_partition(emissions, lengths), expected)
    decoded = crf.decode(emissions, lengths)
    assert torch.equal(decoded[:, 0], unary.argmax(dim=1))
    assert decoded[:, 1:].eq(0).all()
    tags = torch.randint(0, K, (5, steps))
    nll = crf(emissions, tags, lengths)
    torch.testing.assert_close(nll, expected - unary.gather(1, tags[:, :1]).squeeze(1))


def test_gradcheck_float64():
    crf = make_crf(**random_masks())
    emissions = torch.randn(len(LENGTHS), T, K, dtype=torch.float64, requires_grad=True)
    tags = crf.decode(emissions.detach(), LENGTHS)
    parameters = {name: p.detach().clone().requires_grad_() for name, p in crf.named_parameters()}

    def nll(emissions, transitions, start, end):
        values = {"transitions": transitions, "start": start, "end": end}
        return torch.func.functional_call(crf, values, (emissions, tags, LENGTHS))

    inputs = (emissions, parameters["transitions"], parameters["start"], parameters["end"])
    assert torch.autograd.gradcheck(nll, inputs)


def test_gradient_of_log_partition_is_the_tag_marginals():
    # d log Z / d e[t, k] = p(y_t = k): the rows of the gradient sum to 1 on valid steps, 0 past.
    crf = make_crf()
    emissions = torch.randn(len(LENGTHS), T, K, dtype=torch.float64, requires_grad=True)
    crf.log_partition(emissions, LENGTHS).sum().backward()
    sums = emissions.grad.sum(dim=2)
    valid = torch.arange(T) < LENGTHS.unsqueeze(1)
    torch.testing.assert_close(sums, valid.to(torch.float64))


def test_forbidden_entries_get_no_gradient():
    crf = make_crf(**random_masks())
    emissions = torch.randn(len(LENGTHS), T, K, dtype=torch.float64)
    tags = crf.decode(emissions, LENGTHS)
    crf(emissions, tags, LENGTHS).sum().backward()
    assert crf.transitions.grad[~crf.allowed_transitions].eq(0).all()
    assert crf.start.grad[~crf.allowed_start].eq(0).all()
    assert crf.end.grad[~crf.allowed_end].eq(0).all()
    assert torch.isfinite(crf.transitions.grad).all()


BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def test_bio_constraints_by_hand():
    allowed, allowed_start = bio_constraints(BIO)
    # rows: from O, B-PER, I-PER, B-LOC, I-LOC; columns: to the same order
    expected = torch.tensor(
        [
            [1, 1, 0, 1, 0],  # O     -> O, B-*, never I-*
            [1, 1, 1, 1, 0],  # B-PER -> also I-PER
            [1, 1, 1, 1, 0],  # I-PER -> also I-PER
            [1, 1, 0, 1, 1],  # B-LOC -> also I-LOC
            [1, 1, 0, 1, 1],  # I-LOC -> also I-LOC
        ],
        dtype=torch.bool,
    )
    assert torch.equal(allowed, expected)
    assert allowed_start.tolist() == [True, True, False, True, False]
    assert bio_allowed_end(BIO).all()


def test_bioes_constraints_by_hand():
    allowed, allowed_start = bio_constraints(BIOES)
    index = {tag: i for i, tag in enumerate(BIOES)}
    follows = {
        "O": {"O", "B-PER", "S-PER", "B-LOC", "S-LOC"},
        "B-PER": {"I-PER", "E-PER"},
        "I-PER": {"I-PER", "E-PER"},
        "E-PER": {"O", "B-PER", "S-PER", "B-LOC", "S-LOC"},
        "S-PER": {"O", "B-PER", "S-PER", "B-LOC", "S-LOC"},
        "B-LOC": {"I-LOC", "E-LOC"},
        "I-LOC": {"I-LOC", "E-LOC"},
        "E-LOC": {"O", "B-PER", "S-PER", "B-LOC", "S-LOC"},
        "S-LOC": {"O", "B-PER", "S-PER", "B-LOC", "S-LOC"},
    }
    for previous, nexts in follows.items():
        got = {tag for tag in BIOES if allowed[index[previous], index[tag]]}
        assert got == nexts, previous
    starts = {tag for tag in BIOES if allowed_start[index[tag]]}
    assert starts == {"O", "B-PER", "S-PER", "B-LOC", "S-LOC"}
    ends = {tag for tag in BIOES if bio_allowed_end(BIOES)[index[tag]]}
    assert ends == {"O", "E-PER", "S-PER", "E-LOC", "S-LOC"}


@pytest.mark.parametrize("tags", [BIO, BIOES], ids=["BIO", "BIOES"])
def test_decode_respects_constraints(tags):
    # Emissions that favour I- tags everywhere (invalid at a start and after O) must still give
    # valid sequences: start, every transition and the end allowed.
    crf = CRF.from_tags(tags)
    inside = torch.tensor([tag.startswith("I-") for tag in tags])
    emissions = torch.randn(16, 7, len(tags)) + 5.0 * inside
    lengths = torch.randint(1, 8, (16,))
    decoded = crf.decode(emissions, lengths)
    for b, length in enumerate(lengths.tolist()):
        path = decoded[b, :length]
        assert crf.allowed_start[path[0]]
        assert crf.allowed_transitions[path[:-1], path[1:]].all()
        assert crf.allowed_end[path[-1]]
    # …and the probability of all forbidden paths together is ~0: the gold path's is 1 at most.
    assert (crf(emissions, decoded, lengths) >= 0).all()


def test_from_tags_unconstrained_allows_everything():
    crf = CRF.from_tags(BIO, constrained=False)
    assert crf.allowed_transitions.all() and crf.allowed_start.all() and crf.allowed_end.all()
    assert "constrained=False" in repr(crf)
    assert "constrained=True" in repr(CRF.from_tags(BIO))


def test_learns_a_deterministic_cycle():
    # Emissions carry no information; the tags cycle 0 → 1 → 2 → 0 from tag 0. Only the
    # transitions and start can learn this, and Viterbi must then reproduce the cycle.
    crf = CRF(3)
    emissions = torch.zeros(4, 6, 3)
    cycle = torch.arange(6) % 3
    tags = cycle.expand(4, 6)
    lengths = torch.tensor([6, 5, 3, 2])
    optimiser = torch.optim.Adam(crf.parameters(), lr=0.1)
    for _ in range(100):
        optimiser.zero_grad()
        loss = crf(emissions, tags, lengths).mean()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.05
    decoded = crf.decode(emissions, lengths)
    for b, length in enumerate(lengths.tolist()):
        assert decoded[b, :length].tolist() == cycle[:length].tolist()


def test_float32_emissions_and_parameters():
    crf = CRF(K)
    emissions = torch.randn(len(LENGTHS), T, K)
    tags = torch.randint(0, K, (len(LENGTHS), T))
    nll = crf(emissions, tags, LENGTHS)
    assert nll.dtype == torch.float32 and (nll >= 0).all()
    reference = crf.to(torch.float64)(emissions.double(), tags, LENGTHS)
    torch.testing.assert_close(nll.double(), reference, rtol=1e-5, atol=1e-5)


def test_state_dict_round_trip_keeps_constraints():
    crf = CRF.from_tags(BIOES)
    copy = CRF(len(BIOES))
    copy.load_state_dict(crf.state_dict())
    assert torch.equal(copy.allowed_transitions, crf.allowed_transitions)
    assert torch.equal(copy.allowed_end, crf.allowed_end)
    emissions = torch.randn(2, 5, len(BIOES))
    assert torch.equal(copy.decode(emissions), crf.decode(emissions))


# -- errors: each names the argument, what it got and what it needs ------------------------------

EMISSIONS = torch.randn(2, 3, K)
TAGS = torch.zeros(2, 3, dtype=torch.long)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c(EMISSIONS[0], TAGS), r"emissions must have shape \(batch, time, num_tags=3\)"),
        (lambda c: c(torch.randn(2, 3, 4), TAGS), r"num_tags=3\), got \(2, 3, 4\)"),
        (lambda c: c(EMISSIONS.long(), TAGS), r"emissions must be floating point, got dtype"),
        (lambda c: c([[0.0]], TAGS), "emissions must be a float tensor"),
        (lambda c: c(torch.randn(2, 0, K), TAGS[:, :0]), "at least one row and one step"),
        (lambda c: c(EMISSIONS, TAGS[:, :2]), r"tags must have shape \(batch, time\) = \(2, 3\)"),
        (lambda c: c(EMISSIONS, TAGS.float()), "tags must hold integer tag ids"),
        (lambda c: c(EMISSIONS, TAGS + 3), r"tags must be in 0..2 .* tags\[0, 0\] = 3"),
        (lambda c: c(EMISSIONS, TAGS - 1), r"tags\[0, 0\] = -1"),
        (lambda c: c(EMISSIONS, TAGS, torch.tensor([3, 4])), r"1..3 .* lengths\[1\] = 4"),
        (lambda c: c(EMISSIONS, TAGS, torch.tensor([0, 2])), r"lengths\[0\] = 0"),
        (lambda c: c(EMISSIONS, TAGS, torch.tensor([3])), r"lengths must have shape \(batch,\)"),
        (lambda c: c(EMISSIONS, TAGS, torch.tensor([3.0, 3.0])), "lengths must hold integers"),
        (lambda c: c.decode(EMISSIONS, torch.tensor([4, 1])), r"lengths\[0\] = 4"),
        (lambda c: c.log_partition(EMISSIONS[..., :2]), "num_tags=3"),
    ],
)
def test_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call(CRF(K))


def test_tag_past_length_is_not_checked():
    crf = CRF(K)
    tags = torch.tensor([[0, 1, 99], [2, -100, -100]])
    assert crf(EMISSIONS, tags, torch.tensor([2, 1])).shape == (2,)


def test_gold_tags_breaking_constraints_are_refused():
    crf = CRF.from_tags(BIO)
    emissions = torch.randn(2, 3, len(BIO))
    o_then_inside = torch.tensor([[0, 1, 2], [0, 2, 0]])  # row 1: O → I-PER (IOB1 style)
    with pytest.raises(ValueError, match=r"row 1 has tag 0 -> 2 at steps 0 -> 1.*IOB2"):
        crf(emissions, o_then_inside)
    with pytest.raises(ValueError, match="row 0 starts with tag 2"):
        crf(emissions, torch.tensor([[2, 2, 0], [0, 0, 0]]))
    bioes = CRF.from_tags(BIOES)
    with pytest.raises(ValueError, match="row 0 ends with tag 1"):  # ends on B-PER
        bioes(torch.randn(1, 2, len(BIOES)), torch.tensor([[0, 1]]))
    # scoring alone does not judge: it gives the constrained score
    assert crf.score(emissions, o_then_inside)[1] < -5000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_tags": 0}, "num_tags must be an integer >= 1, got 0"),
        ({"num_tags": 2.0}, "num_tags must be an integer"),
        ({"num_tags": 3, "allowed_transitions": torch.ones(3, 2, dtype=torch.bool)}, r"\(3, 3\)"),
        ({"num_tags": 3, "allowed_start": torch.ones(3)}, "allowed_start must be a bool tensor"),
        ({"num_tags": 2, "allowed_end": torch.zeros(2, dtype=torch.bool)}, "allows nothing"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CRF(**kwargs)


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (["O", "PER"], r"tags\[1\] = 'PER' is not a BIO/BIOES tag"),
        (["O", "X-PER"], r"tags\[1\] = 'X-PER'"),
        (["O", "B-"], r"tags\[1\] = 'B-'"),
        (["O", "B-PER", "O"], "duplicates"),
    ],
)
def test_bad_tag_names(tags, message):
    with pytest.raises(ValueError, match=message):
        bio_constraints(tags)
