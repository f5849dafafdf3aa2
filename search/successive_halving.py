"""Successive halving, and the bracket-running machinery it shares with Hyperband and ASHA.

Rung epochs ``r_i`` come out of the papers' formulas as real numbers; a job can only stop at a recorded
fidelity, so every rung runs to ``problem.fidelity_at_least(r_i)`` (the smallest recorded fidelity
>= r_i). Two rungs may map to the same fidelity; a promotion between them needs no training, so it is
resolved from the curve already observed (see :class:`BracketSearcher`).
"""
from __future__ import annotations

import math
from abc import abstractmethod
from typing import Sequence

import numpy as np

from search.base import Job, Observation, Problem, Searcher
from search.brackets import Bracket, check_eta, max_bracket_index
from search.random_search import DEFAULT_MAX_DRAWS, check_positive_int, draw_architecture

__all__ = ["DEFAULT_RUNGS", "default_min_epochs", "resolve_epochs", "BracketSearcher", "SuccessiveHalving"]

#: The default ``min_epochs`` is ``max_epochs * eta**-(DEFAULT_RUNGS - 1)``: four rungs, i.e. 1/27 of
#: the maximum with eta=3 (the ratio of Li et al.'s R=81, r=3 bracket), raised to the smallest recorded
#: fidelity when that is larger.
DEFAULT_RUNGS = 4


def default_min_epochs(problem: Problem, eta: int, max_epochs: float) -> float:
    """``max_epochs / eta**(DEFAULT_RUNGS-1)``, at least the smallest recorded fidelity, at most ``max_epochs``."""
    return float(min(max_epochs, max(max_epochs / eta ** (DEFAULT_RUNGS - 1), problem.fidelities[0])))


def resolve_epochs(problem: Problem, eta: int, min_epochs: float | None,
                   max_epochs: float | None) -> tuple[float, float]:
    """``(min_epochs, max_epochs)`` with defaults filled in; ValueError for values the problem cannot serve."""
    if max_epochs is None:
        max_epochs = problem.max_epochs
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, (int, float, np.integer, np.floating)) \
            or not 0 < max_epochs <= problem.max_epochs:
        raise ValueError(f"max_epochs={max_epochs!r} must be positive and at most the problem's largest "
                         f"fidelity {problem.max_epochs}")
    if min_epochs is None:
        min_epochs = default_min_epochs(problem, eta, max_epochs)
    if isinstance(min_epochs, bool) or not isinstance(min_epochs, (int, float, np.integer, np.floating)) \
            or not 0 < min_epochs <= max_epochs:
        raise ValueError(f"min_epochs={min_epochs!r} must be positive and at most max_epochs={max_epochs!r}")
    return float(min_epochs), float(max_epochs)


