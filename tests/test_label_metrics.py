"""Classification and entity metrics on cases worked by hand, conlleval edge cases included."""

import json

import numpy as np
import pytest
import torch

from rnnkit.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    entity_scores,
    entity_spans,
    macro_f1,
)
from rnnkit.plots import plot_confusion_matrix

# -- classification ------------------------------------------------------------------------------

ACTUAL = ["a", "a", "a", "b", "b", "c"]
PREDICTED = ["a", "b", "a", "b", "c", "c"]
# correct at positions 0, 2, 3, 5 → accuracy 4/6
# class a: 2 right of 3 actual, 2 predicted a → P 2/2 = 1,   R 2/3, F1 2·1·(2/3)/(5/3) = 4/5
# class b: 1 right of 2 actual, 2 predicted b → P 1/2,       R 1/2, F1 1/2
# class c: 1 right of 1 actual, 2 predicted c → P 1/2,       R 1,   F1 2·(1/2)/(3/2) = 2/3
# macro-F1 = (4/5 + 1/2 + 2/3) / 3 = (24 + 15 + 20) / 90 = 59/90


def test_accuracy_by_hand():
    assert accuracy(ACTUAL, PREDICTED) == pytest.approx(4 / 6)
    assert accuracy([1], [1]) == 1.0


def test_accuracy_takes_arrays_and_tensors():
    assert accuracy(torch.tensor([1, 2, 3]), np.array([1, 2, 0])) == pytest.approx(2 / 3)


def test_confusion_matrix_by_hand():
    matrix = confusion_matrix(ACTUAL, PREDICTED, ["a", "b", "c"])
    # rows actual a, b, c; columns predicted a, b, c
    expected = [
        [2, 1, 0],  # the three a: a, b, a
        [0, 1, 1],  # the two b: b, c
        [0, 0, 1],  # the one c: c
    ]
    assert matrix.dtype == np.int64
    assert matrix.tolist() == expected
    # the order of labels is the order of rows and columns; an unused label is a zero row/column
    assert confusion_matrix(ACTUAL, PREDICTED, ["c", "d", "a", "b"]).tolist() == [
        [1, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 2, 1],
        [1, 0, 0, 1],
    ]
    assert confusion_matrix([], [], ["a", "b"]).tolist() == [[0, 0], [0, 0]]


def test_classification_report_by_hand():
    report = classification_report(ACTUAL, PREDICTED, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["macro_f1"] == pytest.approx(59 / 90)
    per_class = report["per_class"]
    assert list(per_class) == ["a", "b", "c"]
    assert per_class["a"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 4 / 5, "support": 3}
    )
    assert per_class["b"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert per_class["c"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )
    json.dumps(report)  # plain floats and ints: ready for metrics.json


def test_macro_f1_skips_absent_classes_but_counts_spurious_ones():
    # "d" is neither actual nor predicted: left out, macro-F1 still 59/90
    assert macro_f1(ACTUAL, PREDICTED, ["a", "b", "c", "d"]) == pytest.approx(59 / 90)
    report = classification_report(ACTUAL, PREDICTED, ["a", "b", "c", "d"])
    assert report["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # "e" is predicted but never actual: P 0 (0 of 1 right), R 0 (nothing to find), F1 0, and it
    # counts. a: P 1/1, R 1/2, F1 2/3. macro = (2/3 + 0) / 2 = 1/3
    assert macro_f1(["a", "a"], ["a", "e"]) == pytest.approx(1 / 3)
    # default labels: the sorted union
    assert macro_f1(ACTUAL, PREDICTED) == pytest.approx(59 / 90)
    assert list(classification_report([2, 1], [1, 1])["per_class"]) == [1, 2]


def test_perfect_and_hopeless():
    assert macro_f1(ACTUAL, ACTUAL) == 1.0
    # every prediction wrong: all per-class F1 are 0
    assert macro_f1(["a", "b"], ["b", "a"]) == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: accuracy([1, 2], [1]), "same length, got 2 and 1"),
        (lambda: accuracy([], []), "empty"),
        (lambda: accuracy("abc", "abc"), "sequence of labels, got the string"),
        (lambda: accuracy([[1, 2]], [[1, 2]]), r"actual\[0\] is a list; flatten it"),
        (lambda: confusion_matrix(["a"], ["z"], ["a", "b"]), r"predicted\[0\] = 'z' is not one"),
        (lambda: confusion_matrix(["q"], ["a"], ["a"]), r"actual\[0\] = 'q' is not one of"),
        (lambda: confusion_matrix(["a"], ["a"], ["a", "a"]), r"distinct, got duplicates \['a'\]"),
        (lambda: classification_report(["a"], ["b"], ["a"]), r"predicted\[0\] = 'b'"),
    ],
)
def test_classification_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_unknown_label_message_lists_at_most_ten():
    labels = [f"L{i}" for i in range(25)]
    with pytest.raises(ValueError, match=r"'L9', … \(25 in all\)\]"):
        confusion_matrix(["x"], ["L0"], labels)


