"""The benchmark runs end to end at toy sizes (a smoke check: its numbers are not looked at)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_prints_both_tables_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--configs", "C3", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "### Every cell: fused against torch.nn" in done.stdout
    assert "### Leaving the vendor kernel" in done.stdout
    assert "⚠" not in done.stdout, "fused and a peer computed different functions"
    report = json.loads(out.read_text())
    rows = report["results"]
    assert {r["cell"] for r in rows if r["kind"] == "vs_torch"} == {"LSTM", "GRU", "Elman"}
    for row in rows:
        assert {"fused", "reference", "hand"} <= set(row["runners"])
        assert all(r["median_ms"] > 0 for r in row["runners"].values())


def test_quick_dtw_benchmark_prints_its_table_and_writes_json(tmp_path):
    out = tmp_path / "dtw.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "dtw", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "### 1-NN-DTW distance block" in done.stdout
    rows = json.loads(out.read_text())["results"]
    assert [row["radius"] for row in rows] == [4, None]  # 10 % of 40 steps, then full
    for row in rows:
        assert {"dtaidistance", "torch"} <= set(row["runners"])
        for runner in row["runners"].values():
            assert runner["block_seconds"] > 0
            # Every contestant computes the same distances (the peers on their rows).
            assert runner["max_abs_difference"] < 1e-9


def test_quick_seed_model_benchmark_times_every_contestant_it_can(tmp_path):
    out = tmp_path / "seed.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "benchmarks", "seed-model", "--quick", "--threads", "1",
            "--contestants", "rnnkit,rnnkit-trainer,torch", "--json", str(out),
        ],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "| threads | contestant | s/epoch |" in done.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [row["contestant"] for row in rows] == ["rnnkit", "rnnkit-trainer", "torch"]
    for row in rows:
        assert row["missing"] is None
        assert len(row["epochs"]) == 1 and len(row["epochs"][0]) == 2  # 1 round of 2 epochs
        assert row["seconds"] > 0


def test_the_seed_model_table_says_which_peer_is_not_installed(monkeypatch):
    from benchmarks import seed_model

    monkeypatch.setattr(seed_model.importlib.util, "find_spec", lambda name: None)
    assert seed_model.missing("keras-jax") == "not installed: keras, jax"
    assert seed_model.missing("torch") is None
    rows = [
        {"threads": 1, "contestant": "torch", "missing": None, "seconds": 2.0},
        {"threads": 1, "contestant": "rnnkit", "missing": None, "seconds": 1.5},
        {"threads": 1, "contestant": "keras-jax", "missing": "not installed: keras, jax"},
    ]
    table = seed_model.table(rows)
    assert "| 1 | rnnkit | 1.500 | - | 0.75 |" in table
    assert "| 1 | keras-jax | not installed: keras, jax | | |" in table


def test_the_export_benchmark_times_every_runtime_on_small_models(monkeypatch):
    import pytest
    import torch

    pytest.importorskip("onnxruntime")
    from benchmarks import export_latency

    from rnnkit import export
    from rnnkit.models.classifier import SequenceClassifier

    def small():
        model = SequenceClassifier(2, vocab_size=50, embedding_dim=4, hidden_size=4).eval()

        def sample(batch, steps=6):
            return export.sequence_inputs(batch, steps, vocab_size=50)

        return model, sample, export.BATCH_AND_TIME

    monkeypatch.setattr(export_latency, "MODELS", {"small": small})
    threads = torch.get_num_threads()
    rows = export_latency.measure(repeats=1)
    assert len(rows) == 4  # the header, its rule, batch 1 and batch 64
    assert all(" ms (" in row and "MiB" in row for row in rows[2:])
    assert torch.get_num_threads() == threads  # put back
