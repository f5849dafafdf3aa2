"""Searches and comparisons on a real local Ray cluster (2 CPUs) that this module starts and stops itself."""
import os
import signal
import threading
import time

import numpy as np
import pytest

from harness.cli import main
from harness.journal import read_journal
from tests.conftest import synthetic_table

ray = pytest.importorskip("ray", reason='Ray is not installed (pip install ".[ray]")')

TOY = ["--C", "4", "--N", "1", "--batch-size", "32", "--train-size", "96", "--valid-size", "512",
       "--test-size", "32", "--device", "cpu"]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()


def jobs_of(journal_path):
    journal = read_journal(journal_path)
    return [(job.arch, job.epochs, job.resume, *where) for job, where in zip(journal.submitted, journal.dispatched)]


def test_a_search_on_two_ray_workers_resumes_every_promotion_and_replays_from_its_recording(cluster, tmp_path, capsys):
    pytest.importorskip("torch")
    real, replay, table = tmp_path / "real.jsonl", tmp_path / "replay.jsonl", tmp_path / "recorded.npz"
    # Synchronous successive halving: its decisions do not depend on which of the two workers finishes first.
    common = ["--method", "sh", "--seed", "3", "--budget", "1e6", "--max-jobs", "8", "--workers", "2", "--quiet"]
    assert main(["search", "--train", "fashion-mnist", *TOY, "--epochs", "4", "--fidelities", "1,2,4",
                 "--ray", "auto", "--checkpoint-dir", str(tmp_path / "ckpt"), "--record", str(table),
                 "--journal", str(real), *common]) == 0
    assert main(["search", "--benchmark", str(table), "--journal", str(replay), *common]) == 0
    capsys.readouterr()
    jobs = jobs_of(real)
    assert len(jobs) == 8 and jobs_of(replay) == jobs
    recorded = read_journal(real)
    assert {entry.worker for entry in recorded.completions} == {0, 1}
    assert all(entry.error == "" and not entry.evaluation.failed for entry in recorded.completions)
    # Every promotion continues the epoch its architecture reached, on whichever worker it landed.
    reached = {}
    promotions = 0
    for (arch, epochs, resume, from_epoch, repeat), entry in zip(jobs, sorted(recorded.completions, key=lambda e: e.n)):
        assert from_epoch == (reached[arch] if resume else 0) and repeat == 0
        promotions += resume
        reached[arch] = entry.evaluation.epoch
        assert reached[arch] == epochs
    assert promotions == 2
    # ... and pays only its extra epochs: what each job was charged is what the table records for (from, reached].
    charged = {entry.n: entry.evaluation.cost for entry in recorded.completions}
    replayed = {entry.n: entry.evaluation.cost for entry in read_journal(replay).completions}
    assert charged.keys() == replayed.keys()
    for n in charged:
        assert charged[n] == pytest.approx(replayed[n], rel=1e-5)
    assert [e.evaluation.values.tolist() for e in sorted(read_journal(replay).completions, key=lambda e: e.n)] == \
        [e.evaluation.values.tolist() for e in sorted(recorded.completions, key=lambda e: e.n)]