class BracketSearcher(Searcher):
    """Runs :class:`~search.brackets.Bracket` objects through ask/tell; subclasses choose the brackets.

    Shared behaviour (documented once here for SH, Hyperband and ASHA):

    * ``ask`` serves, oldest bracket first, the best pending promotion of the highest rung (a resume
      job), else a new architecture at rung 0; a bracket that can do neither waits for its running jobs.
    * With ``parallel_brackets`` a new bracket is opened whenever every open bracket waits; without it
      the next bracket opens only when the current one has finished, and ``ask`` returns None meanwhile.
    * An architecture belongs to at most one open bracket, so it is never asked while in flight and a
      promotion never collides with another bracket's run. New architectures are drawn avoiding every
      open bracket's architectures and preferring ones never evaluated; when ``max_draws`` samples find
      none, a synchronous bracket is sealed (its rung 0 keeps what it has: the space is exhausted).
    * What was observed is remembered per architecture (the whole curve each observation carries). A
      rung whose fidelity that curve already covers is resolved without a job, from the recorded value:
      this happens when two rungs map to the same recorded fidelity, and when a later bracket draws an
      architecture already trained that far. A run that failed at epoch e counts as failed at every
      fidelity >= e. Hence a resume job always asks for more epochs than the architecture has had.
    * A failed observation (``observation.failed``, or a curve that stops short of the job's epochs)
      scores -inf and is never promoted.
    """

    #: Seal a bracket's rung 0 when no new architecture can be drawn (synchronous brackets need a
    #: known size to complete; ASHA's open-ended rung 0 does not).
    _seal_when_exhausted = True

    def __init__(self, problem: Problem, rng: np.random.Generator, eta: int, parallel_brackets: bool,
                 max_draws: int):
        super().__init__(problem, rng)
        self.eta = check_eta(eta)
        self.parallel_brackets = bool(parallel_brackets)
        self.max_draws = check_positive_int("max_draws", max_draws)
        self._open: list[tuple[int, Bracket, list[int]]] = []
        self._n_opened = 0
        self._owner: dict[str, tuple[int, Bracket, list[int]]] = {}
        self._in_flight: dict[str, tuple[Job, int]] = {}
        self._curves: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}

    # ------------------------------------------------------------- subclasses
    @abstractmethod
    def _bracket_rungs(self, index: int) -> list[tuple[int | None, float]] | None:
        """Rungs ``(n_i, r_i)`` of the ``index``-th bracket to open, or None when no more will open."""

    def _make_bracket(self, index: int) -> Bracket | None:
        rungs = self._bracket_rungs(index)
        return None if rungs is None else Bracket(rungs, self.eta)

    @property
    def _brackets_per_cycle(self) -> int:
        """How many brackets may open in one ``ask`` without yielding a job before it gives up."""
        return 1

    # --------------------------------------------------------------- queries
    @property
    def open_brackets(self) -> list[Bracket]:
        """The brackets currently open, oldest first (read-only use: for tests and reports)."""
        return [bracket for _, bracket, _ in self._open]

    def rung_fidelities(self, rungs: Sequence[tuple[int | None, float]]) -> list[int]:
        """The recorded fidelity each rung's epochs run to: ``problem.fidelity_at_least(r_i)``."""
        return [self.problem.fidelity_at_least(r) for _, r in rungs]

    # -------------------------------------------------------------- ask/tell
    def ask(self) -> Job | None:
        opened = 0
        while True:
            for entry in list(self._open):
                job = self._job_from(entry)
                if job is not None:
                    return job
            self._close_finished()
            if self._open and not self.parallel_brackets:
                return None
            if opened > self._brackets_per_cycle:
                # Several fresh brackets resolved entirely from known curves: nothing is left to learn.
                return None
            index = self._n_opened
            bracket = self._make_bracket(index)
            if bracket is None:
                return None
            entry = (index, bracket, self.rung_fidelities([(bracket.size(i), bracket.epochs(i))
                                                           for i in range(bracket.n_rungs)]))
            self._open.append(entry)
            job = self._job_from(entry)
            if job is None and bracket.started(0) == 0:
                # Nothing could be drawn (everything is in flight): do not use up this bracket.
                self._open.remove(entry)
                return None
            self._n_opened += 1
            opened += 1
            if job is not None:
                return job

    def tell(self, job: Job, observation: Observation) -> None:
        entry = self._in_flight.get(job.arch)
        if entry is None or entry[0] != job:
            raise ValueError(f"job {job!r} is not in flight for this searcher")
        _, rung = entry
        curve = self._curve_of(job.arch, observation)
        del self._in_flight[job.arch]
        self._remember(job.arch, curve)
        score = self._known_score(job.arch, job.epochs)
        # A curve that ends before the requested epochs without a failure flag is still a failed run.
        self._owner[job.arch][1].report(rung, job.arch, -math.inf if score is None else score)

    # -------------------------------------------------------------- helpers
    def _job_from(self, entry: tuple[int, Bracket, list[int]]) -> Job | None:
        """The next job of one bracket, resolving rungs already covered by known curves on the way."""
        index, bracket, fidelities = entry
        while True:
            promotion = self._first_promotion(bracket)
            if promotion is not None:
                rung, arch = promotion
                bracket.start(rung, arch)
                job = self._job_or_resolve(entry, rung, arch)
                if job is not None:
                    return job
                continue
            if not bracket.can_add():
                return None
            arch = draw_architecture(self.problem.space, self.rng, self._owner, self._curves, self.max_draws)
            if arch is None:
                if not self._seal_when_exhausted:
                    return None
                bracket.seal()
                continue
            bracket.add(arch)
            self._owner[arch] = entry
            job = self._job_or_resolve(entry, 0, arch)
            if job is not None:
                return job

    def _first_promotion(self, bracket: Bracket) -> tuple[int, str] | None:
        for rung, arch in bracket.promotions():
            # Owned by this bracket, so only in flight here, where pending excludes it; kept as a guard.
            if arch not in self._in_flight:
                return rung, arch
        return None

    def _job_or_resolve(self, entry: tuple[int, Bracket, list[int]], rung: int, arch: str) -> Job | None:
        index, bracket, fidelities = entry
        epochs = fidelities[rung]
        known = self._known_score(arch, epochs)
        if known is not None:
            bracket.report(rung, arch, known)
            return None
        curve = self._curves.get(arch)
        resume = curve is not None and epochs > int(curve[0][-1])
        job = Job(arch, epochs, resume=resume, tag=(type(self).__name__, index, rung))
        self._in_flight[arch] = (job, rung)
        return job

    @staticmethod
    def _curve_of(arch: str, observation: Observation) -> tuple[np.ndarray, np.ndarray, bool]:
        epochs = np.asarray(observation.epochs).reshape(-1)
        values = np.asarray(observation.values, dtype=np.float64).reshape(-1)
        if epochs.size == 0 or epochs.size != values.size:
            raise ValueError(f"observation of {arch!r} has {epochs.size} epochs and {values.size} values; "
                             f"expected the same positive number")
        return epochs, values, bool(observation.failed)

    def _remember(self, arch: str, curve: tuple[np.ndarray, np.ndarray, bool]) -> None:
        previous = self._curves.get(arch)
        epochs, values, failed = curve
        if previous is not None and failed and int(epochs[0]) > int(previous[0][-1]):
            # A job that raised tells only where it failed, not the history it resumed from: keep that history,
            # or its rungs below look unknown and a later bracket pays to train them again.
            curve = (np.concatenate([previous[0], epochs]), np.concatenate([previous[1], values]), True)
        # Keep the longest history: a shorter rerun tells nothing the longer curve did not.
        if previous is None or int(curve[0][-1]) >= int(previous[0][-1]):
            self._curves[arch] = curve

    def _known_score(self, arch: str, epochs: int) -> float | None:
        """The score of ``arch`` at ``epochs`` if its observed curve tells it, else None."""
        curve = self._curves.get(arch)
        if curve is None:
            return None
        observed, values, failed = curve
        last = int(observed[-1])
        if epochs > last:
            return -math.inf if failed else None
        position = int(np.searchsorted(observed, epochs))
        if position < observed.size and int(observed[position]) == epochs:
            if failed and position == observed.size - 1:
                return -math.inf
            return self.score(float(values[position]))
        return None

    def _close_finished(self) -> None:
        still_open = []
        for entry in self._open:
            if entry[1].finished:
                for arch in entry[1].archs():
                    if self._owner.get(arch) is entry:
                        del self._owner[arch]
            else:
                still_open.append(entry)
        self._open = still_open


