"""Training time of rnnkit's recurrent layers against the peers a user would otherwise pick.

Configurations C1–C4 of BENCHMARKS.md, on the CPU. For each configuration and cell, rnnkit's
fused backend runs beside torch.nn's layer holding the same weights, the hand-written autograd
loop of the same cell (``handwritten.py``; single-layer configurations), rnnkit's reference
backend, and rnnkit with ``backend="auto"`` where auto picks another backend. For C3 and C4 the
variants that leave torch's fused kernels (layer norm, variational dropout, zoneout, Cho's GRU,
sigmoid Elman) run beside their hand-written loop, the reference backend and ``nn.LSTM`` of the
same size (the "cliff").

One measurement is one training step: forward, then backward of a fixed random output gradient
w.r.t. the input (``x.requires_grad_()``) and every weight, starting with no gradients (as after
``optimizer.zero_grad()``). The layers of one comparison run interleaved (A B C A B C …) in one
process on the same input, after warm-up runs; the tables show the medians. Python's garbage
collector is off inside a timed step, as in ``timeit``.

Not measured here: the GPU rules of BENCHMARKS.md (this script is CPU only), and Keras 3, which
``seed_model.py`` times on the tutorials' whole model (``python -m benchmarks seed-model``).
"""

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import torch
from torch import nn

import rnnkit as rk

from . import handwritten as hw

THREADS = 2
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_SECONDS = 4.0  # timed seconds per comparison when the number of runs is automatic
MIN_RUNS, MAX_RUNS = 5, 50
WARMUP_RUNS = 2
CHECK_TOLERANCE = 1e-3  # max |fused - peer| of the eval-mode outputs before a row is flagged;
# float32 drifts about 2e-4 from float64 over 100 steps of a layer-normalised LSTM, in fused and
# reference alike (measured), while a wrong function is off by far more.

# Family: (torch.nn layer, rnnkit layer, gates G in the FLOP formula, the user's own loop).
FAMILIES = {
    "LSTM": (nn.LSTM, rk.LSTM, 4, hw.LSTMCellLoop),
    "GRU": (nn.GRU, rk.GRU, 3, hw.gru_cell_loop),
    "Elman": (nn.RNN, rk.RNN, 1, hw.rnn_cell_loop),
}


@dataclass(frozen=True)
class Config:
    name: str
    cells: tuple[str, ...]
    batch: int
    steps: int
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def shape(self) -> str:
        return (
            f"N={self.batch} T={self.steps} I={self.input_size} H={self.hidden_size} "
            f"{self.num_layers}x{self.directions}"
        )

    def tiny(self) -> "Config":
        """The same layout at toy size, for ``--quick``."""
        return replace(self, batch=min(self.batch, 2), steps=8, input_size=16, hidden_size=16)


CONFIGS = {
    config.name: config
    for config in (
        Config("C1", ("LSTM", "GRU", "Elman"), 1, 150, 256, 256),
        Config("C2", ("LSTM", "GRU"), 16, 113, 128, 128, num_layers=3, bidirectional=True),
        Config("C3", ("LSTM", "GRU", "Elman"), 32, 100, 256, 256),
        Config("C4", ("LSTM", "GRU"), 64, 100, 512, 512),
    )
}
VARIANTS_CONFIGS = ("C3", "C4")


@dataclass(frozen=True)
class Variant:
    """A variant (C3, C4): rnnkit options, the FLOP formula's family, the user's own loop."""

    name: str
    family: str
    options: dict
    hand: Callable[[int, int], nn.Module]
    hand_name: str


VARIANTS = (
    Variant("LSTM", "LSTM", {}, hw.LSTMCellLoop, "nn.LSTMCell loop"),
    Variant("LN-LSTM", "LSTM", {"layer_norm": True}, hw.LayerNormLSTMLoop, "LayerNorm loop"),
    Variant(
        "LSTM variational dropout 0.25",
        "LSTM",
        {"input_dropout": 0.25, "recurrent_dropout": 0.25},
        partial(hw.LSTMCellLoop, input_dropout=0.25, recurrent_dropout=0.25),
        "nn.LSTMCell loop, x*mask, h*mask",
    ),
    Variant(
        "LSTM zoneout=0.1",
        "LSTM",
        {"zoneout": 0.1},
        partial(hw.LSTMCellLoop, zoneout=0.1),
        "nn.LSTMCell loop, zoneout",
    ),
    Variant(
        "GRU reset_after=False",
        "GRU",
        {"reset_after": False},
        hw.ResetBeforeGRULoop,
        "matmul loop",
    ),
    Variant(
        "Elman sigmoid", "Elman", {"activation": "sigmoid"}, hw.SigmoidElmanLoop, "matmul loop"
    ),
)


