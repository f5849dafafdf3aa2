"""The runner: one searcher, one oracle, one budget, W workers.

Budget rule. A job may start only while the clock reads less than the budget. A job that finishes
after the budget is cut at the deadline: the searcher is never told its result, it cannot become the
incumbent, and the trace keeps it with ``counted=False``. Time used is therefore never more than the
budget. In real mode the jobs still running at the deadline are stopped there (their last checkpoint is
kept, so a resumed search with a larger budget continues them), and the reported time is the time the
run really took, never less.

A search ends for one reason, in ``RunResult.stopped_because``: ``"budget"``; ``"space exhausted"`` (every
architecture of a finite oracle has a run that reached the maximum epochs or failed: nothing is left to
learn but paid repeats); ``"searcher finished"`` (it has nothing more to ask and nothing is running);
``"max_jobs"``.

Costs. What each architecture was trained to and paid lives in the runner's
:class:`~harness.ledger.Ledger`: a resume pays only the extra epochs, a fresh run of an architecture
already trained pays in full (and sees another recorded seed where the table has one).

Incumbent rule (the NAS-Bench-201 reporting protocol): the search returns the architecture with the
best validation metric among what it observed, comparing first the fidelity reached (an architecture
trained to more epochs beats one trained to fewer) and then the metric. Failed runs never count: each
training run (an architecture's fresh run and the resumes that continue it) stands for its latest
observation, and when a job of that run fails the whole run is withdrawn — what it showed at fewer
epochs included, since the run got further and diverged (or crashed) there — and the incumbent becomes
the best of the runs still standing (another run of the same architecture may be one). The incumbent
history records the change; if no run is left standing, a row with no architecture.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from benchmarks.oracle import FidelityOracle
from harness.ledger import Ledger
from harness.workers import Completion, SimulatedPool, WorkerPool
from search.base import Job, Observation, Searcher

TRACE_COLUMNS = ["job", "worker", "start", "end", "arch", "epochs", "resume", "repeat", "from_epoch", "reached",
                 "value", "cost", "failed", "counted", "reason", "paid_epochs"]
STOP_REASONS = ("budget", "space exhausted", "searcher finished", "max_jobs")


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
    """Drives a searcher against a worker pool until the budget is spent, the space is used up or the searcher is done.

    The pool's ``oracle`` (when it has one) tells the ledger how many architectures exist and which keys
    name the same one; a pool without one (worker processes that build their own) is taken as unbounded.
    """

    def __init__(self, searcher: Searcher, pool: WorkerPool, budget: float, max_jobs: int | None = None,
                 on_result: Callable[[dict, tuple[str, float] | None, int], None] | None = None):
        if not budget > 0 or budget == float("inf"):
            raise ValueError(f"budget={budget} must be a positive, finite number of seconds")
        if max_jobs is not None and max_jobs < 1:
            raise ValueError(f"max_jobs={max_jobs} must be at least 1")
        self.searcher = searcher
        self.pool = pool
        self.budget = float(budget)
        self.max_jobs = max_jobs
        # Called after every counted result with (trace row, incumbent (arch, value) or None, jobs running).
        self.on_result = on_result
        oracle = getattr(pool, "oracle", None)
        self.ledger = Ledger(searcher.problem.max_epochs,
                             identify=None if oracle is None else oracle.identify,
                             n_architectures=None if oracle is None else oracle.n_architectures)
        self._running: dict[str, tuple[Job, int, int]] = {}  # arch -> (job, start epoch, repeat)
        self._rows: list[dict] = []
        self._incumbents: list[dict] = []
        # Per training run (arch, repeat), its latest observation: ((epochs, score), order reached, arch, value).
        self._standing: dict[tuple[str, int], tuple[tuple, int, str, float]] = {}
        self._best_run: tuple[str, int] | None = None
        self._best: tuple[str, float] | None = None
        self._submitted = 0

    def _fill_workers(self) -> None:
        """Start jobs on idle workers until none is idle, the budget is reached or the searcher waits."""
        while self.pool.idle_workers() > 0 and self.pool.clock.now() < self.budget and not self.ledger.exhausted:
            if self.max_jobs is not None and self._submitted >= self.max_jobs:
                return
            job = self.searcher.ask()
            if job is None:
                return
            fidelities = self.searcher.problem.fidelities
            if job.epochs not in fidelities:
                raise ValueError(f"searcher asked for {job.epochs} epochs of {job.arch}; recorded fidelities are "
                                 f"{fidelities}")
            start, repeat = self.ledger.dispatch(job)
            self._running[job.arch] = (job, start, repeat)
            self.pool.submit(job, start=start, repeat=repeat)
            self._submitted += 1

    def _record(self, done: Completion, counted: bool) -> None:
        evaluation = done.evaluation
        job, start, repeat = self._running.pop(done.job.arch)
        failed = evaluation is None or evaluation.failed
        value = float("nan") if evaluation is None else evaluation.value
        # A job that raised is known to have reached only where it started.
        reached = start if evaluation is None else evaluation.epoch
        cost = 0.0 if evaluation is None else evaluation.cost
        if counted:
            paid = self.ledger.settle(job, reached, cost, failed)
        else:
            self.ledger.release(job)
            paid = 0
        self._rows.append({
            "job": len(self._rows), "worker": done.worker, "start": done.start, "end": done.end,
            "arch": job.arch, "epochs": job.epochs, "resume": job.resume, "repeat": repeat, "from_epoch": start,
            "reached": reached, "value": value, "cost": cost, "failed": failed, "counted": counted,
            "reason": done.error or ("" if evaluation is None else evaluation.reason), "paid_epochs": paid})
        if not counted:
            return
        run = (job.arch, repeat)
        if failed:
            if self._standing.pop(run, None) is not None and run == self._best_run:
                self._elect(done.end)
            return
        key = (reached, self.searcher.score(value))
        best_key = None if self._best_run is None else self._standing[self._best_run][0]
        self._standing[run] = (key, len(self._rows), job.arch, value)
        # The incumbent's own run reaching further always updates it; otherwise an equal key does not displace it.
        if best_key is None or run == self._best_run or key > best_key:
            self._best_run = run
            self._best = (job.arch, value)
            self._incumbents.append({"time": done.end, "arch": job.arch, "epochs": reached, "value": value})

    def _elect(self, time: float) -> None:
        """The incumbent's run failed: the best run still standing takes its place (or none does)."""
        if self._standing:
            run = max(self._standing, key=lambda r: (self._standing[r][0], -self._standing[r][1]))
            (epochs, _), _, arch, value = self._standing[run]
            self._best_run, self._best = run, (arch, value)
            self._incumbents.append({"time": time, "arch": arch, "epochs": epochs, "value": value})
        else:
            self._best_run, self._best = None, None
            self._incumbents.append({"time": time, "arch": None, "epochs": 0, "value": float("nan")})

    def _stop_reason(self) -> str:
        if self.ledger.exhausted:
            return "space exhausted"
        if self.pool.clock.now() >= self.budget:
            return "budget"
        if self.max_jobs is not None and self._submitted >= self.max_jobs:
            return "max_jobs"
        return "searcher finished"

    def run(self) -> RunResult:
        stopped = None
        while True:
            self._fill_workers()
            if self.pool.in_flight() == 0:
                break
            done = self.pool.next_completion(deadline=self.budget)
            if done is None or done.end > self.budget:
                # The deadline came first: every job still running is stopped there, never told, never counted.
                if done is not None:
                    self._record(done, counted=False)
                for job, _, _ in list(self._running.values()):
                    self._record(self.pool.cancel(job), counted=False)
                stopped = "budget"
                break
            self._record(done, counted=True)
            evaluation = done.evaluation
            observation = (Observation(np.array([done.job.epochs]), np.array([np.nan]), failed=True)
                           if evaluation is None else
                           Observation(evaluation.epochs, evaluation.values, evaluation.failed, evaluation.losses))
            self.searcher.tell(done.job, observation)
            if self.on_result is not None:
                self.on_result(self._rows[-1], self._best, self.pool.in_flight())
        trace = pd.DataFrame(self._rows, columns=TRACE_COLUMNS)
        incumbents = pd.DataFrame(self._incumbents, columns=["time", "arch", "epochs", "value"])
        chosen, value = self._best if self._best else (None, float("nan"))
        # The time the run took: on a simulated clock never past the budget (cut jobs end there); on a real one
        # whatever stopping the running jobs took on top.
        time_used = self.pool.clock.now()
        return RunResult(trace, incumbents, chosen, value, time_used, self.budget, stopped or self._stop_reason())


def run_tabular(searcher: Searcher, oracle: FidelityOracle, budget: float, n_workers: int = 1,
                max_jobs: int | None = None) -> RunResult:
    """Run ``searcher`` on a tabular oracle with W simulated workers."""
    return Runner(searcher, SimulatedPool(oracle, n_workers), budget, max_jobs).run()
