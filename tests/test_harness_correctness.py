"""The harness's numbers: nothing is free, every search ends, real deadlines hold, failures pay what they trained.

Each test here failed on the harness before the runner became the one owner of what was paid.
"""
import threading
import time

import numpy as np
import pytest

from benchmarks.oracle import Evaluation, TabularOracle
from benchmarks.spaces.finite import FiniteSpace
from harness.runner import STOP_REASONS, Runner, run_tabular
from harness.workers import ThreadedPool
from search.base import Job, Problem, Searcher
from search.registry import SEARCHERS, make_searcher
from tests.conftest import synthetic_table


class ScriptedSearcher(Searcher):
    """Asks a fixed list of jobs in order."""

    def __init__(self, problem, rng, jobs):
        super().__init__(problem, rng)
        self.jobs = list(jobs)
        self.told = []

    def ask(self):
        return self.jobs.pop(0) if self.jobs else None

    def tell(self, job, observation):
        self.told.append((job, observation))


def tabular(table, seed=0):
    space = FiniteSpace("synthetic", table.arch_ids.tolist(), table.arch_features)
    oracle = TabularOracle(table, space, np.random.default_rng(seed))
    return oracle, Problem(space, oracle.fidelities, oracle.higher_is_better)


def full_cost(table, arch, slot=0):
    return float(table.seconds[table.row(arch), slot].astype(np.float64).sum())


# ------------------------------------------------------------------------------------------ 1. nothing is free
def test_a_fresh_run_of_a_trained_architecture_pays_in_full_and_sees_another_seed():
    table = synthetic_table(n_archs=6, repeats=3)
    oracle, problem = tabular(table)
    jobs = [Job("a001", 27), Job("a001", 27), Job("a001", 9), Job("a001", 27, resume=True)]
    searcher = ScriptedSearcher(problem, np.random.default_rng(0), jobs)
    result = run_tabular(searcher, oracle, budget=1e9)
    trace = result.trace
    assert trace["repeat"].tolist() == [0, 1, 2, 2]
    assert trace["paid_epochs"].tolist() == [27, 27, 9, 18]
    row = table.row("a001")
    slots = [int(np.flatnonzero(np.isclose(table.curves["valid"][row, :, -1], v))[0]) for v in trace["value"].iloc[:2]]
    assert slots[0] != slots[1]  # the second fresh run is another recorded seed
    assert trace["cost"].iloc[0] == pytest.approx(full_cost(table, "a001", slots[0]))
    assert trace["cost"].iloc[1] == pytest.approx(full_cost(table, "a001", slots[1]))
    assert result.time_used == pytest.approx(trace["cost"].sum())  # the clock moved by every second charged


@pytest.mark.parametrize("method", ["random", "rea"])
def test_repeated_evaluations_cost_their_recorded_seconds(method):
    table = synthetic_table(n_archs=10)
    oracle, problem = tabular(table)
    budget = 30 * float(np.median(table.full_evaluation_seconds()))
    result = run_tabular(make_searcher(method, problem, np.random.default_rng(4)), oracle, budget)
    counted = result.trace[result.trace["counted"]]
    assert len(counted) >= 10 and (counted["cost"] > 0).all()
    # Each fresh full-fidelity run pays every epoch; the clock holds exactly what was charged.
    assert (counted["paid_epochs"] == counted["reached"]).all()
    assert result.time_used <= budget
    assert counted["end"].max() == pytest.approx(counted["cost"].sum())


def test_the_runner_refuses_free_or_impossible_resumes():
    table = synthetic_table(n_archs=4)
    oracle, problem = tabular(table)
    for jobs, message in [([Job("a001", 9, resume=True)], "never trained"),
                          ([Job("a001", 9), Job("a001", 9, resume=True)], "already trained to 9"),
                          ([Job("a001", 9), Job("a001", 3, resume=True)], "a resume must add epochs")]:
        searcher = ScriptedSearcher(problem, np.random.default_rng(0), jobs)
        with pytest.raises(ValueError, match=message):
            run_tabular(searcher, oracle, budget=1e9)


