"""Export: the scan backend equals the reference, exported graphs (ONNX through ONNX
Runtime, .pt2 through torch.export) equal the model at batch sizes and lengths they were not
traced with, and what cannot be exported is refused with the tracer's reason, leaving
nothing behind."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import rnnkit as rk
from rnnkit import export
from rnnkit.export import ExportError, Graph

onnxruntime = pytest.importorskip("onnxruntime")  # rnnkit[export]

LAYERS = {
    "lstm-proj-ln-bi-2": lambda: rk.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4,
                                         layer_norm=True, batch_first=True),
    "lstm-peephole-zoneout": lambda: rk.LSTM(3, 5, peephole=True, zoneout=(0.2, 0.1),
                                             batch_first=True),
    "gru-reset-after-bi": lambda: rk.GRU(3, 5, bidirectional=True, batch_first=True),
    "gru-reset-before-ln-2": lambda: rk.GRU(3, 5, num_layers=2, reset_after=False,
                                            layer_norm=True, batch_first=True),
    "elman-leaky-relu": lambda: rk.RNN(3, 5, activation="leaky_relu", batch_first=True),
    "elman-sigmoid-bi": lambda: rk.RNN(3, 5, activation="sigmoid", bidirectional=True,
                                       batch_first=True),
}  # fmt: skip


def _inputs(batch: int, steps: int, dtype=torch.float32) -> dict:
    lengths = torch.randint(1, steps + 1, (batch,))
    lengths[0] = steps
    return {"x": torch.randn(batch, steps, 3, dtype=dtype), "lengths": lengths}


class _Layer(nn.Module):
    """A layer as a graph: (x, lengths) -> (outputs, the final state's first tensor)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, lengths):
        out, state = self.layer(x, lengths=lengths)
        return out, state if isinstance(state, torch.Tensor) else state[0]


def _graph(layer) -> Graph:
    return Graph(
        "layer", _Layer(layer).eval(), _inputs(2, 5), ["output", "state"],
        {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}, _inputs,
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_the_scan_backend_is_the_reference_in_eval(name):
    torch.manual_seed(0)
    layer = LAYERS[name]().double().eval()
    inputs = _inputs(4, 7, torch.float64)
    layer.backend = "reference"
    expected = _Layer(layer)(**inputs)
    layer.backend = "scan"
    got = _Layer(layer)(**inputs)
    for want, have in zip(expected, got, strict=True):
        torch.testing.assert_close(have, want, rtol=1e-12, atol=1e-12)


def test_the_scan_backend_refuses_training():
    with pytest.raises(ValueError, match="inference only"):
        rk.GRU(3, 4, backend="scan")
    layer = rk.GRU(3, 4).eval()
    layer.backend = "scan"
    layer(torch.randn(2, 3, 3))
    with pytest.raises(ValueError, match="inference only"):
        layer.train()(torch.randn(2, 3, 3))


@pytest.mark.parametrize("format", export.FORMATS)
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_an_exported_layer_equals_the_layer_at_new_sizes(name, format, tmp_path):
    torch.manual_seed(0)
    graph = _graph(LAYERS[name]())
    path = tmp_path / f"layer{export.SUFFIXES[format]}"
    export.export_graph(graph, path, format)
    for batch, steps in ((1, 1), (3, 11), (5, 4)):
        check = export.check_graph(graph, path, format, batch, steps)
        assert check["checked"]
        assert check["max_abs_diff"] < 1e-5, check


class _ValueBranchCell(nn.Module):
    """A user's cell whose step branches on a value: no tracer can follow it."""

    input_size, hidden_size = 3, 4

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(7, 4)

    def initial_state(self, batch, device, dtype):
        return torch.zeros(batch, 4, device=device, dtype=dtype)

    def step(self, x, h):
        h = torch.tanh(self.linear(torch.cat([x, h], 1)))
        if h.sum() > 0:  # a Python branch on data
            h = -h
        return h, h


def test_a_cell_that_cannot_be_traced_is_refused_with_the_tracers_reason(tmp_path):
    layer = rk.Recurrent(_ValueBranchCell(), batch_first=True)
    path = tmp_path / "cell.onnx"
    with pytest.raises(ExportError, match=r"cannot be traced: .*data"):
        export.export_graph(_graph(layer), path, "onnx")
    assert not path.exists()


def test_a_task_exports_whole_with_its_schema_or_nothing(tmp_path):
    from rnnkit.tasks.memory import MemoryBenchmark
    from rnnkit.tasks.transcribe import Transcriber

    digits = Path(__file__).parent / "data" / "spoken_digits"
    recogniser = Transcriber(hidden_size=8, num_layers=1, epochs=1, val=0, progress="none")
    recogniser.fit(digits / "train.tsv")
    out = recogniser.export(tmp_path / "onnx")
    described = json.loads((out / "export.json").read_text())
    assert described["schema"] == export.SCHEMA and described["opset"] == export.OPSET
    graph = described["graphs"]["model"]
    assert graph["inputs"][0] == {"name": "features", "dtype": "float32",
                                  "shape": ["batch", "frames", 40]}  # fmt: skip
    assert graph["check"]["checked"] and graph["check"]["max_scaled_diff"] < 1e-5
    assert described["data_state"]["alphabet"] == recogniser.alphabet_
    frames = recogniser._features(recogniser.read(digits / "test.tsv")[:3])
    inputs = {"features": nn.utils.rnn.pad_sequence(frames, batch_first=True),
              "lengths": torch.tensor([len(f) for f in frames])}  # fmt: skip
    log_probs, lengths = export.run_exported(out / "model.onnx", "onnx", inputs)
    expected = recogniser._log_probs(recogniser.model_, frames)
    for row, want in enumerate(expected):
        torch.testing.assert_close(log_probs[row, : lengths[row]].double(),
                                   torch.from_numpy(want), rtol=1e-5, atol=1e-5)  # fmt: skip
    with pytest.raises(FileExistsError):
        recogniser.export(tmp_path / "onnx")
    from click.testing import CliRunner

    from rnnkit.cli import main

    run = recogniser.save(tmp_path / "run")
    result = CliRunner().invoke(
        main, ["export", "--run", str(run), "--format", "pt2", "--out", str(tmp_path / "pt2")]
    )
    assert result.exit_code == 0, result.output
    assert "model.pt2: equal to the model at batch 3, 11 steps" in result.output
    with pytest.raises(ExportError, match="no model that maps tensors"):
        MemoryBenchmark(cells=["rnn"], lengths=[5], steps=1, train_size=8, test_size=8,
                        progress="none").fit(None).export(tmp_path / "memory")  # fmt: skip
    assert not (tmp_path / "memory").exists()
    assert not list(tmp_path.glob("*.partial"))


def test_the_example_forecasts_from_the_export_alone_as_predict_does(tmp_path):
    import subprocess
    import sys

    import pandas as pd

    from rnnkit.data.datasets import stocks_path
    from rnnkit.tasks.forecast import Forecaster

    prices = pd.read_csv(stocks_path()).query("Ticker == 'GOOG'")[["Date", "Close"]]
    data = tmp_path / "goog.csv"
    prices.to_csv(data, index=False)
    forecaster = Forecaster(target="Close", date_col="Date", lookback=10, horizon=3,
                            hidden_size=4, epochs=1, progress="none").fit(data)  # fmt: skip
    folder = forecaster.export(tmp_path / "exported")
    example = Path(__file__).parent.parent / "examples" / "forecast_onnx.py"
    done = subprocess.run([sys.executable, str(example), str(folder), str(data)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    printed = [float(line.split(": ")[1]) for line in done.stdout.splitlines()]
    expected = forecaster.predict(data)["Close"].to_numpy()
    assert printed == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        {"cell": "lstm", "attention": "dot", "num_layers": 2},  # prepared keys are the keys
        {"cell": "gru", "attention": "general", "input_feeding": False},
        {"cell": "lstm", "attention": None},
    ],
    ids=["lstm-dot-2", "gru-general", "lstm-no-attention"],
)
def test_an_encoder_decoder_exports_as_encoder_and_decoder_step(options, tmp_path):
    from rnnkit.models.seq2seq import EncoderDecoder
    from rnnkit.tasks.translate import seq2seq_graphs

    torch.manual_seed(0)
    model = EncoderDecoder(30, 40, embedding_dim=6, hidden_size=8, **options)
    graphs = seq2seq_graphs(model)
    assert [g.name for g in graphs] == ["encoder", "decoder_step"]
    for graph in graphs:
        path = tmp_path / f"{graph.name}.onnx"
        export.export_graph(graph, path, "onnx")
        check = export.check_graph(graph, path, "onnx")
        assert check["checked"] and check["max_scaled_diff"] < 1e-5, (graph.name, check)


def test_weights_past_the_protobuf_limit_go_to_a_data_file_that_export_json_lists(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(export, "ONNX_INLINE_BYTES", 0)  # as if the weights took 2 GiB
    graph = _graph(LAYERS["gru-reset-after-bi"]())
    path = tmp_path / "layer.onnx"
    export.export_graph(graph, path, "onnx")
    described = export.describe(graph, path)
    assert described["data_files"] and (tmp_path / described["data_files"][0]).stat().st_size
    assert export.check_graph(graph, path, "onnx")["max_abs_diff"] < 1e-5
