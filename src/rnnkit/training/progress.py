"""Progress on stderr: a tqdm bar on a terminal, else one plain line per epoch.

A line reads ``epoch 3/10  loss 0.01234  val_loss 0.01500  grad_norm 0.53  1,234 samples/s
2.1 s``; a log file or a CI job gets these, a terminal gets a bar per epoch with the running
loss and throughput, and the same numbers when the epoch ends.
"""

import math
import sys
import time

MODES = ("auto", "bar", "log", "none")

# Columns of a history row that are not metrics of the model.
_NOT_METRICS = ("epoch", "lr", "grad_norm_mean", "grad_norm_max", "seconds", "samples_per_s")


def _number(value: float) -> str:
    """Five decimals in the usual range of a loss, scientific notation far outside it."""
    if math.isfinite(value) and value != 0 and not 1e-3 <= abs(value) < 1e4:
        return f"{value:.4e}"
    return f"{value:.5f}"


def summary(row: dict) -> str:
    """The metrics of a history row, with gradient norm, throughput and time."""
    metrics = [f"{name} {_number(v)}" for name, v in row.items() if name not in _NOT_METRICS]
    return "  ".join(
        [
            *metrics,
            f"grad_norm {row['grad_norm_mean']:.3g}",
            f"{row['samples_per_s']:,.0f} samples/s",
            f"{row['seconds']:.1f} s",
        ]
    )


class Progress:
    """Reports training on stderr in one of ``MODES``; silent where ``enabled`` is False."""

    def __init__(self, mode: str, epochs: int | None, enabled: bool):
        if not enabled:
            mode = "none"
        elif mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode
        self.epochs = epochs
        self._bar = None
        self._started = 0.0  # when the current bar's epoch started

    def _title(self, epoch: int) -> str:
        return f"epoch {epoch}" + (f"/{self.epochs}" if self.epochs else "")

    def start_epoch(self, epoch: int, steps: int) -> None:
        """A new bar of ``steps`` optimizer steps (bar mode)."""
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._started = time.perf_counter()
            self._bar = tqdm(
                total=steps, desc=self._title(epoch), unit="step", file=sys.stderr, leave=True
            )

    def step(self, running_loss: float, samples: int) -> None:
        """One optimizer step done; ``samples`` seen so far this epoch."""
        if self._bar is not None:
            rate = samples / max(time.perf_counter() - self._started, 1e-9)
            postfix = f"loss {_number(running_loss)}  {rate:,.0f} samples/s"
            self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update()

    def end_epoch(self, row: dict) -> None:
        """The epoch's summary: on its bar, or as a line."""
        if self._bar is not None:
            self._bar.set_postfix_str(summary(row), refresh=False)
            self._bar.close()
            self._bar = None
        elif self.mode == "log":
            print(f"{self._title(row['epoch'])}  {summary(row)}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Close a bar left open by an epoch that raised."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
