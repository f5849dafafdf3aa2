"""``pmfnas compare``: several search methods, many seeds, one benchmark, equal simulated budgets.

Every (method, seed) run gets the same oracle seed, so methods are compared on the same draws of the
recorded repeats (paired comparison). Each finished run is written atomically to ``DIR/runs/`` so an
interrupted comparison resumes with ``--resume``; the aggregate files are rebuilt from those.

``runs.csv`` is byte-identical for identical arguments: wall-clock seconds, which are not, go to
``timing.csv`` instead.

A results folder knows what made it: ``settings.json`` records the benchmark (name and content hash),
methods, budget, workers, seeds and the package version, and ``resume=True`` refuses to add runs made
with anything different. A lock file (``.lock``) keeps a second comparison out of a folder in use.
"""
from __future__ import annotations

import fcntl
import json
import math
import multiprocessing
import numbers
import os
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from benchmarks.files import atomic_write
from benchmarks.oracle import TabularOracle
from benchmarks.registry import load_benchmark, space_for
from benchmarks.tabular import TabularBenchmark, check_searchable
from harness.metrics import GroundTruth
from harness.parent_watch import die_with_parent
from harness.preflight import check_output_dir
from harness.runner import run_tabular
from harness.seeding import search_streams
from harness.version import package_version
from search.base import Problem, is_whole_number

DEFAULT_BUDGET_FULL_EVALUATIONS = 30
SETTINGS_FILE = "settings.json"
LOCK_FILE = ".lock"
RUN_COLUMNS = ["method", "seed", "budget", "chosen_arch", "final_valid", "final_test", "regret", "n_evaluations",
               "epochs_paid", "simulated_time", "stopped_because"]


def full_evaluation_cost(table: TabularBenchmark) -> float:
    """The median simulated seconds of one full evaluation (every epoch) of the benchmark: its unit of budget."""
    return float(np.nanmedian(table.full_evaluation_seconds()))


def default_budget(table: TabularBenchmark) -> float:
    """Budget when none is given: DEFAULT_BUDGET_FULL_EVALUATIONS × the median cost of one full evaluation."""
    return DEFAULT_BUDGET_FULL_EVALUATIONS * full_evaluation_cost(table)


def resolve_budget(table: TabularBenchmark, budget: float | None = None, budget_evals: float | None = None) -> float:
    """The budget in simulated seconds: ``budget`` itself, ``budget_evals`` full evaluations, or the default.

    ValueError for both given, a value that is not a finite positive number, or a budget below one full
    evaluation (no run could finish one: every result would be NaN).
    """
    if budget is not None and budget_evals is not None:
        raise ValueError("give the budget once: in seconds (--budget) or in full evaluations (--budget-evals)")
    for name, value in (("budget", budget), ("budget_evals", budget_evals)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                  or not (math.isfinite(value) and value > 0)):
            raise ValueError(f"{name}={value!r} must be a finite positive number")
    unit = full_evaluation_cost(table)
    if not (math.isfinite(unit) and unit > 0):
        raise ValueError(f"{table.metadata.name} records no positive cost of a full evaluation (median {unit}), so "
                         "no budget can be set in its seconds")
    if budget_evals is not None:
        budget = budget_evals * unit
    seconds = default_budget(table) if budget is None else float(budget)
    if seconds < unit:
        raise ValueError(f"budget={seconds:g} simulated seconds is below one full evaluation of {table.metadata.name} "
                         f"(median {unit:.6g} s), so no run could finish one: give at least that, "
                         "or --budget-evals N")
    return seconds


