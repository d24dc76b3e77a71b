"""The Trainer: exact steps, truncated BPTT, schedules, early stopping, checkpoints, DDP."""
# ruff: noqa: E501  (one bad input per line with the error it must give, as in test_errors.py)

import copy
import dataclasses
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset, Subset, TensorDataset

import rnnkit as rk
import rnnkit.training.trainer as trainer_module
from _training_setup import (
    DDP_RUNS,
    RESUMABLE,
    Tagger,
    ddp_data,
    resumable_data,
    sequences,
    tagger,
)
from rnnkit.training import FitContext, Hook, Trainer, TrainerSettings, distributed, set_seed
from rnnkit.training.early_stopping import EarlyStopping

TESTS = Path(__file__).parent
# Tiny models gain nothing from threads, and on two cores the thread pools of two test workers
# (or of another job) spin against each other: a fit then takes a second instead of 20 ms.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_script(command: list, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``command`` on one thread; on timeout kill it and every process it started."""
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ONE_THREAD,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def fit(model, data, val=None, **settings) -> Trainer:
    settings.setdefault("progress", "none")
    trainer = Trainer(**settings)
    trainer.fit(model, data, val=val)
    return trainer


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def padded_with_nan(data: TensorDataset) -> TensorDataset:
    """``data`` with NaN in every input and target step past each sequence's length."""
    x, y, lengths = data.tensors
    pad = torch.arange(x.shape[1]) >= lengths[:, None]
    return TensorDataset(
        x.masked_fill(pad[..., None], math.nan), y.masked_fill(pad[..., None], math.nan), lengths
    )


def no_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("seconds", "samples_per_s")} for row in rows]


