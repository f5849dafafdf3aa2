"""Worker pools: where jobs run while the runner waits for the next completion.

A pool owns the clock it runs on. The simulated pool evaluates on submission (the oracle knows the
cost) and releases results in order of simulated completion; a real pool runs jobs concurrently and
releases them as they finish. A Ray-backed pool would implement the same three methods.
"""
from __future__ import annotations

import heapq
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from benchmarks.oracle import Evaluation, FidelityOracle
from harness.clock import Clock, SimulatedClock, WallClock
from search.base import Job


@dataclass(frozen=True)
class Completion:
    """A finished job: who ran it, when, and what it observed."""

    job: Job
    worker: int
    start: float
    end: float
    evaluation: Evaluation | None
    error: str = ""


class WorkerPool(Protocol):
    n_workers: int
    clock: Clock

    def idle_workers(self) -> int: ...

    def submit(self, job: Job) -> None: ...

    def next_completion(self) -> Completion:
        """Block (or advance simulated time) until the earliest running job finishes."""

    def in_flight(self) -> int: ...


class SimulatedPool:
    """W workers on a simulated clock; a job holds its worker for exactly its recorded cost."""

    def __init__(self, oracle: FidelityOracle, n_workers: int = 1):
        if n_workers < 1:
            raise ValueError(f"n_workers={n_workers} must be at least 1")
        self.oracle = oracle
        self.n_workers = n_workers
        self.clock = SimulatedClock()
        self._free = list(range(n_workers))
        self._events: list[tuple[float, int, Completion]] = []
        self._sequence = 0

    def idle_workers(self) -> int:
        return len(self._free)

    def in_flight(self) -> int:
        return len(self._events)

    def submit(self, job: Job) -> None:
        if not self._free:
            raise RuntimeError("no idle worker: the runner must check idle_workers() first")
        worker = min(self._free)
        self._free.remove(worker)
        start = self.clock.now()
        evaluation = self.oracle.evaluate(job.arch, job.epochs)
        done = Completion(job, worker, start, start + evaluation.cost, evaluation)
        # The sequence number breaks ties between equal completion times in submission order.
        heapq.heappush(self._events, (done.end, self._sequence, done))
        self._sequence += 1

    def next_completion(self) -> Completion:
        end, _, done = heapq.heappop(self._events)
        self.clock.advance_to(end)
        self._free.append(done.worker)
        return done


class ThreadedPool:
    """W workers as threads on the wall clock, for oracles that really train (one job per worker)."""

    def __init__(self, oracle: FidelityOracle, n_workers: int = 1):
        if n_workers < 1:
            raise ValueError(f"n_workers={n_workers} must be at least 1")
        self.oracle = oracle
        self.n_workers = n_workers
        self.clock = WallClock()
        self._executor = ThreadPoolExecutor(max_workers=n_workers)
        self._free = list(range(n_workers))
        self._running: dict[Future, tuple[Job, int, float]] = {}

    def idle_workers(self) -> int:
        return len(self._free)

    def in_flight(self) -> int:
        return len(self._running)

    def submit(self, job: Job) -> None:
        worker = min(self._free)
        self._free.remove(worker)
        future = self._executor.submit(self.oracle.evaluate, job.arch, job.epochs)
        self._running[future] = (job, worker, self.clock.now())

    def next_completion(self) -> Completion:
        finished, _ = wait(list(self._running), return_when=FIRST_COMPLETED)
        # Among simultaneous finishes, the earliest submitted goes first, for a stable order.
        future = min(finished, key=lambda f: self._running[f][2])
        job, worker, start = self._running.pop(future)
        self._free.append(worker)
        end = self.clock.now()
        try:
            return Completion(job, worker, start, end, future.result())
        except Exception as error:  # a trial that raises is a failed trial, not a failed search
            return Completion(job, worker, start, end, None, error=f"{type(error).__name__}: {error}")

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