def training_flops(config: Config, gates: int) -> int:
    """3 × the forward FLOPs 2·N·T·G·H·(I+H), summed over layers and directions."""
    N, T, H = config.batch, config.steps, config.hidden_size
    total, size = 0, config.input_size
    for _ in range(config.num_layers):
        total += config.directions * 2 * N * T * gates * H * (size + H)
        size = H * config.directions
    return 3 * total


# ------------------------------------------------------------------------- one training step


@dataclass
class Runner:
    """One contestant of a comparison: a module and how to get its output sequence from x."""

    label: str
    module: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    flops: int
    times: list[float] = field(default_factory=list)


def first_output(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """For layers that return ``(output, state)``."""
    return lambda x: module(x)[0]


def clear_grads(runner: Runner, x: torch.Tensor) -> None:
    x.grad = None
    runner.module.zero_grad(set_to_none=True)


def training_step(runner: Runner, x: torch.Tensor, grad_out: torch.Tensor) -> None:
    runner.forward(x).backward(grad_out)


def timed_step(runner: Runner, x: torch.Tensor, grad_out: torch.Tensor) -> float:
    clear_grads(runner, x)
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        training_step(runner, x, grad_out)
        return time.perf_counter() - start
    finally:
        gc.enable()


def run_interleaved(runners, x, grad_out, warmup: int, repeats: int | None) -> int:
    """Warm up, then time rounds A B C …; -> the number of timed rounds.

    ``repeats=None`` picks the rounds from the warm-up: about TARGET_SECONDS of timed work,
    never fewer than MIN_RUNS nor more than MAX_RUNS.
    """
    round_seconds = 0.0
    for _ in range(warmup):
        round_seconds = sum(timed_step(r, x, grad_out) for r in runners)
    if repeats is None:
        wanted = math.ceil(TARGET_SECONDS / max(round_seconds, 1e-9))
        repeats = min(MAX_RUNS, max(MIN_RUNS, wanted))
    for _ in range(repeats):
        for runner in runners:
            runner.times.append(timed_step(runner, x, grad_out))
    return repeats


@contextlib.contextmanager
def quiet_stderr():
    """Hide what the profiler's C++ side prints (start/stop lines, a warning about blocks
    allocated before it started) by pointing file descriptor 2 at /dev/null for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_mib(runner: Runner, x: torch.Tensor, grad_out: torch.Tensor) -> float | None:
    """Peak of the bytes allocated through PyTorch's CPU allocator during one training step,
    above what was live before it (weights and x, not counted); None if it cannot be read.

    The profiler records every allocation and free made through c10's CPU allocator, which
    oneDNN's (ideep's) buffers also use, on the profiled thread; this sums them in time order.
    Memory that a library allocates on its own, or on a thread the profiler does not follow,
    is not seen. PyTorch's public API has no CPU peak-memory counter; the event tree read here
    is a private one, hence the None if it changes.
    """
    try:
        from torch._C._profiler import _EventType

        clear_grads(runner, x)
        with (
            quiet_stderr(),
            torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
            ) as prof,
        ):
            training_step(runner, x, grad_out)
        allocations = []
        pending = list(prof.profiler.kineto_results.experimental_event_tree())
        while pending:
            event = pending.pop()
            if event.tag == _EventType.Allocation:
                allocations.append((event.start_time_ns, event.extra_fields.alloc_size))
            pending.extend(event.children)
    except (ImportError, AttributeError, RuntimeError):
        return None
    if not allocations:
        return None
    live = peak = 0
    for _, size in sorted(allocations, key=lambda a: a[0]):
        live += size
        peak = max(peak, live)
    return peak / 2**20


def max_output_difference(a: Runner, b: Runner, x: torch.Tensor) -> float:
    """max |a(x) - b(x)| in eval mode (no dropout, zoneout as its expectation)."""
    a.module.eval()
    b.module.eval()
    with torch.no_grad():
        difference = (a.forward(x) - b.forward(x)).abs().max().item()
    a.module.train()
    b.module.train()
    return difference


# ------------------------------------------------------------------------- the comparisons


def compare(runners, check_against, x, args) -> dict:
    """Check, time and measure ``runners`` (the first is rnnkit fused); -> one result row."""
    fused = runners[0]
    difference = max(max_output_difference(fused, peer, x) for peer in check_against)
    with torch.no_grad():
        grad_out = torch.randn_like(fused.forward(x))
    x.requires_grad_()
    rounds = run_interleaved(runners, x, grad_out, args.warmup, args.repeats)
    row = {"max_abs_diff": difference, "rounds": rounds, "runners": {}}
    for runner in runners:
        median = statistics.median(runner.times)
        q1, _, q3 = statistics.quantiles(runner.times, n=4) if len(runner.times) > 1 else [0] * 3
        row["runners"][runner.label] = {
            "median_ms": median * 1e3,
            "iqr_ms": (q3 - q1) * 1e3,
            "times_ms": [t * 1e3 for t in runner.times],
            "gflops": runner.flops / median / 1e9,
            "training_flops": runner.flops,
            "peak_mib": peak_memory_mib(runner, x, grad_out),
        }
    return row


def input_for(config: Config) -> torch.Tensor:
    return torch.randn(config.batch, config.steps, config.input_size)


def rnnkit_runners(make_layer, flops: int, with_auto: bool) -> tuple[list[Runner], dict]:
    """Runners for rnnkit's fused and reference backends (and auto, where it picks another)."""
    fused = make_layer("fused")
    runners = [Runner("fused", fused, first_output(fused), flops)]
    auto = make_layer("auto")
    info = {"auto_backend": auto.backend_in_use, "auto_reason": auto.backend_reason}
    if with_auto and auto.backend_in_use != "fused":
        runners.append(Runner("auto", auto, first_output(auto), flops))
    reference = make_layer("reference")
    runners.append(Runner("reference", reference, first_output(reference), flops))
    return runners, info


