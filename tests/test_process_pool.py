"""ProcessPool: workers as OS processes, each with its own oracle; failures, dead workers, journals, real trainers.

The tabular tests need no torch. The trainer tests (``importorskip("torch")``) show a promotion resuming on
another process from the shared checkpoint directory, and a real search over processes from the command line.
"""
import functools
import os

import numpy as np
import pytest

from benchmarks.oracle import TabularOracle
from benchmarks.registry import load_benchmark, space_for
from harness.journal import JournalingPool, journaled, read_journal
from harness.runner import Runner
from harness.workers import ProcessPool, SimulatedPool
from search.base import Job, Problem, Searcher
from tests.conftest import synthetic_table

RAISES = "a005"  # the worker's oracle raises for this architecture
KILLS = "a006"  # the worker process dies (os._exit) evaluating this architecture


class FaultyOracle:
    """A TabularOracle (repeat 0) that raises for RAISES and kills its process for KILLS."""

    def __init__(self, path, index, device):
        table = load_benchmark(path)
        self.inner = TabularOracle(table, space_for(table), repeat=0)
        self.index, self.device, self.pid = index, device, os.getpid()
        self.space, self.metric, self.higher_is_better = self.inner.space, self.inner.metric, self.inner.higher_is_better
        self.fidelities, self.max_epochs = self.inner.fidelities, self.inner.max_epochs
        self.n_architectures, self.identify = self.inner.n_architectures, self.inner.identify

    def evaluate(self, arch, epochs, start=0, repeat=0, stop=None):
        if arch == RAISES:
            raise RuntimeError(f"boom in worker {self.index}")
        if arch == KILLS:
            os._exit(3)
        evaluation = self.inner.evaluate(arch, epochs, start=start, repeat=repeat)
        # Which process and device answered travel back in the reason of a successful evaluation.
        return type(evaluation)(**{**evaluation.__dict__, "reason": f"{self.index}|{self.device}|{self.pid}"})


def faulty_oracle(path, index, device):
    return FaultyOracle(path, index, device)


def refuses_to_start(index, device):
    raise FileNotFoundError(f"no data for worker {index}")


class Scripted(Searcher):
    """Asks a fixed list of jobs in order (order-independent: what it asks does not depend on what it is told)."""

    def __init__(self, problem, rng, jobs):
        super().__init__(problem, rng)
        self.jobs = list(jobs)

    def ask(self):
        return self.jobs.pop(0) if self.jobs else None

    def tell(self, job, observation):
        pass


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    return str(synthetic_table(n_archs=12, n_epochs=6).save(tmp_path_factory.mktemp("table") / "synthetic.npz"))


@pytest.fixture(scope="module")
def processes(table_path):
    """Two worker processes shared by the tests that leave them idle (starting processes is the slow part)."""
    with ProcessPool(functools.partial(faulty_oracle, table_path), 2, devices=["dev:a", "dev:b"]) as shared:
        yield shared


@pytest.fixture
def pool(processes):
    """The shared workers, idle (a test that failed half-way may have left jobs running)."""
    while processes.in_flight():
        processes.next_completion()
    return processes


def reference(table_path):
    table = load_benchmark(table_path)
    return TabularOracle(table, space_for(table), repeat=0)


def run(pool, jobs, table_path, max_jobs=None):
    oracle = reference(table_path)
    problem = Problem(oracle.space, oracle.fidelities, oracle.higher_is_better)
    return Runner(Scripted(problem, np.random.default_rng(0), jobs), pool, 1e9, max_jobs=max_jobs).run()


def test_completions_come_back_from_their_own_processes(pool, table_path):
    assert pool.n_workers == 2 and pool.idle_workers() == 2 and pool.in_flight() == 0
    pool.submit(Job("a001", 3))
    pool.submit(Job("a002", 6))
    assert pool.idle_workers() == 0 and pool.in_flight() == 2
    with pytest.raises(RuntimeError, match="no idle worker"):
        pool.submit(Job("a003", 1))
    done = [pool.next_completion(), pool.next_completion()]
    assert pool.in_flight() == 0 and pool.idle_workers() == 2
    assert sorted((d.job.arch, d.worker) for d in done) == [("a001", 0), ("a002", 1)]
    expected = reference(table_path)
    for d in done:
        assert d.error == "" and 0 <= d.start <= d.end <= pool.clock.now()
        truth = expected.evaluate(d.job.arch, d.job.epochs)
        assert np.array_equal(d.evaluation.values, truth.values) and d.evaluation.cost == truth.cost
        index, device, pid = d.evaluation.reason.split("|")
        assert int(index) == d.worker and device == pool.device_of(d.worker) == ["dev:a", "dev:b"][d.worker]
        assert int(pid) != os.getpid()
    assert len({d.evaluation.reason.split("|")[2] for d in done}) == 2  # two distinct processes
    with pytest.raises(RuntimeError, match="no job is running"):
        pool.next_completion()


