"""The peer libraries' adapters (search/peers/): the searcher contract, run through the runner's own ledger.

The adapters' shared bookkeeping is tested with a scripted library (no package needed); every installed
peer then runs on the contract's synthetic table (tests/test_searchers_contract.py: 60 architectures x
27 epochs, a few runs fail) with every job dispatched through :class:`harness.ledger.Ledger`, which
refuses a job on a running architecture and any resume that is not a real continuation.
"""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.oracle import TabularOracle
from benchmarks.spaces.finite import FiniteSpace
from benchmarks.spaces.nb201 import NB201Space
from benchmarks.spaces.recorded import RecordedSubspace
from harness.ledger import Ledger
from harness.runner import run_tabular
from search.base import Job, Observation, Problem
from search.peers.base import ArchCodec, PeerSearcher, Proposal
from search.registry import PEERS, SEARCHERS, installed_peers, make_searcher, searcher_names, peer_class
from tests.test_searchers_contract import FAILING, N_ARCHS, N_EPOCHS, make_world

REPO = Path(__file__).resolve().parents[1]
PEER_NAMES = installed_peers()
RESUMING = {"optuna-tpe-hb", "optuna-tpe-sh", "synetune-asha", "synetune-bohb", "synetune-dyhpo",
            "synetune-hypertune", "synetune-mobster", "neps-hb", "neps-asha"}


def drive_with_ledger(searcher, table, space, problem, workers: int = 1, max_jobs: int = 120, order_seed: int = 7):
    """Play the runner: the real Ledger dispatches every job (it raises on an illegal one); return the jobs."""
    oracle = TabularOracle(table, space, repeat=0)
    ledger = Ledger(problem.max_epochs, identify=oracle.identify, n_architectures=oracle.n_architectures)
    order = np.random.default_rng(order_seed)
    jobs: list[Job] = []
    in_flight: list[tuple[Job, int, int]] = []
    while len(jobs) < max_jobs and not ledger.exhausted:
        job = searcher.ask() if len(in_flight) < workers else None
        if job is not None:
            assert job.epochs in problem.fidelities, f"{job} asks for an unrecorded fidelity"
            start, repeat = ledger.dispatch(job)
            jobs.append(job)
            in_flight.append((job, start, repeat))
            continue
        if not in_flight:
            break
        done, start, repeat = in_flight.pop(0 if workers == 1 else int(order.integers(len(in_flight))))
        evaluation = oracle.evaluate(done.arch, done.epochs, start=start, repeat=repeat)
        ledger.settle(done, evaluation.epoch, evaluation.cost, evaluation.failed)
        # The runner hands over the whole curve so far, as here.
        full = oracle.evaluate(done.arch, evaluation.epoch, repeat=repeat) if start else evaluation
        searcher.tell(done, Observation(full.epochs, full.values, evaluation.failed, full.losses))
    return jobs


# ------------------------------------------------------------- the shared bookkeeping
class ScriptedPeer(PeerSearcher):
    """A 'library' that proposes from a script and records what it is told."""

    library = "scripted"

    def __init__(self, problem, rng, script):
        super().__init__(problem, rng)
        self.script = list(script)
        self.told: list[tuple[object, int, bool]] = []

    def _propose(self):
        return self.script.pop(0) if self.script else None

    def _report(self, proposal, observation):
        self.told.append((proposal.trial, int(observation.epochs[-1]), observation.failed))


def observe(table, arch, epochs):
    evaluation = TabularOracle(table, FiniteSpace("t", table.arch_ids.tolist()), repeat=0).evaluate(arch, epochs)
    return Observation(evaluation.epochs, evaluation.values, evaluation.failed)


