"""Run directories: written whole or not at all.

A run is assembled in ``NAME.partial`` next to its final place and renamed to ``NAME`` only
when everything is in it, so a crash, a kill or a bad argument never leaves a directory that
looks finished. The partial directory also holds the training checkpoint, which is what
``resume`` continues from.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


def partial_path(out) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".partial")


@contextmanager
def staging(out, *, overwrite: bool = False, resume: bool = False):
    """Yield the directory to write the run into; on success it becomes ``out``.

    ``out`` that already exists is an error unless ``overwrite``; the partial directory of an
    earlier, interrupted run is reused with ``resume`` and replaced otherwise. On an error the
    partial directory stays when resuming could use it (it holds a checkpoint), else it goes.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"out={str(out)!r} already exists; choose another or overwrite it")
    partial = partial_path(out)
    if partial.exists() and not resume:
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    try:
        yield partial
    except BaseException:
        if not (partial / "checkpoint").exists():
            shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(partial / "checkpoint", ignore_errors=True)
    if out.exists():  # overwrite: keep the old run until the new one is in place
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old)
    else:
        os.replace(partial, out)


def save_weights(module, path) -> None:
    """``module``'s state dict as a safetensors file. Each tensor is copied: safetensors
    refuses tensors that share memory, as tied weights do, and views that are not contiguous."""
    from safetensors.torch import save_file

    save_file({k: v.detach().clone() for k, v in module.state_dict().items()}, path)


def require_run(run) -> Path:
    """The run directory ``run``, or a clear error if it is not one."""
    run = Path(run)
    if not (run / "config.json").is_file():
        hint = (
            " (training was interrupted; rerun it with --resume)"
            if partial_path(run).exists()
            else ""
        )
        raise FileNotFoundError(f"run={str(run)!r} is not a finished run directory{hint}")
    return run


def write_json(path, data) -> None:
    """Write ``data`` as JSON; atomically, so a reader never sees half a file."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, default=_plain) + "\n")
    os.replace(temporary, path)


def as_json(data):
    """``data`` as it reads back from a JSON file written by ``write_json``."""
    return json.loads(json.dumps(data, default=_plain))


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def _plain(value):
    """JSON for numpy scalars and arrays, paths, and dates (as ISO text)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