def test_a_search_over_processes_runs_the_jobs_of_one_simulated_worker(pool, table_path):
    jobs = [Job(f"a{i:03d}", e) for i, e in zip(range(12), [1, 3, 6, 2, 2, 4, 6, 1, 1, 3, 5, 2]) if i not in (5, 6)]
    over_processes = run(pool, jobs, table_path)
    oracle = reference(table_path)
    problem = Problem(oracle.space, oracle.fidelities, oracle.higher_is_better)
    simulated = Runner(Scripted(problem, np.random.default_rng(0), jobs), SimulatedPool(oracle, 1), 1e9).run()
    assert over_processes.stopped_because == "searcher finished" and len(over_processes.trace) == len(jobs)
    seen = {(r.arch, r.epochs, r.value) for r in over_processes.trace.itertuples()}
    assert seen == {(r.arch, r.epochs, r.value) for r in simulated.trace.itertuples()}
    assert set(over_processes.trace["worker"]) == {0, 1} and not over_processes.trace["failed"].any()
    assert over_processes.chosen_arch == simulated.chosen_arch


def test_a_job_that_raises_fails_and_the_search_goes_on(pool, table_path):
    result = run(pool, [Job("a001", 2), Job(RAISES, 2), Job("a002", 2), Job("a003", 2)], table_path)
    trace = result.trace.set_index("arch")
    assert trace.loc[RAISES, "failed"] and "RuntimeError: boom in worker" in trace.loc[RAISES, "reason"]
    assert not trace.drop(index=RAISES)["failed"].any() and len(trace) == 4


def test_a_dead_worker_process_fails_its_job_and_is_replaced(pool, table_path):
    restarts = pool.restarts
    result = run(pool, [Job(KILLS, 2), Job("a001", 1), Job("a002", 1), Job("a003", 1), Job("a004", 1)], table_path)
    trace = result.trace.set_index("arch")
    assert trace.loc[KILLS, "failed"] and "died while running this job (exit code 3)" in trace.loc[KILLS, "reason"]
    assert not trace.drop(index=KILLS)["failed"].any() and len(trace) == 5
    dead = int(trace.loc[KILLS, "worker"])
    assert pool.restarts == restarts + 1
    assert pool.idle_workers() == 2 and pool.in_flight() == 0
    # A replacement process (same worker index and device, its own new oracle) runs that worker's next jobs.
    for arch in ("a007", "a008"):
        pool.submit(Job(arch, 1))
    done = {d.worker: d for d in (pool.next_completion(), pool.next_completion())}
    assert done[dead].error == "" and done[dead].evaluation.reason.split("|")[:2] == [str(dead), pool.device_of(dead)]


def test_a_worker_that_cannot_start_raises_its_error_and_a_lambda_is_refused():
    with pytest.raises(FileNotFoundError, match="no data for worker"):
        ProcessPool(refuses_to_start, 1)
    with pytest.raises(TypeError, match="must be picklable"):
        ProcessPool(lambda index, device: None, 1)
    with pytest.raises(ValueError):
        ProcessPool(refuses_to_start, 0)


def test_journaled_and_resumed_over_processes(pool, table_path, tmp_path):
    jobs = [Job(f"a{i:03d}", 1 + i % 3) for i in range(8) if i not in (5, 6)]
    path = tmp_path / "journal.jsonl"
    journaling = JournalingPool(pool, path, meta={"what": "test"})
    first = run(journaling, list(jobs), table_path, max_jobs=3)
    journaling.close()  # not shutdown: the module's pool is shared
    assert first.stopped_because == "max_jobs" and len(read_journal(path)) == 3
    resumed_pool = journaled(pool, path, resume=True, meta={"what": "test"})
    resumed = run(resumed_pool, list(jobs), table_path)
    resumed_pool.close()
    journal = read_journal(path)
    assert len(journal) == len(jobs) and journal.sessions == 1 and journal.running == []
    assert resumed.trace["arch"].tolist()[:3] == first.trace["arch"].tolist()
    assert sorted(resumed.trace["arch"]) == sorted(j.arch for j in jobs) and not resumed.trace["failed"].any()


