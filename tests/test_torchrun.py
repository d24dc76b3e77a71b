"""``torchrun --nproc_per_node 2 -m rnnkit <task> train``: two processes (gloo, CPU) train the
run that one process trains on the same global batch, and only rank 0 writes it."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from rnnkit.tasks.rundir import read_json

DATA = Path(__file__).parent / "data"
# Dropout draws its masks per process, so a run with dropout is statistically, not
# bitwise, the same under torchrun: these runs have none.
TASKS = {
    "classify": ["--hidden-size", 8, "--embedding-dim", 8, "--dropout", 0, "--epochs", 2],
    "lm": ["--hidden-size", 16, "--embedding-dim", 8, "--batch-size", 8, "--bptt", 32,
           "--eval-every", 10, "--steps", 20],
    # A mean over target tokens, whose shares the processes hold in unequal numbers: before
    # the Trainer weighted each share by its tokens, the weights parted by 1e-2.
    "translate": ["--tokenizer", "word", "--hidden-size", 8, "--embedding-dim", 8,
                  "--dropout", 0, "--epochs", 2, "--beam-size", 2, "--max-length", 40],
}  # fmt: skip


def _data(task: str, folder: Path) -> Path:
    if task in ("classify", "translate"):
        name = "mr_sample.tsv" if task == "classify" else "bible_en_es_sample.tsv"
        path = folder / "train.tsv"
        path.write_text("\n".join((DATA / name).read_text().splitlines()[:401]) + "\n")
    else:
        path = folder / "text.txt"
        path.write_text((DATA / "shakespeare_sample.txt").read_text()[:20_000])
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(command: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*")}


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_two_processes_train_what_one_process_trains_and_rank_0_alone_writes(task, tmp_path):
    data = _data(task, tmp_path)
    arguments = [task, "train", "--data", data, *TASKS[task], "--progress", "none"]
    _run([sys.executable, "-m", "rnnkit", *arguments, "--out", "alone"], tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", 2,
                "--master_port", _free_port()]  # fmt: skip
    together = _run([*torchrun, "-m", "rnnkit", *arguments, "--out", "together"], tmp_path)

    assert together.stdout.count("Run directory:") == 1  # one report, from rank 0
    alone, both = tmp_path / "alone", tmp_path / "together"
    assert _files(both) == _files(alone)  # the same layout, no per-rank files
    assert {p.name for p in tmp_path.iterdir()} == {"alone", data.name, "together"}
    first, second = load_file(alone / "model.safetensors"), load_file(both / "model.safetensors")
    assert first.keys() == second.keys()
    for name, weight in first.items():
        # The gradient of each half-batch is summed across the processes in another order
        # than one process sums the whole batch: float32 rounding, 1e-6 of the weights' scale.
        # The translator's longer run on rare words drifts further (measured 4.4e-6).
        scale = max(1.0, weight.abs().max().item()) * (10 if task == "translate" else 1)
        assert (weight - second[name]).abs().max().item() <= 1e-6 * scale, name
    settings = read_json(alone / "config.json")["settings"]
    assert read_json(both / "config.json")["settings"] == settings
