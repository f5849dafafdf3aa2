"""One rule for the speed goals that compare two methods: time them in pairs, compare the fastest runs.

A shared CI machine slows some runs by 2-3× at random (seen: one PMF-NAS run 0.39 s, another 0.92 s on
the same table). Extra load only ever adds time, so the fastest of several runs is the estimate least
moved by it (the reasoning of the standard library's ``timeit``), and timing the two methods back to
back on each seed keeps a slow spell from falling on one method only.
"""
import time
from typing import Any, Callable


def paired_fastest_ratio(benchmark, candidate: Callable[[int], Any], baseline: Callable[[int], Any],
                         rounds: int) -> tuple[Any, float, float]:
    """Time ``baseline(seed)`` then ``candidate(seed)`` for seeds 0..rounds-1; the candidate through
    pytest-benchmark (so it is reported), the baseline by hand just before it.

    Returns the candidate's last result, fastest candidate / fastest baseline, and the fastest baseline
    in seconds.
    """
    baseline_seconds: list[float] = []
    seeds = iter(range(rounds))

    def time_baseline_then_hand_over_seed():
        seed = next(seeds)
        started = time.perf_counter()
        baseline(seed)
        baseline_seconds.append(time.perf_counter() - started)
        return (seed,), {}

    result = benchmark.pedantic(candidate, setup=time_baseline_then_hand_over_seed, rounds=rounds, iterations=1)
    fastest_baseline = min(baseline_seconds)
    return result, benchmark.stats["min"] / fastest_baseline, fastest_baseline