# --------------------------------------------------------------------------- real trainers (torch)
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def test_a_promotion_resumes_on_another_process_from_the_shared_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    from benchmarks.training.factory import TrainerFactory
    from benchmarks.training.trainer import TrainConfig, TrainerOracle

    config = TrainConfig(dataset="fashion-mnist", C=4, N=1, batch_size=64, max_epochs=2, train_size=128,
                         valid_size=64, test_size=64, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: on the CPU, bitwise equal curves need equal thread counts
    try:
        alone = TrainerOracle(config, checkpoint_dir=tmp_path / "alone")
        whole = alone.evaluate(BEST, 2)  # one process, never interrupted
    except FileNotFoundError as error:
        pytest.fail(f"Fashion-MNIST is needed (apt-get install dataset-fashion-mnist): {error}")
    finally:
        torch.set_num_threads(threads)
    factory = TrainerFactory(config, str(tmp_path / "shared"), num_threads=1)
    with ProcessPool(factory, 2, oracle=factory.trainer()) as pool:
        pool.submit(Job(BEST, 1))
        first = pool.next_completion()
        pool.submit(Job(RESNET, 1))  # takes worker 0 ...
        pool.submit(Job(BEST, 2, resume=True), start=1)  # ... so that worker 1 continues what worker 0 trained
        second = {d.job.arch: d for d in (pool.next_completion(), pool.next_completion())}[BEST]
        parent = pool.oracle
    assert (first.worker, second.worker) == (0, 1) and first.error == second.error == ""
    assert parent.adopt_checkpoints([BEST, RESNET, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]) == [BEST, RESNET]
    seconds = parent.records[BEST].seconds  # what the two workers charged, epoch by epoch
    assert len(seconds) == 2 and first.evaluation.cost == seconds[0] and second.evaluation.cost == seconds[1]
    assert parent.epochs_trained(BEST) == 2 and parent.epochs_trained(RESNET) == 1
    # The promotion paid epoch 2 only, and shows the curve of one process that never stopped.
    b = second.evaluation
    assert not b.failed and b.epochs.tolist() == [1, 2] and np.array_equal(b.values, whole.values)
    assert np.array_equal(b.losses, whole.losses) and np.array_equal(first.evaluation.values, whole.values[:1])
    assert parent.records[BEST].valid_loss == alone.records[BEST].valid_loss
    table = parent.to_table("two-processes")
    assert table.arch_ids.tolist() == [BEST, RESNET]
    assert np.isfinite(table.curves["valid"][:, 0]).sum(axis=1).tolist() == [2, 1]


def test_a_failed_trial_is_kept_for_every_process_and_recorded(tmp_path):
    pytest.importorskip("torch")
    from benchmarks.training.factory import TrainerFactory
    from benchmarks.training.trainer import TrainConfig

    config = TrainConfig(dataset="fashion-mnist", C=4, N=1, batch_size=64, max_epochs=2, train_size=128,
                         valid_size=64, test_size=64, device="cpu", lr=1e6)  # diverges
    factory = TrainerFactory(config, str(tmp_path))
    one = factory(0, "cpu")  # a worker's oracle (here in this process)
    failed = one.evaluate(BEST, 2)
    assert failed.failed and failed.reason.startswith("diverged") and failed.cost > 0
    # The failed run's record stays on disk, so the parent records it although a worker trained it.
    parent = factory.trainer()
    assert parent.adopt_runs([(BEST, 0), (RESNET, 0)]) == [(BEST, 0)]  # RESNET never ran
    assert parent.epochs_trained(BEST) == failed.epoch
    table = parent.to_table("failed")
    assert table.failed[:, 0].tolist() == [True] and "diverged" in table.metadata.extra["failures"][BEST]
    with pytest.raises(ValueError, match="give the device type there"):
        factory(0, "cuda:0")


CLI_TINY = ["--train", "fashion-mnist", "--budget", "3600", "--quiet", "--epochs", "3", "--fidelities", "1,3",
            "--C", "4", "--N", "1", "--train-size", "128", "--valid-size", "64", "--test-size", "64",
            "--batch-size", "64", "--device", "cpu", "--method", "asha", "--seed", "3"]


def replay(record, max_jobs, workers=1):
    """The recorded table replayed by run_tabular with the CLI's searcher and seed."""
    from benchmarks.spaces.nb201 import NB201Space
    from benchmarks.tabular import TabularBenchmark
    from harness.runner import run_tabular
    from harness.seeding import search_streams
    from search.registry import make_searcher

    table = TabularBenchmark.load(record)
    oracle = TabularOracle(table, NB201Space(), repeat=0)
    searcher = make_searcher("asha", Problem(oracle.space, oracle.fidelities, oracle.higher_is_better),
                             search_streams(3)[1])  # the CLI's one seeding rule for --seed 3
    return table, run_tabular(searcher, oracle, budget=1e9, n_workers=workers, max_jobs=max_jobs)


def jobs_and_table(journal, record):
    """The journal's completions, each architecture's most epochs, and the recorded table (with its replay)."""
    done = read_journal(journal).completions
    assert all(e.evaluation is not None and not e.evaluation.failed for e in done)
    trained: dict[str, int] = {}
    for e in done:
        trained[e.job.arch] = max(trained.get(e.job.arch, 0), e.job.epochs)
    table, replayed = replay(record, max_jobs=len(done))
    assert sorted(table.arch_ids.tolist()) == sorted(trained)  # every trained architecture, nothing else
    for row, arch in enumerate(table.arch_ids.tolist()):  # with every epoch trained, and no more
        assert table.epochs[np.isfinite(table.curves["valid"][row, 0])].tolist() == [
            f for f in table.epochs.tolist() if f <= trained[arch]]
    return done, trained, replayed


def test_cli_search_over_one_process_records_a_table_that_replays_it(tmp_path, capsys):
    pytest.importorskip("torch")
    from harness.cli import main

    record, journal = tmp_path / "recorded.npz", tmp_path / "journal.jsonl"
    argv = ["search", *CLI_TINY, "--max-jobs", "6", "--workers", "1", "--processes", "--record", str(record),
            "--journal", str(journal)]
    assert main(argv) == 0
    assert f"recorded the trained curves to {record}" in capsys.readouterr().out
    done, _, replayed = jobs_and_table(journal, record)
    assert len(done) == 6 and any(e.job.resume for e in done)
    # One worker: the replay makes exactly the real search's decisions, sees its values and is charged its costs.
    real = [(e.job.arch, e.job.epochs, e.job.resume, e.evaluation.values[-1]) for e in done]
    assert [(r.arch, r.epochs, r.resume, r.value) for r in replayed.trace.itertuples()] == real
    assert np.allclose(replayed.trace["cost"], [e.evaluation.cost for e in done], rtol=1e-6)


def test_cli_two_processes_resume_their_journal_and_record_every_trained_arch(tmp_path, capsys):
    pytest.importorskip("torch")
    from harness.cli import main

    run = tmp_path / "run"
    common = ["search", *CLI_TINY, "--workers", "2", "--processes", "--checkpoint-dir", str(run)]
    assert main([*common, "--max-jobs", "2"]) == 0  # an "interrupted" search; its journal: run/journal.jsonl
    capsys.readouterr()
    record = tmp_path / "recorded.npz"
    assert main([*common, "--max-jobs", "7", "--resume", "--record", str(record)]) == 0
    captured = capsys.readouterr()
    assert "2 finished jobs are replayed" in captured.err and "recorded the trained curves" in captured.out
    journal = read_journal(run / "journal.jsonl")
    assert len(journal) == 7 and journal.sessions == 1 and journal.running == []
    assert len({(job.arch, job.epochs) for job in journal.submitted}) == 7  # nothing asked twice
    assert {e.worker for e in journal.completions} == {0, 1}
    done, trained, replayed = jobs_and_table(run / "journal.jsonl", record)
    assert set(replayed.trace["arch"]) <= set(trained)

    assert main([*common, "--max-jobs", "7"]) == 2
    assert "already records a search: pass --resume" in capsys.readouterr().err
    assert main([*common, "--max-jobs", "7", "--no-journal"]) == 2  # the workers would continue old checkpoints
    assert "already holds checkpoints" in capsys.readouterr().err
    assert main(["search", *CLI_TINY, "--devices", "cuda:0"]) == 2
    assert "give --processes too" in capsys.readouterr().err
    assert main(["search", "--benchmark", "x", "--budget", "1", "--processes"]) == 2
    assert "give --train DATASET" in capsys.readouterr().err
