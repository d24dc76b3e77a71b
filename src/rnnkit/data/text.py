"""Text to token ids: tokenizers (word, character, BPE subword) and vocabularies.

A text pipeline is ``tokenizer(text) -> list[str]`` then ``vocabulary.encode(tokens) ->
list[int]``; both halves are saved as plain JSON-able dicts (``to_dict``) in a run directory, so
a saved model reads new text exactly as it read its training data.

>>> tokenizer = WordTokenizer()
>>> tokenizer("Don't panic: 3.14 is pi!")
['do', "n't", 'panic', ':', '3.14', 'is', 'pi', '!']
>>> vocabulary = Vocabulary().fit([tokenizer("the cat"), tokenizer("the dog")])
>>> vocabulary.tokens
['<pad>', '<unk>', 'the', 'cat', 'dog']
>>> vocabulary.encode(tokenizer("The bird"))
[2, 1]

Three tokenizers, chosen by name with :func:`make_tokenizer`:

- ``"word"`` (:class:`WordTokenizer`): words, numbers and single punctuation marks, by one
  regular expression (:data:`WORD_PATTERN`). Needs no fitting.
- ``"char"`` (:class:`CharTokenizer`): every character, spaces included. Needs no fitting.
- ``"bpe"`` (:class:`BPETokenizer`): byte-pair-encoding subwords learnt from the training texts
  by the ``tokenizers`` library (an optional dependency: ``pip install rnnkit[text]``). Words
  are first split exactly as the word tokenizer splits them; a subword that starts a word
  starts with ``"▁"`` (U+2581, SentencePiece's convention).

Every tokenizer has a ``name`` ("word", "char", "bpe"), ``fit(texts) -> self`` (a no-op except
for BPE), a ``fitted`` property, and ``to_dict()``; :func:`tokenizer_from_dict` is its inverse.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._checks import check_flag, check_integer

__all__ = [
    "TOKENIZERS",
    "WORD_PATTERN",
    "BPETokenizer",
    "CharTokenizer",
    "Tokenizer",
    "UnknownTokenError",
    "Vocabulary",
    "WordTokenizer",
    "attach_punctuation",
    "make_tokenizer",
    "tokenizer_from_dict",
]

#: The word tokenizer's regular expression, tried left to right at each position; whitespace
#: separates tokens and is dropped.
#:
#: 1. ``\d+(?:[.,]\d+)+``: a number with decimal or thousands separators ("3.14", "1,000");
#: 2. English clitics split off as the Penn Treebank does: "don't" -> "do", "n't"; "film's"
#:    -> "film", "'s"; also 're, 've, 'll, 'd, 'm. On small corpora this matters: "film's"
#:    and "film" are one word to learn, not two rare ones;
#: 3. ``\w+(?:-\w+)*``: a run of letters, digits and underscores, inner hyphens kept
#:    ("state-of-the-art", "42", "x_1"); letters are Unicode letters;
#: 4. ``[^\w\s]``: any other character, alone: each punctuation mark or symbol is a token
#:    ("!!" is two tokens; quotes around a word are split from it).
WORD_PATTERN = (
    r"\d+(?:[.,]\d+)+"
    r"|\w+(?=(?i:n['’]t)\b)|(?i:n['’]t)\b|['’](?i:s|re|ve|ll|d|m)\b"  # noqa: RUF001 (’ is meant)
    r"|\w+(?:-\w+)*|[^\w\s]"
)

_WORD_REGEX = re.compile(WORD_PATTERN)
# Spaces a tokenizer puts around punctuation: before a closing mark, after an opening one.
_ATTACHED = re.compile(r"\s+(?=[.,;:!?)\]}»%])|(?<=[¿¡(\[{«])\s+")


def attach_punctuation(text: str) -> str:
    """Words joined by spaces as text is written: "shapes : a circle , a square ." ->
    "shapes: a circle, a square."."""
    return _ATTACHED.sub("", text)


_UNK = "<unk>"
_PAD = "<pad>"
_WORD_START = "\u2581"  # ▁, marks a BPE piece that starts a word


def _check_bool(name: str, value: Any) -> bool:
    return check_flag(name, value, got=True, error=TypeError)


def _check_int(name: str, value: Any, minimum: int) -> int:
    check_integer(name, value, None, got=True, error=TypeError)
    return check_integer(name, value, minimum, what=f"at least {minimum}")


def _check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}: {text!r:.80}")
    return text


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of strings, got one string; wrap it in a list")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"texts[{index}] must be a str, got {type(text).__name__}: {text!r:.80}"
            )
    return texts


class WordTokenizer:
    """Words, numbers and punctuation marks, by the regular expression :data:`WORD_PATTERN`.

    Args:
        lowercase: lower-case the text first (``str.lower``), so "The" and "the" are one token.

    >>> WordTokenizer()("State-of-the-art? Don't know... 1,000 ways!")
    ['state-of-the-art', '?', 'do', "n't", 'know', '.', '.', '.', '1,000', 'ways', '!']
    """

    name = "word"

    def __init__(self, lowercase: bool = True):
        self.lowercase = _check_bool("lowercase", lowercase)

    @property
    def fitted(self) -> bool:
        """Always True: the word tokenizer learns nothing."""
        return True

    def fit(self, texts: Iterable[str]) -> WordTokenizer:
        """Nothing to learn; returns self so every tokenizer can be fitted the same way."""
        return self

    def __call__(self, text: str) -> list[str]:
        text = _check_text(text)
        return _WORD_REGEX.findall(text.lower() if self.lowercase else text)

    def to_dict(self) -> dict:
        """The settings as a JSON-able dict; :func:`tokenizer_from_dict` rebuilds the tokenizer."""
        return {"name": self.name, "lowercase": self.lowercase}

    def __repr__(self) -> str:
        return f"WordTokenizer(lowercase={self.lowercase})"


class CharTokenizer:
    """Every character of the text is a token, whitespace and punctuation included.

    Args:
        lowercase: lower-case the text first (off by default: at character level, case is
            often information worth keeping).

    >>> CharTokenizer()("Hi, you")
    ['H', 'i', ',', ' ', 'y', 'o', 'u']
    """

    name = "char"

    def __init__(self, lowercase: bool = False):
        self.lowercase = _check_bool("lowercase", lowercase)

    @property
    def fitted(self) -> bool:
        """Always True: the character tokenizer learns nothing."""
        return True

    def fit(self, texts: Iterable[str]) -> CharTokenizer:
        """Nothing to learn; returns self so every tokenizer can be fitted the same way."""
        return self

    def __call__(self, text: str) -> list[str]:
        text = _check_text(text)
        return list(text.lower() if self.lowercase else text)

    def to_dict(self) -> dict:
        """The settings as a JSON-able dict; :func:`tokenizer_from_dict` rebuilds the tokenizer."""
        return {"name": self.name, "lowercase": self.lowercase}

    def __repr__(self) -> str:
        return f"CharTokenizer(lowercase={self.lowercase})"


def _import_tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ImportError(
            "the BPE tokenizer needs the 'tokenizers' library, which is not installed: "
            "pip install tokenizers (or pip install rnnkit[text])"
        ) from None
    return tokenizers


class BPETokenizer:
    """Byte-pair-encoding subwords (Sennrich et al. 2016), learnt by the ``tokenizers`` library.

    The text is normalised (Unicode NFKC, then lower-cased if ``lowercase``), split into words
    by :data:`WORD_PATTERN` exactly like :class:`WordTokenizer`, and each word is cut into the
    subwords that ``fit`` learnt: frequent words stay whole, rare ones fall apart into pieces
    down to single characters. A piece that starts a word begins with ``"▁"`` (U+2581, as in
    SentencePiece): "tokenization" -> ["▁token", "ization"]. A character never seen in
    training becomes ``"<unk>"``, which a :class:`Vocabulary` with the default specials maps
    to its unknown id.

    Args:
        vocab_size: the most subwords to learn, the single characters and ``"<unk>"``
            included; fewer are learnt when no pair of pieces occurs ``min_frequency`` times.
        lowercase: lower-case the text before splitting.
        min_frequency: a pair of pieces is merged only if it occurs at least this often.

    ``tokenizers`` is imported only by ``fit`` and on first use, so the class itself can be
    named (and a word or char tokenizer used) without it.

    >>> bpe = BPETokenizer(vocab_size=200).fit(["the cat sat", "the cats sat"] * 10)
    >>> bpe("The cats")
    ['▁the', '▁cats']
    """

    name = "bpe"

    def __init__(self, vocab_size: int = 8000, lowercase: bool = True, min_frequency: int = 2):
        self.vocab_size = _check_int("vocab_size", vocab_size, 2)
        self.lowercase = _check_bool("lowercase", lowercase)
        self.min_frequency = _check_int("min_frequency", min_frequency, 1)
        self._tokenizer = None  # a tokenizers.Tokenizer once fitted or loaded

    @property
    def fitted(self) -> bool:
        """Whether ``fit`` has run (or the tokenizer was loaded fitted)."""
        return self._tokenizer is not None

    def _new_tokenizer(self):
        tokenizers = _import_tokenizers()
        from tokenizers import decoders, models, normalizers, pre_tokenizers

        tokenizer = tokenizers.Tokenizer(models.BPE(unk_token=_UNK))
        steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if self.lowercase else [])
        tokenizer.normalizer = normalizers.Sequence(steps)
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.WhitespaceSplit(),
                pre_tokenizers.Split(tokenizers.Regex(WORD_PATTERN), behavior="isolated"),
                pre_tokenizers.Metaspace(replacement=_WORD_START, prepend_scheme="always"),
            ]
        )
        tokenizer.decoder = decoders.Metaspace(replacement=_WORD_START, prepend_scheme="always")
        return tokenizer

    def fit(self, texts: Iterable[str]) -> BPETokenizer:
        """Learn the subwords from ``texts`` (an iterable of strings); returns self.

        Fitting again starts afresh. The result depends only on the texts and the settings,
        run after run: word starts are marked by a character of the alphabet rather than by a
        continuing-subword prefix, whose pieces ``tokenizers`` numbers in hash-map order and
        so breaks ties between equally frequent pairs differently from run to run
        (huggingface/tokenizers#1794).
        """
        texts = _check_texts(texts)
        if not any(text.strip() for text in texts):
            raise ValueError(
                f"texts holds no non-blank text ({len(texts)} texts): BPE needs text to learn from"
            )
        tokenizers = _import_tokenizers()
        tokenizer = self._new_tokenizer()
        trainer = tokenizers.trainers.BpeTrainer(
            vocab_size=self.vocab_size,
            min_frequency=self.min_frequency,
            special_tokens=[_UNK],
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
        self._tokenizer = tokenizer
        return self

    def _require_fitted(self):
        if self._tokenizer is None:
            raise ValueError("this BPETokenizer is not fitted: call fit(texts) before using it")
        return self._tokenizer

    def __call__(self, text: str) -> list[str]:
        text = _check_text(text)
        return self._require_fitted().encode(text, add_special_tokens=False).tokens

    def detokenize(self, tokens: Sequence[str]) -> str:
        """Join subwords back into text, the inverse of ``__call__`` up to spacing.

        A piece without the leading ``"▁"`` glues to the one before it; words are separated by
        single spaces, so the result is the normalised text with punctuation spaced out, not
        necessarily the original string.
        """
        tokenizer = self._require_fitted()
        ids = [tokenizer.token_to_id(token) for token in tokens]
        unknown = [token for token, id_ in zip(tokens, ids, strict=True) if id_ is None]
        if unknown:
            raise ValueError(
                f"tokens holds subwords this BPETokenizer does not know: {unknown[:10]}"
            )
        return tokenizer.decode(ids, skip_special_tokens=False)

    @property
    def subwords(self) -> list[str]:
        """The learnt subwords in id order (``"<unk>"`` first)."""
        vocab = self._require_fitted().get_vocab(with_added_tokens=True)
        return sorted(vocab, key=vocab.__getitem__)

    def to_dict(self) -> dict:
        """Settings and, once fitted, the learnt model as the ``tokenizers`` JSON string."""
        return {
            "name": self.name,
            "vocab_size": self.vocab_size,
            "lowercase": self.lowercase,
            "min_frequency": self.min_frequency,
            "tokenizer": None if self._tokenizer is None else self._tokenizer.to_str(),
        }

    @classmethod
    def _from_saved(cls, settings: dict, serialized: str | None) -> BPETokenizer:
        bpe = cls(**settings)
        if serialized is not None:
            if not isinstance(serialized, str):
                raise TypeError(
                    "the BPE tokenizer's 'tokenizer' entry must be the tokenizers JSON string, "
                    f"got {type(serialized).__name__}"
                )
            tokenizers = _import_tokenizers()
            try:
                bpe._tokenizer = tokenizers.Tokenizer.from_str(serialized)
            except Exception as error:  # the library raises plain Exception on bad JSON
                raise ValueError(
                    f"the BPE tokenizer's 'tokenizer' entry is not a valid tokenizers JSON: {error}"
                ) from None
        return bpe

    def __repr__(self) -> str:
        state = "fitted" if self.fitted else "not fitted"
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase}, "
            f"min_frequency={self.min_frequency}) [{state}]"
        )


Tokenizer = WordTokenizer | CharTokenizer | BPETokenizer

#: The tokenizer classes by name.
TOKENIZERS: dict[str, type] = {
    "word": WordTokenizer,
    "char": CharTokenizer,
    "bpe": BPETokenizer,
}

_OPTIONS = {
    "word": ("lowercase",),
    "char": ("lowercase",),
    "bpe": ("vocab_size", "lowercase", "min_frequency"),
}


def _tokenizer_class(name: Any) -> type:
    if name not in TOKENIZERS:
        raise ValueError(f"tokenizer {name!r} is not one of {sorted(TOKENIZERS)}")
    return TOKENIZERS[name]


def _check_options(name: str, options: dict, where: str) -> None:
    unknown = sorted(set(options) - set(_OPTIONS[name]))
    if unknown:
        raise ValueError(
            f"{where}: the {name!r} tokenizer has no option {', '.join(map(repr, unknown))}; "
            f"its options are {list(_OPTIONS[name])}"
        )


def make_tokenizer(name: str, **options) -> Tokenizer:
    """A tokenizer by name: "word", "char" or "bpe", with its constructor's ``options``.

    >>> make_tokenizer("char", lowercase=True)
    CharTokenizer(lowercase=True)
    """
    cls = _tokenizer_class(name)
    _check_options(name, options, "make_tokenizer")
    return cls(**options)


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """The tokenizer that ``to_dict`` described (a fitted BPE comes back fitted)."""
    if not isinstance(d, dict) or "name" not in d:
        raise ValueError(f"a saved tokenizer is a dict with a 'name' entry, got {d!r:.120}")
    settings = dict(d)
    name = settings.pop("name")
    cls = _tokenizer_class(name)
    serialized = settings.pop("tokenizer", None) if name == "bpe" else None
    _check_options(name, settings, "the saved tokenizer")
    if cls is BPETokenizer:
        return BPETokenizer._from_saved(settings, serialized)
    return cls(**settings)


class UnknownTokenError(KeyError, ValueError):
    """A token that a vocabulary without ``"<unk>"`` cannot encode.

    Both a ``KeyError`` (the vocabulary is a mapping) and a ``ValueError`` (the input is wrong),
    so either ``except`` catches it; its message is printed without the quotes KeyError adds.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Vocabulary:
    """A bijection between tokens and ids 0..len-1, learnt from tokenized texts.

    Ids are given to the ``specials`` first, in order, then to the kept tokens, most frequent
    first, ties by the token's string order (so the result never depends on dict order). With
    the default specials, ``"<pad>"`` is id 0 (``pad_id``) and ``"<unk>"`` id 1 (``unk_id``),
    and a token never seen in training encodes to ``unk_id``. A label vocabulary takes
    ``specials=()``: every id is a real class, ``pad_id`` and ``unk_id`` are None, and an unknown
    label is an :class:`UnknownTokenError`.

    Args:
        min_freq: keep tokens seen at least this often in ``fit``.
        max_size: the most ids in all, specials included; None for no limit. The rarest tokens
            are dropped first.
        specials: reserved tokens given the first ids whatever the data says; ``"<pad>"`` and
            ``"<unk>"`` (if listed) become ``pad_id`` and ``unk_id``; others (say ``"<bos>"``)
            are just reserved.
    """

    def __init__(
        self,
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = (_PAD, _UNK),
    ):
        self.min_freq = _check_int("min_freq", min_freq, 1)
        if isinstance(specials, str):
            raise TypeError(f"specials must be a sequence of strings, got the string {specials!r}")
        specials = list(specials)
        for special in specials:
            if not isinstance(special, str) or not special:
                raise TypeError(
                    f"specials must be non-empty strings, got {special!r} in {specials}"
                )
        if len(set(specials)) != len(specials):
            raise ValueError(f"specials={specials} lists a token twice")
        self.specials = tuple(specials)
        if max_size is not None:
            _check_int("max_size", max_size, 1)
            if max_size < len(self.specials):
                raise ValueError(
                    f"max_size={max_size} is smaller than the {len(self.specials)} specials "
                    f"{list(self.specials)}, which it counts: use max_size >= {len(self.specials)}"
                )
        self.max_size = max_size
        self.pad_id = self.specials.index(_PAD) if _PAD in self.specials else None
        self.unk_id = self.specials.index(_UNK) if _UNK in self.specials else None
        self._tokens: list[str] = list(self.specials)
        self._ids: dict[str, int] = {token: i for i, token in enumerate(self._tokens)}
        self.counts: dict[str, int] = {}
        self._fitted = False

    # --- learning ------------------------------------------------------------------------------

    def fit(self, token_lists: Iterable[Iterable[str]]) -> Vocabulary:
        """Count the tokens of every list in ``token_lists`` and keep the frequent ones.

        Fitting again starts afresh. A special token found in the data keeps its special id.
        ``counts`` holds every token's count (kept or not, specials excluded).
        """
        if isinstance(token_lists, str):
            raise TypeError("token_lists must be an iterable of token lists, got a string")
        counter: Counter = Counter()
        for index, tokens in enumerate(token_lists):
            if isinstance(tokens, str):
                raise TypeError(
                    f"token_lists[{index}] is the string {tokens!r:.80}, not a list of tokens; "
                    "tokenize the texts first (or wrap a single token list in a list)"
                )
            tokens = list(tokens)
            for token in tokens:
                if not isinstance(token, str):
                    raise TypeError(
                        f"token_lists[{index}] holds {token!r} ({type(token).__name__}); "
                        "tokens must be strings"
                    )
            counter.update(tokens)
        for special in self.specials:
            counter.pop(special, None)
        kept = sorted(
            (token for token, count in counter.items() if count >= self.min_freq),
            key=lambda token: (-counter[token], token),
        )
        if self.max_size is not None:
            kept = kept[: self.max_size - len(self.specials)]
        self._tokens = [*self.specials, *kept]
        self._ids = {token: i for i, token in enumerate(self._tokens)}
        self.counts = dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))
        self._fitted = True
        return self

    @property
    def fitted(self) -> bool:
        """Whether ``fit`` has run (or the vocabulary was loaded)."""
        return self._fitted

    # --- lookup --------------------------------------------------------------------------------

    @property
    def tokens(self) -> list[str]:
        """Every token in id order (a copy)."""
        return list(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def _unknown(self, token: Any) -> UnknownTokenError:
        known = self._tokens[:10]
        more = f" and {len(self) - 10} more" if len(self) > 10 else ""
        return UnknownTokenError(
            f"{token!r} is not in the vocabulary, which has no {_UNK!r} to stand for it; "
            f"known: {known}{more}"
        )

    def __getitem__(self, token: str) -> int:
        """The id of ``token``; an unknown token is ``unk_id`` if there is one, else an error."""
        id_ = self._ids.get(token)
        if id_ is not None:
            return id_
        if self.unk_id is not None:
            return self.unk_id
        raise self._unknown(token)

    def unwanted_ids(self, allow_unk: bool = False) -> list[int]:
        """The ids a generator must never emit (``rnnkit.decoding``'s ``banned``): the
        padding, and ``<unk>`` unless ``allow_unk``; those the vocabulary lacks are left out."""
        unwanted = [self.pad_id] + ([] if allow_unk else [self.unk_id])
        return [i for i in unwanted if i is not None]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """The ids of ``tokens``; unknown ones become ``unk_id`` (or raise, without ``<unk>``)."""
        if isinstance(tokens, str):
            raise TypeError(
                f"tokens must be a list of tokens, got the string {tokens!r:.80}; "
                "tokenize it first (or wrap a single token in a list)"
            )
        self._require_fitted()
        ids, unk = self._ids, self.unk_id
        if unk is not None:
            return [ids.get(token, unk) for token in tokens]
        out = []
        for token in tokens:
            id_ = ids.get(token)
            if id_ is None:
                raise self._unknown(token)
            out.append(id_)
        return out

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids`` (ints, numpy integers or 0-d tensors); out of range is an error."""
        tokens, size = self._tokens, len(self._tokens)
        out = []
        for position, id_ in enumerate(ids):
            if isinstance(id_, (str, bytes, bool)):
                raise TypeError(f"ids[{position}]={id_!r} is not an integer id")
            try:
                index = int(id_)
            except (TypeError, ValueError):
                raise TypeError(f"ids[{position}]={id_!r} is not an integer id") from None
            if index != id_ or not 0 <= index < size:
                raise ValueError(
                    f"ids[{position}]={id_!r} is not a token id: ids run from 0 to {size - 1}"
                )
            out.append(tokens[index])
        return out

    def count_unknown(self, tokens: Iterable[str]) -> int:
        """How many of ``tokens`` are not in the vocabulary (what ``encode`` maps to unk)."""
        return sum(token not in self._ids for token in tokens)

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise ValueError("this Vocabulary is not fitted: call fit(token_lists) before encoding")

    # --- saving --------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Settings and tokens in id order, as a JSON-able dict (counts are not kept)."""
        self._require_fitted()
        return {
            "min_freq": self.min_freq,
            "max_size": self.max_size,
            "specials": list(self.specials),
            "tokens": list(self._tokens),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Vocabulary:
        """The vocabulary that ``to_dict`` described."""
        expected = {"min_freq", "max_size", "specials", "tokens"}
        if not isinstance(d, dict) or set(d) != expected:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(
                f"a saved Vocabulary is a dict with keys {sorted(expected)}, got {got}"
            )
        vocabulary = cls(min_freq=d["min_freq"], max_size=d["max_size"], specials=d["specials"])
        tokens = d["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("a saved Vocabulary's 'tokens' must be a list of strings")
        if tuple(tokens[: len(vocabulary.specials)]) != vocabulary.specials:
            raise ValueError(
                f"a saved Vocabulary's tokens must start with its specials "
                f"{list(vocabulary.specials)}, got {tokens[: len(vocabulary.specials)]}"
            )
        if vocabulary.max_size is not None and len(tokens) > vocabulary.max_size:
            raise ValueError(
                f"a saved Vocabulary has {len(tokens)} tokens, more than its "
                f"max_size={vocabulary.max_size}"
            )
        if len(set(tokens)) != len(tokens):
            twice = sorted(token for token, n in Counter(tokens).items() if n > 1)[:10]
            raise ValueError(f"a saved Vocabulary lists tokens twice: {twice}")
        vocabulary._tokens = list(tokens)
        vocabulary._ids = {token: i for i, token in enumerate(tokens)}
        vocabulary._fitted = True
        return vocabulary

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``to_dict()`` as JSON (UTF-8) to ``path``; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", "utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """The vocabulary that ``save`` wrote to ``path``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (a saved vocabulary was expected)")
        try:
            d = json.loads(path.read_text("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not a saved vocabulary (invalid JSON: {error})") from None
        try:
            return cls.from_dict(d)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (
            self.min_freq == other.min_freq
            and self.max_size == other.max_size
            and self.specials == other.specials
            and self._tokens == other._tokens
        )

    __hash__ = None  # mutable (fit changes it)

    def __repr__(self) -> str:
        head = self._tokens[:8]
        more = ", ..." if len(self) > 8 else ""
        return f"Vocabulary({len(self)} tokens: {', '.join(map(repr, head))}{more})"
