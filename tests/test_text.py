"""Tokenizers and vocabularies: deterministic tokens, exact round trips, errors that say why."""

import json

import pytest

from rnnkit.data.text import (
    TOKENIZERS,
    BPETokenizer,
    CharTokenizer,
    UnknownTokenError,
    Vocabulary,
    WordTokenizer,
    make_tokenizer,
    tokenizer_from_dict,
)

CORPUS = [
    "The cat sat on the mat.",
    "The dog sat on the log!",
    "Cats and dogs don't like each other; cats like mats.",
    "A state-of-the-art model costs 3.14 or 1,000 dollars.",
    "Tokenization of unusual words: tokenizer, tokenizers, tokenized.",
] * 4


# --- word and character tokenizers ---------------------------------------------------------------


def test_word_tokenizer_splits_words_numbers_and_each_punctuation_mark():
    tokens = WordTokenizer()("Don't stop: 3.14, 1,000 state-of-the-art café!! 'quoted' x_1 42nd")
    assert tokens == [
        "do", "n't", "stop", ":", "3.14", ",", "1,000", "state-of-the-art", "café", "!", "!",
        "'", "quoted", "'", "x_1", "42nd",
    ]  # fmt: skip


def test_word_tokenizer_splits_clitics_like_the_penn_treebank():
    tokenize = WordTokenizer(lowercase=False)
    assert tokenize("It's Hitchcock's; I'm sure they'll say WON'T, can’t") == [  # noqa: RUF001
        "It", "'s", "Hitchcock", "'s", ";", "I", "'m", "sure", "they", "'ll", "say",
        "WO", "N'T", ",", "ca", "n’t",  # noqa: RUF001
    ]  # fmt: skip
    assert tokenize("'Signs' is o'clock") == ["'", "Signs", "'", "is", "o", "'", "clock"]


def test_word_tokenizer_keeps_case_when_asked_and_drops_all_whitespace():
    assert WordTokenizer(lowercase=False)("  The\tCat\n sat ") == ["The", "Cat", "sat"]
    assert WordTokenizer()("") == []
    assert WordTokenizer()("Don’t") == ["do", "n’t"]  # noqa: RUF001 (the typographic apostrophe)


def test_char_tokenizer_keeps_every_character_and_case_by_default():
    assert CharTokenizer()("Hi, U") == ["H", "i", ",", " ", "U"]
    assert CharTokenizer(lowercase=True)("Hi") == ["h", "i"]


@pytest.mark.parametrize("cls", [WordTokenizer, CharTokenizer])
def test_fixed_tokenizers_are_always_fitted_and_fit_returns_self(cls):
    tokenizer = cls()
    assert tokenizer.fitted and tokenizer.fit(["anything"]) is tokenizer
    assert tokenizer.name in TOKENIZERS and TOKENIZERS[tokenizer.name] is cls


@pytest.mark.parametrize("name", ["word", "char"])
def test_fixed_tokenizers_round_trip_through_json(name):
    tokenizer = make_tokenizer(name, lowercase=name == "char")
    saved = json.loads(json.dumps(tokenizer.to_dict()))
    again = tokenizer_from_dict(saved)
    assert type(again) is type(tokenizer) and again.lowercase == tokenizer.lowercase
    assert again(CORPUS[3]) == tokenizer(CORPUS[3])


def test_tokenizers_refuse_non_text():
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        WordTokenizer()(b"bytes")
    with pytest.raises(TypeError, match="lowercase must be True or False, got 'yes'"):
        WordTokenizer(lowercase="yes")


def test_make_tokenizer_names_the_choices_and_the_options():
    with pytest.raises(ValueError, match=r"tokenizer 'wordpiece' is not one of \['bpe', 'char'"):
        make_tokenizer("wordpiece")
    with pytest.raises(ValueError, match=r"'word' tokenizer has no option 'vocab_size'.*lowercase"):
        make_tokenizer("word", vocab_size=10)
    with pytest.raises(ValueError, match="vocab_size=1 must be at least 2"):
        make_tokenizer("bpe", vocab_size=1)
    with pytest.raises(ValueError, match="min_frequency=0 must be at least 1"):
        make_tokenizer("bpe", min_frequency=0)


def test_tokenizer_from_dict_refuses_what_to_dict_never_writes():
    with pytest.raises(ValueError, match="a dict with a 'name' entry"):
        tokenizer_from_dict({"lowercase": True})
    with pytest.raises(ValueError, match=r"tokenizer 'spaces' is not one of"):
        tokenizer_from_dict({"name": "spaces"})
    with pytest.raises(ValueError, match="the saved tokenizer: the 'char' tokenizer has no option"):
        tokenizer_from_dict({"name": "char", "lowercase": False, "extra": 1})
    with pytest.raises(ValueError, match="not a valid tokenizers JSON"):
        tokenizer_from_dict({"name": "bpe", "tokenizer": "{not json"})


# --- BPE -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer(vocab_size=120, min_frequency=2).fit(CORPUS)


