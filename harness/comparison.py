"""``pmfnas compare``: several search methods, many seeds, one benchmark, equal simulated budgets.

Every (method, seed) run gets the same oracle seed, so methods are compared on the same draws of the
recorded repeats (paired comparison). Each finished run is written atomically to ``DIR/runs/`` so an
interrupted comparison resumes with ``--resume``; the aggregate files are rebuilt from those.

``runs.csv`` is byte-identical for identical arguments: wall-clock seconds, which are not, go to
``timing.csv`` instead.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from benchmarks.files import atomic_write
from benchmarks.oracle import TabularOracle
from benchmarks.registry import load_benchmark, space_for
from benchmarks.tabular import TabularBenchmark
from harness.metrics import GroundTruth
from harness.runner import run_tabular
from harness.seeding import search_streams
from search.base import Problem

DEFAULT_BUDGET_FULL_EVALUATIONS = 30
RUN_COLUMNS = ["method", "seed", "budget", "chosen_arch", "final_valid", "final_test", "regret", "n_evaluations",
               "epochs_paid", "simulated_time", "stopped_because"]


def default_budget(table: TabularBenchmark) -> float:
    """Budget when none is given: DEFAULT_BUDGET_FULL_EVALUATIONS × the median cost of one full evaluation."""
    return DEFAULT_BUDGET_FULL_EVALUATIONS * float(np.nanmedian(table.full_evaluation_seconds()))


@dataclass(frozen=True)
class RunSpec:
    benchmark: str
    method: str
    seed: int
    budget: float
    workers: int

    @property
    def filename(self) -> str:
        return f"{self.method}__seed{self.seed:04d}.json"


_TABLES: dict[str, TabularBenchmark] = {}


def _table(name: str) -> TabularBenchmark:
    # Each worker process loads a benchmark once and reuses it for all its runs.
    if name not in _TABLES:
        _TABLES[name] = load_benchmark(name)
    return _TABLES[name]


def known_methods() -> list[str]:
    from search.registry import known_methods as registered
    return registered()


def _expand_peers(names: list[str]) -> list[str]:
    """``peers`` stands for every installed peer library that is not slow (slow ones run only when named)."""
    from search.registry import installed_peers, peer_class
    fast = [p for p in installed_peers() if not peer_class(p).slow and p not in names]
    return [expanded for name in names for expanded in (fast if name == "peers" else [name])]


def run_one(spec: RunSpec) -> dict:
    """One search run; returns its runs.csv row, its anytime steps and its wall time."""
    from search.registry import make_searcher

    started = time.perf_counter()
    table = _table(spec.benchmark)
    space = space_for(table)
    oracle_rng, searcher_rng = search_streams(spec.seed)
    oracle = TabularOracle(table, space, oracle_rng)
    problem = Problem(space, oracle.fidelities, oracle.higher_is_better)
    searcher = make_searcher(spec.method, problem, searcher_rng)
    result = run_tabular(searcher, oracle, spec.budget, n_workers=spec.workers)
    truth = GroundTruth(table)
    row_of_chosen = None if result.chosen_arch is None else oracle.row_of(result.chosen_arch)
    incumbents = result.incumbents
    regrets = [truth.regret(oracle.row_of(a)) for a in incumbents["arch"]]
    row = {
        "method": spec.method, "seed": spec.seed, "budget": spec.budget, "chosen_arch": result.chosen_arch,
        "final_valid": float("nan") if row_of_chosen is None else float(truth.final_valid[row_of_chosen]),
        "final_test": float("nan") if row_of_chosen is None else float(truth.final_test[row_of_chosen]),
        "regret": truth.regret(row_of_chosen), "n_evaluations": result.n_evaluations,
        "epochs_paid": result.epochs_paid, "simulated_time": result.time_used,
        "stopped_because": result.stopped_because,
    }
    anytime = {"time": incumbents["time"].tolist(), "regret": regrets}
    return {"row": row, "anytime": anytime, "wall_seconds": time.perf_counter() - started}


def _parse_methods(methods: Iterable[str]) -> list[str]:
    names = _expand_peers([m.strip() for m in methods if m.strip()])
    known = known_methods()
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        raise ValueError(f"unknown method(s) {unknown or names}; known: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"methods {names} name a method twice")
    return names


def compare(benchmark: str, methods: Sequence[str], budget: float | None = None, seeds: int | Sequence[int] = 20,
            workers: int = 1, out: str | os.PathLike | None = None, resume: bool = False,
            processes: int | None = None, progress: bool = False) -> pd.DataFrame:
    """Run every method for every seed on ``benchmark`` and return the runs.csv table.

    ``budget`` is in simulated seconds (default: :func:`default_budget`). With ``out``, writes
    runs.csv, anytime.csv, summary.md, anytime.png and timing.csv there.
    """
    names = _parse_methods(methods)
    seed_list = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not seed_list or any(s < 0 for s in seed_list):
        raise ValueError(f"seeds={seeds!r} must be a positive count or a list of non-negative ints")
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    table = _table(benchmark)
    budget = default_budget(table) if budget is None else float(budget)
    if not budget > 0:
        raise ValueError(f"budget={budget} must be a positive number of simulated seconds")

    run_dir = None
    results: dict[tuple[str, int], dict] = {}
    specs = [RunSpec(benchmark, m, s, budget, workers) for m in names for s in seed_list]
    if out is not None:
        out = Path(out)
        run_dir = out / "runs"
        if run_dir.exists() and any(run_dir.iterdir()) and not resume:
            raise ValueError(f"{out} already holds runs; pass --resume to finish them or choose another --out")
        run_dir.mkdir(parents=True, exist_ok=True)
        for spec in specs:
            done = run_dir / spec.filename
            if done.exists():
                saved = json.loads(done.read_text())
                if saved["row"]["budget"] != budget:
                    raise ValueError(f"{done} was run with budget {saved['row']['budget']}, not {budget}; "
                                     "use the same budget to resume")
                results[(spec.method, spec.seed)] = saved
    todo = [spec for spec in specs if (spec.method, spec.seed) not in results]

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="runs", unit="run", file=None)

    def keep(spec: RunSpec, outcome: dict) -> None:
        results[(spec.method, spec.seed)] = outcome
        if run_dir is not None:
            atomic_write(run_dir / spec.filename, json.dumps(outcome, sort_keys=True))
        if bar is not None:
            bar.update(1)

    processes = processes if processes is not None else min(os.cpu_count() or 1, 2)
    if processes <= 1 or len(todo) <= 1:
        for spec in todo:
            keep(spec, run_one(spec))
    else:
        with ProcessPoolExecutor(max_workers=processes) as executor:
            futures = {executor.submit(run_one, spec): spec for spec in todo}
            for future in as_completed(futures):
                keep(futures[future], future.result())
    if bar is not None:
        bar.close()

    runs = pd.DataFrame([results[(s.method, s.seed)]["row"] for s in specs], columns=RUN_COLUMNS)
    if out is not None:
        write_outputs(out, specs, results, runs, table)
    return runs


def anytime_frame(specs: Sequence[RunSpec], results: dict) -> pd.DataFrame:
    rows = []
    for spec in specs:
        steps = results[(spec.method, spec.seed)]["anytime"]
        rows.extend({"method": spec.method, "seed": spec.seed, "time": t, "regret": r}
                    for t, r in zip(steps["time"], steps["regret"]))
    return pd.DataFrame(rows, columns=["method", "seed", "time", "regret"])


def write_outputs(out: Path, specs: Sequence[RunSpec], results: dict, runs: pd.DataFrame,
                  table: TabularBenchmark) -> None:
    from harness.plots import plot_anytime
    from harness.report import summary_markdown

    anytime = anytime_frame(specs, results)
    timing = pd.DataFrame([{"method": s.method, "seed": s.seed,
                            "wall_seconds": results[(s.method, s.seed)]["wall_seconds"]} for s in specs])
    atomic_write(out / "runs.csv", runs.to_csv(index=False, float_format="%.10g"))
    atomic_write(out / "anytime.csv", anytime.to_csv(index=False, float_format="%.10g"))
    atomic_write(out / "timing.csv", timing.to_csv(index=False, float_format="%.4f"))
    atomic_write(out / "summary.md", summary_markdown(runs, anytime, table))
    plot_anytime(anytime, runs, out / "anytime.png", title=table.metadata.name)
