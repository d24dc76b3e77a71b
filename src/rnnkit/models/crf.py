"""A linear-chain conditional random field: the output layer of a sequence tagger.

A tagger's network gives, at every step ``t`` of a sentence, one score per tag (the
*emissions*). Choosing each step's best tag on its own ignores that tags depend on each other
(``I-PER`` cannot follow ``O`` in BIO); a CRF scores whole tag sequences instead, adding a
learned score for every pair of neighbouring tags, and is trained by the exact likelihood of
the gold sequence among all ``K^T`` sequences (Lafferty et al. 2001; Lample et al. 2016,
"Neural Architectures for Named Entity Recognition", for the BiLSTM-CRF form used here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._checks import check_integer

# Score given to a forbidden transition, start or end. A finite number, not -inf: a
# log-sum-exp over rows that are all forbidden stays finite, and so do its gradients.
DISALLOWED = -1e4

_TAG_PATTERN = re.compile(r"^([BIES])-(.+)$")


class CRF(nn.Module):
    r"""Linear-chain CRF over ``K`` tags, batched and masked by sequence lengths.

    For emissions ``e`` of one sentence of length ``T`` (``e[t, k]`` is the network's score of
    tag ``k`` at step ``t``) and a tag sequence ``y = (y_1, …, y_T)``:

    .. math::

        s(y) = \mathrm{start}[y_1] + \sum_{t=1}^{T} e[t, y_t]
               + \sum_{t=2}^{T} \mathrm{trans}[y_{t-1}, y_t] + \mathrm{end}[y_T]

        \log Z = \log \sum_{y' \in \{1..K\}^T} \exp s(y')

        p(y \mid e) = \exp(s(y) - \log Z), \qquad \mathrm{NLL}(y) = \log Z - s(y) \ge 0

    ``log Z`` is computed by the forward algorithm in ``O(T K^2)``:
    ``α_1 = start + e_1``, ``α_t[j] = logsumexp_i(α_{t-1}[i] + trans[i, j]) + e[t, j]``,
    ``log Z = logsumexp_j(α_T[j] + end[j])``; the most likely sequence
    ``argmax_y s(y)`` by the Viterbi algorithm, the same recursion with ``max`` for
    ``logsumexp`` followed by backtracking. Both loop over time only and run the batch and the
    tags as tensor operations. A row of length ``L < T`` stops at ``L``: its ``α`` is carried
    unchanged over the padded steps, so padding never changes a result.

    Constraints (e.g. from :func:`bio_constraints`) replace the score of a forbidden
    transition, start or end tag by ``-1e4`` in scoring and decoding alike: a forbidden path
    keeps a probability of about ``e^{-10000}`` (not exactly 0, which keeps the log-sum-exp
    and its gradients finite) and Viterbi never returns one while an allowed path exists. The
    parameters under a forbidden entry get no gradient.

    Args:
        num_tags: ``K``, the number of tags.
        allowed_transitions: bool ``(K, K)``; ``[i, j]`` says whether tag ``j`` may follow tag
            ``i``. None allows all.
        allowed_start: bool ``(K,)``, the tags a sentence may begin with. None allows all.
        allowed_end: bool ``(K,)``, the tags a sentence may end with (BIOES: not ``B-``/``I-``).
            None allows all.

    Parameters: ``transitions`` ``(K, K)`` (from row tag to column tag), ``start`` ``(K,)``,
    ``end`` ``(K,)``, initialised uniform in ``[-0.1, 0.1]``.

    Example::

        >>> tags = ["O", "B-PER", "I-PER"]
        >>> crf = CRF.from_tags(tags)
        >>> emissions = torch.randn(2, 5, 3)              # (batch, time, tags)
        >>> gold = torch.tensor([[0, 1, 2, 0, 0], [1, 2, 2, 0, 0]])
        >>> lengths = torch.tensor([5, 3])
        >>> loss = crf(emissions, gold, lengths).mean()   # NLL per sentence, averaged
        >>> crf.decode(emissions, lengths).shape          # best tags; 0 past each length
        torch.Size([2, 5])
    """

    allowed_transitions: torch.Tensor
    allowed_start: torch.Tensor
    allowed_end: torch.Tensor

    def __init__(
        self,
        num_tags: int,
        allowed_transitions: Any = None,
        allowed_start: Any = None,
        allowed_end: Any = None,
    ):
        super().__init__()
        check_integer("num_tags", num_tags, 1, got=True)
        self.num_tags = num_tags
        k = num_tags
        self.transitions = nn.Parameter(torch.empty(k, k))
        self.start = nn.Parameter(torch.empty(k))
        self.end = nn.Parameter(torch.empty(k))
        self.register_buffer(
            "allowed_transitions", _mask("allowed_transitions", allowed_transitions, (k, k))
        )
        self.register_buffer("allowed_start", _mask("allowed_start", allowed_start, (k,)))
        self.register_buffer("allowed_end", _mask("allowed_end", allowed_end, (k,)))
        self.reset_parameters()

    @classmethod
    def from_tags(cls, tags: Sequence[str], constrained: bool = True) -> CRF:
        """A CRF over ``tags`` (names in id order), constrained to valid BIO/BIOES sequences.

        With ``constrained=False`` every sequence is allowed (the CRF still learns that
        ``O → I-X`` is unlikely, but may output it).
        """
        tags = list(tags)
        if not constrained:
            return cls(len(tags))
        allowed, allowed_start, allowed_end = _bio_rules(tags)
        return cls(len(tags), allowed, allowed_start, allowed_end)

    def reset_parameters(self) -> None:
        for parameter in (self.transitions, self.start, self.end):
            nn.init.uniform_(parameter, -0.1, 0.1)

    def extra_repr(self) -> str:
        constrained = not (
            self.allowed_transitions.all() and self.allowed_start.all() and self.allowed_end.all()
        )
        return f"num_tags={self.num_tags}, constrained={bool(constrained)}"

    # -- the scores actually used: parameters with forbidden entries replaced ------------------

    def _effective(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        disallowed = self.transitions.new_full((), DISALLOWED)
        return (
            torch.where(self.allowed_transitions, self.transitions, disallowed),
            torch.where(self.allowed_start, self.start, disallowed),
            torch.where(self.allowed_end, self.end, disallowed),
        )

    # -- the model ------------------------------------------------------------------------------

    def forward(
        self, emissions: torch.Tensor, tags: torch.Tensor, lengths: Any = None
    ) -> torch.Tensor:
        """Negative log-likelihood ``log Z − s(tags)`` of each row, shape ``(B,)``.

        Args:
            emissions: ``(B, T, K)`` float scores from the network.
            tags: ``(B, T)`` integer gold tags; values past a row's length are ignored (any
                padding value, e.g. -100, is fine there).
            lengths: ``(B,)`` integers in ``1..T`` (valid steps at the front of each row);
                None means every row has ``T`` steps.

        Raises:
            ValueError: on a bad shape, dtype or value, and when a gold sequence breaks the
                constraints (e.g. ``O → I-PER``: an IOB1 file read as BIO; convert it to
                IOB2, or build the CRF without constraints).
        """
        lengths = self._check(emissions, lengths)
        tags = self._check_tags(tags, emissions, lengths)
        self._check_allowed(tags, lengths)
        return self.log_partition(emissions, lengths) - self.score(emissions, tags, lengths)

    def log_partition(self, emissions: torch.Tensor, lengths: Any = None) -> torch.Tensor:
        """``log Z`` of each row, ``(B,)``: the forward algorithm (see the class docstring)."""
        lengths = self._check(emissions, lengths)
        transitions, start, end = self._effective()
        alpha = start + emissions[:, 0]  # (B, K)
        for t in range(1, int(lengths.max())):
            # (B, K, 1) + (K, K) -> (B, K, K) over (previous i, next j); reduce over i.
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emissions[:, t]
            alpha = torch.where((t < lengths).unsqueeze(1), step, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    def score(
        self, emissions: torch.Tensor, tags: torch.Tensor, lengths: Any = None
    ) -> torch.Tensor:
        """``s(tags)`` of each row, ``(B,)``, with the constrained scores (see the class)."""
        lengths = self._check(emissions, lengths)
        tags = self._check_tags(tags, emissions, lengths)
        transitions, start, end = self._effective()
        steps = emissions.shape[1]
        valid = _valid(lengths, steps)  # (B, T) bool
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        total = start[tags[:, 0]] + (emitted * valid).sum(1)
        if steps > 1:
            moves = transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
            total = total + (moves * valid[:, 1:]).sum(1)
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        return total + end[last]

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, lengths: Any = None) -> torch.Tensor:
        """The most likely tag sequence of each row (Viterbi), long ``(B, T)``.

        Positions at or past a row's length hold 0. Ties go to the lowest tag id.
        """
        lengths = self._check(emissions, lengths)
        transitions, start, end = self._effective()
        batch, steps, k = emissions.shape
        best = start + emissions[:, 0]  # (B, K): best score of a path ending in each tag
        identity = torch.arange(k, device=emissions.device).expand(batch, k)
        backpointers = []  # step t-1 holds, for each tag at t, the best tag at t-1
        for t in range(1, int(lengths.max())):
            candidates = best.unsqueeze(2) + transitions  # (B, K previous, K next)
            step_best, step_pointer = candidates.max(dim=1)
            active = (t < lengths).unsqueeze(1)
            best = torch.where(active, step_best + emissions[:, t], best)
            # Past a row's end the pointer is the identity, so backtracking from the last
            # step walks unchanged back to the row's real last step.
            backpointers.append(torch.where(active, step_pointer, identity))
        current = (best + end).argmax(dim=1)  # (B,)
        path = torch.zeros(batch, steps, dtype=torch.long, device=emissions.device)
        path[:, len(backpointers)] = current
        for t in range(len(backpointers), 0, -1):
            current = backpointers[t - 1].gather(1, current.unsqueeze(1)).squeeze(1)
            path[:, t - 1] = current
        return path * _valid(lengths, steps)

    # -- checks ---------------------------------------------------------------------------------

    def _check(self, emissions: torch.Tensor, lengths: Any) -> torch.Tensor:
        """Checks ``emissions`` and returns ``lengths`` as a long tensor on its device."""
        if not isinstance(emissions, torch.Tensor):
            raise ValueError(
                f"emissions must be a float tensor (batch, time, {self.num_tags}), "
                f"got {type(emissions).__name__}"
            )
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(
                f"emissions must have shape (batch, time, num_tags={self.num_tags}), "
                f"got {tuple(emissions.shape)}"
            )
        if not emissions.is_floating_point():
            raise ValueError(f"emissions must be floating point, got dtype {emissions.dtype}")
        batch, steps, _ = emissions.shape
        if batch == 0 or steps == 0:
            raise ValueError(
                f"emissions must have at least one row and one step, got {tuple(emissions.shape)}"
            )
        if lengths is None:
            return torch.full((batch,), steps, dtype=torch.long, device=emissions.device)
        lengths = torch.as_tensor(lengths)
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.is_complex():
            raise ValueError(f"lengths must hold integers, got dtype {lengths.dtype}")
        if tuple(lengths.shape) != (batch,):
            raise ValueError(
                f"lengths must have shape (batch,) = ({batch},) to match emissions "
                f"{tuple(emissions.shape)}, got {tuple(lengths.shape)}"
            )
        lengths = lengths.to(device=emissions.device, dtype=torch.long)
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > steps:
            bad = int(((lengths < 1) | (lengths > steps)).nonzero()[0, 0])
            raise ValueError(
                f"lengths must be in 1..{steps} (the time size of emissions), got "
                f"lengths[{bad}] = {int(lengths[bad])}"
            )
        return lengths

    def _check_tags(
        self, tags: torch.Tensor, emissions: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """``tags`` as long, with positions past each length set to 0 (so they can index)."""
        if not isinstance(tags, torch.Tensor):
            raise ValueError(f"tags must be an integer tensor, got {type(tags).__name__}")
        if tuple(tags.shape) != tuple(emissions.shape[:2]):
            raise ValueError(
                f"tags must have shape (batch, time) = {tuple(emissions.shape[:2])} to match "
                f"emissions {tuple(emissions.shape)}, got {tuple(tags.shape)}"
            )
        if tags.dtype.is_floating_point or tags.dtype == torch.bool or tags.is_complex():
            raise ValueError(f"tags must hold integer tag ids, got dtype {tags.dtype}")
        tags = tags.to(device=emissions.device, dtype=torch.long)
        valid = _valid(lengths, tags.shape[1])
        bad = valid & ((tags < 0) | (tags >= self.num_tags))
        if bad.any():
            row, step = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"tags must be in 0..{self.num_tags - 1} at valid positions, got "
                f"tags[{row}, {step}] = {int(tags[row, step])} (lengths[{row}] = "
                f"{int(lengths[row])})"
            )
        return tags * valid

    def _check_allowed(self, tags: torch.Tensor, lengths: torch.Tensor) -> None:
        """A gold sequence must be an allowed one, or its NLL would be about 10000."""
        steps = tags.shape[1]
        valid = _valid(lengths, steps)
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        problems = []
        bad_start = ~self.allowed_start[tags[:, 0]]
        if bad_start.any():
            row = int(bad_start.nonzero()[0, 0])
            problems.append(f"row {row} starts with tag {int(tags[row, 0])}")
        if steps > 1:
            bad_move = ~self.allowed_transitions[tags[:, :-1], tags[:, 1:]] & valid[:, 1:]
            if bad_move.any():
                row, step = (int(i) for i in bad_move.nonzero()[0])
                problems.append(
                    f"row {row} has tag {int(tags[row, step])} -> {int(tags[row, step + 1])} "
                    f"at steps {step} -> {step + 1}"
                )
        bad_end = ~self.allowed_end[last]
        if bad_end.any():
            row = int(bad_end.nonzero()[0, 0])
            problems.append(f"row {row} ends with tag {int(last[row])}")
        if problems:
            raise ValueError(
                "tags break the CRF's constraints (forbidden start, transition or end): "
                + "; ".join(problems)
                + ". Gold tags must be valid sequences (IOB1 data must be converted to "
                "IOB2/BIO first), or build the CRF without constraints"
            )


def _valid(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) bool: True at the first ``lengths[b]`` steps of row b."""
    return torch.arange(steps, device=lengths.device) < lengths.unsqueeze(1)


