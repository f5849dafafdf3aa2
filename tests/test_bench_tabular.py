"""Speed of the tabular format at full NAS-Bench-201 size (pytest-benchmark).

Goal: a converted full NB201 table (15,625 architectures × 200 epochs × a few metrics) opens in well
under a second and one query is O(1). Run: ``python -m pytest tests/test_bench_tabular.py --benchmark-only``.
"""
import numpy as np
import pytest

from benchmarks.oracle import TabularOracle
from benchmarks.spaces.nb201 import NB201Space
from benchmarks.tabular import TabularBenchmark

N, F = 15625, 200


@pytest.fixture(scope="module")
def full_nb201_directory(tmp_path_factory):
    rng = np.random.default_rng(0)
    arch_ids = NB201Space().all_architectures()
    shape = (N, 1, F)
    curves = {name: rng.random(shape, dtype=np.float32) for name in ("valid", "valid_loss", "test", "test_loss")}
    table = TabularBenchmark.from_arrays(arch_ids, np.arange(1, F + 1), seconds=rng.random(shape, dtype=np.float32),
                                         metric="valid_accuracy", higher_is_better=True, space="nb201",
                                         **curves)
    path = tmp_path_factory.mktemp("nb201") / "nb201-full"
    table.save(path)
    return path


def test_load_full_nb201_table(benchmark, full_nb201_directory):
    table = benchmark(TabularBenchmark.load, full_nb201_directory)
    assert len(table) == N and table.epochs.size == F
    assert benchmark.stats["mean"] < 1.0


def test_one_query(benchmark, full_nb201_directory):
    table = TabularBenchmark.load(full_nb201_directory)
    space = NB201Space()
    archs = [space.from_index(i) for i in range(0, N, 97)]
    state = {"i": 0}

    def query():
        # A fresh oracle per query so every call pays and reads: the full lookup path, not a cache.
        oracle = TabularOracle(table, space, repeat=0)
        state["i"] = (state["i"] + 1) % len(archs)
        return oracle.evaluate(archs[state["i"]], 100)

    evaluation = benchmark(query)
    assert len(evaluation.values) == 100
