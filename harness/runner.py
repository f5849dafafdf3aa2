"""The runner: one searcher, one oracle, one budget, W workers.

Budget rule. A job may start only while the clock reads less than the budget. A job that finishes
after the budget is cut at the deadline: the searcher is never told its result, it cannot become the
incumbent, and the trace keeps it with ``counted=False``. Time used is therefore never more than the
budget. A search also ends early when the searcher has nothing more to ask and nothing is running.

Incumbent rule (the NAS-Bench-201 reporting protocol): the search returns the architecture with the
best validation metric among what it observed, comparing first the fidelity reached (an architecture
trained to more epochs beats one trained to fewer) and then the metric. Failed runs never count.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from benchmarks.oracle import FidelityOracle
from harness.workers import Completion, SimulatedPool, WorkerPool
from search.base import Job, Observation, Searcher

TRACE_COLUMNS = ["job", "worker", "start", "end", "arch", "epochs", "resume", "value", "cost", "failed",
                 "counted", "reason"]


@dataclass
class RunResult:
    """Everything a run produced: the trace, the incumbent over time, and what the search returned."""

    trace: pd.DataFrame
    incumbents: pd.DataFrame
    chosen_arch: str | None
    chosen_value: float
    time_used: float
    budget: float
    stopped_because: str
    extras: dict = field(default_factory=dict)

    @property
    def n_evaluations(self) -> int:
        return int(self.trace["counted"].sum())

    @property
    def epochs_paid(self) -> int:
        """Epochs actually trained in counted jobs (a resume pays only its extra epochs)."""
        counted = self.trace[self.trace["counted"]]
        return int(counted["paid_epochs"].sum()) if len(counted) else 0


class Runner:
    """Drives a searcher against a worker pool until the budget is spent."""

    def __init__(self, searcher: Searcher, pool: WorkerPool, budget: float, max_jobs: int | None = None,
                 on_result: Callable[[dict, tuple[str, float] | None, int], None] | None = None):
        if not budget > 0:
            raise ValueError(f"budget={budget} must be a positive number of seconds")
        if max_jobs is not None and max_jobs < 1:
            raise ValueError(f"max_jobs={max_jobs} must be at least 1")
        self.searcher = searcher
        self.pool = pool
        self.budget = float(budget)
        self.max_jobs = max_jobs
        # Called after every counted result with (trace row, incumbent (arch, value) or None, jobs running).
        self.on_result = on_result
        self._in_flight: set[str] = set()
        self._trained_to: dict[str, int] = {}
        self._rows: list[dict] = []
        self._incumbents: list[dict] = []
        self._best_key: tuple | None = None
        self._best: tuple[str, float] | None = None
        self._submitted = 0

    def _check(self, job: Job) -> None:
        fidelities = self.searcher.problem.fidelities
        if job.epochs not in fidelities:
            raise ValueError(f"searcher asked for {job.epochs} epochs of {job.arch}; recorded fidelities are {fidelities}")
        if job.arch in self._in_flight:
            raise ValueError(f"searcher asked for {job.arch} while it is still running")
        trained = self._trained_to.get(job.arch, 0)
        if job.resume and not trained:
            raise ValueError(f"searcher asked to resume {job.arch}, which was never trained")

    def _fill_workers(self) -> None:
        """Start jobs on idle workers until none is idle, the budget is reached or the searcher waits."""
        while self.pool.idle_workers() > 0 and self.pool.clock.now() < self.budget:
            if self.max_jobs is not None and self._submitted >= self.max_jobs:
                return
            job = self.searcher.ask()
            if job is None:
                return
            self._check(job)
            self._in_flight.add(job.arch)
            self.pool.submit(job)
            self._submitted += 1

    def _record(self, done: Completion, counted: bool) -> None:
        evaluation = done.evaluation
        failed = evaluation is None or evaluation.failed
        value = float("nan") if evaluation is None else evaluation.value
        reached = done.job.epochs if evaluation is None else evaluation.epoch
        previously = self._trained_to.get(done.job.arch, 0)
        self._rows.append({
            "job": len(self._rows), "worker": done.worker, "start": done.start, "end": min(done.end, self.budget),
            "arch": done.job.arch, "epochs": done.job.epochs, "resume": done.job.resume, "value": value,
            "cost": 0.0 if evaluation is None else evaluation.cost, "failed": failed, "counted": counted,
            "reason": done.error or ("" if evaluation is None else evaluation.reason),
            "paid_epochs": max(reached - previously, 0)})
        if not counted:
            return
        self._trained_to[done.job.arch] = max(previously, reached)
        if failed:
            return
        key = (reached, self.searcher.score(value))
        if self._best_key is None or key > self._best_key:
            self._best_key = key
            self._best = (done.job.arch, value)
            self._incumbents.append({"time": done.end, "arch": done.job.arch, "epochs": reached, "value": value})

    def run(self) -> RunResult:
        stopped = "budget"
        while True:
            self._fill_workers()
            if self.pool.in_flight() == 0:
                stopped = "budget" if self.pool.clock.now() >= self.budget else (
                    "max_jobs" if self.max_jobs is not None and self._submitted >= self.max_jobs else "searcher finished")
                break
            done = self.pool.next_completion()
            self._in_flight.discard(done.job.arch)
            if done.end > self.budget:
                self._record(done, counted=False)
                # Every other running job ends later still: all of them are cut at the deadline.
                while self.pool.in_flight():
                    self._record(self.pool.next_completion(), counted=False)
                break
            self._record(done, counted=True)
            evaluation = done.evaluation
            observation = (Observation(np.array([done.job.epochs]), np.array([np.nan]), failed=True)
                           if evaluation is None else
                           Observation(evaluation.epochs, evaluation.values, evaluation.failed, evaluation.losses))
            self.searcher.tell(done.job, observation)
            if self.on_result is not None:
                self.on_result(self._rows[-1], self._best, self.pool.in_flight())
        trace = pd.DataFrame(self._rows, columns=TRACE_COLUMNS + ["paid_epochs"])
        incumbents = pd.DataFrame(self._incumbents, columns=["time", "arch", "epochs", "value"])
        time_used = min(self.pool.clock.now(), self.budget)
        chosen, value = self._best if self._best else (None, float("nan"))
        return RunResult(trace, incumbents, chosen, value, time_used, self.budget, stopped)


def run_tabular(searcher: Searcher, oracle: FidelityOracle, budget: float, n_workers: int = 1,
                max_jobs: int | None = None) -> RunResult:
    """Run ``searcher`` on a tabular oracle with W simulated workers."""
    return Runner(searcher, SimulatedPool(oracle, n_workers), budget, max_jobs).run()
