"""The speed benchmarks' shared parts: one search run on a table, and one rule for the goals that compare
two methods: CPU seconds, timed in pairs, fastest runs.

A shared CI machine slows some runs by 2-3× at random (seen: one PMF-NAS run 0.39 s, another 0.92 s of
wall time on the same table). The runs compared here are one process's work, so its CPU time is what
its wall time would be on an idle machine, and other processes' load does not enter it; what load still
adds (cache misses, switches) only ever adds, so the fastest of several runs is the estimate it moves
least (the reasoning of the standard library's ``timeit``). Timing the two methods back to back on each
seed keeps a slow spell from falling on one method only. Wall time alone was not enough: under load a
50 ms baseline sometimes runs in one uninterrupted time slice and a 0.5 s candidate never does.
"""
import time
from typing import Any, Callable

import numpy as np

from benchmarks.oracle import TabularOracle
from benchmarks.spaces.nb201 import NB201Space
from benchmarks.tabular import TabularBenchmark
from harness.runner import RunResult, run_tabular
from search.base import Problem


def nb201_search(searcher_class, table: TabularBenchmark, seed: int, budget: float, n_workers: int = 1) -> RunResult:
    """One run of ``searcher_class`` on an NB201 ``table`` with ``budget`` simulated seconds.

    The budget comes in (N × ``harness.comparison.full_evaluation_cost(table)``), rather than being
    derived here, so that a timed run does not include that table-wide median."""
    space = NB201Space()
    oracle = TabularOracle(table, space, np.random.default_rng(seed))
    searcher = searcher_class(Problem(space, oracle.fidelities, True), np.random.default_rng(seed + 1))
    return run_tabular(searcher, oracle, budget, n_workers=n_workers)


def paired_fastest_ratio(benchmark, candidate: Callable[[int], Any], baseline: Callable[[int], Any],
                         rounds: int) -> tuple[Any, float, float]:
    """Run ``baseline(seed)`` then ``candidate(seed)`` for seeds 0..rounds-1, the candidate through
    pytest-benchmark (so its wall time is reported), and time both in CPU seconds of this process.

    Returns the candidate's last result, fastest candidate / fastest baseline in CPU seconds, and the
    fastest baseline's CPU seconds.
    """
    baseline_cpu: list[float] = []
    candidate_cpu: list[float] = []
    seeds = iter(range(rounds))

    def time_baseline_then_hand_over_seed():
        seed = next(seeds)
        started = time.process_time()
        baseline(seed)
        baseline_cpu.append(time.process_time() - started)
        return (seed,), {}

    def timed_candidate(seed):
        started = time.process_time()
        result = candidate(seed)
        candidate_cpu.append(time.process_time() - started)
        return result

    result = benchmark.pedantic(timed_candidate, setup=time_baseline_then_hand_over_seed, rounds=rounds,
                                iterations=1)
    fastest_baseline = min(baseline_cpu)
    return result, min(candidate_cpu) / fastest_baseline, fastest_baseline
