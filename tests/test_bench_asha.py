"""Speed of ASHA against Hyperband with 8 workers on a synthetic NB201-sized table (15,625 × 200).

Goal: ASHA's bookkeeping is incremental, so one ASHA run at a budget of 80 full evaluations takes at
most 3× the wall time of one Hyperband run with the same workers and budget (before the rewrite it was
~9×: ``Bracket.pending`` rebuilt every rung's ranking on every ask). Both are measured in the same
session so the ratio does not depend on the machine.
Run: ``python -m pytest tests/test_bench_asha.py --benchmark-only``.
"""
import numpy as np
import pytest

from benchmarks.oracle import TabularOracle
from benchmarks.spaces.nb201 import NB201Space
from harness.runner import run_tabular
from search.asha import ASHA
from search.base import Problem
from search.hyperband import Hyperband

WORKERS, FULL_EVALUATIONS = 8, 80
ROUNDS = 3
MAX_RATIO = 3.0


@pytest.fixture(scope="module")
def medians():
    """Median seconds per run of each method, filled by the benchmarks below, compared at the end."""
    return {}


def _runner(searcher_class, table):
    space = NB201Space()
    budget = FULL_EVALUATIONS * float(np.median(table.full_evaluation_seconds()))
    seeds = iter(range(10**6))

    def one_run():
        seed = next(seeds)
        oracle = TabularOracle(table, space, np.random.default_rng(seed))
        searcher = searcher_class(Problem(space, oracle.fidelities, True), np.random.default_rng(seed + 1))
        return run_tabular(searcher, oracle, budget, n_workers=WORKERS)
    return one_run, budget


@pytest.mark.parametrize("method", ["hyperband", "asha"])
def test_asha_within_3x_of_hyperband(benchmark, nb201_sized_table, medians, method):
    one_run, budget = _runner({"hyperband": Hyperband, "asha": ASHA}[method], nb201_sized_table)
    result = benchmark.pedantic(one_run, rounds=ROUNDS, iterations=1)
    assert result.n_evaluations > 200 and result.time_used <= budget
    medians[method] = benchmark.stats["median"]
    if method == "asha":
        ratio = medians["asha"] / medians["hyperband"]
        benchmark.extra_info["asha_over_hyperband"] = ratio
        print(f"\nASHA / Hyperband wall time per run (W={WORKERS}, {FULL_EVALUATIONS} full evaluations): "
              f"{medians['asha']:.3f} s / {medians['hyperband']:.3f} s = {ratio:.2f}")
        assert ratio <= MAX_RATIO
