"""Speed of search runs on a synthetic NB201-sized table (15,625 architectures × 200 epochs).

Goals: one Hyperband run well under 1 s; one PMF-NAS run within 10× Hyperband's time (CPU seconds, same
seeds, fastest runs: tests/speed.py); PMF-NAS keeps 8 workers busy (>= 95 % of worker time). Run:
``python -m pytest tests/test_bench_search.py --benchmark-only -s``.
"""
from search.hyperband import Hyperband
from search.pmfnas import PMFNAS
from harness.comparison import full_evaluation_cost
from tests.speed import nb201_search, paired_fastest_ratio


def test_one_hyperband_run(benchmark, nb201_sized_table):
    budget = 30 * full_evaluation_cost(nb201_sized_table)
    seeds = iter(range(10**6))

    def one_run():
        return nb201_search(Hyperband, nb201_sized_table, next(seeds), budget)

    result = benchmark.pedantic(one_run, rounds=10, iterations=1)
    assert result.n_evaluations > 100 and result.time_used <= budget
    # The fastest run: an absolute goal, so the estimate least moved by other load (tests/speed.py).
    assert benchmark.stats["min"] < 1.0


def test_one_pmfnas_run_within_ten_times_hyperband(benchmark, nb201_sized_table):
    """Goal: one PMF-NAS run at 30 full evaluations within 10x Hyperband's time on the same seed,
    CPU seconds, fastest of five runs each, timed in pairs (``tests/speed.py``)."""
    budget = 30 * full_evaluation_cost(nb201_sized_table)

    def run(cls, seed):
        return nb201_search(cls, nb201_sized_table, seed, budget)

    result, ratio, hyperband = paired_fastest_ratio(benchmark, lambda seed: run(PMFNAS, seed),
                                                    lambda seed: run(Hyperband, seed), rounds=5)
    benchmark.extra_info.update({"hyperband_fastest_cpu_s": hyperband, "pmfnas_over_hyperband": ratio})
    print(f"\nPMF-NAS / Hyperband CPU seconds per run (fastest of 5 each): {ratio * hyperband:.3f} s / "
          f"{hyperband:.3f} s = {ratio:.1f}")
    assert result.time_used <= budget and result.n_evaluations > 100
    assert ratio < 10


def test_pmfnas_keeps_eight_workers_busy(benchmark, nb201_sized_table):
    """Goal: busy fraction (worker-seconds used / (W x time used)) >= 0.95 at W = 8: no stage waits for a straggler."""
    budget = 10 * full_evaluation_cost(nb201_sized_table)
    seeds = iter(range(10**6))

    def one_run():
        return nb201_search(PMFNAS, nb201_sized_table, next(seeds), budget, n_workers=8)

    result = benchmark.pedantic(one_run, rounds=3, iterations=1)
    trace = result.trace
    busy = float((trace["end"] - trace["start"]).sum() / (8 * result.time_used))
    benchmark.extra_info["busy_fraction"] = busy
    print(f"\nbusy fraction at W=8: {busy:.3f}")
    assert busy >= 0.95