# ------------------------------------------------------------------------------------------ 2. every search ends
@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("method", sorted(SEARCHERS))
def test_every_method_ends_on_a_tiny_table_and_says_why(method, workers):
    table = synthetic_table(n_archs=10)
    oracle, problem = tabular(table)
    budget = 100 * float(np.median(table.full_evaluation_seconds()))
    # The cap is only there so that a regression fails instead of hanging; the search must end well before it.
    result = run_tabular(make_searcher(method, problem, np.random.default_rng(0)), oracle, budget, workers,
                         max_jobs=2000)
    assert result.stopped_because in STOP_REASONS and result.stopped_because != "max_jobs"
    assert len(result.trace) < 2000
    if method in ("random", "rea"):
        assert result.stopped_because == "space exhausted"
        finished = result.trace[result.trace["counted"] & (result.trace["reached"] == 27)]
        assert finished["arch"].nunique() == 10


# ------------------------------------------------------------------------------------------ 3. real deadlines
class SleepingOracle:
    """Epochs of ``epoch_seconds`` of real time; honours the stop signal between epochs, as the trainer does."""

    metric, higher_is_better, n_architectures = "valid", True, None

    def __init__(self, epoch_seconds: float, max_epochs: int):
        self.epoch_seconds = epoch_seconds
        self.space = FiniteSpace("slow", [f"s{i}" for i in range(50)])
        self.fidelities = tuple(range(1, max_epochs + 1))
        self.max_epochs = max_epochs
        self.epochs_run = 0
        self._lock = threading.Lock()

    def identify(self, arch):
        return arch

    def evaluate(self, arch, epochs, start=0, repeat=0, stop=None):
        done = start
        while done < epochs and not (stop is not None and stop.is_set()):
            time.sleep(self.epoch_seconds)
            done += 1
            with self._lock:
                self.epochs_run += 1
        shown = np.arange(1, max(done, 1) + 1)
        return Evaluation(arch, shown, shown / 10.0, shown * 0.0, cost=(done - start) * self.epoch_seconds)


def test_a_real_search_stops_running_jobs_at_the_deadline():
    oracle = SleepingOracle(epoch_seconds=0.1, max_epochs=20)  # a full job takes 2 s
    problem = Problem(oracle.space, oracle.fidelities, True)
    searcher = make_searcher("random", problem, np.random.default_rng(0))
    pool = ThreadedPool(oracle, 2)
    started = time.monotonic()
    try:
        result = Runner(searcher, pool, budget=1.0).run()
        took = time.monotonic() - started
    finally:
        pool.shutdown()
    assert result.stopped_because == "budget"
    assert took < 1.0 + 2 * oracle.epoch_seconds + 0.3  # within about one epoch of the deadline
    # Never less time than it took (the pool's clock started before the run), never a slice reported as the budget.
    assert took <= result.time_used < 1.0 + 2 * oracle.epoch_seconds + 0.3
    assert not result.trace["counted"].any() and len(result.trace) == 2
    assert oracle.epochs_run <= 2 * (10 + 1)


class QuickAndSlow(SleepingOracle):
    """Architecture s0 finishes at once; every other one takes ``slow`` seconds."""

    def __init__(self, slow):
        super().__init__(0.0, 1)
        self.slow = slow

    def evaluate(self, arch, epochs, start=0, repeat=0, stop=None):
        time.sleep(0.05 if arch == "s0" else self.slow)
        return Evaluation(arch, np.array([1]), np.array([0.5]), np.array([0.0]), cost=0.0)


def test_workers_stamp_their_own_end_so_a_job_collected_late_still_counts():
    oracle = QuickAndSlow(slow=0.6)
    problem = Problem(oracle.space, oracle.fidelities, True)
    searcher = ScriptedSearcher(problem, np.random.default_rng(0), [Job("s1", 1), Job("s0", 1)])
    pool = ThreadedPool(oracle, 2)
    try:
        time.sleep(0)
        result = Runner(searcher, pool, budget=5.0).run()
    finally:
        pool.shutdown()
    trace = result.trace.set_index("arch")
    assert trace.loc["s0", "end"] < 0.3 < trace.loc["s1", "end"]
    assert [job.arch for job, _ in searcher.told] == ["s0", "s1"]  # told in the order they really finished


# ------------------------------------------------------------------------------------------ 5. failures
class RaisingOnResume:
    """A lookup that raises whenever a run is continued (a crashed trainer)."""

    def __init__(self, table):
        self.inner, _ = tabular(table)
        for name in ("space", "metric", "higher_is_better", "fidelities", "max_epochs", "n_architectures", "identify"):
            setattr(self, name, getattr(self.inner, name))

    def evaluate(self, arch, epochs, start=0, repeat=0, stop=None):
        if start:
            raise RuntimeError("the trainer crashed")
        return self.inner.evaluate(arch, epochs, start=start, repeat=repeat)


