"""--tensorboard: the logs a fit writes, read back with TensorBoard's own event reader."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnkit.cli import main
from rnnkit.tasks.classify import Classifier

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

DATA = Path(__file__).parent / "data"


def _events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_a_run_logs_its_steps_epochs_baselines_and_gradient_flow(tmp_path):
    data = tmp_path / "mr.tsv"
    data.write_text("\n".join((DATA / "mr_sample.tsv").read_text().splitlines()[:161]) + "\n")
    logs = tmp_path / "logs"
    result = CliRunner().invoke(main, [
        "classify", "train", "--data", str(data), "--out", str(tmp_path / "run"),
        "--hidden-size", "4", "--embedding-dim", "4", "--epochs", "2", "--val", "0.25",
        "--diagnose-every", "3", "--tensorboard", str(logs), "--progress", "none",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    events = _events(logs)
    scalars = set(events.Tags()["scalars"])
    assert {"step/loss", "step/grad_norm", "step/lr", "epoch/loss", "epoch/val_loss"} <= scalars
    steps = Classifier.load(tmp_path / "run").steps_
    logged = events.Scalars("step/grad_norm")
    assert [e.step for e in logged] == [row["step"] for row in steps]
    assert [e.value for e in logged] == pytest.approx([row["grad_norm"] for row in steps])
    assert len(events.Scalars("epoch/val_loss")) == 2
    # The baselines as lines beside the model: two points each, the same value.
    for name in ("model", "majority"):
        line = events.Scalars(f"validation/accuracy/{name}")
        assert len(line) == 2 and line[0].value == line[1].value
    assert any(tag.startswith("pictures/gradient_flow") for tag in events.Tags()["images"])
    assert events.Tags()["graph"]  # the model's graph, traced
    assert "embedding" in str(events.Graph())


def test_a_bad_tensorboard_setting_is_named():
    with pytest.raises(ValueError, match="tensorboard=5 must be a folder path"):
        Classifier(tensorboard=5).check_settings()


def test_logging_leaves_training_as_it_was(tmp_path):
    data = tmp_path / "mr.tsv"
    data.write_text("\n".join((DATA / "mr_sample.tsv").read_text().splitlines()[:121]) + "\n")
    settings = {"hidden_size": 4, "embedding_dim": 4, "epochs": 2, "val": 0.25, "dropout": 0.3,
                "progress": "none"}  # fmt: skip
    plain = Classifier(**settings).fit(data)
    logged = Classifier(**settings, tensorboard=str(tmp_path / "logs")).fit(data)
    assert [row["loss"] for row in logged.steps_] == [row["loss"] for row in plain.steps_]
