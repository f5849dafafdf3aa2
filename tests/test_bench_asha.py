"""Speed of ASHA against Hyperband with 8 workers on a synthetic NB201-sized table (15,625 × 200).

Goal: ASHA's bookkeeping is incremental, so one ASHA run at a budget of 80 full evaluations takes at
most 3× the time of one Hyperband run with the same workers, budget and seed (before the rewrite it
was ~9×: ``Bracket.pending`` rebuilt every rung's ranking on every ask). Both are timed in CPU seconds,
back to back on each seed, and the ratio is of the fastest runs (see ``tests/speed.py``), so neither the
machine nor another process's load moves it.
Run: ``python -m pytest tests/test_bench_asha.py --benchmark-only -s``.
"""
from search.asha import ASHA
from search.hyperband import Hyperband
from harness.comparison import full_evaluation_cost
from tests.speed import nb201_search, paired_fastest_ratio

WORKERS, FULL_EVALUATIONS = 8, 80
ROUNDS = 5
MAX_RATIO = 3.0


def test_asha_within_3x_of_hyperband(benchmark, nb201_sized_table):
    budget = FULL_EVALUATIONS * full_evaluation_cost(nb201_sized_table)

    def run(searcher_class, seed):
        return nb201_search(searcher_class, nb201_sized_table, seed, budget, n_workers=WORKERS)

    result, ratio, baseline = paired_fastest_ratio(benchmark, lambda seed: run(ASHA, seed),
                                                   lambda seed: run(Hyperband, seed), rounds=ROUNDS)
    assert result.n_evaluations > 200 and result.time_used <= budget
    benchmark.extra_info.update({"hyperband_fastest_cpu_s": baseline, "asha_over_hyperband": ratio})
    print(f"\nASHA / Hyperband CPU seconds per run (W={WORKERS}, {FULL_EVALUATIONS} full evaluations, fastest "
          f"of {ROUNDS}): {ratio * baseline:.3f} s / {baseline:.3f} s = {ratio:.2f}")
    assert ratio <= MAX_RATIO