class Recorder(Tagger):
    """A Tagger that records what each forward call received and returned."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, state=None, lengths=None):
        prediction, new_state = super().forward(x, state, lengths)
        self.calls.append(
            {
                "x": x.clone(),
                "state": state,
                "lengths": lengths,
                "prediction": prediction.detach(),
                "new_state": tuple(s.detach() for s in new_state),
            }
        )
        return prediction, new_state


def recorder() -> Recorder:
    torch.manual_seed(0)
    return Recorder().double()


# ---------------------------------------------------------------- reproducibility and data


def test_the_same_seed_gives_the_same_weights_and_another_seed_does_not():
    data = sequences()
    models = [tagger(dropout=0.3) for _ in range(3)]
    for model, seed in zip(models, (5, 5, 6), strict=True):
        fit(model, data, epochs=2, batch_size=4, seed=seed)
    assert_same_weights(models[0], models[1])
    assert not torch.equal(models[0].head.weight, models[2].head.weight)


def test_set_seed_seeds_python_numpy_and_torch():
    draws = []
    for _ in range(2):
        set_seed(3)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]


class NoItems(TensorDataset):
    def __getitem__(self, index):
        raise AssertionError("a TensorDataset must be indexed a whole batch at a time")


class Items(Dataset):
    """A plain map-style dataset over the same tensors: collated item by item."""

    def __init__(self, *tensors):
        self.tensors = tensors

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)


def test_a_tensor_dataset_is_indexed_by_batch_and_trains_like_any_dataset():
    data = sequences()
    fast, subset, collated = tagger(), tagger(), tagger()
    fit(fast, NoItems(*data.tensors), epochs=2, batch_size=4)
    fit(subset, Subset(NoItems(*data.tensors), list(range(13))), epochs=2, batch_size=4)
    fit(collated, Items(*data.tensors), epochs=2, batch_size=4)
    assert_same_weights(fast, subset)
    assert_same_weights(fast, collated)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = rk.GRU(3, 4, return_sequences=False, return_state=False)
        self.head = nn.Linear(5, 1)

    def forward(self, x, extra):
        return self.head(torch.cat([self.rnn(x), extra], 1))


class PairItems(Dataset):
    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(10, 6, 3, generator=generator)
        self.extra = torch.randn(10, 1, generator=generator)

    def __len__(self):
        return 10

    def __getitem__(self, index):
        return (self.x[index], self.extra[index]), self.extra[index] * 2


def test_a_tuple_of_inputs_is_passed_to_the_model_positionally():
    trainer = fit(TwoInputs(), PairItems(), epochs=3, batch_size=5, lr=0.05)
    assert len(trainer.steps) == 6
    assert trainer.history[-1]["loss"] < trainer.history[0]["loss"]


# ---------------------------------------------------------------- loss


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_the_masked_loss_equals_the_loss_of_the_unpadded_sequences(loss):
    data = padded_with_nan(sequences(5, steps=6))
    x, y, lengths = data.tensors
    model = tagger()
    before = copy.deepcopy(model)
    settings = {"epochs": None, "max_steps": 1, "batch_size": 5, "shuffle": False}
    trainer = fit(model, data, loss=loss, **settings)
    with torch.no_grad():
        errors = [
            (before(x[i : i + 1, :n])[0] - y[i : i + 1, :n]).flatten()
            for i, n in enumerate(lengths.tolist())
        ]
    errors = torch.cat(errors)
    expected = errors.square().mean() if loss == "mse" else errors.abs().mean()
    assert trainer.steps[0]["loss"] == pytest.approx(expected.item(), rel=1e-12, abs=0)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_cross_entropy_learns_a_many_to_one_classification():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, 2, generator=generator)
    y = (x[:, :, 0].sum(1) > 0).long()
    torch.manual_seed(0)
    model = nn.Sequential(rk.GRU(2, 8, return_sequences=False, return_state=False), nn.Linear(8, 2))
    fit(model, TensorDataset(x, y), epochs=15, batch_size=16, loss="cross_entropy", lr=0.03)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.9


def test_cross_entropy_tags_every_step_and_leaves_the_padding_out():
    x, _, lengths = sequences(6).tensors
    tags = (x[..., 0] > 0).long()
    # -1 is no class: a padded step that reached the loss would fail.
    tags = tags.masked_fill(torch.arange(7) >= lengths[:, None], -1)
    model = tagger()
    before = copy.deepcopy(model)
    settings = {"epochs": None, "max_steps": 1, "batch_size": 6, "shuffle": False}
    trainer = fit(model, TensorDataset(x, tags, lengths), loss="cross_entropy", **settings)
    with torch.no_grad():
        logits = before(x, lengths=lengths)[0]
    valid = tags >= 0
    expected = nn.functional.cross_entropy(logits[valid], tags[valid]).item()
    assert trainer.steps[0]["loss"] == pytest.approx(expected, rel=1e-12, abs=0)


def test_a_loss_callable_gives_one_loss_per_element():
    data = sequences(lengths=False)
    builtin, custom = tagger(), tagger()
    fit(builtin, data, epochs=2, batch_size=4, loss="mae")
    fit(custom, data, epochs=2, batch_size=4, loss=lambda p, t: (p - t).abs())
    assert_same_weights(builtin, custom)


def test_compute_loss_replaces_the_call_convention():
    data, val = sequences(lengths=False), sequences(5, seed=2, lengths=False)

    def mean_squared_error(model, batch):
        x, y = batch
        return (model(x)[0] - y).square().mean()

    default, custom = tagger(), tagger()
    a = fit(default, data, val=val, epochs=2, batch_size=4)
    b = fit(custom, data, val=val, epochs=2, batch_size=4, compute_loss=mean_squared_error)
    for p, q in zip(default.parameters(), custom.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-12)
    for row_a, row_b in zip(a.history, b.history, strict=True):
        assert row_b["loss"] == pytest.approx(row_a["loss"], rel=1e-12)
        assert row_b["val_loss"] == pytest.approx(row_a["val_loss"], rel=1e-12)


def test_a_non_finite_loss_stops_training_with_a_clear_error():
    x, y = sequences(lengths=False).tensors
    y[3, 2, 0] = math.inf
    with pytest.raises(FloatingPointError, match=r"the training loss is inf at step 1 \(epoch 1\)"):
        fit(tagger(), TensorDataset(x, y), epochs=1, batch_size=13)


# ---------------------------------------------------------------- clipping


def reference_gradients(model: nn.Module, data: TensorDataset) -> list[torch.Tensor]:
    """The parameters of ``model`` with the gradient of the mean squared error on ``data``."""
    x, y = data.tensors
    (model(x)[0] - y).square().mean().backward()
    return list(model.parameters())


SGD_STEP = {"epochs": None, "max_steps": 1, "optimizer": "sgd", "momentum": 0.0, "lr": 0.1}


def test_clip_norm_logs_the_norm_before_clipping_and_steps_with_the_clipped_gradient():
    data = sequences(6, lengths=False)
    model = tagger()
    reference = reference_gradients(copy.deepcopy(model), data)
    trainer = fit(model, data, batch_size=6, clip_norm=0.05, **SGD_STEP)
    norm = torch.nn.utils.clip_grad_norm_(reference, 0.05).item()
    assert norm > 0.05  # so the step was clipped
    assert trainer.steps[0]["grad_norm"] == pytest.approx(norm, rel=1e-12)
    assert trainer.history[0]["grad_norm_max"] == trainer.steps[0]["grad_norm"]
    for trained, p in zip(model.parameters(), reference, strict=True):
        torch.testing.assert_close(trained, p.detach() - 0.1 * p.grad, rtol=0, atol=1e-14)


def test_clip_value_clips_each_element_after_the_norm_is_logged():
    data = sequences(6, lengths=False)
    model = tagger()
    reference = reference_gradients(copy.deepcopy(model), data)
    trainer = fit(model, data, batch_size=6, clip_value=0.01, **SGD_STEP)
    norm = torch.nn.utils.clip_grad_norm_(reference, math.inf).item()
    assert trainer.steps[0]["grad_norm"] == pytest.approx(norm, rel=1e-12)
    assert max(p.grad.abs().max() for p in reference) > 0.01  # so some elements were clipped
    for trained, p in zip(model.parameters(), reference, strict=True):
        expected = p.detach() - 0.1 * p.grad.clamp(-0.01, 0.01)
        torch.testing.assert_close(trained, expected, rtol=0, atol=1e-14)


# ---------------------------------------------------------------- optimizers and schedules


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_each_optimizer_lowers_the_loss(optimizer):
    trainer = fit(
        tagger(),
        sequences(lengths=False),
        epochs=6,
        batch_size=4,
        optimizer=optimizer,
        lr=0.05,
        weight_decay=1e-4,
    )
    assert trainer.history[-1]["loss"] < trainer.history[0]["loss"]
    assert [row["lr"] for row in trainer.history] == [0.05] * 6


def test_cosine_schedule_anneals_the_rate_to_zero_over_the_steps():
    trainer = fit(tagger(), sequences(), epochs=3, batch_size=4, schedule="cosine", lr=0.01)
    total = 3 * 4  # 13 rows make 4 batches
    expected = [0.005 * (1 + math.cos(math.pi * i / total)) for i in range(total)]
    assert [s["lr"] for s in trainer.steps] == pytest.approx(expected, rel=0, abs=1e-12)
    assert trainer.history[-1]["lr"] == pytest.approx(0, abs=1e-12)


def test_plateau_schedule_lowers_the_rate_after_patience():
    trainer = fit(
        tagger(),
        sequences(),
        epochs=5,
        batch_size=13,
        lr=0.01,
        schedule="plateau",
        plateau_factor=0.5,
        plateau_patience=1,
        monitor="val_flat",
        val_metrics={"val_flat": lambda model: 1.0},
    )
    lrs = [row["lr"] for row in trainer.history]
    assert lrs == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025], rel=1e-12)


def test_max_steps_stops_mid_epoch():
    trainer = fit(tagger(), sequences(), epochs=None, max_steps=6, batch_size=4)
    assert len(trainer.steps) == 6
    assert [row["epoch"] for row in trainer.history] == [1, 2]
    assert trainer.steps[-1]["epoch"] == 2


# ---------------------------------------------------------------- early stopping


@pytest.mark.parametrize(("mode", "spelling"), [("min", "early_stopping"), ("max", "patience")])
def test_early_stopping_stops_and_restores_the_best_weights(mode, spelling):
    sign = 1 if mode == "min" else -1
    scores = iter(sign * s for s in (3.0, 1.0, 2.0, 2.5, 0.5, 0.1))
    snapshots = []

    def score(model):
        snapshots.append(copy.deepcopy(model.state_dict()))
        return next(scores)

    model = tagger()
    trainer = fit(
        model,
        sequences(),
        epochs=10,
        batch_size=4,
        **{spelling: 2},
        monitor="val_score",
        mode=mode,
        val_metrics={"val_score": score},
    )
    assert trainer.stopped_early
    assert [row["epoch"] for row in trainer.history] == [1, 2, 3, 4]
    assert (trainer.best_epoch, trainer.best_score) == (2, sign * 1.0)
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshots[1][name]), name


def test_without_restore_best_the_model_keeps_its_last_weights():
    scores = iter([1.0, 2.0, 3.0])
    last = {}

    def score(model):
        last.update(copy.deepcopy(model.state_dict()))
        return next(scores)

    model = tagger()
    settings = {"epochs": 10, "batch_size": 4, "early_stopping": 2, "restore_best": False}
    trainer = fit(
        model, sequences(), monitor="val_score", val_metrics={"val_score": score}, **settings
    )
    assert trainer.stopped_early and trainer.best_epoch == 1
    for name, value in model.state_dict().items():
        assert torch.equal(value, last[name]), name


# ---------------------------------------------------------------- truncated BPTT


@pytest.mark.parametrize("chunk", [7, 50])
def test_tbptt_with_chunks_as_long_as_the_sequences_equals_full_bptt(chunk):
    data, val = sequences(), sequences(5, seed=2)
    full, truncated = tagger(), tagger()
    a = fit(full, data, val=val, epochs=2, batch_size=4)
    b = fit(truncated, data, val=val, epochs=2, batch_size=4, tbptt=chunk)
    assert_same_weights(full, truncated)
    assert [r["val_loss"] for r in a.history] == [r["val_loss"] for r in b.history]


def test_tbptt_steps_per_chunk_and_ended_rows_keep_their_state_and_have_no_loss():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 9, 3, generator=generator, dtype=torch.float64)
    y = torch.randn(2, 9, 2, generator=generator, dtype=torch.float64)
    data = padded_with_nan(TensorDataset(x, y, torch.tensor([9, 2])))
    model = recorder()
    settings = {"epochs": 1, "batch_size": 2, "shuffle": False, "optimizer": "sgd", "lr": 0.1}
    trainer = fit(model, data, tbptt=3, **settings)
    assert len(trainer.steps) == 3
    first, second, third = model.calls
    assert first["state"] is None
    assert first["lengths"].tolist() == [3, 2]
    # Row 1 ended in the first chunk: it runs one step of zeros (layers refuse length 0) ...
    assert second["lengths"].tolist() == third["lengths"].tolist() == [3, 1]
    assert torch.equal(second["x"][1], torch.zeros(3, 3, dtype=torch.float64))
    # ... and carries the state after its last step on to the third chunk.
    for carried, kept in zip(third["state"], second["state"], strict=True):
        assert torch.equal(carried[:, 1], kept[:, 1])
        assert not torch.equal(carried[:, 0], kept[:, 0])
    # The second chunk's loss counts row 0 only.
    expected = (second["prediction"][0] - y[0, 3:6]).square().mean().item()
    assert trainer.steps[1]["loss"] == pytest.approx(expected, rel=1e-12)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_tbptt_takes_no_step_on_a_chunk_of_padding_only():
    x, y, _ = sequences(2, steps=9).tensors
    data = TensorDataset(x, y, torch.tensor([4, 2]))
    trainer = fit(recorder(), data, epochs=1, batch_size=2, tbptt=3)
    assert len(trainer.steps) == 2  # the third chunk, steps 6 to 8, is all padding


def test_stateful_tbptt_carries_state_to_the_next_batch_and_resets_rows_and_epochs():
    x, y, _ = sequences(4, steps=3).tensors
    lengths = torch.full((4,), 3)
    reset = torch.tensor([False, False, True, False])
    model = recorder()
    settings = {"epochs": 2, "batch_size": 2, "shuffle": False, "tbptt": 3, "stateful": True}
    fit(model, TensorDataset(x, y, lengths, reset), **settings)
    calls = model.calls  # 2 epochs of 2 batches of 1 chunk
    assert len(calls) == 4
    assert calls[0]["state"] is None and calls[2]["state"] is None  # each epoch starts afresh
    for carried, returned in zip(calls[1]["state"], calls[0]["new_state"], strict=True):
        assert torch.equal(carried[:, 0], torch.zeros_like(carried[:, 0]))  # reset row
        assert torch.equal(carried[:, 1], returned[:, 1])


# ---------------------------------------------------------------- checkpoints


def test_checkpoints_hold_safetensors_weights_and_a_weights_only_state(tmp_path):
    from safetensors.torch import load_file

    data, val = sequences(), sequences(5, seed=2)
    model = tagger()
    model.tied = model.head  # shared tensors, which safetensors refuses unless copied
    settings = {"epochs": 3, "batch_size": 4, "checkpoint_dir": tmp_path, "early_stopping": 5}
    trainer = fit(model, data, val=val, **settings)
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-0003"]
    saved = tmp_path / "epoch-0003"
    state = torch.load(saved / "trainer.pt", weights_only=True)
    assert state["epoch"] == 3 and state["history"] == trainer.history
    assert state["steps"] == trainer.steps
    assert load_file(saved / "model.safetensors").keys() == model.state_dict().keys()
    best = load_file(saved / "best.safetensors")
    for name, value in model.state_dict().items():  # the model ends with the best weights
        assert torch.equal(value, best[name]), name

    fit(tagger(), data, epochs=1, batch_size=4, checkpoint_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-0001"]  # a new run starts over


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path):
    fit(tagger(), sequences(), epochs=1, batch_size=4, checkpoint_dir=tmp_path)
    trainer = Trainer(epochs=2, batch_size=5, checkpoint_dir=tmp_path, progress="none")
    with pytest.raises(
        ValueError, match=r"written with \{'batch_size': 4\}.*has \{'batch_size': 5\}"
    ):
        trainer.fit(tagger(), sequences(), resume=True)


def test_resume_without_a_checkpoint_starts_from_the_beginning(tmp_path):
    resumed, fresh = tagger(), tagger()
    Trainer(epochs=2, batch_size=4, checkpoint_dir=tmp_path / "new", progress="none").fit(
        resumed, sequences(), resume=True
    )
    fit(fresh, sequences(), epochs=2, batch_size=4)
    assert_same_weights(resumed, fresh)


@pytest.mark.slow
def test_a_run_killed_and_resumed_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    script = [sys.executable, str(TESTS / "_training_resume.py"), str(tmp_path)]
    killed = run_script(script)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-0002"]

    train, val = resumable_data()
    metrics = {"val_zero": lambda model: 0.0}
    resumed, whole = tagger(dropout=0.2), tagger(dropout=0.2)
    interrupted = Trainer(**RESUMABLE, checkpoint_dir=tmp_path, val_metrics=metrics)
    interrupted.fit(resumed, train, val=val, resume=True)
    uninterrupted = Trainer(**RESUMABLE, val_metrics=metrics)
    uninterrupted.fit(whole, train, val=val)
    assert_same_weights(resumed, whole)
    assert no_timing(interrupted.history) == no_timing(uninterrupted.history)
    assert interrupted.steps == uninterrupted.steps
    assert len(interrupted.history) == 4


# ---------------------------------------------------------------- distributed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_on_two_processes_equals_one_process_on_the_global_batch(tmp_path):
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launch += ["--master_port", str(free_port()), str(TESTS / "_training_ddp.py"), str(tmp_path)]
    result = run_script(launch)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    train, val = ddp_data()
    for name, settings in DDP_RUNS.items():
        model = tagger()
        alone = fit(model, train, val=val, **settings)
        weights = torch.load(tmp_path / f"{name}.pt", weights_only=True)
        for key, value in model.state_dict().items():
            torch.testing.assert_close(weights[key], value, rtol=0, atol=1e-12, msg=key)
        history = json.loads((tmp_path / f"{name}.json").read_text())
        for together, single in zip(history, alone.history, strict=True):
            for column in ("loss", "val_loss", "val_mean_abs", "lr", "grad_norm_mean"):
                if column in single:
                    assert together[column] == pytest.approx(single[column], rel=1e-10), column


def test_batch_size_must_split_evenly_across_processes(monkeypatch):
    monkeypatch.setattr(distributed, "setup", lambda *args: distributed.Context(rank=0, world=3))
    with pytest.raises(ValueError, match=r"batch_size=4 is the global batch.*multiple of 3"):
        fit(tagger(), sequences(), epochs=1, batch_size=4)


# ---------------------------------------------------------------- progress and output


LOG_LINE = (
    r"epoch 1/2  loss \d\.\d{5}  val_loss \d\.\d{5}  val_one 1\.00000  grad_norm \S+  "
    r"[\d,]+ samples/s  \d+\.\d s"
)


@pytest.mark.parametrize("progress", ["log", "auto"])  # auto: stderr is not a terminal here
def test_log_progress_prints_one_line_per_epoch_on_stderr(capsys, progress):
    settings = {"epochs": 2, "batch_size": 4, "val_metrics": {"val_one": lambda m: 1.0}}
    fit(tagger(), sequences(), val=sequences(5, seed=2), progress=progress, **settings)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 2 and not captured.out
    assert re.fullmatch(LOG_LINE, lines[0]), lines[0]


def test_bar_progress_draws_a_bar_per_epoch(capsys):
    fit(tagger(), sequences(), epochs=2, batch_size=4, progress="bar")
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "samples/s" in err


def test_no_progress_is_silent(capsys):
    fit(tagger(), sequences(), epochs=1, batch_size=4, progress="none")
    assert capsys.readouterr() == ("", "")


def test_history_and_steps_are_written_as_csv(tmp_path):
    import pandas as pd

    trainer = fit(tagger(), sequences(), val=sequences(5, seed=2), epochs=2, batch_size=4)
    trainer.write_history(tmp_path / "history.csv")
    trainer.write_steps(tmp_path / "steps.csv")
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history.columns) == [
        "epoch",
        "loss",
        "val_loss",
        "lr",
        "grad_norm_mean",
        "grad_norm_max",
        "seconds",
        "samples_per_s",
    ]
    assert history["loss"].tolist() == pytest.approx([r["loss"] for r in trainer.history])
    steps = pd.read_csv(tmp_path / "steps.csv")
    assert list(steps.columns) == ["step", "epoch", "loss", "grad_norm", "lr"]
    assert steps["step"].tolist() == list(range(1, 9))


def test_importing_training_leaves_pandas_and_safetensors_unloaded():
    code = (
        "import sys, rnnkit.training; "
        "print([m for m in ('pandas', 'safetensors') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        (
            {"optimizer": "adamx"},
            ValueError,
            r"optimizer='adamx' is not known; expected one of \('adam', 'adamw', 'sgd'\)",
        ),
        ({"epochs": 0}, ValueError, r"epochs=0 must be an integer >= 1 or None"),
        (
            {"epochs": None},
            ValueError,
            r"epochs, max_steps and time_limit are all None: give at least one of them",
        ),
        ({"max_steps": 2.5}, ValueError, r"max_steps=2.5 must be an integer >= 1 or None"),
        ({"batch_size": 0}, ValueError, r"batch_size=0 must be an integer >= 1"),
        ({"lr": -1}, ValueError, r"lr=-1 must be a number > 0"),
        ({"weight_decay": -0.1}, ValueError, r"weight_decay=-0.1 must be a number >= 0"),
        ({"momentum": 1.0}, ValueError, r"momentum=1.0 must be a number in \[0, 1\)"),
        (
            {"schedule": "linear"},
            ValueError,
            r"schedule='linear' is not known; expected one of \(None, 'cosine', 'plateau'\)",
        ),
        ({"plateau_factor": 2}, ValueError, r"plateau_factor=2 must be a number in \(0, 1\)"),
        ({"clip_norm": 0}, ValueError, r"clip_norm=0 must be a number > 0 or None"),
        (
            {"loss": "huber"},
            ValueError,
            r"loss='huber' is not known; expected one of \('mse', 'mae', 'cross_entropy'\) or a callable",
        ),
        ({"compute_loss": 3}, TypeError, r"compute_loss=3 must be callable\(model, batch\)"),
        ({"tbptt": 0}, ValueError, r"tbptt=0 must be an integer >= 1 or None"),
        (
            {"tbptt": 5, "compute_loss": lambda m, b: 0},
            ValueError,
            r"tbptt and compute_loss do not combine",
        ),
        (
            {"stateful": True},
            ValueError,
            r"stateful=True carries the state between tbptt chunks; set tbptt",
        ),
        ({"stateful": True, "tbptt": 5}, ValueError, r"stateful=True .* set shuffle=False"),
        ({"early_stopping": 0}, ValueError, r"early_stopping=0 must be an integer >= 1 or None"),
        ({"mode": "up"}, ValueError, r"mode='up' is not known; expected one of \('min', 'max'\)"),
        (
            {"val_metrics": {"loss": len}},
            ValueError,
            r"val_metrics name 'loss' must be a string other than the history's own columns",
        ),
        (
            {"val_metrics": {"val_r2": 0.5}},
            TypeError,
            r"val_metrics\['val_r2'\] must be callable\(model\) -> float",
        ),
        ({"seed": -1}, ValueError, r"seed=-1 must be an integer in \[0, 4294967295\]"),
        (
            {"progress": "fancy"},
            ValueError,
            r"progress='fancy' is not known; expected one of \('auto', 'bar', 'log', 'none'\)",
        ),
        ({"device": "gpu0"}, ValueError, r"device='gpu0' is not a torch device"),
        (
            {"distributed": True},
            ValueError,
            r"distributed=True is not known; expected one of \('auto', False\)",
        ),
        ({"steps": 0}, ValueError, r"steps=0 must be an integer >= 1 or None"),
        ({"minutes": -1}, ValueError, r"minutes=-1 must be a number > 0 or None"),
        ({"patience": 1.5}, ValueError, r"patience=1.5 must be an integer >= 1 or None"),
        (
            {"epochs": None, "steps": None, "minutes": None},
            ValueError,
            r"epochs, max_steps and time_limit are all None: give at least one of them",
        ),
        (
            {"steps": 3, "max_steps": 3},
            TypeError,
            r"steps=3 and max_steps=3 are two spellings of one setting; give only steps",
        ),
        (
            {"minutes": 1, "time_limit": 60},
            TypeError,
            r"minutes=1 and time_limit=60 are two spellings of one setting; give only minutes",
        ),
        (
            {"patience": 2, "early_stopping": None},
            TypeError,
            r"patience=2 and early_stopping=None are two spellings of one setting; give only patience",
        ),
        (
            {"epoch": 3},
            TypeError,
            r"Trainer got unknown settings \['epoch'\]; the settings are \['batch_size', ",
        ),
        (
            {"hooks": "log"},
            TypeError,
            r"hooks='log' must be a list of rnnkit.training.Hook, got str",
        ),
        (
            {"hooks": Hook()},
            TypeError,
            r"hooks=<.*Hook object .*> must be a list of hooks; pass hooks=\[<",
        ),
        (
            {"hooks": [Hook(), print]},
            TypeError,
            r"hooks\[1\]=<built-in function print> must be a rnnkit.training.Hook \(subclass it",
        ),
    ],
)
def test_bad_settings_name_the_setting_the_value_and_what_was_expected(settings, error, message):
    with pytest.raises(error, match=message):
        Trainer(**settings)


class NoState(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = rk.LSTM(3, 2, return_state=False)

    def forward(self, x, state=None, lengths=None):
        return self.rnn(x, state=state, lengths=lengths)


class Stream(IterableDataset):
    def __len__(self):
        return 1

    def __iter__(self):
        yield torch.zeros(1)


def many_to_one(n=8):
    x, y, _ = sequences(n).tensors
    return TensorDataset(x, y[:, -1])


@pytest.mark.parametrize(
    ("settings", "model", "data", "error", "message"),
    [
        (
            {"monitor": "val_acc"},
            tagger,
            sequences,
            ValueError,
            r"monitor='val_acc' is not a metric of this run; the metrics are \['loss'\]",
        ),
        (
            {"early_stopping": 2},
            tagger,
            sequences,
            ValueError,
            r"monitor='val_loss' is not a metric of this run \(val_loss needs a val dataset\); early_stopping need\(s\) it; the metrics are \['loss'\]",
        ),
        (
            {"schedule": "plateau", "val_metrics": {"val_acc": len}},
            tagger,
            sequences,
            ValueError,
            r"schedule='plateau' need\(s\) it; the metrics are \['loss', 'val_acc'\]",
        ),
        (
            {},
            tagger,
            lambda: TensorDataset(torch.randn(4, 7, 3)),
            ValueError,
            r"an item must be \(inputs, target\).*got a tuple of 1: \(a tensor of shape \(1, 7, 3\)\)",
        ),
        (
            {},
            tagger,
            Stream,
            TypeError,
            r"train must be a map-style torch.utils.data.Dataset \(with len and indexing\), got Stream",
        ),
        (
            {},
            tagger,
            lambda: TensorDataset(torch.randn(0, 7, 3), torch.randn(0, 7, 2)),
            ValueError,
            r"train is empty",
        ),
        (
            {"tbptt": 3},
            lambda: NoState().double(),
            sequences,
            ValueError,
            r"with tbptt the model is called as model\(x, state=state\) and must return \(prediction, state\)",
        ),
        (
            {"tbptt": 3},
            tagger,
            many_to_one,
            ValueError,
            r"tbptt cuts every input and the target along the time axis .* got shapes \[\(1, 7, 3\), \(1, 2\)\]",
        ),
        (
            {"tbptt": 3, "stateful": True, "shuffle": False},
            tagger,
            sequences,
            ValueError,
            r"len\(train\)=13 is not a multiple of batch_size=4",
        ),
        (
            {},
            tagger,
            many_to_one,
            ValueError,
            r"loss='mse' needs the prediction and the target to have the same shape; got prediction \(4, 7, 2\) and target \(4, 2\)",
        ),
        (
            {"loss": "cross_entropy"},
            tagger,
            sequences,
            TypeError,
            r"loss='cross_entropy' needs integer class indices as target, got dtype torch.float64",
        ),
        (
            {"loss": lambda p, t: (p - t).square().mean()},
            tagger,
            sequences,
            ValueError,
            r"the per-element loss has shape \(\), but the batch has \(4, 7\) \(rows, steps\)",
        ),
        (
            {"compute_loss": lambda m, b: m(b[0])[0]},
            tagger,
            sequences,
            ValueError,
            r"compute_loss must return the batch's mean loss as a scalar tensor, or \(loss sum, count\), got shape \(4, 7, 2\)",
        ),
    ],
)
def test_bad_models_and_data_get_clear_errors(settings, model, data, error, message):
    trainer = Trainer(epochs=1, batch_size=4, progress="none", **settings)
    with pytest.raises(error, match=message):
        trainer.fit(model(), data())


def test_resume_needs_a_checkpoint_dir():
    with pytest.raises(
        ValueError, match=r"resume=True continues from checkpoint_dir, which is None"
    ):
        Trainer(progress="none").fit(tagger(), sequences(), resume=True)


def test_tie_break_decides_between_epochs_whose_monitor_ties():
    """A metric stuck at one value (entity F1 of 0, say) ties every epoch: with tie_break the
    lower val_loss wins, so the best epoch moves on and patience does not run out."""
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    data = TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]]))

    def fit(**options):
        trainer = Trainer(
            epochs=6, batch_size=16, lr=0.05, early_stopping=2, monitor="flat", mode="max",
            val_metrics={"flat": lambda model: 0.0}, progress="none", **options,
        )  # fmt: skip
        trainer.fit(nn.Linear(3, 1), data, val=data)
        return trainer

    plain, broken = fit(), fit(tie_break="val_loss")
    assert plain.best_epoch == 1 and plain.stopped_early and len(plain.history) == 3
    losses = [row["val_loss"] for row in broken.history]
    assert broken.best_epoch == 1 + losses.index(min(losses)) > 1
    with pytest.raises(ValueError, match="tie_break='nope' is not a metric of this run"):
        fit(tie_break="nope")


def test_time_limit_stops_after_the_step_that_reaches_it():
    trainer = fit(tagger(), sequences(), epochs=None, time_limit=1e-9, batch_size=4)
    assert len(trainer.steps) == 1 and len(trainer.history) == 1


def test_time_limit_alone_cannot_plan_a_cosine_schedule():
    with pytest.raises(ValueError, match="time_limit alone"):
        fit(tagger(), sequences(), epochs=None, time_limit=60, schedule="cosine")


def test_steps_minutes_and_patience_are_the_estimators_names_of_three_settings():
    new = Trainer(steps=6, minutes=2.5, patience=3)
    old = Trainer(max_steps=6, time_limit=150, early_stopping=3)
    assert new.settings == old.settings == TrainerSettings.of(steps=6, minutes=2.5, patience=3)
    assert (new.max_steps, new.time_limit, new.early_stopping) == (6, 150, 3)  # read as before
    assert new.steps == []  # trainer.steps stays the list of the steps taken
    by_steps = fit(tagger(), sequences(), epochs=None, steps=6, batch_size=4)
    by_max_steps = fit(tagger(), sequences(), epochs=None, max_steps=6, batch_size=4)
    assert len(by_steps.steps) == 6 and by_steps.steps == by_max_steps.steps
    by_minutes = fit(tagger(), sequences(), epochs=None, minutes=1e-9, batch_size=4)
    assert len(by_minutes.steps) == 1  # stops after the step that reaches the limit


def test_the_settings_are_one_frozen_object_the_trainer_reads():
    trainer = Trainer(epochs=3, lr=0.05, val_metrics={"val_one": lambda model: 1.0})
    assert isinstance(trainer.settings, TrainerSettings)
    assert (trainer.epochs, trainer.lr, list(trainer.val_metrics)) == (3, 0.05, ["val_one"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        trainer.settings.epochs = 4
    with pytest.raises(AttributeError):
        trainer.epochs = 4  # a setting changed behind the settings' checks would go unchecked
    assert trainer.settings.device is None and Trainer(device="cpu").device == torch.device("cpu")


# ---------------------------------------------------------------- hooks


class Log(Hook):
    """Notes every call into ``calls``: (who, method, context, trainer's steps then, extra)."""

    def __init__(self, calls: list, name: str = "log"):
        self.calls, self.name = calls, name

    def _note(self, method, trainer, context, *extra):
        assert isinstance(context, FitContext)
        self.calls.append((self.name, method, context, len(trainer.steps), *extra))

    def on_fit_start(self, trainer, context):
        self._note("start", trainer, context)

    def on_step(self, trainer, context):
        self._note("step", trainer, context, trainer.steps[-1]["step"])

    def on_fit_end(self, trainer, context):
        self._note("end", trainer, context)

    def on_best_restored(self, trainer, context, best_epoch):
        self._note("best", trainer, context, best_epoch)


def test_hooks_see_the_start_every_step_in_order_and_the_end_and_change_nothing():
    train, val = sequences(), sequences(n=5, seed=2)
    plain = tagger()
    fit(plain, train, val=val, epochs=2, batch_size=4)
    calls = []
    model = tagger()
    trainer = fit(model, train, val=val, epochs=2, batch_size=4,
                  hooks=[Log(calls, "a"), Log(calls, "b")])  # fmt: skip
    assert_same_weights(model, plain)  # hooks that only look change no weight
    # 13 rows in batches of 4: 4 steps an epoch. Each point calls the hooks in their order.
    points = [("start", 0, 0)] + [("step", 1 + (s - 1) // 4, s) for s in range(1, 9)]
    points.append(("end", 2, 8))
    expected = [(name, *point) for point in points for name in ("a", "b")]
    assert [(name, method, c.epoch, c.step) for name, method, c, *_ in calls] == expected
    for _, method, context, taken, *extra in calls:
        assert context.step == taken  # the context's step is len(trainer.steps) at the call
        if method == "step":
            assert extra == [taken]  # called after the step, its row already in trainer.steps
        assert context.model is model and context.train is train and context.val is val
        assert context.device == torch.device("cpu") and context.resume is False
    assert len(trainer.steps) == 8 and trainer.hook_seconds >= 0


def test_a_hook_hears_when_the_best_weights_are_restored():
    calls = []
    trainer = fit(tagger(), sequences(), val=sequences(n=5, seed=2), epochs=3, batch_size=4,
                  early_stopping=5, hooks=[Log(calls)])  # fmt: skip
    assert [c[1] for c in calls[-2:]] == ["end", "best"]
    assert calls[-1][-1] == trainer.best_epoch and calls[-1][2].step == 12
    calls.clear()
    fit(tagger(), sequences(), val=sequences(n=5, seed=2), epochs=3, batch_size=4,
        early_stopping=5, restore_best=False, hooks=[Log(calls)])  # fmt: skip
    assert calls[-1][1] == "end"


def test_a_resumed_fit_tells_its_hooks_where_it_resumed(tmp_path):
    settings = {"batch_size": 4, "checkpoint_dir": tmp_path, "progress": "none"}
    Trainer(epochs=1, **settings).fit(tagger(), sequences())
    calls = []
    Trainer(epochs=2, hooks=[Log(calls)], **settings).fit(tagger(), sequences(), resume=True)
    start = calls[0][2]
    assert calls[0][1] == "start" and start.resume is True
    assert (start.epoch, start.step) == (1, 4)  # the checkpoint's epoch and its steps
    assert [c[2].step for c in calls[1:-1]] == [5, 6, 7, 8]
    assert (calls[-1][1], calls[-1][2].epoch) == ("end", 2)


class NotMain(distributed.Context):
    """One process that says it is not the main one, as every process but rank 0 of DDP."""

    @property
    def is_main(self) -> bool:
        return False


def test_hooks_run_on_the_main_process_only(monkeypatch):
    monkeypatch.setattr(trainer_module.distributed, "setup", lambda *_: NotMain())
    calls = []
    trainer = fit(tagger(), sequences(), epochs=1, batch_size=4, hooks=[Log(calls)])
    assert len(trainer.steps) == 4 and calls == [] and trainer.hook_seconds == 0


class Clock:
    """A stand-in for the Trainer's clock: a millisecond passes at every reading, and time
    jumps only when a test says so; no test reads the real clock."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.001
        return self.now


def test_the_time_hooks_take_is_not_training_time(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(trainer_module, "time", clock)

    class Slow(Hook):
        def on_step(self, trainer, context):
            clock.now += 100.0  # each call takes 100 s by the Trainer's clock

    trainer = fit(tagger(), sequences(), epochs=2, batch_size=4, time_limit=50, hooks=[Slow()])
    # Counted as training, the first step's 100 s would reach the limit and stop there.
    assert len(trainer.steps) == 8 and len(trainer.history) == 2
    assert trainer.hook_seconds == pytest.approx(800, abs=1)
    assert all(row["seconds"] < 1 for row in trainer.history)  # clock seconds, not the hooks'

    # The control: the same 100 s in a val metric is training time, and the limit stops the
    # run after the first epoch.
    def slow_metric(model):
        clock.now += 100.0
        return 0.0

    control = fit(tagger(), sequences(), epochs=2, batch_size=4, time_limit=50,
                  val_metrics={"slow": slow_metric})  # fmt: skip
    assert len(control.steps) == 4 and len(control.history) == 1
    assert control.history[0]["seconds"] > 100


class Events(Hook):
    """Notes every call of every method as (method, epoch, step) and, at each epoch's end,
    what the Trainer has done by then."""

    def __init__(self, checkpoints=None):
        self.calls, self.checkpoints = [], checkpoints

    def on_fit_start(self, trainer, context):
        self.calls.append(("start", context.epoch, context.step))

    def on_step(self, trainer, context):
        self.calls.append(("step", context.epoch, context.step))

    def on_epoch_end(self, trainer, context):
        self.calls.append(("epoch_end", context.epoch, context.step))
        row = trainer.history[-1]
        assert row["epoch"] == context.epoch == len(trainer.history) and "val_loss" in row
        assert trainer.best_epoch is not None  # early stopping has seen the epoch
        assert [p.name for p in self.checkpoints.iterdir()] == [f"epoch-{context.epoch:04d}"]

    def on_fit_end(self, trainer, context):
        self.calls.append(("end", context.epoch, context.step))

    def on_best_restored(self, trainer, context, best_epoch):
        self.calls.append(("best", context.epoch, context.step, best_epoch))


def test_a_hook_sees_every_event_in_order_after_the_trainers_own_hooks(tmp_path):
    events = Events(checkpoints=tmp_path)
    trainer = fit(tagger(), sequences(), val=sequences(n=5, seed=2), epochs=2, batch_size=4,
                  patience=5, checkpoint_dir=tmp_path, hooks=[events])  # fmt: skip
    expected = [("start", 0, 0)]
    for epoch in (1, 2):
        expected += [("step", epoch, step) for step in range(4 * epoch - 3, 4 * epoch + 1)]
        expected.append(("epoch_end", epoch, 4 * epoch))
    expected += [("end", 2, 8), ("best", 2, 8, trainer.best_epoch)]
    assert events.calls == expected


def test_the_early_stopping_hook_stops_after_patience_and_restores_the_best_weights():
    model = nn.Linear(2, 1)
    stopper = EarlyStopping(
        monitor="val_score", mode="max", patience=2, tie_break="loss", restore_best=True
    )
    trainer = types.SimpleNamespace(history=[])
    stopper.on_fit_start(trainer, types.SimpleNamespace(tracking=True))
    weights = []
    for epoch, (score, loss) in enumerate(
        [(0.5, 3.0), (0.7, 2.0), (0.7, 1.0), (0.6, 1.5), (0.7, 1.2)], 1
    ):
        with torch.no_grad():
            model.weight.fill_(epoch)  # each epoch's weights, told apart by their value
        weights.append(copy.deepcopy(model.state_dict()))
        trainer.history.append({"epoch": epoch, "val_score": score, "loss": loss})
        stopper.on_epoch_end(trainer, types.SimpleNamespace(model=model))
        if stopper.stopped:
            break
    # Epoch 3 ties epoch 2 and wins on its lower loss; epochs 4 and 5 do not beat it.
    assert (stopper.best_epoch, stopper.best_score, stopper.stopped, epoch) == (3, 0.7, True, 5)
    assert stopper.restore(model)
    assert torch.equal(model.weight, weights[2]["weight"])
    stopper.on_fit_start(trainer, types.SimpleNamespace(tracking=True))  # a new fit: afresh
    assert (stopper.best_epoch, stopper.stopped, stopper.restore(model)) == (None, False, False)


def test_the_trainers_own_hooks_run_on_every_process_and_only_the_main_one_writes(
    monkeypatch, tmp_path
):
    settings = {"epochs": 6, "batch_size": 4, "patience": 1, "monitor": "loss", "mode": "max"}
    main = fit(tagger(), sequences(), checkpoint_dir=tmp_path / "main", **settings)
    monkeypatch.setattr(trainer_module.distributed, "setup", lambda *_: NotMain())
    model = tagger()
    other = fit(model, sequences(), checkpoint_dir=tmp_path / "other", **settings)
    assert other.stopped_early and (other.best_epoch, len(other.history)) == (1, 2)
    assert no_timing(other.history) == no_timing(main.history) and other.steps == main.steps
    assert [p.name for p in (tmp_path / "main").iterdir()] == ["epoch-0002"]
    assert not (tmp_path / "other").exists()  # the main process writes the checkpoints
    first_epoch = tagger()
    fit(first_epoch, sequences(), epochs=1, batch_size=4)
    assert_same_weights(model, first_epoch)  # the best epoch's weights, restored
