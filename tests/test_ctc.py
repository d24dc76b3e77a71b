"""CTC decoding and error rates, against brute force and hand-worked cases."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from rnnkit import ctc
from rnnkit.models.ngram import NGramModel


def tiny_log_probs(frames=4, symbols=3, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(frames, symbols, generator=g, dtype=torch.float64).log_softmax(1)


def brute_force(log_probs: torch.Tensor, blank: int = 0) -> dict[tuple, float]:
    """log p(labels | frames) of every label sequence: the sum over all paths that read as it."""
    frames, symbols = log_probs.shape
    totals: dict[tuple, float] = {}
    for path in itertools.product(range(symbols), repeat=frames):
        p = sum(log_probs[t, s].item() for t, s in enumerate(path))
        labels = tuple(ctc.collapse(path, blank))
        totals[labels] = math.log(math.exp(totals.get(labels, -math.inf)) + math.exp(p))
    return totals


def test_a_path_reads_as_its_labels_with_repeats_merged_then_blanks_dropped():
    assert ctc.collapse([1, 1, 0, 2, 2, 0, 2]) == [1, 2, 2]
    assert ctc.collapse([0, 0, 0]) == []
    assert ctc.collapse([3, 3, 3], blank=3) == []
    assert ctc.collapse([1, 2, 1, 2]) == [1, 2, 1, 2]


def test_greedy_decoding_takes_the_best_symbol_of_each_frame():
    frames = torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    assert ctc.greedy_decode(frames.log()) == [1, 1]
    assert ctc.greedy_decode(frames.log().numpy(), blank=1) == [0]


def test_torchs_ctc_loss_is_minus_the_log_of_the_sum_over_all_alignments():
    log_probs = tiny_log_probs(frames=5, symbols=3, seed=1)
    truth = brute_force(log_probs)
    for target in [(1,), (1, 2), (2, 2), (1, 2, 1)]:
        loss = F.ctc_loss(
            log_probs[:, None], torch.tensor([target]), [5], [len(target)], reduction="sum"
        )
        assert loss.item() == pytest.approx(-truth[target], abs=1e-10)


@pytest.mark.parametrize("stack", [1, 2])
def test_the_recognisers_ctc_loss_through_rnnkits_layers_is_the_sum_over_all_alignments(stack):
    from rnnkit.models.recogniser import CTCRecogniser
    from rnnkit.tasks.transcribe import ctc_batch_loss

    torch.manual_seed(0)
    model = CTCRecogniser(3, 2, hidden_size=4, num_layers=2, stack=stack).double()
    features = torch.randn(2, 10 if stack == 2 else 5, 3, dtype=torch.float64)
    lengths = torch.tensor([features.shape[1], features.shape[1] - stack])  # one padded
    targets, target_lengths = torch.tensor([[1, 2, 1], [2, 2, 0]]), torch.tensor([3, 2])
    log_probs, out_lengths = model(features, lengths)
    expected = []
    for row in range(2):
        frames = log_probs[: out_lengths[row], row].detach()
        truth = brute_force(frames)
        expected.append(-truth[tuple(targets[row, : target_lengths[row]].tolist())])
    per_utterance = model.loss(features, lengths, targets, target_lengths, reduction="none")
    torch.testing.assert_close(per_utterance, torch.tensor(expected, dtype=torch.float64))
    total, count = ctc_batch_loss(model, (features, (targets, target_lengths), lengths))
    assert count == 2 and total.item() == pytest.approx(sum(expected), abs=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_a_wide_prefix_beam_search_is_exhaustive_search(seed):
    log_probs = tiny_log_probs(frames=4, symbols=3, seed=seed)
    truth = brute_force(log_probs)
    found = ctc.prefix_beam_search(log_probs, beam=1000)
    assert len(found) == len(truth)
    for labels, score in found:
        assert score == pytest.approx(truth[tuple(labels)], abs=1e-10)
    best = max(truth, key=truth.get)
    assert found[0][0] == list(best)


def test_a_narrow_beam_keeps_its_width_and_orders_by_score():
    found = ctc.prefix_beam_search(tiny_log_probs(frames=6, symbols=4), beam=3)
    assert len(found) == 3
    scores = [score for _, score in found]
    assert scores == sorted(scores, reverse=True)


def test_a_language_model_joins_the_score_with_its_weight_and_bonus():
    log_probs = tiny_log_probs(frames=4, symbols=3, seed=2)
    plain = ctc.prefix_beam_search(log_probs, beam=1000)

    def likes_twos(prefix, label):
        return 0.0 if label == 2 else -10.0

    weighted = ctc.prefix_beam_search(log_probs, beam=1000, lm=likes_twos, lm_weight=0.5,
                                      insertion_bonus=0.25)  # fmt: skip
    truth = brute_force(log_probs)
    for labels, score in weighted:
        expected = truth[tuple(labels)] + sum(
            0.5 * likes_twos(tuple(labels[:i]), label) + 0.25 for i, label in enumerate(labels)
        )
        assert score == pytest.approx(expected, abs=1e-10)
    assert ctc.prefix_beam_search(log_probs, beam=1000, lm=likes_twos) == plain
    assert all(label == 2 for label in weighted[0][0])


def test_an_ngram_model_scores_the_next_label_from_its_last_ids():
    corpus = [0, 1, 2, 1, 2, 3, 0, 1, 2, 3, 0, 2, 1, 0, 1, 2, 1, 2, 3, 0]  # 0: the boundary
    model = NGramModel(3, vocab_size=4).fit(corpus)
    score = ctc.ngram_scorer(model, start=0)
    assert score((), 1) == pytest.approx(model.log_probs([0, 1])[-1])
    assert score((1,), 2) == pytest.approx(model.log_probs([0, 1, 2])[-1])
    # A long prefix: the trigram reads its last two ids only.
    assert score((3, 2, 1, 2), 3) == pytest.approx(model.log_probs([0, 3, 2, 1, 2, 3])[-1])
    assert score((1, 2), 3) > score((1, 2), 0)  # "1 2" is followed by 3 more often than 0


def test_shallow_fusion_lets_the_language_model_settle_what_the_frames_leave_open():
    # The frames lean to "1 1" (0.6 against 0.3 at the third frame); the n-gram model has only
    # ever seen "1 2".
    frames = torch.tensor(
        [[0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.1, 0.6, 0.3], [0.8, 0.1, 0.1]], dtype=torch.float64
    ).log()
    model = NGramModel(2, vocab_size=3).fit([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    assert ctc.prefix_beam_search(frames, beam=8)[0][0] == [1, 1]
    fused = ctc.prefix_beam_search(frames, beam=8, lm=ctc.ngram_scorer(model, 0), lm_weight=1.0)
    assert fused[0][0] == [1, 2]


def test_bad_decoding_arguments_are_named():
    with pytest.raises(ValueError, match="log_probs must be \\(frames, symbols\\)"):
        ctc.greedy_decode(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="blank=5 is not a symbol index of 3"):
        ctc.greedy_decode(torch.zeros(2, 3), blank=5)
    with pytest.raises(ValueError, match="beam must be an integer >= 1, got 0"):
        ctc.prefix_beam_search(torch.zeros(2, 3), beam=0)
    with pytest.raises(ValueError, match="need a language model"):
        ctc.prefix_beam_search(torch.zeros(2, 3), lm_weight=0.5)


def test_edit_distances_equal_hand_worked_cases():
    assert ctc.edit_distance("kitten", "sitting") == 3
    assert ctc.edit_distance("", "abc") == 3
    assert ctc.edit_distance("abc", "") == 3
    assert ctc.edit_distance("flaw", "lawn") == 2
    assert ctc.edit_distance(["the", "cat"], ["the", "hat"]) == 1


def test_error_rates_are_total_edits_over_total_reference_length():
    assert ctc.cer(["abcd", "ef"], ["abd", "ef"]) == pytest.approx(1 / 6)
    assert ctc.wer(["the cat sat", "on a mat"], ["the cat", "on the mat"]) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        ctc.cer(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="not a string"):
        ctc.wer("the cat", "the hat")
    with pytest.raises(ValueError, match="references are all empty"):
        ctc.cer([""], ["x"])


# ---------------------------------------------------------------- the recogniser


def test_ctc_needs_a_frame_per_label_and_a_blank_between_equal_neighbours():
    from rnnkit.models.recogniser import min_frames

    assert min_frames([]) == 0
    assert min_frames([1, 2, 3]) == 3
    assert min_frames([1, 1, 2, 2, 2]) == 8


@pytest.mark.parametrize("stack", [1, 3])
@pytest.mark.parametrize("kind", ["CTCRecogniser", "FramewiseCTC"])
def test_an_utterance_alone_equals_it_in_a_padded_batch(kind, stack):
    from rnnkit import models

    torch.manual_seed(0)
    model = getattr(models, kind)(5, 4, hidden_size=6, stack=stack).double().eval()
    features = torch.randn(3, 11, 5, dtype=torch.float64)
    lengths = torch.tensor([11, 7, 4])
    batch, out_lengths = model(features, lengths)
    assert out_lengths.tolist() == [-(-n // stack) for n in (11, 7, 4)]
    targets = torch.tensor([[1, 2], [3, 3], [4, 0]])
    target_lengths = torch.tensor([2, 2, 1])
    losses = model.loss(features, lengths, targets, target_lengths, reduction="none")
    for b in range(3):
        n = lengths[b]
        alone, alone_length = model(features[b : b + 1, :n], lengths[b : b + 1])
        torch.testing.assert_close(alone[:, 0], batch[: alone_length[0], b], atol=1e-12, rtol=0)
        loss = model.loss(
            features[b : b + 1, :n], lengths[b : b + 1], targets[b : b + 1],
            target_lengths[b : b + 1], reduction="none",
        )  # fmt: skip
        torch.testing.assert_close(loss, losses[b : b + 1], atol=1e-12, rtol=0)


def test_the_recogniser_learns_to_read_labelled_beeps():
    """Each utterance is 2-4 'beeps' (a one-hot feature held for 3 frames, silence between):
    a few hundred steps of CTC training read them back, greedy and with the beam."""
    from rnnkit.models.recogniser import CTCRecogniser

    g = torch.Generator().manual_seed(0)

    def utterance():
        labels = torch.randint(1, 4, (int(torch.randint(2, 5, (1,), generator=g)),), generator=g)
        frames = []
        for label in labels:
            frames += [torch.nn.functional.one_hot(label, 4).float()] * 3 + [torch.zeros(4)] * 2
        return torch.stack(frames), labels

    def batch(n):
        items = [utterance() for _ in range(n)]
        lengths = torch.tensor([len(f) for f, _ in items])
        features = torch.nn.utils.rnn.pad_sequence([f for f, _ in items], batch_first=True)
        target_lengths = torch.tensor([len(t) for _, t in items])
        targets = torch.nn.utils.rnn.pad_sequence([t for _, t in items], batch_first=True)
        return features, lengths, targets, target_lengths

    torch.manual_seed(0)
    model = CTCRecogniser(4, 3, hidden_size=16, num_layers=1, stack=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(150):
        optimiser.zero_grad()
        model.loss(*batch(16)).backward()
        optimiser.step()
    model.eval()
    features, lengths, targets, target_lengths = batch(20)
    with torch.no_grad():
        log_probs, out_lengths = model(features, lengths)
    references, greedy, beamed = [], [], []
    for b in range(20):
        frames = log_probs[: out_lengths[b], b]
        references.append("".join(map(str, targets[b, : target_lengths[b]].tolist())))
        greedy.append("".join(map(str, ctc.greedy_decode(frames))))
        beamed.append("".join(map(str, ctc.prefix_beam_search(frames, beam=4)[0][0])))
    assert ctc.cer(references, greedy) < 0.05
    assert ctc.cer(references, beamed) < 0.05


def test_bad_recogniser_arguments_are_named():
    from rnnkit.models import CTCRecogniser, FramewiseCTC

    with pytest.raises(ValueError, match="stack must be an integer >= 1, got 0"):
        FramewiseCTC(4, 3, stack=0)
    with pytest.raises(ValueError, match="features must be \\(batch, frames, size\\)"):
        CTCRecogniser(4, 3, hidden_size=4)(torch.zeros(7, 4), torch.tensor([7]))