def run_threaded(oracle, problem, jobs):
    pool = ThreadedPool(oracle, 1)
    try:
        return Runner(ScriptedSearcher(problem, np.random.default_rng(0), jobs), pool, budget=60.0).run()
    finally:
        pool.shutdown()


def test_a_job_that_raised_is_recorded_with_the_epochs_it_really_completed():
    table = synthetic_table(n_archs=4)
    oracle = RaisingOnResume(table)
    problem = Problem(oracle.space, oracle.fidelities, True)
    jobs = [Job("a001", 3), Job("a001", 27, resume=True), Job("a002", 3)]
    result = run_threaded(oracle, problem, jobs)
    crashed = result.trace.iloc[1]
    assert crashed["failed"] and "the trainer crashed" in crashed["reason"]
    assert crashed["reached"] == 3 and crashed["paid_epochs"] == 0 and crashed["cost"] == 0.0
    assert result.epochs_paid == 6
    with pytest.raises(ValueError, match="whose run failed"):
        run_threaded(oracle, problem, jobs[:2] + [Job("a001", 27, resume=True)])


@pytest.mark.parametrize("method", ["sh", "hyperband", "asha"])
def test_a_promotion_that_raised_does_not_make_a_bracket_searcher_pay_for_the_rungs_below_again(method):
    # The runner tells a job that raised as one failed point at the asked epochs; successive halving once
    # let that point replace the curve it had resumed from, took the lower rung for unknown and trained
    # the architecture again from scratch.
    table = synthetic_table(n_archs=3, n_epochs=9)
    oracle = RaisingOnResume(table)
    problem = Problem(oracle.space, oracle.fidelities, True)
    searcher = make_searcher(method, problem, np.random.default_rng(0), eta=3, min_epochs=1)
    pool = ThreadedPool(oracle, 1)
    try:
        result = Runner(searcher, pool, budget=60.0, max_jobs=100).run()
    finally:
        pool.shutdown()
    trace = result.trace
    assert trace["failed"].any()  # the scenario happened: some promotion raised
    fresh = trace[~trace["resume"]]
    assert fresh["arch"].value_counts().max() == 1, fresh[["arch", "epochs"]].to_dict("records")


# ------------------------------------------------------------------- 6. failed runs never count (incumbent)
def failing_world():
    """The contract's table: a29 looks best of all at 4 epochs, then its run diverges at epoch 6."""
    from tests.test_searchers_contract import make_world

    table, space, problem = make_world()
    return table, TabularOracle(table, space, np.random.default_rng(0)), problem


def test_a_failed_continuation_withdraws_its_run_and_the_best_run_still_standing_returns():
    table, oracle, problem = failing_world()
    jobs = [Job("a05", 4), Job("a29", 4), Job("a29", 12, resume=True)]
    result = run_tabular(ScriptedSearcher(problem, np.random.default_rng(0), jobs), oracle, 1e9)
    failed = result.trace.iloc[2]
    assert failed["failed"] and failed["resume"] and failed["reached"] == 6
    # a29 at 4 epochs was the incumbent until its own run failed further on; then a05 at 4 epochs is.
    a05_at_4 = float(table.curves["valid"][table.row("a05"), 0, 3])
    assert result.incumbents["arch"].tolist() == ["a05", "a29", "a05"]
    assert result.incumbents["time"].iloc[-1] == failed["end"]
    assert (result.chosen_arch, result.chosen_value) == ("a05", a05_at_4)


def test_with_no_run_left_standing_there_is_no_incumbent_but_a_cut_job_withdraws_nothing():
    _, oracle, problem = failing_world()
    alone = [Job("a29", 4), Job("a29", 12, resume=True)]
    result = run_tabular(ScriptedSearcher(problem, np.random.default_rng(0), alone), oracle, 1e9)
    assert result.chosen_arch is None and np.isnan(result.chosen_value)
    assert len(result.incumbents) == 2 and result.incumbents["arch"].iloc[0] == "a29"
    assert result.incumbents["arch"].isna().iloc[1] and result.incumbents["epochs"].iloc[1] == 0
    # Every epoch costs 1 s: the continuation starts at 4 s and would fail at 6 s, past a 5 s budget, so it
    # is cut, never counted, and the run it continues still stands.
    cut = run_tabular(ScriptedSearcher(problem, np.random.default_rng(0), list(alone)), oracle, 5.0)
    assert not cut.trace["counted"].iloc[1]
    assert cut.chosen_arch == "a29" and cut.incumbents["arch"].tolist() == ["a29"]
