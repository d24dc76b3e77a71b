"""Checkpoints: one directory per epoch, which appears whole or not at all.

``checkpoint_dir/epoch-0003/`` holds

- ``model.safetensors``: the model's ``state_dict`` after epoch 3;
- ``best.safetensors``: the best epoch's weights, when early stopping keeps them;
- ``trainer.pt``: everything else needed to continue (optimizer and scheduler state, counters,
  history, early-stopping state, generator states), readable with
  ``torch.load(path, weights_only=True)``.

A checkpoint is written into a hidden temporary directory and renamed into place, so a run
killed at any moment leaves the previous checkpoint intact; the older one is removed after.
"""

import io
import os
import re
import shutil
from pathlib import Path

import torch

MODEL = "model.safetensors"
BEST = "best.safetensors"
STATE = "trainer.pt"
_CHECKPOINT = re.compile(r"epoch-(\d+)")
_TEMPORARY = ".tmp-"


def _checkpoints(directory: Path) -> list[Path]:
    """The checkpoint directories in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and _CHECKPOINT.fullmatch(p.name)]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest(directory) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None."""
    found = _checkpoints(Path(directory))
    return found[-1] if found else None


def clear(directory) -> None:
    """Remove the checkpoints (and unfinished writes) a previous run left in ``directory``."""
    directory = Path(directory)
    for path in _checkpoints(directory):
        shutil.rmtree(path)
    if directory.is_dir():
        for path in directory.glob(_TEMPORARY + "*"):
            shutil.rmtree(path)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _safetensors_bytes(state_dict: dict) -> bytes:
    from safetensors.torch import save

    # safetensors refuses tensors that share memory (tied weights) or are not contiguous;
    # a contiguous CPU copy of each is neither.
    tensors = {
        name: t.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
        for name, t in state_dict.items()
    }
    return save(tensors)


def save(directory, epoch: int, weights: dict, best_weights: dict | None, state: dict) -> Path:
    """Write the checkpoint of ``epoch`` and remove the older ones; returns its directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"epoch-{epoch:04d}"
    temporary = directory / f"{_TEMPORARY}{final.name}-{os.getpid()}"
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    _write(temporary / MODEL, _safetensors_bytes(weights))
    if best_weights is not None:
        _write(temporary / BEST, _safetensors_bytes(best_weights))
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _write(temporary / STATE, buffer.getvalue())
    if final.exists():  # left by an earlier run that reached this epoch and was not resumed
        shutil.rmtree(final)
    os.replace(temporary, final)
    for older in _checkpoints(directory):
        if older != final:
            shutil.rmtree(older)
    return final


def load(path) -> tuple[dict, dict | None, dict]:
    """(model weights, best weights or None, trainer state) of the checkpoint at ``path``."""
    from safetensors.torch import load_file

    path = Path(path)
    weights = load_file(path / MODEL)
    best = load_file(path / BEST) if (path / BEST).exists() else None
    state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    return weights, best, state