def test_continuations_resume_only_the_trials_own_run_and_running_archs_wait():
    table, _, problem = make_world(failures=False)
    script = [Proposal("a01", 3, trial="t1"), Proposal("a01", 3, trial="t2"), Proposal("a02", 1, trial="t3"),
              Proposal("a01", 9, trial="t1", continues=True), Proposal("a01", 2.5, trial="t1", continues=True)]
    peer = ScriptedPeer(problem, np.random.default_rng(0), script)
    first = peer.ask()
    assert first == Job("a01", 3, resume=False)
    # t2 proposes a01 while it runs: t2 waits and the next proposal is served instead.
    second = peer.ask()
    assert second == Job("a02", 1, resume=False)
    peer.tell(first, observe(table, "a01", 3))
    # Now t2's fresh run of a01 goes first (it waited), and pays in full.
    third = peer.ask()
    assert third == Job("a01", 3, resume=False)
    peer.tell(third, observe(table, "a01", 3))
    # t1 continues, but a01's latest run is t2's: a fresh run to 9 epochs, not a resume of someone else's run.
    fourth = peer.ask()
    assert fourth == Job("a01", 9, resume=False)
    peer.tell(fourth, observe(table, "a01", 9))
    # t1 to 2.5 epochs (fidelity 3): its own run reached 9 already, so it is answered without a job.
    assert peer.ask() is None
    assert peer.told == [("t1", 3, False), ("t2", 3, False), ("t1", 9, False), ("t1", 3, False)]


def test_a_continuation_of_the_trials_own_run_is_a_resume_and_a_failed_run_is_never_resumed():
    table, _, problem = make_world()
    failing = "a17"  # fails at epoch 4
    script = [Proposal("a05", 1, trial=1), Proposal("a05", 3, trial=1, continues=True),
              Proposal(failing, 9, trial=2), Proposal(failing, 27, trial=2, continues=True)]
    peer = ScriptedPeer(problem, np.random.default_rng(0), script)
    job = peer.ask()
    peer.tell(job, observe(table, "a05", 1))
    resume = peer.ask()
    assert resume == Job("a05", 3, resume=True)
    peer.tell(resume, observe(table, "a05", 3))
    job = peer.ask()
    observation = observe(table, failing, 9)
    assert observation.failed and observation.epochs[-1] == 4
    peer.tell(job, observation)
    assert peer.ask() is None  # the failed run answers its continuation: no job
    assert peer.told[-2:] == [(2, 4, True), (2, 4, True)]


def test_tell_refuses_what_is_not_in_flight_or_malformed():
    table, _, problem = make_world(failures=False)
    peer = ScriptedPeer(problem, np.random.default_rng(0), [Proposal("a01", 3, trial=1)])
    job = peer.ask()
    with pytest.raises(ValueError, match="not in flight"):
        peer.tell(Job("a02", 3), observe(table, "a02", 3))
    with pytest.raises(ValueError, match="has 2 epochs and 1 values"):
        peer.tell(job, Observation(np.array([1, 2]), np.array([50.0])))
    peer.tell(job, observe(table, "a01", 3))


def test_codec_encodes_nb201_per_edge_and_a_finite_table_or_recorded_cells_by_identifier():
    space = NB201Space()
    codec = ArchCodec(space)
    assert [name for name, _ in codec.parameters] == [f"edge{e}" for e in range(6)]
    assert all(choices == space.ops_choices for _, choices in codec.parameters)
    arch = space.from_index(123)
    assert codec.to_arch(codec.to_config(arch)) == arch
    finite = FiniteSpace("f", ["x", "y", "z"])
    codec = ArchCodec(finite)
    assert codec.parameters == (("arch", ("x", "y", "z")),)
    assert codec.to_arch({"arch": "y"}) == "y"

    recorded = RecordedSubspace(space, [space.from_index(i) for i in (5, 123, 77)])
    codec = ArchCodec(recorded)
    assert codec.parameters == (("arch", tuple(recorded.archs)),)
    assert all(codec.to_arch(codec.to_config(a)) == a for a in recorded.archs)

    class Opaque:
        name = "opaque"

    with pytest.raises(ValueError, match="space 'opaque' is not supported by the peer adapters"):
        ArchCodec(Opaque())