# -- entities: conlleval's chunk rules ------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        # plain BIO
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
        # I- after O starts an entity (conlleval, IOB1 style), it is not dropped
        (["O", "I-PER", "I-PER", "O"], [("PER", 1, 3)]),
        # I- at the start of a sentence too
        (["I-LOC"], [("LOC", 0, 1)]),
        # a type change inside I- tags ends one entity and starts another
        (["B-PER", "I-PER", "I-LOC", "I-LOC"], [("PER", 0, 2), ("LOC", 2, 4)]),
        # B- B-: two entities, the second going on with I-
        (["B-PER", "B-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 3)]),
        # an entity running to the end of the sentence is closed there
        (["O", "B-MISC", "I-MISC"], [("MISC", 1, 3)]),
        # BIOES: S- alone, B- I- E-, then O and S-
        (
            ["S-PER", "B-LOC", "I-LOC", "E-LOC", "O", "S-ORG"],
            [("PER", 0, 1), ("LOC", 1, 4), ("ORG", 5, 6)],
        ),
        # after E- an entity is over: a following I-/E- of the same type starts a new one
        (["B-PER", "E-PER", "I-PER", "E-PER"], [("PER", 0, 2), ("PER", 2, 4)]),
        # S- after I- of the same type: I- entity ends, S- is its own
        (["B-PER", "I-PER", "S-PER"], [("PER", 0, 2), ("PER", 2, 3)]),
        # E- after O starts (and, being E-, ends) an entity
        (["O", "E-PER", "O"], [("PER", 1, 2)]),
        # B-X then E-Y: the type change splits them
        (["B-PER", "E-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),
        # B- then I- of the same type after an S-: S- ends, I- after S- starts anew
        (["S-LOC", "I-LOC"], [("LOC", 0, 1), ("LOC", 1, 2)]),
        (["O", "O"], []),
        ([], []),
    ],
)
def test_entity_spans_follow_conlleval(tags, spans):
    assert entity_spans(tags) == spans


def test_entity_scores_by_hand():
    actual = [
        ["B-PER", "I-PER", "O", "B-LOC"],  # PER 0-2, LOC 3-4
        ["O", "B-LOC", "I-LOC", "O", "B-PER"],  # LOC 1-3, PER 4-5
    ]
    predicted = [
        ["B-PER", "I-PER", "O", "B-ORG"],  # PER 0-2 (right), ORG 3-4 (wrong type)
        ["O", "B-LOC", "O", "O", "I-PER"],  # LOC 1-2 (wrong end), PER 4-5 (right: I- after O)
    ]
    scores = entity_scores(actual, predicted)
    # 4 true, 4 predicted, 2 correct: P = R = F1 = 1/2
    assert scores["true_entities"] == 4
    assert scores["predicted_entities"] == 4
    assert scores["correct"] == 2
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(0.5)
    assert list(scores["per_type"]) == ["LOC", "ORG", "PER"]
    # LOC: 2 true, 1 predicted, 0 right; ORG: 0 true, 1 predicted; PER: 2 of 2, both found
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert scores["per_type"]["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert scores["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    json.dumps(scores)


def test_entity_scores_count_the_same_span_in_two_sentences_twice():
    # PER 0-1 in sentence 0 and in sentence 1 are two entities; one of them is found:
    # P 1/1, R 1/2, F1 2·1·(1/2)/(3/2) = 2/3
    scores = entity_scores([["B-PER"], ["B-PER"]], [["B-PER"], ["O"]])
    assert (scores["true_entities"], scores["predicted_entities"], scores["correct"]) == (2, 1, 1)
    assert scores["f1"] == pytest.approx(2 / 3)


def test_entity_scores_with_nothing_to_find_or_nothing_found_are_zero():
    none = entity_scores([["O", "O"]], [["O", "O"]])
    assert (none["precision"], none["recall"], none["f1"], none["per_type"]) == (0.0, 0.0, 0.0, {})
    missed = entity_scores([["B-PER", "O"]], [["O", "O"]])
    assert (missed["precision"], missed["recall"], missed["f1"]) == (0.0, 0.0, 0.0)
    assert missed["per_type"]["PER"]["support"] == 1


def test_entity_scores_bioes_and_bio_mixed_agree_on_the_same_entities():
    bio = [["B-PER", "I-PER", "O", "B-LOC"]]
    bioes = [["B-PER", "E-PER", "O", "S-LOC"]]
    assert entity_scores(bio, bioes)["f1"] == 1.0


@pytest.mark.parametrize(
    ("actual", "predicted", "message"),
    [
        ([["O", "O"], ["O"]], [["O", "O"], ["O", "O"]], "sentence 1 has 1 actual tags but 2"),
        ([["O"]], [["O"], ["O"]], "actual has 1 sentences but predicted has 2"),
        (["B-PER", "O"], ["B-PER", "O"], r"list of sentences .* actual\[0\] is the string"),
        ([["B-PER", "X"]], [["O", "O"]], "tag 'X' at position 1 is not a BIO/BIOES tag"),
        ([["O"]], [["PER"]], "tag 'PER' at position 0"),
    ],
)
def test_entity_score_errors(actual, predicted, message):
    with pytest.raises(ValueError, match=message):
        entity_scores(actual, predicted)


# -- the picture ----------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000


def test_plot_confusion_matrix_writes_a_png(tmp_path):
    matrix = confusion_matrix(ACTUAL, PREDICTED, ["a", "b", "c"])
    path = plot_confusion_matrix(tmp_path / "nested" / "confusion.png", matrix, ["a", "b", "c"])
    assert path == tmp_path / "nested" / "confusion.png"
    assert_png(path)


def test_plot_confusion_matrix_many_long_labels_and_an_empty_row(tmp_path):
    rng = np.random.default_rng(0)
    labels = [f"category-number-{i}" for i in range(20)]
    matrix = rng.integers(0, 50, size=(20, 20))
    matrix[3] = 0  # a class never present: its row is blank, not a division by zero
    path = plot_confusion_matrix(tmp_path / "big.png", matrix, labels, title="20 classes")
    assert_png(path)
    assert_png(plot_confusion_matrix(tmp_path / "shares.png", matrix / 7.0, labels))


@pytest.mark.parametrize(
    ("matrix", "labels", "message"),
    [
        (np.zeros((2, 3)), ["a", "b"], r"square \(n, n\), got shape \(2, 3\)"),
        (np.zeros((2, 2)), ["a"], "labels has 1 names but matrix is"),
        (-np.ones((2, 2)), ["a", "b"], "non-negative"),
        (np.zeros((0, 0)), [], "empty"),
    ],
)
def test_plot_confusion_matrix_errors(tmp_path, matrix, labels, message):
    with pytest.raises(ValueError, match=message):
        plot_confusion_matrix(tmp_path / "x.png", matrix, labels)