def single_fidelity_warning(table: TabularBenchmark, methods: Sequence[str]) -> str | None:
    """A warning when multi-fidelity methods run on a table that records one fidelity only, else None."""
    from search.registry import needs_several_fidelities

    affected = [m for m in methods if needs_several_fidelities(m)]
    if table.epochs.size > 1 or not affected:
        return None
    return (f"{table.metadata.name} records one fidelity only (epoch {int(table.epochs[0])}), so "
            f"{', '.join(affected)} can only run full evaluations: their early stopping does nothing "
            "(successive halving, Hyperband and ASHA reduce to random search)")


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
    from search.registry import searcher_names
    return searcher_names()


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
    # An incumbent whose run failed with no other run standing leaves none (a row without an architecture).
    regrets = [truth.regret(None if pd.isna(a) else oracle.row_of(a)) for a in incumbents["arch"]]
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
    from search.registry import unloadable_searchers

    methods = list(methods)
    names = _expand_peers([m.strip() for m in methods if m.strip()])
    known = known_methods()
    if not names:
        raise ValueError(f"methods {methods!r} name no method; known: {', '.join(known)}")
    unknown = [m for m in names if m not in known]
    broken = unloadable_searchers()
    for name in unknown:
        if name in broken:  # a plug-in that is installed but cannot load: its own error says more than "unknown"
            raise ValueError(broken[name])
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"methods {names} name a method twice")
    return names


class ComparisonInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`compare`: ``kept`` of ``total`` runs are finished (and saved, with ``out``)."""

    def __init__(self, kept: int, total: int):
        super().__init__(f"interrupted: {kept} of {total} runs kept")
        self.kept, self.total = kept, total


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (its ``.lock`` file) for the block; ValueError if another holds it.

    ``flock`` locks are released by the system when the holder exits, however it exits.
    """
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"{folder} is in use by another pmfnas compare (it holds {path}); wait for it to end, "
                             "or choose another --out") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def comparison_settings(benchmark: str, table: TabularBenchmark, methods: Sequence[str], budget: float,
                        budget_evals: float | None, workers: int, seeds: Sequence[int]) -> dict:
    """What ``settings.json`` records: everything that decides the runs of a comparison."""
    return {"benchmark": str(benchmark), "benchmark_sha256": table.content_hash(), "methods": list(methods),
            "budget": budget, "budget_evals": budget_evals, "workers": workers, "seeds": list(seeds),
            "pmfnas_version": package_version()}


# How the budget was written (seconds or full evaluations) does not change the runs; the rest does.
_INFORMATIONAL_SETTINGS = ("budget_evals",)


def settings_differences(saved: dict, wanted: dict) -> list[str]:
    """``key: saved vs wanted`` for every setting that differs."""
    keys = [k for k in dict.fromkeys([*saved, *wanted]) if k not in _INFORMATIONAL_SETTINGS]
    return [f"{k}: {saved.get(k)!r} in the folder, {wanted.get(k)!r} now" for k in keys if saved.get(k) != wanted.get(k)]