def compare_with_torch(config: Config, family: str, args) -> dict:
    """rnnkit fused (and auto) against torch.nn's layer and the user's loop, same weights."""
    torch_class, rnnkit_class, gates, hand_loop = FAMILIES[family]
    torch.manual_seed(0)
    peer = torch_class(
        config.input_size,
        config.hidden_size,
        config.num_layers,
        batch_first=True,
        bidirectional=config.bidirectional,
    )
    flops = training_flops(config, gates)
    runners, info = rnnkit_runners(
        lambda backend: rnnkit_class.from_torch(peer, backend=backend), flops, with_auto=True
    )
    runners.append(Runner("torch", peer, first_output(peer), flops))
    if config.num_layers == 1 and not config.bidirectional:
        hand = hand_loop(config.input_size, config.hidden_size)
        hw.load_cell_weights(hand, runners[0].module.cells[0])
        runners.append(Runner("hand", hand, hand, flops))
    row = {
        "kind": "vs_torch",
        "config": config.name,
        "cell": family,
        "shape": config.shape(),
        "peer": f"nn.{torch_class.__name__}",
        **info,
    }
    row.update(compare(runners, runners[1:], input_for(config), args))
    return row


def compare_variant(config: Config, variant: Variant, args) -> dict:
    """rnnkit fused against the user's own loop and nn.LSTM of the same size (the cliff)."""
    _, rnnkit_class, gates, _ = FAMILIES[variant.family]
    flops = training_flops(config, gates)

    def make_layer(backend):
        torch.manual_seed(0)
        return rnnkit_class(
            config.input_size, config.hidden_size, backend=backend, **variant.options
        )

    runners, info = rnnkit_runners(make_layer, flops, with_auto=False)
    hand = variant.hand(config.input_size, config.hidden_size)
    hw.load_cell_weights(hand, runners[0].module.cells[0])
    lstm = nn.LSTM(config.input_size, config.hidden_size, batch_first=True)
    runners += [
        Runner("hand", hand, hand, flops),
        Runner("nn.LSTM", lstm, first_output(lstm), training_flops(config, 4)),
    ]
    row = {
        "kind": "variant",
        "config": config.name,
        "variant": variant.name,
        "shape": config.shape(),
        "hand_loop": variant.hand_name,
        **info,
    }
    row.update(compare(runners, runners[1:3], input_for(config), args))
    return row