def test_a_search_whose_driver_died_resumes_from_its_journal_on_the_same_cluster(cluster, tmp_path, capsys):
    """The driver (the pmfnas process) is killed mid-search; --resume joins the cluster again and finishes it."""
    pytest.importorskip("torch")
    import subprocess
    import sys

    journal, table, ckpt = tmp_path / "journal.jsonl", tmp_path / "recorded.npz", tmp_path / "ckpt"
    common = ["--method", "sh", "--seed", "5", "--budget", "1e6", "--max-jobs", "8", "--workers", "2", "--quiet"]
    search = ["search", "--train", "fashion-mnist", *TOY, "--epochs", "4", "--fidelities", "1,2,4",
              "--checkpoint-dir", str(ckpt), "--journal", str(journal), *common]
    address = ray.get_runtime_context().gcs_address
    driver = subprocess.Popen([sys.executable, "-m", "harness.cli", *search, "--ray", address], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and driver.poll() is None:
            if journal.is_file() and journal.read_text().count('"event":"done"') >= 3:
                break
            time.sleep(0.05)
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
        driver.kill()
    finally:
        driver.wait()
    before = read_journal(journal)
    assert 3 <= len(before.completions) < 8
    assert main([*search, "--ray", address, "--resume", "--record", str(table)]) == 0
    replay = tmp_path / "replay.jsonl"
    assert main(["search", "--benchmark", str(table), "--journal", str(replay), *common]) == 0
    capsys.readouterr()
    after = read_journal(journal)
    # Nothing finished before the driver died ran again, and the search is the one that was never interrupted.
    assert len(after.completions) == 8 and sorted(e.n for e in after.completions) == list(range(8))
    assert [(e.n, e.end) for e in after.completions[:len(before.completions)]] == \
        [(e.n, e.end) for e in before.completions]
    assert jobs_of(journal) == jobs_of(replay)


@pytest.mark.parametrize("max_retries", [1, 0])
def test_a_ray_worker_killed_mid_trial_is_retried_or_recorded_failed_and_the_search_goes_on(cluster, tmp_path,
                                                                                           max_retries):
    pytest.importorskip("torch")
    from benchmarks.training.factory import TrainerFactory
    from benchmarks.training.trainer import TrainConfig
    from harness.ray_pool import RayPool
    from harness.runner import Runner
    from search.base import Problem
    from search.registry import make_searcher

    config = TrainConfig(dataset="fashion-mnist", C=4, N=1, batch_size=32, max_epochs=4, train_size=128,
                         valid_size=64, test_size=32, device="cpu")
    factory = TrainerFactory(config, str(tmp_path), fidelities=(2, 4), num_threads=1)
    parent = factory.trainer()
    pool = RayPool(factory, 2, max_retries=max_retries, oracle=parent)
    killed, stop = {}, threading.Event()

    def kill_a_worker_once_its_trial_has_a_checkpoint():
        while not stop.is_set():
            for job, _, pid, _ in pool.running_trials():
                if pid is not None and parent.checkpoint_path(job.arch).is_file():
                    os.kill(pid, signal.SIGKILL)
                    killed.update(arch=job.arch, pid=pid)
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_worker_once_its_trial_has_a_checkpoint)
    searcher = make_searcher("random", Problem(parent.space, parent.fidelities, True), np.random.default_rng(1))
    killer.start()
    try:
        result = Runner(searcher, pool, budget=1e6, max_jobs=3).run()
    finally:
        stop.set()
        killer.join()
        pool.shutdown()
    assert killed, "no trial was seen running with a checkpoint"
    trace = result.trace
    assert result.stopped_because == "max_jobs" and len(trace) == 3 and trace["counted"].all()
    died = trace[trace["reason"].str.contains("died")]
    assert len(died) == 1
    row = died.iloc[0]
    assert f"pid {killed['pid']}" in row["reason"]
    others = trace.drop(index=died.index)
    assert not others["failed"].any() and (others["reached"] == 4).all()
    if max_retries:
        # Retried once, from its checkpoint, and finished; the seconds of the lost attempt are charged too.
        assert pool.retries == 1 and "retried 1 time from its last checkpoint" in row["reason"]
        assert not row["failed"] and row["reached"] == 4 and row["paid_epochs"] == 4
        parent.adopt_runs([(row["arch"], 0)])
        assert row["cost"] > sum(parent.records[row["arch"]].seconds)
    else:
        assert pool.retries == 0 and row["failed"] and "recorded failed" in row["reason"]
        assert row["reached"] == 0 and row["paid_epochs"] == 0


def test_compare_on_ray_writes_the_same_runs_csv_as_local_processes(cluster, tmp_path):
    path = str(tmp_path / "synthetic.npz")
    synthetic_table(n_archs=60, n_epochs=27).save(path)
    args = ["compare", "--benchmark", path, "--methods", "random,sh,asha", "--seeds", "3", "--budget", "1500", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "local"), "--processes", "2"]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--ray", "auto"]) == 0
    for name in ("runs.csv", "anytime.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert len((tmp_path / "ray" / "runs.csv").read_text().splitlines()) == 1 + 9


def test_a_pool_larger_than_the_cluster_is_refused(cluster):
    from harness.ray_pool import RayPool

    with pytest.raises(ValueError, match="3 workers × 1 CPU per trial need 3 CPUs; the Ray cluster has 2"):
        RayPool(len, 3)
    with pytest.raises(ValueError, match="GPU"):
        RayPool(len, 1, gpus_per_trial=0.125)
    with pytest.raises(ValueError, match="gpus_per_trial=1.5"):
        RayPool(len, 1, gpus_per_trial=1.5)


def test_ray_search_options_that_cannot_work_are_refused(tmp_path, capsys):
    base = ["search", "--train", "fashion-mnist", *TOY, "--epochs", "2", "--budget", "60"]
    assert main([*base, "--ray", "auto"]) == 2
    assert "--checkpoint-dir on storage every node" in capsys.readouterr().err
    assert main([*base, "--gpus-per-trial", "0.5"]) == 2
    assert "give --ray too" in capsys.readouterr().err
    assert main([*base, "--ray", "auto", "--processes", "--checkpoint-dir", str(tmp_path)]) == 2
    assert "drop --processes" in capsys.readouterr().err
    assert main(["search", "--benchmark", "x.npz", "--budget", "60", "--ray", "auto"]) == 2
    assert "give --train DATASET" in capsys.readouterr().err


def test_a_worker_that_cannot_build_its_oracle_stops_the_pool_with_its_error(cluster):
    import functools

    from harness.ray_pool import RayPool

    # A factory every worker can unpickle whose call raises: int("x", 0, None) is a TypeError.
    with pytest.raises(RuntimeError, match="worker 0 could not build its oracle: TypeError"):
        RayPool(functools.partial(int, "x"), 1)