def _prepare_folder(out: Path, settings: dict, resume: bool) -> None:
    """Check ``out`` against ``settings`` (resume) or claim it (a new comparison); write settings.json."""
    run_dir = out / "runs"
    has_runs = run_dir.exists() and any(run_dir.iterdir())
    settings_path = out / SETTINGS_FILE
    if has_runs and not resume:
        raise ValueError(f"{out} already holds runs; pass --resume to finish them or choose another --out")
    if has_runs:
        if not settings_path.exists():
            raise ValueError(f"{out} holds runs but no {SETTINGS_FILE} (made by an older pmfnas), so what made them "
                             "cannot be checked: choose another --out")
        try:
            saved = json.loads(settings_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{settings_path} cannot be read ({error}); choose another --out") from None
        if not isinstance(saved, dict):
            raise ValueError(f"{settings_path} holds no settings (a JSON {type(saved).__name__}, not an object); "
                             "choose another --out")
        differences = settings_differences(saved, settings)
        if differences:
            raise ValueError(f"--resume: {out} was made with other settings ({'; '.join(differences)}); "
                             "resume with the same arguments, or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(settings_path, json.dumps(settings, indent=2, sort_keys=True) + "\n")


_RUN_RECORD_KEYS = ("row", "anytime", "wall_seconds")


def _read_run_record(path: Path) -> dict:
    """A finished run's record from ``runs/``; ValueError naming the file if it is not a whole one."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable run record ({error}); delete it to run that run again") from None
    missing = [key for key in _RUN_RECORD_KEYS if not isinstance(record, dict) or key not in record]
    if missing:
        raise ValueError(f"{path} is not a run record (no {', '.join(missing)}); delete it to run that run again")
    return record


def _run_numbered(numbered: tuple[int, RunSpec]) -> tuple[int, dict]:
    index, spec = numbered
    return index, run_one(spec)


def _pool_context():
    # Chosen explicitly (Python 3.14 changes Linux's default to forkserver, which would make the workers
    # children of the fork server, not of this process): fork where it is safe, spawn elsewhere.
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def compare(benchmark: str, methods: Sequence[str], budget: float | None = None, seeds: int | Sequence[int] = 20,
            workers: int = 1, out: str | os.PathLike | None = None, resume: bool = False,
            processes: int | None = None, progress: bool = False, budget_evals: float | None = None,
            ray: str | None = None) -> pd.DataFrame:
    """Run every method for every seed on ``benchmark`` and return the runs.csv table.

    ``methods``: names, or one string of comma-separated names as on the command line. ``seeds``: a count
    N (seeds 0..N-1) or a list of distinct non-negative seeds.

    ``budget`` is in simulated seconds, or ``budget_evals`` in full evaluations (N × the median cost of one
    full evaluation); default :func:`default_budget`. With ``out``, writes settings.json, runs.csv,
    anytime.csv, summary.md, anytime.png and timing.csv there; ``resume=True`` keeps the runs already in
    ``out`` if it was made with the same settings. Warns (``UserWarning``) when multi-fidelity methods run on
    a one-fidelity table. Ctrl-C raises :class:`ComparisonInterrupted` (finished runs stay in ``out``).
    ``ray``: run the runs as tasks on the Ray cluster at this address (``auto``, ``local`` or ``HOST:PORT``;
    :mod:`harness.ray_compare`); ``runs.csv`` is the same as without it.
    """
    names = _parse_methods(methods.split(",") if isinstance(methods, str) else methods)
    seed_list = _seed_list(seeds)
    for name, value in (("workers", workers), ("processes", processes)):
        if value is not None and (not is_whole_number(value) or value < 1):
            raise ValueError(f"{name}={value!r} must be a whole number, at least 1")
    if resume and out is None:
        raise ValueError("resume=True continues the runs kept in a folder: give out as well")
    if out is not None:
        out = check_output_dir(out)
    table = _table(benchmark)
    check_searchable(table)
    budget = resolve_budget(table, budget, budget_evals)
    warning = single_fidelity_warning(table, names)
    if warning:
        warnings.warn(warning, UserWarning, stacklevel=2)

    specs = [RunSpec(benchmark, m, s, budget, int(workers)) for m in names for s in seed_list]
    joined_ray = False
    if ray is not None:
        from harness.ray_pool import connect, disconnect

        joined_ray = connect(ray)  # before the folder is touched: a cluster that is not there leaves nothing
    try:
        if out is None:
            return _run_all(specs, {}, None, processes, progress, ray)
        out.mkdir(parents=True, exist_ok=True)
        with folder_lock(out):
            _prepare_folder(out, comparison_settings(benchmark, table, names, budget, budget_evals, int(workers),
                                                     seed_list), resume)
            run_dir = out / "runs"
            results = {}
            for spec in specs:
                done = run_dir / spec.filename
                if done.exists():
                    results[(spec.method, spec.seed)] = _read_run_record(done)
            runs = _run_all(specs, results, run_dir, processes, progress, ray)
            write_outputs(out, specs, results, runs, table)
            if warning:
                _warn_in_summary(out / "summary.md", warning)
        return runs
    finally:
        if joined_ray:
            disconnect()


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    """``seeds`` as a list: a count N means 0..N-1; a list must hold distinct non-negative whole numbers."""
    if is_whole_number(seeds) and not isinstance(seeds, float):
        if seeds < 1:
            raise ValueError(f"seeds={seeds!r} must be a positive count or a list of distinct non-negative ints")
        return list(range(int(seeds)))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds={seeds!r} must be a positive count or a list of distinct non-negative ints")
    seed_list = list(seeds)
    if (not seed_list or any(not is_whole_number(s) or isinstance(s, float) or s < 0 for s in seed_list)
            or len(set(seed_list)) != len(seed_list)):
        raise ValueError(f"seeds={seeds!r} must be a positive count or a list of distinct non-negative ints")
    return [int(s) for s in seed_list]


def _warn_in_summary(path: Path, warning: str) -> None:
    title, _, rest = path.read_text().partition("\n")
    atomic_write(path, f"{title}\n\n> **Warning:** {warning}.\n{rest}")


def _run_all(specs: Sequence[RunSpec], results: dict, run_dir: Path | None, processes: int | None,
             progress: bool, ray: str | None = None) -> pd.DataFrame:
    """Run the specs missing from ``results`` (saving each to ``run_dir``); the runs.csv table of all."""
    todo = [spec for spec in specs if (spec.method, spec.seed) not in results]

    def keep(spec: RunSpec, outcome: dict) -> None:
        # Saved before it counts: a Ctrl-C inside the write must not report a run as kept that is not on disk.
        if run_dir is not None:
            atomic_write(run_dir / spec.filename, json.dumps(outcome, sort_keys=True))
        results[(spec.method, spec.seed)] = outcome
        if bar is not None:
            bar.update(1)

    processes = processes if processes is not None else min(os.cpu_count() or 1, 2)
    bar = None
    try:
        if ray is not None:
            if progress:
                from tqdm import tqdm
                bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="runs", unit="run")
            from harness.ray_compare import run_on_ray

            run_on_ray(todo, keep, ray)
        elif processes <= 1 or len(todo) <= 1:
            if progress:
                from tqdm import tqdm
                bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="runs", unit="run")
            for spec in todo:
                keep(spec, run_one(spec))
        else:
            # Workers die with this process (kill -9 included) and leave Ctrl-C to it; leaving the block
            # terminates them, so an interruption does not wait for the runs in progress.
            with _pool_context().Pool(processes, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                if progress:  # after the fork: the bar's monitor thread stays in this process
                    from tqdm import tqdm
                    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="runs", unit="run")
                for index, outcome in pool.imap_unordered(_run_numbered, list(enumerate(todo))):
                    keep(todo[index], outcome)
    except KeyboardInterrupt:
        # Counted on disk: a Ctrl-C between a record's rename and its entry in ``results`` still kept it.
        kept = (sum((run_dir / spec.filename).exists() for spec in specs) if run_dir is not None
                else len(results))
        raise ComparisonInterrupted(kept, len(specs)) from None
    finally:
        if bar is not None:
            bar.close()
    return pd.DataFrame([results[(s.method, s.seed)]["row"] for s in specs], columns=RUN_COLUMNS)


def anytime_frame(specs: Sequence[RunSpec], results: dict) -> pd.DataFrame:
    rows = []
    for spec in specs:
        steps = results[(spec.method, spec.seed)]["anytime"]
        rows.extend({"method": spec.method, "seed": spec.seed, "time": t, "regret": r}
                    for t, r in zip(steps["time"], steps["regret"]))
    return pd.DataFrame(rows, columns=["method", "seed", "time", "regret"])


def write_outputs(out: Path, specs: Sequence[RunSpec], results: dict, runs: pd.DataFrame,
                  table: TabularBenchmark) -> None:
    from harness.plots import plot_anytime, plot_final_regret, plot_ranks
    from harness.report import summary_markdown

    anytime = anytime_frame(specs, results)
    timing = pd.DataFrame([{"method": s.method, "seed": s.seed,
                            "wall_seconds": results[(s.method, s.seed)]["wall_seconds"]} for s in specs])
    atomic_write(out / "runs.csv", runs.to_csv(index=False, float_format="%.10g"))
    atomic_write(out / "anytime.csv", anytime.to_csv(index=False, float_format="%.10g"))
    atomic_write(out / "timing.csv", timing.to_csv(index=False, float_format="%.4f"))
    atomic_write(out / "summary.md", summary_markdown(runs, anytime, table))
    plot_anytime(anytime, runs, out / "anytime.png", benchmark=table.metadata.name)
    plot_final_regret(runs, out / "final_regret.png", benchmark=table.metadata.name)
    plot_ranks(runs, out / "ranks.png", benchmark=table.metadata.name)
