import numpy as np
import pytest

from benchmarks.oracle import TabularOracle
from benchmarks.spaces.finite import FiniteSpace
from harness.runner import run_tabular
from search.base import Job, Observation, Problem, Searcher
from tests.conftest import synthetic_table


class ScriptedSearcher(Searcher):
    """Asks a fixed list of jobs in order; remembers what it was told."""

    def __init__(self, problem, rng, jobs):
        super().__init__(problem, rng)
        self.jobs = list(jobs)
        self.told: list[tuple[Job, Observation]] = []

    def ask(self):
        return self.jobs.pop(0) if self.jobs else None

    def tell(self, job, observation):
        self.told.append((job, observation))


class RandomPromoter(Searcher):
    """Random new archs at low fidelity, sometimes resuming a finished one to the max: exercises resumes."""

    def __init__(self, problem, rng):
        super().__init__(problem, rng)
        self.finished: list[str] = []
        self.running: set[str] = set()

    def ask(self):
        ready = [a for a in self.finished if a not in self.running]
        if ready and self.rng.random() < 0.3:
            arch = ready[int(self.rng.integers(len(ready)))]
            self.finished.remove(arch)
            job = Job(arch, self.problem.max_epochs, resume=True)
        else:
            arch = self.problem.space.sample(self.rng)
            if arch in self.running or arch in self.finished:
                return None
            job = Job(arch, 3)
        self.running.add(arch)
        return job

    def tell(self, job, observation):
        self.running.discard(job.arch)
        if job.epochs < self.problem.max_epochs:
            self.finished.append(job.arch)


def setup(table, seed=0):
    space = FiniteSpace("synthetic", table.arch_ids.tolist(), table.arch_features)
    oracle = TabularOracle(table, space, np.random.default_rng(seed))
    return oracle, Problem(space, oracle.fidelities, oracle.higher_is_better)


def test_identical_seeds_give_identical_traces(table):
    traces = []
    for _ in range(2):
        oracle, problem = setup(table, seed=3)
        result = run_tabular(RandomPromoter(problem, np.random.default_rng(11)), oracle, budget=3000, n_workers=3)
        traces.append(result.trace)
    assert len(traces[0]) > 20
    assert traces[0].equals(traces[1])


def test_budget_rule_cuts_the_job_in_flight(table):
    oracle, problem = setup(table)
    jobs = [Job(a, 27) for a in table.arch_ids[:10]]
    costs = [float(table.seconds[table.row(j.arch), 0].astype(np.float64).sum()) for j in jobs]
    budget = sum(costs[:3]) + costs[3] / 2  # the 4th job would end after the deadline
    searcher = ScriptedSearcher(problem, np.random.default_rng(0), jobs)
    result = run_tabular(searcher, oracle, budget)
    assert result.trace["counted"].tolist() == [True, True, True, False]
    assert len(searcher.told) == 3  # the cut job is never told
    assert result.time_used == pytest.approx(budget)
    assert result.trace["end"].max() <= budget
    assert result.chosen_arch in {j.arch for j in jobs[:3]}
    assert result.stopped_because == "budget"


def test_promotion_charges_only_the_extra_epochs(table):
    oracle, problem = setup(table)
    arch = table.arch_ids[5]
    seconds = table.seconds[table.row(arch), 0].astype(np.float64)
    searcher = ScriptedSearcher(problem, np.random.default_rng(0), [Job(arch, 3), Job(arch, 27, resume=True)])
    result = run_tabular(searcher, oracle, budget=1e9)
    assert result.trace["cost"].tolist() == pytest.approx([seconds[:3].sum(), seconds[3:].sum()])
    assert result.trace["paid_epochs"].tolist() == [3, 24]
    assert result.epochs_paid == 27
    assert result.time_used == pytest.approx(seconds.sum())
    assert result.stopped_because == "searcher finished"


def test_four_workers_finish_the_same_jobs_four_times_sooner():
    table = synthetic_table(n_archs=64)
    times = {}
    for workers in (1, 4):
        oracle, problem = setup(table)
        jobs = [Job(a, 9) for a in table.arch_ids]
        result = run_tabular(ScriptedSearcher(problem, np.random.default_rng(0), jobs), oracle, 1e9, n_workers=workers)
        assert sorted(result.trace["arch"]) == sorted(table.arch_ids.tolist())
        assert set(result.trace["worker"]) == set(range(workers))
        times[workers] = result.time_used
    assert times[1] / times[4] == pytest.approx(4.0, rel=0.1)


def test_searcher_mistakes_are_named(table):
    oracle, problem = setup(table)
    arch = table.arch_ids[0]
    with pytest.raises(ValueError, match="recorded fidelities are"):
        run_tabular(ScriptedSearcher(problem, np.random.default_rng(0), [Job(arch, 30)]), oracle, 1e9)
    with pytest.raises(ValueError, match="never trained"):
        run_tabular(ScriptedSearcher(problem, np.random.default_rng(0), [Job(arch, 9, resume=True)]), oracle, 1e9)
    oracle, problem = setup(table)
    with pytest.raises(ValueError, match="while it is still running"):
        run_tabular(ScriptedSearcher(problem, np.random.default_rng(0), [Job(arch, 3), Job(arch, 9)]), oracle, 1e9,
                    n_workers=2)


def test_incumbent_prefers_higher_fidelity_then_value(table):
    oracle, problem = setup(table)
    finals = table.final()
    low_best = table.arch_ids[int(np.argmax(finals))]
    other = table.arch_ids[int(np.argmin(finals))]
    jobs = [Job(low_best, 3), Job(other, 27)]
    result = run_tabular(ScriptedSearcher(problem, np.random.default_rng(0), jobs), oracle, 1e9)
    assert result.chosen_arch == other  # trained to the max beats a 3-epoch observation
    assert result.incumbents["arch"].tolist() == [low_best, other]
