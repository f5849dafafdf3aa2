"""The search journal: an interrupted search resumed from its journal is the search that never stopped."""
import json
import warnings

import numpy as np
import pytest

from benchmarks.oracle import TabularOracle
from benchmarks.spaces.finite import FiniteSpace
from harness.cli import main
from harness.journal import JournalingPool, ResumingPool, journaled, read_journal
from harness.runner import Runner
from harness.workers import SimulatedPool, ThreadedPool
from search.base import Problem
from search.registry import make_searcher
from tests.conftest import synthetic_table

COMPARED = ["arch", "epochs", "resume", "value", "cost", "failed", "counted", "start", "end", "paid_epochs"]


class Interrupted(Exception):
    """Stands for Ctrl-C or a crash right after the runner handled a result."""


@pytest.fixture(scope="module")
def table():
    return synthetic_table()


def oracle_and_problem(table, seed=0):
    space = FiniteSpace("synthetic", table.arch_ids.tolist(), table.arch_features)
    oracle = TabularOracle(table, space, np.random.default_rng(seed))
    return oracle, Problem(space, oracle.fidelities, oracle.higher_is_better)


def run(table, method, pool_of, budget, seed=1, max_jobs=None, stop_after=None):
    """One search; ``pool_of(oracle)`` builds the pool; ``stop_after=k`` interrupts after k results."""
    oracle, problem = oracle_and_problem(table)
    searcher = make_searcher(method, problem, np.random.default_rng(seed))
    pool = pool_of(oracle)
    seen = []

    def interrupt(row, best, running):
        seen.append(row)
        if stop_after is not None and len(seen) >= stop_after:
            raise Interrupted
    try:
        return Runner(searcher, pool, budget, max_jobs=max_jobs, on_result=interrupt).run()
    except Interrupted:
        return None
    finally:
        if hasattr(pool, "shutdown"):
            pool.shutdown()


def assert_same_run(resumed, whole, times=True):
    columns = COMPARED if times else [c for c in COMPARED if c not in ("start", "end")]
    assert len(resumed.trace) == len(whole.trace)
    for column in columns:
        a, b = resumed.trace[column].to_numpy(), whole.trace[column].to_numpy()
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), column
        else:
            assert a.tolist() == b.tolist(), column
    assert resumed.chosen_arch == whole.chosen_arch and resumed.chosen_value == whole.chosen_value
    assert resumed.stopped_because == whole.stopped_because
    if times:
        assert resumed.time_used == whole.time_used
        assert resumed.incumbents.equals(whole.incumbents)


@pytest.mark.parametrize("method,workers,budget", [("hyperband", 1, 8000.0), ("pmfnas", 1, 1e6), ("asha", 1, 1e6),
                                                   ("asha", 3, 1e6), ("hyperband", 3, 2500.0), ("pmfnas", 3, 1e6)])