def test_bpe_is_unfitted_until_fit_and_says_so():
    tokenizer = BPETokenizer()
    assert not tokenizer.fitted and tokenizer.to_dict()["tokenizer"] is None
    with pytest.raises(ValueError, match=r"not fitted: call fit\(texts\)"):
        tokenizer("text")
    with pytest.raises(ValueError, match="no non-blank text"):
        tokenizer.fit(["", "  "])
    with pytest.raises(TypeError, match="got one string; wrap it in a list"):
        tokenizer.fit("one text")
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        tokenizer.fit(["a", 1])


def test_bpe_learns_subwords_that_cover_the_text(bpe):
    assert bpe.fitted
    tokens = bpe("The tokenizers sat.")
    # Pieces that start a word start with ▁; joined back they give the words.
    assert tokens[0] == "▁the" and tokens[-1] == "▁."
    assert sum(token.startswith("▁") for token in tokens) == 4
    assert bpe.detokenize(tokens) == "the tokenizers sat ."
    assert all(token in bpe.subwords for token in tokens)
    assert bpe.subwords[0] == "<unk>" and len(bpe.subwords) <= 120
    # A character never seen in training becomes <unk>, which a Vocabulary maps to unk_id.
    assert "<unk>" in bpe("zebra ψ")


def test_bpe_splits_words_like_the_word_tokenizer(bpe):
    text = "Cats don't like state-of-the-art mats!"
    words = WordTokenizer()(text)
    assert bpe.detokenize(bpe(text)).split() == words


def test_bpe_round_trip_through_json_gives_identical_tokens(bpe):
    saved = json.loads(json.dumps(bpe.to_dict()))
    assert isinstance(saved["tokenizer"], str)
    again = tokenizer_from_dict(saved)
    assert isinstance(again, BPETokenizer) and again.fitted
    assert (again.vocab_size, again.lowercase, again.min_frequency) == (120, True, 2)
    for text in [*CORPUS[:5], "Unseen words: zebra-crossing, 2.71828!"]:
        assert again(text) == bpe(text)


def test_bpe_fit_is_deterministic(bpe):
    # tokenizers numbers continuing-subword pieces in hash order, so ties between equally
    # frequent pairs went differently from one fit to the next; several fits must agree.
    for _ in range(5):
        other = BPETokenizer(vocab_size=120, min_frequency=2).fit(CORPUS)
        assert other.subwords == bpe.subwords
        assert other.to_dict() == bpe.to_dict()


def test_bpe_respects_lowercase_false():
    tokenizer = BPETokenizer(vocab_size=60, lowercase=False).fit(CORPUS)
    assert tokenizer("The")[0].startswith("▁T")


def test_missing_tokenizers_library_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes `import tokenizers` fail
    tokenizer = BPETokenizer()  # constructing needs no library
    with pytest.raises(ImportError, match=r"pip install tokenizers \(or pip install rnnkit\[text"):
        tokenizer.fit(["some text"])


# --- vocabulary ----------------------------------------------------------------------------------


def test_vocabulary_orders_by_count_then_token_after_the_specials():
    vocabulary = Vocabulary().fit([["b", "a", "c", "a"], ["c", "d", "a"]])
    # a: 3, c: 2, then b and d (1 each) in string order.
    assert vocabulary.tokens == ["<pad>", "<unk>", "a", "c", "b", "d"]
    assert (vocabulary.pad_id, vocabulary.unk_id) == (0, 1)
    assert vocabulary.counts == {"a": 3, "c": 2, "b": 1, "d": 1}
    assert len(vocabulary) == 6 and "c" in vocabulary and "z" not in vocabulary


def test_vocabulary_min_freq_and_max_size_counting_the_specials():
    lists = [["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"]]
    assert Vocabulary(min_freq=2).fit(lists).tokens == ["<pad>", "<unk>", "a", "b", "c"]
    assert Vocabulary(max_size=4).fit(lists).tokens == ["<pad>", "<unk>", "a", "b"]
    assert Vocabulary(max_size=2).fit(lists).tokens == ["<pad>", "<unk>"]


def test_vocabulary_keeps_special_ids_for_specials_found_in_the_data():
    vocabulary = Vocabulary().fit([["<unk>", "x", "<pad>", "x"]])
    assert vocabulary.tokens == ["<pad>", "<unk>", "x"]


def test_vocabulary_encode_decode_round_trip_and_unknowns():
    tokenizer = WordTokenizer()
    vocabulary = Vocabulary().fit(tokenizer(text) for text in CORPUS)
    tokens = tokenizer(CORPUS[2])
    assert vocabulary.decode(vocabulary.encode(tokens)) == tokens
    assert vocabulary.encode(["cats", "zebra"]) == [vocabulary["cats"], vocabulary.unk_id]
    assert vocabulary["zebra"] == vocabulary.unk_id
    assert vocabulary.count_unknown(["cats", "zebra", "ψ"]) == 2


