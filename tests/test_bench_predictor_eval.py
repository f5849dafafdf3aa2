"""Speed of predictor-eval at scale: one seed, 50 training architectures, 2,000 test architectures, on a
synthetic table of 15,000 architectures × 200 epochs.

Goal: under 60 s of CPU (it took ~58 min of wall time on a 14,935-architecture table before the test set
could be bounded and the power-law baseline was fitted to all curves at once).
Run: ``python -m pytest tests/test_bench_predictor_eval.py --benchmark-only -s``.
"""
import time

import pytest

from harness.predictor_eval import evaluate_predictors
from tests.conftest import synthetic_table

CPU_SECONDS_GOAL = 60.0


@pytest.fixture(scope="module")
def large_table():
    return synthetic_table(n_archs=15000, n_epochs=200, seed=0)


def test_one_seed_on_15000_architectures(benchmark, large_table):
    cpu = []

    def one_seed():
        started = time.process_time()
        results = evaluate_predictors(large_table, train_archs=50, seeds=1, max_test=2000)
        cpu.append(time.process_time() - started)
        return results

    results = benchmark.pedantic(one_seed, rounds=1, iterations=1)
    benchmark.extra_info["cpu_seconds"] = cpu[0]
    print(f"\npredictor-eval, 1 seed, 50 train, 2000 test, 15000 × 200 table: {cpu[0]:.1f} s CPU, "
          f"{benchmark.stats['median']:.1f} s wall")
    assert set(results["n_test"]) == {2000} and len(results) == 4 * 3
    assert cpu[0] < CPU_SECONDS_GOAL