def test_interrupted_and_resumed_is_the_uninterrupted_search(tmp_path, table, method, workers, budget):
    whole = run(table, method, lambda o: SimulatedPool(o, workers), budget)
    assert whole.trace["resume"].any()  # promotions after the interruption must be charged their extra epochs only
    n = len(whole.trace)
    told = int(whole.trace["counted"].sum())  # results the searcher was told (a job cut by the budget is not)
    for k in sorted({1, told // 3, (2 * told) // 3, told - 1}):
        path = tmp_path / f"{method}-{workers}-{k}.jsonl"
        journaling = lambda o: JournalingPool(SimulatedPool(o, workers), path)  # noqa: E731
        interrupted = run(table, method, journaling, budget, stop_after=k)
        assert interrupted is None
        journal = read_journal(path)
        assert len(journal) == k and len(journal.submitted) >= k
        resumed = run(table, method, lambda o: journaled(SimulatedPool(o, workers), path, resume=True), budget)
        assert_same_run(resumed, whole)
        # The journal now records the whole search (a job cut at the deadline reads as running, so that a
        # larger budget would continue it): resuming the finished search replays it once more.
        assert len(read_journal(path)) == told and len(read_journal(path).submitted) == n
        again = run(table, method, lambda o: ResumingPool(SimulatedPool(o, workers), path), budget)
        assert_same_run(again, whole)


def test_several_workers_jobs_running_at_the_interruption_start_again(tmp_path, table):
    whole = run(table, "asha", lambda o: SimulatedPool(o, 3), 1e6)
    path = tmp_path / "j.jsonl"
    run(table, "asha", lambda o: JournalingPool(SimulatedPool(o, 3), path), 1e6, stop_after=10)
    journal = read_journal(path)
    assert len(journal.running) == 2  # the other two workers were busy when it stopped
    resumed = run(table, "asha", lambda o: journaled(SimulatedPool(o, 3), path, resume=True), 1e6)
    assert_same_run(resumed, whole)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines].count("resume") == 1
    assert sum(line["event"] == "submit" for line in lines) == len(whole.trace)  # no submission written twice


def test_max_jobs_interruption_with_one_worker(tmp_path, table):
    whole = run(table, "hyperband", lambda o: SimulatedPool(o, 1), 8000.0)
    path = tmp_path / "j.jsonl"
    first = run(table, "hyperband", lambda o: JournalingPool(SimulatedPool(o, 1), path), 8000.0, max_jobs=17)
    assert first.stopped_because == "max_jobs"
    resumed = run(table, "hyperband", lambda o: journaled(SimulatedPool(o, 1), path, resume=True), 8000.0)
    assert_same_run(resumed, whole)


def test_wall_clock_pool_continues_from_the_journals_last_time(tmp_path, table):
    """A real pool cannot go back in time: its results are shifted by the journal's last recorded time."""
    whole = run(table, "pmfnas", lambda o: SimulatedPool(o, 1), 1e9)
    path = tmp_path / "j.jsonl"
    run(table, "pmfnas", lambda o: JournalingPool(ThreadedPool(o, 1), path), 1e9, stop_after=15)
    offset = read_journal(path).end_time
    # Interrupted a second time, then resumed again: the sessions chain.
    run(table, "pmfnas", lambda o: journaled(ThreadedPool(o, 1), path, resume=True), 1e9, stop_after=30)
    second = read_journal(path)
    assert len(second) == 30 and second.sessions == 1 and second.end_time >= offset
    resumed = run(table, "pmfnas", lambda o: journaled(ThreadedPool(o, 1), path, resume=True), 1e9)
    assert_same_run(resumed, whole, times=False)
    trace = resumed.trace
    assert (trace["start"].iloc[30:] >= second.end_time).all()  # after the replay the clock goes on
    assert np.array_equal(trace["start"].iloc[:30].to_numpy(), [e.start for e in second.completions])
    assert resumed.time_used >= trace["end"].max() >= second.end_time
    assert trace["start"].is_monotonic_increasing and read_journal(path).sessions == 2


def test_truncated_last_line_is_ignored_with_a_warning(tmp_path, table):
    whole = run(table, "asha", lambda o: SimulatedPool(o, 1), 1e6)
    path = tmp_path / "j.jsonl"
    run(table, "asha", lambda o: JournalingPool(SimulatedPool(o, 1), path), 1e6, stop_after=12)
    complete = path.read_bytes()
    last = complete.rstrip(b"\n").rsplit(b"\n", 1)[1]
    path.write_bytes(complete + last[: len(last) // 2])  # a crash in the middle of writing a line
    with pytest.warns(UserWarning, match="partial line"):
        resumed = run(table, "asha", lambda o: journaled(SimulatedPool(o, 1), path, resume=True), 1e6)
    assert_same_run(resumed, whole)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the partial line was cut off before appending: the file reads clean
        assert len(read_journal(path)) == int(whole.trace["counted"].sum())


def test_a_journal_of_another_search_is_refused(tmp_path, table):
    path = tmp_path / "j.jsonl"
    run(table, "hyperband", lambda o: JournalingPool(SimulatedPool(o, 1), path, meta={"method": "hyperband"}), 8000.0,
        stop_after=5)
    size = path.stat().st_size
    with pytest.raises(ValueError, match="does not match this search: job #0 .*different method, seed or settings"):
        run(table, "hyperband", lambda o: journaled(SimulatedPool(o, 1), path, resume=True), 8000.0, seed=2)
    with pytest.raises(ValueError, match="does not match this search"):
        run(table, "asha", lambda o: journaled(SimulatedPool(o, 1), path, resume=True), 8000.0)
    with pytest.raises(ValueError, match="ran 1 workers, this search 2"):
        ResumingPool(SimulatedPool(oracle_and_problem(table)[0], 2), path)
    with pytest.raises(ValueError, match="already records a search"):
        JournalingPool(SimulatedPool(oracle_and_problem(table)[0], 1), path)
    with pytest.raises(ValueError, match="written by a different search: method 'hyperband' there, 'asha' here"):
        journaled(SimulatedPool(oracle_and_problem(table)[0], 1), path, resume=True, meta={"method": "asha"})
    assert path.stat().st_size == size  # a refused resume writes nothing


def test_a_journal_of_another_table_with_the_same_name_is_refused(tmp_path, capsys):
    table_path, journal = tmp_path / "table.npz", tmp_path / "j.jsonl"
    synthetic_table().save(table_path)
    assert cli_search(table_path, "--journal", str(journal), "--max-jobs", "5") == 0
    synthetic_table(seed=5).save(table_path)  # same path and names, other curves
    capsys.readouterr()
    assert cli_search(table_path, "--journal", str(journal), "--resume") == 2
    assert "written by a different search: table" in capsys.readouterr().err


def test_corrupt_line_in_the_middle_is_an_error(tmp_path, table):
    path = tmp_path / "j.jsonl"
    run(table, "asha", lambda o: JournalingPool(SimulatedPool(o, 1), path), 1e6, stop_after=3)
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2][:10] + "\n"
    path.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"j\.jsonl:3: not a valid journal line"):
        read_journal(path)


def test_journal_lines(tmp_path, table):
    path = tmp_path / "j.jsonl"
    with JournalingPool(SimulatedPool(oracle_and_problem(table)[0], 2), path, meta={"method": "asha"}) as pool:
        run(table, "asha", lambda o: pool, 1e6, stop_after=4)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"event": "journal", "version": 2, "workers": 2, "meta": {"method": "asha"}}
    done = [line for line in lines if line["event"] == "done"]
    assert len(done) == 4 and set(done[0]) == {"event", "n", "arch", "epochs", "resume", "worker", "start", "end",
                                              "evaluation", "error"}
    assert set(done[0]["evaluation"]) == {"arch", "epochs", "values", "losses", "cost", "failed", "reason"}
    journal = read_journal(path)
    submitted = [line for line in lines if line["event"] == "submit"]
    assert set(submitted[0]) == {"event", "n", "arch", "epochs", "resume", "from_epoch", "repeat", "time"}
    assert len(journal.submitted) == 5 and len(journal.running) == 1
    assert journal.end_time == max(line.get("end", line.get("time", 0.0)) for line in lines[1:])


