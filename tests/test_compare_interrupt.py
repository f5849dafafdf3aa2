"""A comparison stopped by Ctrl-C or kill -9: clean message, no orphaned workers, resumable."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, synthetic_table

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parents from /proc")

SEEDS = 12


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # it ended meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _start(tmp_path: Path, budget_evals: int, seeds: int, n_archs: int = 80,
           methods: str = "pmfnas,asha") -> tuple[subprocess.Popen, Path, list[str]]:
    """A comparison with two worker processes, in its own session (as a shell job would be)."""
    table = tmp_path / "t.npz"
    synthetic_table(n_archs=n_archs, n_epochs=27).save(table)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "harness.cli", "compare", "--benchmark", str(table), "--methods", methods,
            "--budget-evals", str(budget_evals), "--seeds", str(seeds), "--processes", "2", "--out", str(out), "--quiet"]
    process = subprocess.Popen(argv, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               # A shell running this suite in the background (`.ci/run &`, nohup) ignores
                               # SIGINT and its children inherit that; a terminal's foreground job does not.
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return process, out, argv


@pytest.fixture
def started():
    """The comparisons a test starts; whatever is left of them is killed at the end."""
    processes: list[subprocess.Popen] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)


def test_kill_9_leaves_no_orphaned_worker(tmp_path, started):
    # Every run long enough (about 10 s on a 2-core machine: PMF-NAS's predictor over 3,000 full evaluations)
    # that a worker left alone would still be busy after the deadline below, and the comparison far from done
    # when it is killed. On the 80-cell table runs took 0.35 s and the comparison could end before the kill.
    process, out, _ = _start(tmp_path, budget_evals=3000, seeds=4, n_archs=4000, methods="pmfnas")
    started.append(process)
    workers = _wait_for(lambda: len(_children(process.pid)) == 2 and _children(process.pid), 120, "two workers")
    time.sleep(1.0)  # both are inside a run now
    process.kill()  # SIGKILL to the compare process only, as `kill -9 PID`
    process.wait(timeout=30)
    _wait_for(lambda: not any(_alive(w) for w in workers), 5, f"workers {workers} to end with their parent")
    assert not (out / "runs.csv").exists()


def test_ctrl_c_keeps_finished_runs_and_says_how_to_resume(tmp_path, started):
    process, out, argv = _start(tmp_path, budget_evals=10, seeds=SEEDS)
    started.append(process)
    _wait_for(lambda: (out / "runs").is_dir() and any((out / "runs").iterdir()), 240, "the first finished run")
    os.killpg(process.pid, signal.SIGINT)  # a terminal sends Ctrl-C to the whole foreground process group
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    kept = len(list((out / "runs").iterdir()))
    total = 2 * SEEDS
    assert 0 < kept < total
    assert err.strip().splitlines() == [f"interrupted: {kept} of {total} runs kept in {out}; rerun with --resume"]
    resumed = subprocess.run(argv + ["--resume"], cwd=out.parent, env={**os.environ, "PYTHONPATH": str(REPO)},
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == total and runs["regret"].notna().all()
