"""The ask/tell contract every registered searcher keeps, plus exact tests of each algorithm's rule.

The driver loops below play the runner: one worker (ask, evaluate, tell) or three workers (keep up to
three jobs in flight and report them in an order drawn from a seeded rng), against a TabularOracle on
a synthetic table of 60 architectures x 27 epochs where a few runs fail.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.oracle import TabularOracle
from benchmarks.spaces.finite import FiniteSpace
from benchmarks.tabular import TabularBenchmark
from search.asha import ASHA
from search.base import Job, Observation, Problem
from search.evolution import RegularizedEvolution
from search.hyperband import Hyperband
from search.registry import SEARCHERS, make_searcher
from search.successive_halving import SuccessiveHalving

N_ARCHS, N_EPOCHS = 60, 27
FAILING = (3, 17, 29, 41, 55)
REPO = Path(__file__).resolve().parents[1]


class RecordingSpace(FiniteSpace):
    """A FiniteSpace that remembers which architectures it was asked to mutate, and which of those
    were already known to have failed when it was asked (``known_failed`` is kept by the driver)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mutated: list[str] = []
        self.known_failed: set[str] = set()
        self.mutated_after_failing: list[str] = []

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        self.mutated.append(arch)
        if arch in self.known_failed:
            self.mutated_after_failing.append(arch)
        return super().mutate(arch, rng)