def test_vocabulary_decode_accepts_numpy_and_tensor_ids_and_refuses_others():
    import numpy as np
    import torch

    vocabulary = Vocabulary().fit([["a", "b"]])
    assert vocabulary.decode(np.array([2, 3])) == ["a", "b"]
    assert vocabulary.decode(torch.tensor([3, 0])) == ["b", "<pad>"]
    with pytest.raises(ValueError, match=r"ids\[1\]=4 is not a token id: ids run from 0 to 3"):
        vocabulary.decode([2, 4])
    with pytest.raises(ValueError, match=r"ids\[0\]=-1 is not a token id"):
        vocabulary.decode([-1])
    with pytest.raises(TypeError, match=r"ids\[0\]='a' is not an integer id"):
        vocabulary.decode(["a"])


def test_label_vocabulary_has_no_specials_and_refuses_unknown_labels():
    labels = Vocabulary(specials=()).fit([["pos", "neg", "pos", "neutral"]])
    assert labels.tokens == ["pos", "neg", "neutral"]
    assert labels.pad_id is None and labels.unk_id is None
    assert labels.encode(["neg", "pos"]) == [1, 0]
    with pytest.raises(ValueError, match=r"'mixed' is not in the vocabulary.*\['pos', 'neg'"):
        labels.encode(["pos", "mixed"])
    with pytest.raises(KeyError) as caught:
        labels["mixed"]
    assert isinstance(caught.value, UnknownTokenError)
    assert str(caught.value).startswith("'mixed' is not in the vocabulary")  # no extra quotes


def test_unknown_token_error_lists_at_most_ten_known_tokens():
    labels = Vocabulary(specials=()).fit([[f"t{i:02d}" for i in range(25)]])
    with pytest.raises(ValueError, match=r"known: \['t00', .*'t09'\] and 15 more$"):
        labels.encode(["nope"])


def test_vocabulary_save_load_and_dict_round_trip(tmp_path):
    vocabulary = Vocabulary(min_freq=2, max_size=50).fit(WordTokenizer()(text) for text in CORPUS)
    path = vocabulary.save(tmp_path / "vocab.json")
    again = Vocabulary.load(path)
    assert again == vocabulary and again.tokens == vocabulary.tokens
    assert (again.min_freq, again.max_size, again.specials) == (2, 50, ("<pad>", "<unk>"))
    assert Vocabulary.from_dict(json.loads(json.dumps(vocabulary.to_dict()))) == vocabulary
    labels = Vocabulary(specials=()).fit([["é", "b"]])
    assert Vocabulary.load(labels.save(tmp_path / "labels.json")).tokens == ["b", "é"]


def test_vocabulary_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="min_freq=0 must be at least 1"):
        Vocabulary(min_freq=0)
    with pytest.raises(ValueError, match=r"max_size=1 is smaller than the 2 specials"):
        Vocabulary(max_size=1)
    with pytest.raises(TypeError, match=r"max_size must be an integer, got 2\.5"):
        Vocabulary(max_size=2.5)
    with pytest.raises(ValueError, match="lists a token twice"):
        Vocabulary(specials=("<pad>", "<pad>"))
    with pytest.raises(TypeError, match="specials must be a sequence of strings"):
        Vocabulary(specials="<pad>")


def test_vocabulary_refuses_untokenized_input_and_use_before_fit():
    with pytest.raises(ValueError, match=r"not fitted: call fit\(token_lists\)"):
        Vocabulary().encode(["a"])
    with pytest.raises(TypeError, match=r"token_lists\[0\] is the string 'the cat'"):
        Vocabulary().fit(["the cat"])
    with pytest.raises(TypeError, match=r"token_lists\[0\] holds 3 \(int\)"):
        Vocabulary().fit([["a", 3]])
    with pytest.raises(TypeError, match="tokens must be a list of tokens, got the string"):
        Vocabulary().fit([["a"]]).encode("a")


def test_vocabulary_load_names_the_file_and_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.json: no such file"):
        Vocabulary.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{", "utf-8")
    with pytest.raises(ValueError, match=r"bad\.json: not a saved vocabulary \(invalid JSON"):
        Vocabulary.load(bad)
    bad.write_text(json.dumps({"min_freq": 1, "max_size": None, "specials": ["<pad>"],
                               "tokens": ["a", "<pad>"]}), "utf-8")  # fmt: skip
    with pytest.raises(
        ValueError,
        match=r"bad\.json: a saved Vocabulary's tokens must start with its specials \['<pad>'\]",
    ):
        Vocabulary.load(bad)
    bad.write_text(json.dumps({"tokens": []}), "utf-8")
    with pytest.raises(ValueError, match="a saved Vocabulary is a dict with keys"):
        Vocabulary.load(bad)


def test_bpe_fit_gives_the_same_model_in_another_process(bpe):
    # Hash seeds differ between processes; the model must not.
    import subprocess
    import sys

    code = (
        "import json, sys; from rnnkit.data.text import BPETokenizer; "
        "texts = json.loads(sys.stdin.read()); "
        "print(BPETokenizer(vocab_size=120, min_frequency=2).fit(texts).to_dict()['tokenizer'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(CORPUS), capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    assert result.stdout.strip() == bpe.to_dict()["tokenizer"]
