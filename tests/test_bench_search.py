"""Speed of one Hyperband run on a synthetic NB201-sized table (15,625 architectures × 200 epochs).

Goal: well under 1 s per run. Run: ``python -m pytest tests/test_bench_search.py --benchmark-only``.
"""
import numpy as np
import pytest

from benchmarks.oracle import TabularOracle
from benchmarks.spaces.nb201 import NB201Space
from benchmarks.tabular import TabularBenchmark
from harness.runner import run_tabular
from search.base import Problem
from search.hyperband import Hyperband

N, F = 15625, 200


@pytest.fixture(scope="module")
def nb201_sized_table():
    rng = np.random.default_rng(0)
    epochs = np.arange(1, F + 1)
    final = rng.uniform(10, 94, size=(N, 1))
    rate = rng.uniform(0.01, 0.2, size=(N, 1))
    valid = (final * (1 - np.exp(-rate * epochs))).astype(np.float32)
    seconds = np.repeat(rng.uniform(5, 20, size=(N, 1)), F, axis=1).astype(np.float32)
    return TabularBenchmark.from_arrays(NB201Space().all_architectures(), epochs, valid, seconds,
                                        metric="valid_accuracy", higher_is_better=True, space="nb201")


def test_one_hyperband_run(benchmark, nb201_sized_table):
    table = nb201_sized_table
    space = NB201Space()
    budget = 30 * float(np.median(table.full_evaluation_seconds()))
    seeds = iter(range(10**6))

    def one_run():
        seed = next(seeds)
        oracle = TabularOracle(table, space, np.random.default_rng(seed))
        searcher = Hyperband(Problem(space, oracle.fidelities, True), np.random.default_rng(seed + 1))
        return run_tabular(searcher, oracle, budget)

    result = benchmark.pedantic(one_run, rounds=10, iterations=1)
    assert result.n_evaluations > 100 and result.time_used <= budget
    assert benchmark.stats["median"] < 1.0