def make_world(failures: bool = True, higher_is_better: bool = True, seed: int = 0, features: str = "distinct"):
    """Table, space, problem: saturating curves; the FAILING archs look best early, then diverge.

    ``features``: "distinct" (each architecture its own encoding), "duplicate" (6 encodings shared by
    10 architectures each, as many NAS-Bench-NLP cells share one) or "none" (no arch_features at all).
    """
    rng = np.random.default_rng(seed)
    epochs = np.arange(1, N_EPOCHS + 1)
    final = rng.uniform(50, 95, size=(N_ARCHS, 1))
    rate = rng.uniform(0.05, 0.5, size=(N_ARCHS, 1))
    valid = final * (1 - np.exp(-rate * epochs)) + rng.normal(0, 0.2, size=(N_ARCHS, N_EPOCHS))
    failed = np.zeros(N_ARCHS, dtype=bool)
    if failures:
        for k, row in enumerate(FAILING):
            valid[row] = 99.0 + k  # the best-looking curves, so a searcher that ignored failures would pick them
            valid[row, 1 + 2 * k:] = np.nan  # diverge at epoch 2, 4, 6, ...
            failed[row] = True
        valid[FAILING[0], :] = np.nan  # one fails at once
    if not higher_is_better:
        valid = 100.0 - valid
    ids = [f"a{i:02d}" for i in range(N_ARCHS)]
    features = {"distinct": np.column_stack([final[:, 0], rate[:, 0]]),
                "duplicate": np.repeat(np.arange(6.0), N_ARCHS // 6)[:, None] * np.ones((1, 2)),
                "none": None}[features]
    table = TabularBenchmark.from_arrays(ids, epochs, valid, np.ones_like(valid), metric="accuracy",
                                         higher_is_better=higher_is_better, failed=failed, arch_features=features)
    space = RecordingSpace("contract", ids, features, k_neighbours=6)
    problem = Problem(space, tuple(int(e) for e in epochs), higher_is_better)
    return table, space, problem


def drive(searcher, table, space, problem, workers: int = 1, max_jobs: int = 150, order_seed: int = 7):
    """Run the searcher like the runner would, checking the contract on every job; return the jobs."""
    oracle = TabularOracle(table, space, repeat=0)
    order = np.random.default_rng(order_seed)
    jobs: list[Job] = []
    in_flight: list[Job] = []
    trained: dict[str, int] = {}
    failed: set[str] = set()
    while len(jobs) < max_jobs:
        job = searcher.ask() if len(in_flight) < workers else None
        if job is not None:
            assert isinstance(job, Job)
            assert job.epochs in problem.fidelities, f"{job} asks for an unrecorded fidelity"
            assert job.arch not in {j.arch for j in in_flight}, f"{job} asked while in flight"
            if job.resume:
                assert job.arch in trained and job.epochs > trained[job.arch], f"{job} resumes nothing shorter"
                assert job.arch not in failed, f"{job} promotes a failed run"
            jobs.append(job)
            in_flight.append(job)
            continue
        if not in_flight:
            break  # the searcher has nothing more to do
        done = in_flight.pop(0 if workers == 1 else int(order.integers(len(in_flight))))
        evaluation = oracle.evaluate(done.arch, done.epochs)
        trained[done.arch] = evaluation.epoch
        if evaluation.failed:
            failed.add(done.arch)
            if isinstance(space, RecordingSpace):
                space.known_failed.add(done.arch)
        searcher.tell(done, Observation(evaluation.epochs, evaluation.values, evaluation.failed, evaluation.losses))
    # A parent chosen while its run looked healthy may fail later; one already known to have failed may not.
    assert not getattr(space, "mutated_after_failing", []), "a failed architecture was chosen as a parent"
    return jobs


def job_sequence(name: str, seed: int, workers: int) -> list[tuple[str, int, bool]]:
    table, space, problem = make_world()
    searcher = make_searcher(name, problem, np.random.default_rng(seed))
    return [(j.arch, j.epochs, j.resume) for j in drive(searcher, table, space, problem, workers=workers)]


def all_sequences_digest() -> str:
    """A digest of every searcher's job sequence (used to compare runs under different hash seeds)."""
    text = repr([job_sequence(name, 3, workers) for name in sorted(SEARCHERS) for workers in (1, 3)])
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------ the contract
@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_searcher_contract(name, workers):
    first = job_sequence(name, seed=11, workers=workers)
    # Keeps producing jobs for a while: at least one per architecture of the 60 (ASHA and PMF-NAS stop
    # only when the space is used up and, for PMF-NAS, its bounds rule out every remaining candidate).
    assert len(first) >= N_ARCHS, f"{name} stopped after {len(first)} jobs"
    assert job_sequence(name, seed=11, workers=workers) == first
    assert job_sequence(name, seed=12, workers=workers) != first
    if name in ("sh", "hyperband", "asha"):
        assert any(resume for _, _, resume in first), f"{name} never promoted"
        assert len({epochs for _, epochs, _ in first}) > 1


@pytest.mark.parametrize("features", ["duplicate", "none"])
@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_searcher_contract_with_four_workers_on_shared_or_missing_encodings(name, features):
    table, space, problem = make_world(features=features)
    jobs = drive(make_searcher(name, problem, np.random.default_rng(5)), table, space, problem, workers=4)
    assert len(jobs) >= N_ARCHS // 2, f"{name} stopped after {len(jobs)} jobs"
    if name in ("asha",) or name.startswith("pmfnas"):
        # A fresh job on a cell already proposed would pay in full again: these searchers never ask for one.
        fresh = [j.arch for j in jobs if not j.resume]
        assert len(fresh) == len(set(fresh))
        assert len(fresh) >= N_ARCHS - 2 if name == "asha" else len(fresh) >= N_ARCHS // 2


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_tell_refuses_a_job_that_is_not_in_flight(name):
    _, _, problem = make_world()
    searcher = make_searcher(name, problem, np.random.default_rng(0))
    job = searcher.ask()
    observation = Observation(np.array([problem.max_epochs]), np.array([50.0]))
    with pytest.raises(ValueError, match="not in flight"):
        searcher.tell(Job("a59" if job.arch != "a59" else "a58", job.epochs), observation)
    if name in ("sh", "hyperband", "asha"):
        with pytest.raises(ValueError, match="has 2 epochs and 1 values"):
            searcher.tell(job, Observation(np.array([1, 2]), np.array([50.0])))
    searcher.tell(job, observation)  # still in flight after the refusals


def test_job_sequences_do_not_depend_on_the_string_hash_seed():
    # Set iteration order varies with PYTHONHASHSEED; a searcher that iterated a set would diverge here.
    env = dict(os.environ, PYTHONHASHSEED="12345")
    code = "from tests.test_searchers_contract import all_sequences_digest; print(all_sequences_digest())"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == all_sequences_digest()


# -------------------------------------------------------------- successive halving
def nine_arch_world(higher_is_better: bool):
    """9 archs x epochs (1, 3, 9); at epoch 1 c1 > c5 > c3 > ... and c8 fails at once."""
    ids = [f"c{i}" for i in range(9)]
    first = np.array([5, 9, 1, 7, 3, 8, 2, 6, np.nan])
    third = np.array([1, 4, 1, 6, 1, 5, 1, 1, np.nan])  # at epoch 3 c3 beats c5 beats c1
    valid = np.column_stack([first, third, third + 1.0])
    failed = np.isnan(first)
    if not higher_is_better:
        valid = 10.0 - valid
    table = TabularBenchmark.from_arrays(ids, [1, 3, 9], valid, np.ones((9, 3)), metric="m",
                                         higher_is_better=higher_is_better, failed=failed)
    space = FiniteSpace("nine", ids)
    return table, space, Problem(space, (1, 3, 9), higher_is_better)


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_sh_promotes_exactly_the_top_third_of_a_complete_rung(higher_is_better):
    table, space, problem = nine_arch_world(higher_is_better)
    searcher = SuccessiveHalving(problem, np.random.default_rng(0), eta=3, min_epochs=1, n=9)
    assert searcher.rungs == [(9, 1), (3, 3), (1, 9)]
    jobs = drive(searcher, table, space, problem, workers=1, max_jobs=13)
    assert sorted(j.arch for j in jobs[:9]) == sorted(space.arch_ids)
    assert all(j.epochs == 1 and not j.resume for j in jobs[:9])
    assert [(j.arch, j.epochs, j.resume) for j in jobs[9:13]] == [
        ("c1", 3, True), ("c5", 3, True), ("c3", 3, True), ("c3", 9, True)]


def test_sh_waits_until_the_rung_is_complete():
    table, space, problem = nine_arch_world(True)
    oracle = TabularOracle(table, space, repeat=0)
    searcher = SuccessiveHalving(problem, np.random.default_rng(0), eta=3, min_epochs=1, n=9)
    jobs = [searcher.ask() for _ in range(9)]
    assert len({j.arch for j in jobs}) == 9
    for job in jobs[:-1]:
        assert searcher.ask() is None
        evaluation = oracle.evaluate(job.arch, job.epochs)
        searcher.tell(job, Observation(evaluation.epochs, evaluation.values, evaluation.failed))
    assert searcher.ask() is None
    evaluation = oracle.evaluate(jobs[-1].arch, 1)
    searcher.tell(jobs[-1], Observation(evaluation.epochs, evaluation.values, evaluation.failed))
    assert searcher.ask() == Job("c1", 3, resume=True)


def test_sh_rungs_that_map_to_one_fidelity_promote_without_a_job():
    # Recorded fidelities 3 and 9 only: rungs at 1 and 3 epochs both run to 3.
    ids = [f"c{i}" for i in range(9)]
    values = np.column_stack([np.arange(9.0), np.arange(9.0) + 1])
    table = TabularBenchmark.from_arrays(ids, [3, 9], values, np.ones((9, 2)), metric="m", higher_is_better=True)
    space = FiniteSpace("nine", ids)
    problem = Problem(space, (3, 9), True)
    searcher = SuccessiveHalving(problem, np.random.default_rng(0), eta=3, min_epochs=1, max_epochs=9, n=9)
    jobs = drive(searcher, table, space, problem, workers=1, max_jobs=10)
    assert [j.epochs for j in jobs] == [3] * 9 + [9]
    assert jobs[9] == Job("c8", 9, resume=True)


def test_sh_parameter_validation():
    _, _, problem = make_world()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n=3 must be at least eta\\*\\*3=27"):
        SuccessiveHalving(problem, rng, eta=3, min_epochs=1, n=3)
    with pytest.raises(ValueError, match="eta=1 must be an integer >= 2"):
        SuccessiveHalving(problem, rng, eta=1)
    with pytest.raises(ValueError, match="max_epochs=81 must be positive and at most"):
        SuccessiveHalving(problem, rng, max_epochs=81)
    with pytest.raises(ValueError, match="min_epochs=0 must be positive"):
        SuccessiveHalving(problem, rng, min_epochs=0)
    default = SuccessiveHalving(problem, rng)
    assert default.min_epochs == 1.0 and default.n == 27  # 27 / 3**3, four rungs


# ---------------------------------------------------------------------- hyperband
def test_hyperband_first_bracket_runs_n0_jobs_before_any_promotion():
    table, space, problem = make_world(failures=False)
    searcher = Hyperband(problem, np.random.default_rng(1), eta=3, min_epochs=1)
    assert searcher.schedule[0] == [(27, 1), (9, 3), (3, 9), (1, 27)]
    jobs = drive(searcher, table, space, problem, workers=1, max_jobs=40 + 17)
    first = jobs[:27]
    assert all(j.epochs == 1 and not j.resume for j in first) and len({j.arch for j in first}) == 27
    assert [(j.epochs, j.resume) for j in jobs[27:40]] == [(3, True)] * 9 + [(9, True)] * 3 + [(27, True)]
    # The promotions are the best at the rung below.
    at_one = {j.arch: table.curves["valid"][table.row(j.arch), 0, 0] for j in first}
    assert {j.arch for j in jobs[27:36]} == set(sorted(at_one, key=at_one.get)[-9:])
    # Then bracket s=2: ceil(4/3 * 9) = 12 new architectures at 3 epochs, 4 at 9, 1 at 27.
    assert [j.epochs for j in jobs[40:57]] == [3] * 12 + [9] * 4 + [27]


@pytest.mark.parametrize("parallel", [True, False])
def test_hyperband_opens_the_next_bracket_while_one_waits_only_if_asked_to(parallel):
    _, _, problem = make_world(failures=False)
    searcher = Hyperband(problem, np.random.default_rng(1), eta=3, min_epochs=1, parallel_brackets=parallel)
    jobs = [searcher.ask() for _ in range(27)]
    assert all(j.epochs == 1 for j in jobs)
    extra = searcher.ask()
    if parallel:
        assert extra is not None and extra.epochs == 3 and not extra.resume
        assert extra.arch not in {j.arch for j in jobs}
        assert len(searcher.open_brackets) == 2
    else:
        assert extra is None


# --------------------------------------------------------------------------- ASHA
def test_asha_promotes_as_soon_as_an_arch_is_in_the_top_third():
    table, space, problem = make_world(failures=False)
    searcher = ASHA(problem, np.random.default_rng(2), eta=3, min_epochs=1)
    assert [r for _, r in searcher.rungs] == [1, 3, 9, 27]
    jobs = drive(searcher, table, space, problem, workers=1, max_jobs=30)
    value = lambda arch, epoch: table.curves["valid"][table.row(arch), 0, epoch - 1]  # noqa: E731
    assert all(j.epochs == 1 and not j.resume for j in jobs[:3])
    best = max((j.arch for j in jobs[:3]), key=lambda a: value(a, 1))
    assert jobs[3] == Job(best, 3, resume=True)
    # Replay the rule: each job is the highest-rung promotion available, else a new arch at rung 0.
    rungs = {1: {}, 3: {}, 9: {}, 27: {}}
    for job in jobs:
        promotable = []
        for low, high in ((9, 27), (3, 9), (1, 3)):
            ranked = sorted(rungs[low], key=lambda a: -rungs[low][a])[: len(rungs[low]) // 3]
            promotable += [(high, a) for a in ranked if a not in rungs[high]]
        if promotable:
            assert (job.epochs, job.arch, job.resume) == (*promotable[0], True)
        else:
            assert job.epochs == 1 and not job.resume
        rungs[job.epochs][job.arch] = value(job.arch, job.epochs)


class InOrderSpace(FiniteSpace):
    """Samples its architectures in table order, so a test can script which one comes next."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._next = 0

    def sample(self, rng: np.random.Generator) -> str:
        arch = self.arch_ids[self._next % len(self.arch_ids)]
        self._next += 1
        return arch


def test_asha_with_parallel_workers_promotes_into_the_highest_rung_first():
    ids = [f"x{i}" for i in range(1, 13)]
    at_one = np.array([9, 8, 1, 2, 3, 4, 5, 6, 7, 10, 0, 0.5])
    at_three = np.array([3, 5, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0.0])
    table = TabularBenchmark.from_arrays(ids, [1, 3, 9], np.column_stack([at_one, at_three, at_three]),
                                         np.ones((12, 3)), metric="m", higher_is_better=True)
    space = InOrderSpace("ordered", ids)
    problem = Problem(space, (1, 3, 9), True)
    oracle = TabularOracle(table, space, repeat=0)
    searcher = ASHA(problem, np.random.default_rng(0), eta=3, min_epochs=1)

    def tell(job):
        evaluation = oracle.evaluate(job.arch, job.epochs)
        searcher.tell(job, Observation(evaluation.epochs, evaluation.values, evaluation.failed))

    bottom = {job.arch: job for job in (searcher.ask() for _ in range(12))}
    assert list(bottom) == ids and all(j.epochs == 1 for j in bottom.values())
    promoted = []
    for triple in (ids[0:3], ids[3:6], ids[6:9]):
        for arch in triple:
            tell(bottom[arch])
        promoted.append(searcher.ask())
    assert [(j.arch, j.epochs, j.resume) for j in promoted] == [("x1", 3, True), ("x2", 3, True), ("x9", 3, True)]
    for job in promoted + [bottom[a] for a in ids[9:]]:
        tell(job)
    # Now x10 (best at epoch 1) may enter rung 1 and x2 (best at epoch 3) rung 2: the higher rung wins.
    assert searcher.ask() == Job("x2", 9, resume=True)
    assert searcher.ask() == Job("x10", 3, resume=True)
    assert searcher.ask() is None  # all 12 architectures used and nothing else promotable


def test_asha_stops_only_when_the_space_is_used_up():
    table, space, problem = make_world()
    jobs = drive(ASHA(problem, np.random.default_rng(4), min_epochs=1), table, space, problem, max_jobs=10_000)
    new = [j.arch for j in jobs if not j.resume]
    assert len(new) == len(set(new)) >= N_ARCHS - 2


# ---------------------------------------------------------------------------- REA
def test_rea_removes_the_oldest_member():
    table, space, problem = make_world(failures=False)
    searcher = RegularizedEvolution(problem, np.random.default_rng(5), population_size=5, sample_size=2)
    oracle = TabularOracle(table, space, repeat=0)
    told = []
    for step in range(9):
        job = searcher.ask()
        assert job.tag[1] == ("random" if step < 5 else "mutation")
        if step >= 5:
            assert space.mutated[-1] in {arch for arch, _ in searcher.population}
            assert job.arch in space.neighbours(space.mutated[-1])
        evaluation = oracle.evaluate(job.arch, job.epochs)
        searcher.tell(job, Observation(evaluation.epochs, evaluation.values, evaluation.failed))
        told.append(job.arch)
        assert [arch for arch, _ in searcher.population] == told[-5:]


def test_rea_mutates_the_best_of_the_tournament():
    table, space, problem = make_world(failures=False)
    # A tournament of 200 draws (with replacement) from 5 members all but surely holds the best one.
    searcher = RegularizedEvolution(problem, np.random.default_rng(8), population_size=5, sample_size=200)
    oracle = TabularOracle(table, space, repeat=0)
    for step in range(12):
        job = searcher.ask()
        if step >= 5:
            assert space.mutated[-1] == max(searcher.population, key=lambda member: member[1])[0]
        evaluation = oracle.evaluate(job.arch, job.epochs)
        searcher.tell(job, Observation(evaluation.epochs, evaluation.values, evaluation.failed))


def test_rea_discards_failed_runs():
    table, space, problem = make_world()
    oracle = TabularOracle(table, space, repeat=0)
    searcher = RegularizedEvolution(problem, np.random.default_rng(6), population_size=20, sample_size=3)
    failing = {f"a{i:02d}" for i in FAILING}
    asked_failing = 0
    for _ in range(60):
        job = searcher.ask()
        asked_failing += job.arch in failing
        evaluation = oracle.evaluate(job.arch, job.epochs)
        searcher.tell(job, Observation(evaluation.epochs, evaluation.values, evaluation.failed))
        assert not failing.intersection(arch for arch, _ in searcher.population)
    assert asked_failing > 0  # otherwise this test proves nothing
    assert len(searcher.population) == 20


def test_rea_parameter_validation():
    _, _, problem = make_world()
    with pytest.raises(ValueError, match="population_size=0 must be an integer >= 1"):
        RegularizedEvolution(problem, np.random.default_rng(0), population_size=0)
    with pytest.raises(ValueError, match="sample_size=2.5 must be an integer >= 1"):
        RegularizedEvolution(problem, np.random.default_rng(0), sample_size=2.5)


# ----------------------------------------------------------------------- registry
def test_registry_names_and_errors():
    _, _, problem = make_world()
    assert set(SEARCHERS) == {"random", "sh", "hyperband", "asha", "rea", "pmfnas", "pmfnas-no-predictor",
                              "pmfnas-no-allocator", "pmfnas-no-stage2"}
    with pytest.raises(ValueError, match="unknown searcher 'bohb'; known: asha, hyperband, pmfnas, "):
        make_searcher("bohb", problem, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"searcher 'sh' has no parameter\(s\) \['population_size'\]"):
        make_searcher("sh", problem, np.random.default_rng(0), population_size=3)
    searcher = make_searcher("hyperband", problem, np.random.default_rng(0), eta=2)
    assert isinstance(searcher, Hyperband) and searcher.eta == 2
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator"):
        make_searcher("random", problem, 0)
