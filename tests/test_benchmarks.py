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