# ------------------------------------------------------------------------- report


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = None
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "flush_denormal": True,
        "torch": torch.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "rnnkit": rk.__version__,
        "git": commit,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def fmt_ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def flagged(row: dict, text: str) -> str:
    return f"{text} ⚠" if row["max_abs_diff"] > CHECK_TOLERANCE else text


def spread(row: dict) -> str:
    """The largest interquartile range of the row's contestants, as a share of their median."""
    return f"{max(r['iqr_ms'] / r['median_ms'] for r in row['runners'].values()):.0%}"


def markdown_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def ratio(row: dict, numerator: str, denominator: str) -> str:
    """time of ``numerator`` / time of ``denominator``, or n/a if either did not run."""
    runners = row["runners"]
    if numerator not in runners or denominator not in runners:
        return "n/a"
    return f"{runners[numerator]['median_ms'] / runners[denominator]['median_ms']:.2f}"


def runner_value(row: dict, label: str, key: str, digits: int = 1) -> str:
    runner = row["runners"].get(label)
    return "n/a" if runner is None else fmt(runner[key], digits)


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        "## rnnkit training step (forward + backward w.r.t. x and weights), CPU",
        "",
        f"{meta['cpu']}, {meta['torch_threads']} threads ({meta['cpu_count']} CPUs), "
        f"torch {meta['torch']} (oneDNN {'on' if meta['mkldnn'] else 'off'}), "
        f"rnnkit {meta['rnnkit']} ({meta['git']}), {meta['date']}; "
        f"CPUs busy with other work just before the run: {fmt_share(meta['cpu_busy_before'])}; "
        f"1-min load average after it: {fmt(meta['load_average_after'], 2)}"
        + (", **--quick: toy shapes, not a measurement**" if meta["quick"] else ""),
        "",
        "Medians of interleaved runs. Speed-up columns are peer time ÷ fused time (above 1: "
        "fused is faster); `auto ÷ torch` is the time of rnnkit with backend='auto' over "
        "torch's. GFLOP/s = 3·2·N·T·G·H·(I+H) per layer and direction / median time. Peak MiB "
        "= peak of the bytes allocated through PyTorch's CPU allocator during one step, above "
        "the weights and x (profiler allocation events; memory a library allocates on its own "
        "is not seen). Spread = the largest interquartile range among the contestants / its "
        "median (the machine is shared and noisy).",
    ]
    plain = [r for r in rows if r["kind"] == "vs_torch"]
    if plain:
        lines += [
            "",
            "### Every cell: fused against torch.nn, the hand-written loop, and reference",
            "",
            markdown_row(
                (
                    "config",
                    "cell",
                    "shape",
                    "fused ms",
                    "torch ÷ fused",
                    "hand ÷ fused",
                    "reference ÷ fused",
                    "auto picks",
                    "auto ÷ torch",
                    "fused GFLOP/s",
                    "torch GFLOP/s",
                    "MiB fused / reference / torch",
                    "runs",
                    "spread",
                )
            ),
            "|---|---|---|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|",
        ]
        for row in plain:
            auto = "fused" if row["auto_backend"] == "fused" else "auto"
            memory = " / ".join(
                runner_value(row, label, "peak_mib") for label in ("fused", "reference", "torch")
            )
            lines.append(
                markdown_row(
                    (
                        row["config"],
                        f"{row['cell']} vs {row['peer']}",
                        row["shape"],
                        fmt_ms(row["runners"]["fused"]["median_ms"]),
                        flagged(row, ratio(row, "torch", "fused")),
                        ratio(row, "hand", "fused"),
                        ratio(row, "reference", "fused"),
                        row["auto_backend"],
                        ratio(row, auto, "torch"),
                        runner_value(row, "fused", "gflops"),
                        runner_value(row, "torch", "gflops"),
                        memory,
                        str(row["rounds"]),
                        spread(row),
                    )
                )
            )
    variants = [r for r in rows if r["kind"] == "variant"]
    if variants:
        lines += [
            "",
            "### Leaving the vendor kernel: the variants torch.nn has no fused layer for",
            "",
            "Fused against a hand-written autograd loop of the same cell and weights, and its "
            "time against plain nn.LSTM of the same size (the cliff: `fused ÷ nn.LSTM` is a "
            "time ratio, below 1.5 is the target). GFLOP/s counts the gate GEMMs of the cell's "
            "family only (no LayerNorm or elementwise work).",
            "",
            markdown_row(
                (
                    "config",
                    "variant",
                    "hand loop",
                    "fused ms",
                    "hand ÷ fused",
                    "reference ÷ fused",
                    "fused ÷ nn.LSTM",
                    "fused GFLOP/s",
                    "MiB fused / reference / hand",
                    "runs",
                    "spread",
                )
            ),
            "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for row in variants:
            memory = " / ".join(
                runner_value(row, label, "peak_mib") for label in ("fused", "reference", "hand")
            )
            lines.append(
                markdown_row(
                    (
                        row["config"],
                        row["variant"],
                        row["hand_loop"],
                        fmt_ms(row["runners"]["fused"]["median_ms"]),
                        flagged(row, ratio(row, "hand", "fused")),
                        ratio(row, "reference", "fused"),
                        ratio(row, "fused", "nn.LSTM"),
                        runner_value(row, "fused", "gflops"),
                        memory,
                        str(row["rounds"]),
                        spread(row),
                    )
                )
            )
    if any(r["max_abs_diff"] > CHECK_TOLERANCE for r in rows):
        lines += [
            "",
            f"⚠ fused's eval-mode output differs from a peer's by more than "
            f"{CHECK_TOLERANCE:g}: they do not compute the same function (see max_abs_diff "
            "in the JSON).",
        ]
    return "\n".join(lines) + "\n"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_average() -> float | None:
    """The 1-minute load average (this run's own work included)."""
    with contextlib.suppress(OSError, AttributeError):
        return os.getloadavg()[0]
    return None


def busy_share(seconds: float = 1.0) -> float | None:
    """Share of the machine's CPU time spent busy over ``seconds`` while this process sleeps:
    how much other work competes for the cores right now (Linux /proc/stat; else None)."""

    def totals() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split()[1:9]]
        return sum(values), values[3] + values[4]  # all, idle + iowait

    with contextlib.suppress(OSError, ValueError):
        all_before, idle_before = totals()
        time.sleep(seconds)
        all_after, idle_after = totals()
        elapsed = all_after - all_before
        return 1 - (idle_after - idle_before) / elapsed if elapsed else None
    return None


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def prepare_cpu() -> float | None:
    """Warn when other work shares the CPUs, then fix threads; returns the busy share."""
    busy = busy_share()
    if busy is not None and busy > 0.25:
        log(
            f"warning: other work keeps {busy:.0%} of the CPUs busy; it competes for the "
            "cores and will inflate (and scatter) every time"
        )
    torch.set_num_threads(THREADS)
    torch.set_flush_denormal(True)
    return busy


