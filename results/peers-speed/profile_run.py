"""One (method, seed) search run of ``pmfnas compare``, timed, optionally under cProfile, with its job trace.

    python results/peers-speed/profile_run.py --benchmark nbnlp-wt2 --method smac-hb --seed 0 \
        --budget-evals 10 [--profile OUT.prof] [--trace OUT.csv] [--max-jobs N]

Prints wall seconds, jobs and the top functions by cumulative time (with --profile). The trace
(every job: architecture, epochs, resume, ...) compares proposals before/after a change exactly.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from benchmarks.oracle import TabularOracle
from benchmarks.registry import space_for
from harness.comparison import _table, resolve_budget
from harness.runner import Runner
from harness.seeding import search_streams
from harness.workers import SimulatedPool
from search.base import Problem
from search.registry import make_searcher


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--benchmark", default="nbnlp-wt2")
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-evals", type=float, default=10)
    parser.add_argument("--max-jobs", type=int, default=None)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--trace", default=None)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()

    table = _table(args.benchmark)
    space = space_for(table)
    budget = resolve_budget(table, budget_evals=args.budget_evals)
    oracle_rng, searcher_rng = search_streams(args.seed)
    oracle = TabularOracle(table, space, oracle_rng)
    problem = Problem(space, oracle.fidelities, oracle.higher_is_better)
    started = time.perf_counter()
    searcher = make_searcher(args.method, problem, searcher_rng)
    runner = Runner(searcher, SimulatedPool(oracle, 1), budget, args.max_jobs)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    result = runner.run()
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - started
    print(f"{args.method} {args.benchmark} seed={args.seed} budget_evals={args.budget_evals}: wall {wall:.1f} s, "
          f"{len(result.trace)} jobs, chosen {result.chosen_arch}, stopped: {result.stopped_because}")
    if args.trace:
        result.trace.to_csv(args.trace, index=False)
    if profiler:
        profiler.dump_stats(args.profile)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
