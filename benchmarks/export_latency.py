"""Inference of exported graphs against PyTorch eager: ``python -m benchmarks export``.

Two models as the tasks export them (``rnnkit.export``): a text classifier (an embedding of
20,000 tokens, a bidirectional LSTM of 128 units, attention pooling; 50 tokens a review)
and a language model's step (2 x LSTM(512), 10,000 tokens; one token in, with its state, as
generation runs). Each runs at batch 1 and 64 on one thread: PyTorch eager on the backend
``auto`` picks (oneDNN's LSTM in eval), ONNX Runtime on the exported ONNX file, and the
``.pt2`` program that ``torch.export`` wrote. Untrained weights: the time does not depend on
them. Prints a Markdown table (median milliseconds a call, sequences a second, and the
speed-up over eager), and the files' sizes; needs ``rnnkit[export]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rnnkit import export
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.models.language_model import LanguageModel


def _classifier() -> tuple[torch.nn.Module, callable, dict]:
    model = SequenceClassifier(2, vocab_size=20_000, embedding_dim=128, hidden_size=128,
                               bidirectional=True, pooling="attention").eval()  # fmt: skip

    def sample(batch: int, steps: int = 50) -> dict:
        return export.sequence_inputs(batch, steps, vocab_size=20_000)

    return model, sample, export.BATCH_AND_TIME


class _Step(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, h, c):
        logits, (h, c) = self.model(tokens, state=(h, c))
        return logits, h, c


def _language_model() -> tuple[torch.nn.Module, callable, dict]:
    model = _Step(LanguageModel(10_000, embedding_dim=256, hidden_size=512, num_layers=2)).eval()

    def sample(batch: int, steps: int = 1) -> dict:
        state = {name: torch.zeros(2, batch, 512) for name in ("h", "c")}
        return {"tokens": torch.randint(0, 10_000, (batch, steps))} | state

    dynamic = {"tokens": {0: "batch", 1: "time"}, "h": {1: "batch"}, "c": {1: "batch"}}
    return model, sample, dynamic


MODELS = {"classifier (50 tokens)": _classifier, "LM step (1 token)": _language_model}


def _median_ms(call, repeats: int) -> float:
    call()  # warm up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def measure(repeats: int) -> list[str]:
    """The table's lines, every runtime on one thread (torch's count put back after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(repeats)
    finally:
        torch.set_num_threads(threads)


def _measure(repeats: int) -> list[str]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    rows = ["| model | batch | PyTorch eager | ONNX Runtime | .pt2 program | ONNX file | "
            ".pt2 file |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for name, make in MODELS.items():
            torch.manual_seed(0)
            module, sample, dynamic = make()
            files = {}
            for format in export.FORMATS:
                # An example of 1 step would fix the time axis at 1: 3 keeps it free.
                graph = export.Graph("g", module, sample(2, 3), [], dynamic, sample)
                files[format] = Path(folder) / f"{name[:3]}{export.SUFFIXES[format]}"
                export.export_graph(graph, files[format], format)
            session = onnxruntime.InferenceSession(str(files["onnx"]), options)
            program = torch.export.load(str(files["pt2"])).module()
            for batch in (1, 64):
                inputs = sample(batch)
                feeds = {key: value.numpy() for key, value in inputs.items()}
                with torch.no_grad():
                    eager = _median_ms(lambda m=module, x=inputs: m(*x.values()), repeats)
                    pt2 = _median_ms(lambda p=program, x=inputs: p(*x.values()), repeats)
                ort = _median_ms(lambda s=session, f=feeds: s.run(None, f), repeats)
                sizes = [f"{files[f].stat().st_size / 2**20:.1f} MiB" for f in export.FORMATS]
                rows.append(
                    f"| {name} | {batch} | {eager:.2f} ms ({1000 * batch / eager:,.0f} seq/s) | "
                    f"{ort:.2f} ms ({1000 * batch / ort:,.0f} seq/s, {eager / ort:.2f}x) | "
                    f"{pt2:.2f} ms ({eager / pt2:.2f}x) | {sizes[0]} | {sizes[1]} |"
                )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks export", description=__doc__)
    parser.add_argument("--repeats", type=int, default=50, help="timed calls of each")
    args = parser.parse_args(argv)
    print("\n".join(measure(args.repeats)))


if __name__ == "__main__":
    main()
