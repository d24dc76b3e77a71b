"""Step-by-step inference for live streams: a model fed a sequence piece by piece, what it
needs of the past kept between calls, so that every answer equals reading the whole sequence
so far at once.

``Stream`` holds that state; a task's ``stream()`` says what a piece is and what comes back:

- ``LanguageModeler.stream()``: text in (a character, a word, a chunk), the next token's
  probabilities after each of its tokens out; the recurrent state carries over. A graph of
  the same step, tokens and state in, logits and state out, is what ``export`` writes.
- ``Classifier.stream()``: pieces of a long signal (or text) in, the class probabilities
  after each out; each ensemble member's recurrent state carries over (models that pool by
  the last step and read forward only).
- ``Forecaster.stream()``: new rows of the series in, the forecast from the newest row out;
  what carries over is the window of the last rows the model reads (a forecaster starts its
  state afresh at every window, as it was trained).
"""

from __future__ import annotations

from collections.abc import Callable


class Stream:
    """Feeds a model a sequence a piece at a time.

    ``step(piece, state) -> (answer, new state)`` does the work; ``state`` starts as None and
    ``reset()`` puts it back there (a new text, a new series).
    """

    def __init__(self, step: Callable):
        self._step = step
        self.state = None
        self.fed = 0  # pieces fed since the start or the last reset

    def feed(self, piece):
        """The answer after ``piece``, read after everything fed before it."""
        answer, self.state = self._step(piece, self.state)
        self.fed += 1
        return answer

    def reset(self) -> None:
        """Forget what was fed: the next piece starts a new sequence."""
        self.state, self.fed = None, 0