# --------------------------------------------------------------------- the registry
def test_importing_the_registry_imports_no_peer_library():
    code = ("import sys, search.registry, harness.comparison; "
            "print(sorted(m for m in ('dehb', 'smac', 'optuna', 'syne_tune', 'neps') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_peers_are_known_methods_only_when_installed():
    assert set(PEER_NAMES) <= set(PEERS)
    assert searcher_names() == sorted(SEARCHERS) + PEER_NAMES
    for name in set(PEERS) - set(PEER_NAMES):
        _, _, problem = make_world()
        with pytest.raises(ValueError, match=rf"'{name}' is a peer method whose package .* is not installed "
                                             r"\(pip install '\.\[peers\]'\)"):
            make_searcher(name, problem, np.random.default_rng(0))


# ------------------------------------------------------- every installed peer library
needs_peers = pytest.mark.skipif(not PEER_NAMES, reason="no peer library installed (pip install '.[peers]')")


#: A slow peer (more than 60 s per run on NAS-Bench-NLP at 30 full evaluations: the Gaussian-process
#: schedulers, whose model is refitted on every suggestion) shows its contract on a shorter ladder
#: (rungs 3, 9, 27 epochs instead of 1 .. 27: a promotion comes after a handful of jobs), one worker and
#: a short run, so the whole file stays within a few minutes.
SLOW_LADDER = {"min_epochs": N_EPOCHS / 9}
SLOW_MAX_JOBS = 12


def short(name: str) -> bool:
    return peer_class(name).slow


def job_sequence(name: str, seed: int, workers: int, max_jobs: int = 120) -> list[tuple[str, int, bool]]:
    table, space, problem = make_world()
    searcher = make_searcher(name, problem, np.random.default_rng(seed), **(SLOW_LADDER if short(name) else {}))
    return [(j.arch, j.epochs, j.resume) for j in drive_with_ledger(searcher, table, space, problem, workers,
                                                                     max_jobs)]


@needs_peers
@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("name", PEER_NAMES)
def test_peer_contract(name, workers):
    cls = peer_class(name)
    if short(name) and workers > 1:
        pytest.skip(f"{name} is slow: one worker only, to keep its test short")
    max_jobs = SLOW_MAX_JOBS if short(name) else 120
    first = job_sequence(name, seed=11, workers=workers, max_jobs=max_jobs)
    assert len(first) >= min(N_ARCHS // 2, max_jobs), f"{name} stopped after {len(first)} jobs"
    assert len({epochs for _, epochs, _ in first}) > 1, f"{name} never used a lower fidelity"
    resumed = any(resume for _, _, resume in first)
    assert resumed == (name in RESUMING), f"{name} resumed={resumed}, but its docstring says otherwise"
    if not cls.deterministic:
        pytest.xfail(f"{name} is not deterministic: {cls.nondeterministic_reason}")
    # Draws from the process-wide generators in between: a run must depend on its seed only, not on
    # what ran before it in the same process (a compare worker runs many).
    random.random(), np.random.random()
    assert job_sequence(name, seed=11, workers=workers, max_jobs=max_jobs) == first
    assert job_sequence(name, seed=12, workers=workers, max_jobs=max_jobs) != first


@needs_peers
@pytest.mark.parametrize("name", PEER_NAMES)
def test_peer_runs_through_the_runner(name):
    table, space, problem = make_world()
    oracle = TabularOracle(table, space, np.random.default_rng(0))
    searcher = make_searcher(name, problem, np.random.default_rng(1), **(SLOW_LADDER if short(name) else {}))
    # Every epoch costs 1 s: 15 full evaluations (1 for a slow peer).
    budget = (1.0 if short(name) else 15.0) * N_EPOCHS
    result = run_tabular(searcher, oracle, budget, n_workers=2)
    # Libraries that never propose a configuration twice may run out of the 60 architectures first (SMAC
    # gives up after a few draws that find nothing new); the others run until the budget.
    assert result.stopped_because in ("budget", "searcher finished")
    assert result.time_used <= budget
    if result.stopped_because == "searcher finished":
        assert result.trace["arch"].nunique() >= N_ARCHS // 2
    # The answer comes from a counted job that did not fail, of a run that no later job saw fail (the
    # runner withdraws a failed run, what it showed at fewer epochs included).
    final = result.incumbents.iloc[-1]
    trace = result.trace[result.trace["counted"]]
    source = trace[~trace["failed"] & (trace["arch"] == result.chosen_arch) & (trace["reached"] == final["epochs"])]
    assert final["arch"] == result.chosen_arch and len(source) > 0
    run = trace[(trace["arch"] == result.chosen_arch) & (trace["repeat"] == source["repeat"].iloc[-1])]
    assert not run["failed"].any(), f"{name}: {result.chosen_arch} was chosen from a run that failed"
    if not short(name):  # 15 full evaluations: something reached further than any failing run can
        assert result.chosen_arch not in {f"a{i:02d}" for i in FAILING}
    assert result.trace["counted"].sum() > 3


@needs_peers
def test_compare_runs_the_fast_peers_for_the_name_peers(tmp_path):
    from harness.comparison import compare

    table, _, _ = make_world()
    path = table.save(tmp_path / "contract.npz")
    runs = compare(str(path), ["asha", "peers"], budget=5.0 * N_EPOCHS, seeds=[0], processes=1)
    fast = [name for name in PEER_NAMES if not peer_class(name).slow]
    assert runs["method"].tolist() == ["asha"] + fast
    assert (runs["n_evaluations"] > 0).all()


@pytest.mark.skipif("smac-hb" not in PEER_NAMES, reason="SMAC3 is not installed (pip install '.[peers]')")
def test_smac_adapter_uses_the_facades_own_forest_in_one_thread(tmp_path):
    from ConfigSpace import Categorical, ConfigurationSpace
    from smac import MultiFidelityFacade, Scenario

    from search.peers.smac_peer import facade_forest

    space = ConfigurationSpace(seed=1)
    space.add(Categorical("arch", ["a", "b", "c"]))
    scenario = Scenario(space, deterministic=True, n_trials=10, min_budget=1, max_budget=9, seed=3,
                        output_directory=tmp_path)
    ours, facades = facade_forest(scenario).meta, MultiFidelityFacade.get_model(scenario).meta
    # Only the threads differ; any other setting SMAC changes in a new version must show up here.
    assert {k: (ours.get(k), facades.get(k)) for k in ours.keys() | facades.keys()
            if ours.get(k) != facades.get(k)} == {"n_jobs": (1, -1)}

# ------------------------------------------------------------------ NePS's promotions
needs_neps = pytest.mark.skipif("neps-hb" not in PEER_NAMES, reason="NePS not installed (pip install '.[peers]')")


def value_at(oracle: TabularOracle, arch: str, epochs: int) -> float:
    return float(oracle.evaluate(arch, epochs).values[-1])


@needs_neps
def test_neps_hyperband_promotes_the_best_third_of_its_first_rung():
    # NePS 0.13.0's own AskAndTell.tell drops every result, so its Hyperband saw each trial as pending and
    # never promoted: the adapter must hand the results over itself.
    table, space, problem = make_world(failures=False)
    searcher = make_searcher("neps-hb", problem, np.random.default_rng(3))
    jobs = drive_with_ledger(searcher, table, space, problem, max_jobs=36)
    oracle = TabularOracle(table, space, repeat=0)
    assert [job.epochs for job in jobs] == [1] * 27 + [3] * 9  # rungs 1, 3, 9, 27: 27 configurations, then 9
    ranked = sorted(jobs[:27], key=lambda job: value_at(oracle, job.arch, 1), reverse=True)
    assert sorted(job.arch for job in jobs[27:]) == sorted(job.arch for job in ranked[:9])


@needs_neps
def test_neps_asha_promotes_only_from_the_top_third_of_a_rung():
    # ASHA's rule: a configuration is promoted when it is among the best k = len(rung) // eta of its rung.
    # NePS 0.17 dropped the promoted ones before taking k, so it promoted the best of the rest, far below
    # the top third, until about two were left in a rung.
    table, space, problem = make_world(failures=False)
    searcher = make_searcher("neps-asha", problem, np.random.default_rng(3))
    jobs = drive_with_ledger(searcher, table, space, problem, max_jobs=120)
    oracle = TabularOracle(table, space, repeat=0)
    rung_values: dict[int, list[float]] = {epochs: [] for epochs in (1, 3, 9, 27)}
    promotions = dict.fromkeys(rung_values, 0)
    for job in jobs:  # one worker: each job is told before the next is asked
        if job.epochs > 1:
            lower = sorted(rung_values[job.epochs // 3], reverse=True)
            k = len(lower) // 3
            assert k >= 1 and value_at(oracle, job.arch, job.epochs // 3) >= lower[k - 1], (
                f"{job.arch} promoted to {job.epochs} epochs from outside the best {k} of {len(lower)}")
            promotions[job.epochs] += 1
        rung_values[job.epochs].append(value_at(oracle, job.arch, job.epochs))
    assert promotions[3] >= 10 and promotions[27] >= 1
    assert promotions[3] < len(rung_values[1]) / 2  # 0.17 promoted about as many as it sampled
