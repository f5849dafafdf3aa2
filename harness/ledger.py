"""What every architecture was trained to and paid: kept here, and only here.

The runner owns one :class:`Ledger`. Before a job starts, :meth:`Ledger.dispatch` decides what it is —
a *resume* continues the architecture's current run from the epoch it reached and pays only the extra
epochs; a *fresh* run starts from scratch, pays in full and is the next run (``repeat``) of that
architecture, so a table with several recorded seeds shows another one — and refuses what cannot be
(a resume of nothing, of a failed or running run, or to no more epochs than it has). When the job ends
:meth:`Ledger.settle` records the epochs it really reached. Oracles keep no account (they are pure
functions of architecture, start, end and repeat) and searchers only see what they are told.

The ledger also knows when a finite space has been used up: every architecture the oracle can answer
for has a run that reached the maximum epochs or failed. Nothing new can then be learnt except by
paying again for known results, so the runner stops with ``"space exhausted"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable

from search.base import Job

__all__ = ["Run", "Ledger"]


@dataclass
class Run:
    """One training run of one architecture: run number ``repeat``, trained to ``trained_to`` epochs."""

    arch: str
    repeat: int
    trained_to: int = 0
    seconds: float = 0.0
    failed: bool = False
    running: bool = False


class Ledger:
    """The runs of one search, by architecture key.

    ``max_epochs``: the top fidelity (a run that reached it is complete). ``identify`` maps a key to what
    makes two keys the same architecture to the oracle (default: the key itself); fresh runs are numbered
    per identity. ``n_architectures``: how many identities exist (None: unbounded; never exhausted).
    """

    def __init__(self, max_epochs: int, identify: Callable[[str], Hashable] | None = None,
                 n_architectures: int | None = None):
        self.max_epochs = int(max_epochs)
        self._identify = identify or (lambda arch: arch)
        self.n_architectures = n_architectures
        self._current: dict[str, Run] = {}
        self._fresh_runs: dict[Hashable, int] = {}
        self._complete: set[Hashable] = set()

    def run_of(self, arch: str) -> Run | None:
        """The current (latest) run of ``arch``, or None if it was never started."""
        return self._current.get(arch)

    def trained_to(self, arch: str) -> int:
        run = self._current.get(arch)
        return 0 if run is None else run.trained_to

    @property
    def exhausted(self) -> bool:
        """Every architecture has a complete or failed run (only for a finite oracle)."""
        return self.n_architectures is not None and len(self._complete) >= self.n_architectures

    def dispatch(self, job: Job) -> tuple[int, int]:
        """Mark ``job`` running and return ``(start, repeat)``: the epoch it continues from and its run number.

        ValueError naming the job and the rule it breaks.
        """
        run = self._current.get(job.arch)
        if run is not None and run.running:
            raise ValueError(f"searcher asked for {job.arch} while it is still running")
        if job.resume:
            if run is None or run.trained_to == 0:
                raise ValueError(f"searcher asked to resume {job.arch}, which was never trained")
            if run.failed:
                raise ValueError(f"searcher asked to resume {job.arch}, whose run failed: it cannot be continued")
            if job.epochs <= run.trained_to:
                raise ValueError(f"searcher asked to resume {job.arch} to {job.epochs} epochs, but it is already "
                                 f"trained to {run.trained_to}: a resume must add epochs")
            run.running = True
            return run.trained_to, run.repeat
        identity = self._identify(job.arch)
        repeat = self._fresh_runs.get(identity, 0)
        self._fresh_runs[identity] = repeat + 1
        self._current[job.arch] = Run(job.arch, repeat, running=True)
        return 0, repeat

    def settle(self, job: Job, reached: int, seconds: float, failed: bool) -> int:
        """Record that ``job`` ended at epoch ``reached`` after ``seconds``; return the epochs it paid for."""
        run = self._current[job.arch]
        start = run.trained_to
        run.running = False
        run.trained_to = max(start, int(reached))
        run.seconds += float(seconds)
        run.failed = bool(failed)
        if failed or run.trained_to >= self.max_epochs:
            self._complete.add(self._identify(job.arch))
        return run.trained_to - start

    def release(self, job: Job) -> None:
        """``job`` was cut (the budget ended): the searcher never learns of it and its run stays where it was."""
        self._current[job.arch].running = False
