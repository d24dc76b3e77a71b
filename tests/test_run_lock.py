"""One run per run directory (issue 29, item 2): a second process training into the same
``--out`` is refused at once with the holder's pid and start time, and a killed holder
releases the lock, so its run can be resumed."""

import os
import signal
import subprocess
import sys

import pytest

from rnnkit.tasks.rundir import RunLockedError, run_lock, staging

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the lock is an flock")

HOLDER = """
import sys, time
from rnnkit.tasks.rundir import staging
with staging(sys.argv[1], resume=True) as partial:
    (partial / "checkpoint").mkdir()
    print("holding", flush=True)
    time.sleep(60)
"""


def _hold(out):
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                               text=True)  # fmt: skip
    assert process.stdout.readline().strip() == "holding"
    return process


def test_a_second_process_is_refused_and_a_killed_one_releases_the_run(tmp_path):
    out = tmp_path / "run"
    holder = _hold(out)
    try:
        with (
            pytest.raises(
                RunLockedError,
                match=rf"being written by another process \(pid {holder.pid}, started ",
            ),
            staging(out),
        ):
            pass
        assert (tmp_path / "run.partial" / "checkpoint").is_dir(), "the holder's work stays"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # Killed mid-run: its lock is gone with it, and its partial run resumes.
    with staging(out, resume=True) as partial:
        assert (partial / "checkpoint").is_dir()
        (partial / "config.json").write_text("{}")
    assert (out / "config.json").exists() and not (tmp_path / "run.lock").exists()


def test_the_lock_is_released_on_an_error_and_reentered_after(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="boom"), run_lock(out):
        raise ValueError("boom")
    with run_lock(out):
        assert (tmp_path / "run.lock").read_text().startswith(f"pid {os.getpid()}, started ")
