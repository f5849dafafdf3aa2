"""Rung and bracket bookkeeping shared by successive halving, Hyperband and ASHA.

:func:`hyperband_schedule` is Algorithm 1 of Li et al., "Hyperband: A Novel Bandit-Based Approach to
Hyperparameter Optimization", JMLR 18(185), 2018. :class:`Bracket` tracks one successive-halving
bracket (Jamieson & Talwalkar, AISTATS 2016): which architectures wait for, run at and finished each
rung, and which to promote next, either synchronously (a rung promotes its top ``n_{i+1}`` once it is
complete) or asynchronously (ASHA, Li et al., MLSys 2020: a rung promotes whatever is currently in its
top ``1/eta``). The class knows nothing about epochs beyond storing them; searchers map them to
recorded fidelities.
"""
from __future__ import annotations

import heapq
import math
from typing import Sequence

from search.base import is_whole_number

__all__ = ["check_eta", "max_bracket_index", "hyperband_schedule", "Bracket"]


def check_eta(eta: int) -> int:
    """``eta`` as an int; ValueError unless it is an integer >= 2.

    Integer ``eta`` keeps every rung size an exact integer division, as in the papers' tables.
    """
    if not is_whole_number(eta) or eta < 2:
        raise ValueError(f"eta={eta!r} must be an integer >= 2")
    return int(eta)


def _check_epochs(min_epochs: float, max_epochs: float) -> None:
    for name, value in (("min_epochs", min_epochs), ("max_epochs", max_epochs)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name}={value!r} must be a positive finite number")
    if min_epochs > max_epochs:
        raise ValueError(f"min_epochs={min_epochs!r} must not exceed max_epochs={max_epochs!r}")


def max_bracket_index(eta: int, min_epochs: float, max_epochs: float) -> int:
    """``s_max = floor(log_eta(max_epochs / min_epochs))``, computed without floating-point log error."""
    eta = check_eta(eta)
    _check_epochs(min_epochs, max_epochs)
    s = 0
    # A relative tolerance so that e.g. 200 / (200 / 27) still counts as 27 = 3**3.
    while min_epochs * eta ** (s + 1) <= max_epochs * (1 + 1e-9):
        s += 1
    return s