class SuccessiveHalving(BracketSearcher):
    """Synchronous successive halving, one bracket after another.

    Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and Hyperparameter Optimization",
    AISTATS 2016; Karnin, Koren & Somekh, "Almost Optimal Exploration in Multi-Armed Bandits", ICML 2013.

    With ``s = floor(log_eta(max_epochs / min_epochs))``, rung ``i = 0..s`` holds ``floor(n * eta^-i)``
    architectures trained to ``max_epochs * eta^(i-s)`` epochs (mapped to recorded fidelities with
    ``problem.fidelity_at_least``). A rung promotes its best ``n_{i+1}`` only once all its runs have
    reported; until then ``ask`` returns None. When a bracket finishes the next one starts, with
    architectures not evaluated before where the space still has them, so any budget is used.

    Parameters
    ----------
    problem, rng:
        As for every :class:`~search.base.Searcher`.
    eta:
        Reduction factor, an integer >= 2 (default 3).
    min_epochs:
        Epochs of the lowest rung before mapping (default :func:`default_min_epochs`: ``max_epochs /
        eta**3``, at least the smallest recorded fidelity).
    max_epochs:
        Epochs of the top rung (default ``problem.max_epochs``).
    n:
        Architectures started per bracket (default ``eta**s``, so exactly one reaches ``max_epochs``);
        must be at least ``eta**s`` so that every rung holds at least one.
    max_draws:
        Samples drawn looking for a new architecture before the space counts as exhausted.
    """

    def __init__(self, problem: Problem, rng: np.random.Generator, eta: int = 3, min_epochs: float | None = None,
                 max_epochs: float | None = None, n: int | None = None, max_draws: int = DEFAULT_MAX_DRAWS):
        super().__init__(problem, rng, eta, parallel_brackets=False, max_draws=max_draws)
        self.min_epochs, self.max_epochs = resolve_epochs(problem, self.eta, min_epochs, max_epochs)
        s = max_bracket_index(self.eta, self.min_epochs, self.max_epochs)
        if n is None:
            n = self.eta ** s
        n = check_positive_int("n", n)
        if n < self.eta ** s:
            raise ValueError(f"n={n} must be at least eta**{s}={self.eta ** s} so that one architecture "
                             f"reaches max_epochs={self.max_epochs:g}")
        self.n = n
        self.rungs = [(n // self.eta ** i, self.max_epochs / self.eta ** (s - i)) for i in range(s + 1)]

    def _bracket_rungs(self, index: int) -> list[tuple[int | None, float]]:
        return list(self.rungs)