# ---------------------------------------------------------------------------------------------- CLI
def cli_search(table_path, *extra):
    return main(["search", "--benchmark", str(table_path), "--method", "hyperband", "--budget", "6000", "--quiet",
                 *extra])


def chosen_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("chosen:"))


def test_cli_journal_and_resume(tmp_path, capsys):
    table_path = tmp_path / "table.npz"
    synthetic_table().save(table_path)
    journal = tmp_path / "j.jsonl"
    assert cli_search(table_path) == 0
    whole = chosen_line(capsys.readouterr().out)
    assert cli_search(table_path, "--journal", str(journal), "--max-jobs", "5") == 0
    assert "stopped because: max_jobs" in capsys.readouterr().out
    assert cli_search(table_path, "--journal", str(journal), "--resume") == 0
    captured = capsys.readouterr()
    assert "5 finished jobs are replayed" in captured.err
    assert chosen_line(captured.out) == whole
    # Never silently overwritten: a second search on the same journal needs --resume.
    assert cli_search(table_path, "--journal", str(journal)) == 2
    assert "already records a search: pass --resume" in capsys.readouterr().err
    # Another seed does not match the journal.
    assert cli_search(table_path, "--journal", str(journal), "--resume", "--seed", "3") == 2
    assert "seed 0 there, 3 here" in capsys.readouterr().err
    assert cli_search(table_path, "--resume") == 2
    assert "--resume continues the search recorded in --journal" in capsys.readouterr().err