def _mask(name: str, value: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """A bool constraint mask of ``shape`` (all True for None), checked."""
    if value is None:
        return torch.ones(shape, dtype=torch.bool)
    mask = torch.as_tensor(value)
    if mask.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor, got dtype {mask.dtype}")
    if tuple(mask.shape) != shape:
        raise ValueError(f"{name} must have shape {shape} (num_tags), got {tuple(mask.shape)}")
    if not mask.any():
        raise ValueError(f"{name} allows nothing (all False); no tag sequence would be possible")
    return mask.clone()


def _split(tag: str, index: int) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``, ``"O"`` -> ``("O", "")``; anything else is an error."""
    if tag == "O":
        return "O", ""
    match = _TAG_PATTERN.match(tag) if isinstance(tag, str) else None
    if match is None:
        raise ValueError(
            f"tags[{index}] = {tag!r} is not a BIO/BIOES tag; expected 'O' or "
            "'B-TYPE', 'I-TYPE', 'E-TYPE', 'S-TYPE'"
        )
    return match.group(1), match.group(2)


def _bio_rules(tags: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(allowed transitions, allowed start, allowed end) for BIO, or BIOES if E-/S- occur."""
    parts = [_split(tag, index) for index, tag in enumerate(tags)]
    if len(set(tags)) != len(tags):
        raise ValueError(f"tags must be distinct, got duplicates in {list(tags)}")
    bioes = any(prefix in "ES" for prefix, _ in parts)
    k = len(parts)
    allowed = torch.zeros(k, k, dtype=torch.bool)
    for i, (prefix_i, type_i) in enumerate(parts):
        for j, (prefix_j, type_j) in enumerate(parts):
            if bioes:
                # Inside an entity (after B-/I-) only I-/E- of the same type may come; outside
                # (after O, E-, S-) only O, B-, S-.
                if prefix_i in "BI":
                    ok = prefix_j in "IE" and type_j == type_i
                else:
                    ok = prefix_j in "OBS"
            else:
                ok = prefix_j != "I" or (prefix_i in "BI" and type_j == type_i)
            allowed[i, j] = ok
    allowed_start = torch.tensor([prefix in ("OBS" if bioes else "OB") for prefix, _ in parts])
    allowed_end = torch.tensor([prefix in "OES" or not bioes for prefix, _ in parts])
    return allowed, allowed_start, allowed_end


def bio_constraints(tags: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The transitions and start tags a valid BIO (IOB2) or BIOES tag sequence allows.

    ``tags`` are the tag names in id order (the label vocabulary). The scheme is BIOES when any
    tag starts with ``E-`` or ``S-``, BIO otherwise. BIO: ``I-X`` may only follow ``B-X`` or
    ``I-X``, and may not begin a sentence. BIOES: ``B-X``/``I-X`` must be followed by ``I-X``
    or ``E-X``; ``O``, ``E-X``, ``S-X`` by ``O``, ``B-Y`` or ``S-Y``; a sentence begins with
    ``O``, ``B-`` or ``S-`` (and, see :func:`bio_allowed_end`, ends with ``O``, ``E-`` or
    ``S-``; :meth:`CRF.from_tags` applies all three).

    Returns:
        ``(allowed (K, K), allowed_start (K,))`` bool tensors for :class:`CRF`; ``allowed[i,
        j]`` says whether tag ``j`` may follow tag ``i``.

    Raises:
        ValueError: for a tag that is neither ``O`` nor ``B-/I-/E-/S-TYPE``, or duplicates.
    """
    allowed, allowed_start, _ = _bio_rules(tags)
    return allowed, allowed_start


def bio_allowed_end(tags: Sequence[str]) -> torch.Tensor:
    """The tags a sentence may end with, bool ``(K,)``: all for BIO; ``O``, ``E-``, ``S-`` for
    BIOES (an entity cannot stop on ``B-``/``I-``). See :func:`bio_constraints`."""
    return _bio_rules(tags)[2]
