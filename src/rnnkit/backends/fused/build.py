"""Compiles the fused kernels at first use, caches the build, and says why when it cannot.

``pip install rnnkit`` ships the C++ sources (``csrc/``), never a binary: the first layer that
wants the fused backend compiles them with PyTorch's extension builder (a C++ compiler and
ninja; about a minute) into PyTorch's extension cache (``$TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``). Every later process loads the cached build in well under a
second. The build's name hashes the sources, the flags and the CPU, so a changed source or
another machine gets its own build and never loads a stale or foreign one.

If the build fails (no compiler, no ninja, no write access to the cache), ``extension()``
warns once and returns None, and layers run on another backend.
"""

import functools
import hashlib
import os
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path

SOURCES = Path(__file__).resolve().parent / "csrc"


def openmp() -> list[str]:
    """-fopenmp where torch runs its own threads on OpenMP (its Linux builds): at::parallel_for
    in the kernels is an OpenMP loop that compiles to a serial one without the flag. The
    kernels then share torch's OpenMP runtime (the same libgomp.so.1, already loaded) and its
    thread count (torch.set_num_threads)."""
    import torch

    if platform.system() != "Linux" or "OpenMP" not in torch.__config__.parallel_info():
        return []
    return ["-fopenmp"]


@functools.cache
def cflags() -> list[str]:
    # -march=native lets GCC vectorise the cells' loops for this CPU's widest units; safe,
    # because the CPU is part of the build's name (see build_name).
    native = ["-march=native"] if platform.machine() in ("x86_64", "AMD64") else []
    return ["-O3", "-fno-math-errno", *native, *openmp()]


_failure: str | None = None


def failure() -> str | None:
    """Why the kernels could not be built, once a build was tried and failed."""
    return _failure


def cpu_model() -> str:
    """The CPU's name and instruction-set flags (Linux), else what platform knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    found = [line for line in lines if line.startswith(("model name", "flags"))][:2]
    return " ".join(found) or platform.processor() or platform.machine()


def source_files() -> list[Path]:
    return sorted(SOURCES.glob("*.cpp"))


def build_name() -> str:
    import torch

    digest = hashlib.sha256()
    for path in sorted(SOURCES.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    # The path too: torch's build files name the sources by path, so two checkouts sharing a
    # name would rebuild over each other in turn.
    digest.update(" ".join([str(SOURCES), *cflags(), torch.__version__, cpu_model()]).encode())
    return f"rnnkit_fused_{digest.hexdigest()[:12]}"


def find_ninja() -> None:
    """Put pip's ninja on PATH if none is there: torch's builder runs ``ninja`` by name, and a
    virtual environment that is not activated has its ninja outside PATH."""
    if shutil.which("ninja"):
        return
    try:
        import ninja
    except ImportError:
        return
    os.environ["PATH"] = os.pathsep.join([ninja.BIN_DIR, os.environ.get("PATH", "")])


STALE_LOCK_SECONDS = 15 * 60  # a build takes 1-2 minutes; a lock this old lost its builder


def clear_stale_lock(directory: Path) -> None:
    """Remove the lock a killed build left behind: torch's builder would wait for it forever."""
    lock = directory / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return
    if age > STALE_LOCK_SECONDS:
        print(
            f"rnnkit: removing a stale build lock ({age / 60:.0f} min old) left by a killed "
            f"build: {lock}",
            file=sys.stderr,
            flush=True,
        )
        lock.unlink(missing_ok=True)


@functools.cache
def extension():
    """The compiled module, or None (after one warning) if it cannot be built here."""
    global _failure
    try:
        from torch.utils import cpp_extension

        find_ninja()
        name = build_name()
        root = os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension._get_build_directory(
            "", verbose=False
        )
        clear_stale_lock(Path(root) / name)
        if not (Path(root) / name / f"{name}.so").exists():
            print(
                "rnnkit: compiling the fused RNN kernels, once per machine and install (~1 min)",
                file=sys.stderr,
                flush=True,
            )
        return cpp_extension.load(
            name=name,
            sources=[str(p) for p in source_files()],
            extra_cflags=cflags(),
            extra_ldflags=openmp(),
            extra_include_paths=[str(SOURCES)],
            verbose=False,
        )
    except Exception as error:  # any failure to build means: use another backend
        lines = str(error).strip().splitlines() or [""]
        # A failed compile ends with ninja's "build stopped"; the compiler's line says why.
        cause = next((line for line in lines if "error:" in line), lines[0])
        _failure = f"{type(error).__name__}: {cause.strip()}"
        warnings.warn(
            f"rnnkit could not build its fused kernels ({_failure}); layers run on the vendor "
            "or reference backend instead, which compute the same results more slowly. "
            "The build needs a C++ compiler and ninja (pip install ninja).",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