def run(args) -> dict:
    busy_before = prepare_cpu()
    configs = [CONFIGS[name] for name in args.configs]
    if args.quick:
        configs = [config.tiny() for config in configs]
    rows = []
    for config in configs:
        for family in config.cells:
            log(f"{config.name} {family} vs torch ({config.shape()}) …")
            rows.append(compare_with_torch(config, family, args))
        if config.name in VARIANTS_CONFIGS:
            for variant in VARIANTS:
                log(f"{config.name} {variant.name} vs hand loop and nn.LSTM …")
                rows.append(compare_variant(config, variant, args))
    meta = machine()
    meta.update(
        cpu_busy_before=busy_before,
        load_average_after=load_average(),
        quick=args.quick,
        warmup=args.warmup,
        repeats=args.repeats or f"auto ({MIN_RUNS}..{MAX_RUNS}, ~{TARGET_SECONDS:g} s timed)",
        configs={config.name: asdict(config) for config in configs},
    )
    return {"meta": meta, "results": rows}


def default_json_path(quick: bool) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return RESULTS_DIR / f"rnn_training-{stamp}{'-quick' if quick else ''}.json"


def main(args) -> None:
    started = time.perf_counter()
    report = run(args)
    print(markdown(report["meta"], report["results"]), end="")
    path = Path(args.json) if args.json else default_json_path(args.quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    log(f"wrote {path} ({time.perf_counter() - started:.0f} s)")