def hyperband_schedule(eta: int, min_epochs: float, max_epochs: float) -> list[list[tuple[int, float]]]:
    """Per bracket ``s = s_max .. 0`` the rungs ``(n_i, r_i)`` of Li et al. (JMLR 2018), Algorithm 1.

    ``s_max = floor(log_eta(R / r_min))``; bracket ``s`` starts ``n = ceil((s_max+1)/(s+1) * eta^s)``
    configurations at ``r = R * eta^-s`` epochs, and rung ``i = 0..s`` holds ``n_i = floor(n * eta^-i)``
    configurations trained to ``r_i = r * eta^i`` epochs. ``r_i`` are floats (the caller maps them to
    the epochs it can actually stop at). ValueError for ``eta < 2``, non-positive epochs or
    ``min_epochs > max_epochs``.
    """
    eta = check_eta(eta)
    s_max = max_bracket_index(eta, min_epochs, max_epochs)
    schedule = []
    for s in range(s_max, -1, -1):
        # Integer ceil((s_max + 1) * eta^s / (s + 1)): exact where the float formula can round wrongly.
        n = -(-(s_max + 1) * eta ** s // (s + 1))
        schedule.append([(n // eta ** i, max_epochs / eta ** (s - i)) for i in range(s + 1)])
    return schedule


class Bracket:
    """One successive-halving bracket: per rung, the pending, running and done architectures.

    ``rungs`` lists ``(n_i, r_i)``: the planned number of architectures of rung ``i`` (``None`` for no
    limit, only meaningful with ``asynchronous=True``) and its epochs. New architectures enter rung 0
    through :meth:`add`; every other rung is filled by promotion (:meth:`next_promotion`, then
    :meth:`start`). Scores are "larger is better"; ``-inf`` (a failed run) is never promoted.

    * synchronous (successive halving, Hyperband): once every architecture of rung ``i`` has reported,
      its best ``n_{i+1}`` with a finite score become pending for rung ``i+1`` (fewer if fewer finite);
    * asynchronous (ASHA): at any time the best ``floor(done_i / eta)`` of rung ``i`` (capped at
      ``n_{i+1}`` when that is given) are promotable if their score is finite and they are not yet in
      rung ``i+1``.

    :meth:`quota` says how many may be promoted out of a rung, :meth:`pending` which (best first),
    :meth:`seal` closes rung 0 early when the space runs out. An architecture appears at most once per
    rung. Ties in score keep report order, so promotions are reproducible.

    Bookkeeping is incremental, so that ASHA's open-ended rungs stay cheap: per rung a :class:`_TopK`
    keeps the ``quota`` best reports apart from the rest and a heap of those not yet promoted, so a
    report, a promotion or a query of the best pending one costs O(log n) amortised.
    """

    def __init__(self, rungs: Sequence[tuple[int | None, float]], eta: int, asynchronous: bool = False):
        self.eta = check_eta(eta)
        if len(rungs) == 0:
            raise ValueError("a bracket needs at least one rung, got none")
        previous = 0.0
        for i, (n, epochs) in enumerate(rungs):
            if n is None:
                if not asynchronous:
                    raise ValueError(f"rung {i} has no size (n=None); only an asynchronous bracket allows that")
            elif isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"rung {i} size n={n!r} must be a non-negative int or None")
            if not epochs > previous:
                raise ValueError(f"rung {i} epochs={epochs!r} must be positive and larger than the rung below "
                                 f"({previous!r})")
            previous = epochs
        self.asynchronous = bool(asynchronous)
        self._sizes: list[int | None] = [n for n, _ in rungs]
        self._epochs: list[float] = [float(e) for _, e in rungs]
        self._running: list[dict[str, None]] = [{} for _ in rungs]
        self._done: list[dict[str, float]] = [{} for _ in rungs]
        # Per rung, its reports split into the current top ``quota`` and the rest (see _TopK).
        self._ranked: list[_TopK] = [_TopK() for _ in rungs]
        self._finite: list[int] = [0 for _ in rungs]
        self._reports = 0
        self._sealed = False

    # ------------------------------------------------------------------ facts
    @property
    def n_rungs(self) -> int:
        """The number of rungs."""
        return len(self._epochs)

    def epochs(self, rung: int) -> float:
        """The epochs ``r_i`` of ``rung`` as given."""
        return self._epochs[self._check_rung(rung)]

    def size(self, rung: int) -> int | None:
        """The planned number ``n_i`` of architectures of ``rung`` (None: unlimited)."""
        return self._sizes[self._check_rung(rung)]

    def running(self, rung: int) -> list[str]:
        """Architectures started at ``rung`` that have not reported, in start order."""
        return list(self._running[self._check_rung(rung)])

    def done(self, rung: int) -> dict[str, float]:
        """Architectures that reported at ``rung`` and their scores, in report order."""
        return dict(self._done[self._check_rung(rung)])

    def started(self, rung: int) -> int:
        """How many architectures have entered ``rung`` (running or done)."""
        rung = self._check_rung(rung)
        return len(self._running[rung]) + len(self._done[rung])

    def rung_of(self, arch: str) -> int | None:
        """The highest rung ``arch`` has entered in this bracket, or None."""
        for rung in range(self.n_rungs - 1, -1, -1):
            if arch in self._running[rung] or arch in self._done[rung]:
                return rung
        return None

    def __contains__(self, arch: object) -> bool:
        return any(arch in r for r in self._running) or any(arch in d for d in self._done)

    def archs(self) -> list[str]:
        """Every architecture that entered this bracket, in order of entry to rung 0."""
        return list(dict.fromkeys([*self._done[0], *self._running[0]]))

    def capacity(self, rung: int) -> int | None:
        """How many architectures ``rung`` will hold: ``n_i`` reduced by sealing and by failures below."""
        rung = self._check_rung(rung)
        if rung == 0:
            return self.started(0) if self._sealed else self._sizes[0]
        if self.asynchronous or not self.rung_complete(rung - 1):
            return self._sizes[rung]
        return min(self._sizes[rung], self._finite[rung - 1])

    def rung_complete(self, rung: int) -> bool:
        """Every architecture the rung will hold has entered it and reported (never, if unlimited)."""
        rung = self._check_rung(rung)
        capacity = self.capacity(rung)
        return capacity is not None and not self._running[rung] and self.started(rung) >= capacity

    def quota(self, rung: int) -> int:
        """How many of ``rung``'s best may be promoted to the next rung now (0 for the top rung).

        Synchronous: ``n_{i+1}`` once the rung is complete, else 0. Asynchronous: ``floor(done_i / eta)``,
        capped at ``n_{i+1}`` when given. Failed runs among those best are not promoted.
        """
        rung = self._check_rung(rung)
        if rung == self.n_rungs - 1:
            return 0
        above = self._sizes[rung + 1]
        if self.asynchronous:
            quota = len(self._done[rung]) // self.eta
            return quota if above is None else min(quota, above)
        return above if self.rung_complete(rung) else 0

    def pending(self, rung: int) -> list[str]:
        """Architectures that may enter ``rung`` now by promotion and have not, best first."""
        rung = self._check_rung(rung)
        if rung == 0:
            return []
        return self._top(rung - 1).pending(self._entered(rung))

    def _best_pending(self, rung: int) -> str | None:
        """``pending(rung)[0]`` (or None) without listing the others: the hot path of every ask."""
        return self._top(rung - 1).best_pending(self._entered(rung))

    def _top(self, rung: int) -> "_TopK":
        """The ranking of ``rung`` with its top set to the current quota."""
        ranked = self._ranked[rung]
        ranked.resize(self.quota(rung))
        return ranked

    def _entered(self, rung: int):
        running, done = self._running[rung], self._done[rung]
        return lambda arch: arch in running or arch in done

    def can_add(self) -> bool:
        """Whether a new architecture may still enter rung 0."""
        capacity = self.capacity(0)
        return capacity is None or self.started(0) < capacity

    def promotions(self) -> list[tuple[int, str]]:
        """Every pending promotion ``(target rung, arch)``: highest rung first, best first within a rung."""
        return [(rung, arch) for rung in range(self.n_rungs - 1, 0, -1) for arch in self.pending(rung)]

    def next_promotion(self) -> tuple[int, str] | None:
        """``(target rung, arch)`` of the best pending promotion into the highest rung that has one."""
        for rung in range(self.n_rungs - 1, 0, -1):
            best = self._best_pending(rung)
            if best is not None:
                return rung, best
        return None

    @property
    def finished(self) -> bool:
        """Nothing runs, nothing is pending and no new architecture may enter: the bracket is over."""
        return (not self.can_add() and not any(self._running)
                and self.next_promotion() is None)

    # ---------------------------------------------------------------- changes
    def add(self, arch: str) -> None:
        """Start a new architecture at rung 0."""
        if not self.can_add():
            raise ValueError(f"rung 0 is full ({self.capacity(0)} architectures); cannot add {arch!r}")
        if arch in self:
            raise ValueError(f"architecture {arch!r} is already in this bracket")
        self._running[0][arch] = None

    def start(self, rung: int, arch: str) -> None:
        """Start a pending promotion of ``arch`` into ``rung`` (>= 1)."""
        rung = self._check_rung(rung)
        if rung == 0:
            raise ValueError(f"rung 0 is entered with add(), not start(); got {arch!r}")
        if arch in self._running[rung] or arch in self._done[rung] or not self._top(rung - 1).promotable(arch):
            raise ValueError(f"architecture {arch!r} is not pending for rung {rung}; pending: {self.pending(rung)}")
        self._running[rung][arch] = None

    def report(self, rung: int, arch: str, score: float) -> None:
        """Record that ``arch`` finished ``rung`` with ``score`` (NaN counts as a failure, -inf)."""
        rung = self._check_rung(rung)
        if arch not in self._running[rung]:
            raise ValueError(f"architecture {arch!r} is not running at rung {rung}")
        del self._running[rung][arch]
        score = float(score)
        score = -math.inf if math.isnan(score) else score
        self._done[rung][arch] = score
        self._ranked[rung].insert((-score, self._reports, arch))
        self._finite[rung] += score > -math.inf
        self._reports += 1

    def seal(self) -> None:
        """Admit no more new architectures (e.g. the space has none left): rung 0 keeps what it has.

        A synchronous bracket sealed with ``m < n_0`` architectures is reshaped to rung sizes
        ``min(n_i, max(1, floor(m * eta^-i)))``: it still halves, and one architecture still reaches the
        top rung (none if ``m`` is 0).
        """
        m = self.started(0)
        if not self.asynchronous and not self._sealed:
            self._sizes = [m] + [min(n, max(1, m // self.eta ** i)) if m else 0
                                 for i, n in enumerate(self._sizes) if i > 0]
        self._sealed = True

    def _check_rung(self, rung: int) -> int:
        if isinstance(rung, bool) or not isinstance(rung, int) or not 0 <= rung < self.n_rungs:
            raise ValueError(f"rung={rung!r} must be an int in [0, {self.n_rungs})")
        return rung

    def __repr__(self) -> str:
        shown = ", ".join(f"r{i}:{self.started(i)}/{self.capacity(i)}@{self._epochs[i]:g}" for i in range(self.n_rungs))
        return f"Bracket({shown}{', async' if self.asynchronous else ''})"


class _TopK:
    """One rung's reports, split into its best ``k`` ("top") and the rest, for promotion in O(log n).

    A report is ranked by ``(-score, report number, arch)``: best first, ties in report order, every key
    distinct. ``top`` is a max-heap (its worst on top) of the ``k`` best keys, ``rest`` a min-heap of
    the others, so moving the boundary when a report arrives or ``k`` changes costs O(log n).
    ``candidates`` is a min-heap of top keys with a finite score that may still be promoted; keys that
    left the top or were promoted stay there until they reach its root and are dropped then (lazy
    deletion), so each key is pushed and dropped O(1) times per move across the boundary.
    """

    def __init__(self) -> None:
        self._top: list[tuple[float, int, str]] = []       # (score, -report number, arch): the worst first
        self._rest: list[tuple[float, int, str]] = []      # (-score, report number, arch): the best first
        self._in_top: set[str] = set()
        self._finite: set[str] = set()
        self._candidates: list[tuple[float, int, str]] = []  # (-score, report number, arch): the best first
        self.k = 0

    def insert(self, key: tuple[float, int, str]) -> None:
        if key[0] < math.inf:
            self._finite.add(key[2])
        if len(self._top) < self.k:
            self._enter_top(key)
            return
        if self._top and key < self._worst_of_top():
            self._leave_top()
            self._enter_top(key)
        else:
            heapq.heappush(self._rest, key)

    def resize(self, k: int) -> None:
        """Make the top hold the ``k`` best keys (all of them if there are fewer)."""
        self.k = k
        while len(self._top) > k:
            self._leave_top()
        while len(self._top) < k and self._rest:
            self._enter_top(heapq.heappop(self._rest))

    def promotable(self, arch: str) -> bool:
        """``arch`` is in the top with a finite score (whether it already moved up is the caller's to say)."""
        return arch in self._in_top and arch in self._finite

    def best_pending(self, entered) -> str | None:
        """The best top key with a finite score whose arch has not ``entered`` the rung above."""
        candidates = self._candidates
        while candidates:
            _, _, arch = candidates[0]
            if arch in self._in_top and not entered(arch):
                return arch
            heapq.heappop(candidates)
        return None

    def pending(self, entered) -> list[str]:
        """Every such arch, best first."""
        self.best_pending(entered)  # drops the stale keys at the root
        return [arch for _, _, arch in sorted(set(self._candidates)) if arch in self._in_top and not entered(arch)]

    def _worst_of_top(self) -> tuple[float, int, str]:
        score, negative_report, arch = self._top[0]
        return -score, -negative_report, arch

    def _enter_top(self, key: tuple[float, int, str]) -> None:
        negative_score, report, arch = key
        heapq.heappush(self._top, (-negative_score, -report, arch))
        self._in_top.add(arch)
        if negative_score < math.inf:  # failed runs (-inf) take a place in the top but are never promoted
            heapq.heappush(self._candidates, key)

    def _leave_top(self) -> None:
        key = self._worst_of_top()
        heapq.heappop(self._top)
        self._in_top.discard(key[2])
        heapq.heappush(self._rest, key)
