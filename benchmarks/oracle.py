"""The fidelity-oracle interface, and its tabular implementation.

An oracle is a pure function of ``(architecture, epochs, start, repeat)``: it trains (or looks up) run
number ``repeat`` of an architecture from epoch ``start`` up to ``epochs`` and says what that cost — the
recorded (or measured) seconds of the epochs in ``(start, epochs]``, never more, never less. It keeps no
account of what was paid: the runner does (:mod:`harness.ledger`), so there is one owner of that fact.
Run ``repeat = 0`` is an architecture's first fresh run, ``1`` its second, and so on: a table with several
recorded seeds serves another recorded seed for each, a trainer another training seed. The tabular oracle
and the PyTorch trainer implement the same interface, so searcher and runner cannot tell them apart
except by the clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Literal, Protocol, runtime_checkable

import numpy as np

from benchmarks.spaces.base import SearchSpace
from benchmarks.tabular import TabularBenchmark


@dataclass(frozen=True)
class Evaluation:
    """What one call to :meth:`FidelityOracle.evaluate` observed and what it cost.

    ``epochs``/``values`` hold the whole observed curve of the validation metric up to the last epoch
    reached (not only the new part): a resumed run shows its full history, as a real log would.
    ``cost`` is the seconds of the epochs this call trained, ``(start, epoch]``. A run that failed ends at
    the epoch where it failed (``failed``, ``reason``); a run stopped early on request (a deadline) ends
    at its last completed epoch with ``failed=False`` and a ``reason`` saying so.
    """

    arch: str
    epochs: np.ndarray
    values: np.ndarray
    losses: np.ndarray
    cost: float
    failed: bool = False
    reason: str = ""

    @property
    def epoch(self) -> int:
        return int(self.epochs[-1])

    @property
    def value(self) -> float:
        """The validation metric at the last observed epoch (NaN for a failed run)."""
        return float(self.values[-1])


class StopSignal(Protocol):
    """Asked between epochs by an oracle that really trains: once set, the run stops (``threading.Event``)."""

    def is_set(self) -> bool: ...


@runtime_checkable
class FidelityOracle(Protocol):
    """Anything that can run an architecture from one epoch to a later one and say what it cost."""

    space: SearchSpace
    metric: str
    higher_is_better: bool

    @property
    def max_epochs(self) -> int: ...

    @property
    def fidelities(self) -> tuple[int, ...]:
        """The epochs at which an evaluation may stop."""

    @property
    def n_architectures(self) -> int | None:
        """How many distinct architectures this oracle can answer for (None: unbounded, e.g. real training)."""

    def identify(self, arch: str) -> Hashable:
        """What makes two keys the same architecture to this oracle (a table row, a graph hash)."""

    def evaluate(self, arch: str, epochs: int, start: int = 0, repeat: int = 0,
                 stop: StopSignal | None = None) -> Evaluation:
        """Run ``repeat`` of ``arch`` from epoch ``start`` (0: from scratch) to ``epochs``; cost = epochs in between."""


RepeatPolicy = Literal["sample", "mean"] | int


class TabularOracle:
    """Serves recorded curves, charging exactly the recorded seconds of the epochs it reveals.

    ``repeat`` decides which recorded seed run 0 of each architecture sees: ``"sample"`` draws one of
    the architecture's recorded repeats with ``rng`` (fixed for the oracle's life, independent of query
    order), ``"mean"`` averages the repeats, an int picks that repeat slot. Run ``k`` of an architecture
    sees the recorded repeat ``k`` slots further on (cyclically), so a second fresh run sees another seed
    where the table has one. A table whose repeats are the runs of a search in order (a table recorded by
    ``pmfnas search --record``, ``extra.repeats == "runs"``) is served in that order, so a replay sees what
    the real search saw. A run recorded as diverged stops at the epoch where its metric became NaN.
    The oracle keeps no state between calls.
    """

    def __init__(self, table: TabularBenchmark, space: SearchSpace, rng: np.random.Generator | None = None,
                 repeat: RepeatPolicy = "sample"):
        self.table = table
        self.space = space
        self.metric = table.metadata.metric
        self.higher_is_better = table.higher_is_better
        self._fidelities = tuple(int(e) for e in table.epochs)
        if table.metadata.extra.get("repeats") == "runs":
            repeat = 0
        if repeat == "sample":
            if rng is None:
                raise ValueError("repeat='sample' needs an rng (a numpy Generator)")
            draws = rng.random(len(table))
            self._repeat = np.minimum((draws * np.maximum(table.n_repeats, 1)).astype(np.int64),
                                      np.maximum(table.n_repeats - 1, 0))
        elif repeat == "mean":
            self._repeat = None
        elif isinstance(repeat, (int, np.integer)) and not isinstance(repeat, bool) and 0 <= int(repeat) < table.n_repeat_slots:
            self._repeat = np.full(len(table), int(repeat), dtype=np.int64)
        else:
            raise ValueError(f"repeat={repeat!r} must be 'sample', 'mean' or a slot in [0, {table.n_repeat_slots})")

    @property
    def max_epochs(self) -> int:
        return self.table.max_epochs

    @property
    def fidelities(self) -> tuple[int, ...]:
        return self._fidelities

    @property
    def n_architectures(self) -> int:
        return len(self.table)

    def identify(self, arch: str) -> int:
        return self.row_of(arch)

    def row_of(self, arch: str) -> int:
        """The table row that answers for ``arch`` (after canonicalisation if the table asks for it)."""
        arch = self.space.parse(arch)
        if self.table.metadata.canonical_keys:
            arch = self.space.canonical(arch)
        return self.table.row(self.space.table_key(arch))

    def _slot(self, row: int, repeat: int) -> int | None:
        """The recorded repeat that run ``repeat`` of ``row`` sees (None: the mean over repeats)."""
        if self._repeat is None:
            return None
        return int((self._repeat[row] + repeat) % max(int(self.table.n_repeats[row]), 1))

    def _series(self, name: str, row: int, slot: int | None, upto: int) -> np.ndarray:
        array = self.table.curves.get(name) if name != "seconds" else self.table.seconds
        if array is None:
            return np.full(upto + 1, np.nan)
        if slot is None:
            block = np.asarray(array[row, :, : upto + 1], dtype=np.float64)
            count = int(max(self.table.n_repeats[row], 1))
            with np.errstate(all="ignore"):
                return np.nanmean(block[:count], axis=0) if count > 1 else block[0]
        return np.asarray(array[row, slot, : upto + 1], dtype=np.float64)

    def evaluate(self, arch: str, epochs: int, start: int = 0, repeat: int = 0,
                 stop: StopSignal | None = None) -> Evaluation:
        """Run ``repeat`` of ``arch`` from ``start`` to ``epochs`` (both recorded fidelities; start 0 = scratch).

        ``stop`` is ignored: a lookup takes no time to interrupt.
        """
        target = self.table.fidelity_index(int(epochs))
        if isinstance(repeat, bool) or int(repeat) != repeat or repeat < 0:
            raise ValueError(f"repeat={repeat!r} must be an integer >= 0 (the run number of the architecture)")
        start = int(start)
        if start and start not in self._fidelities:
            raise ValueError(f"start={start} must be 0 or a recorded fidelity {self._fidelities}")
        if start >= int(epochs):
            raise ValueError(f"start={start} must be below epochs={epochs}: a run continues to a later epoch")
        row = self.row_of(arch)
        slot = self._slot(row, int(repeat))
        values = self._series("valid", row, slot, target)
        bad = np.flatnonzero(np.isnan(values))
        # A run that failed cannot be trained past the epoch where it failed: it stops there, as a real one would.
        reached = int(bad[0]) if bad.size else target
        first_new = int(np.searchsorted(self.table.epochs, start, side="right"))
        if first_new > reached:
            raise ValueError(f"run {repeat} of {arch!r} failed at epoch {int(self.table.epochs[reached])}, "
                             f"before start={start}: it cannot be continued")
        seconds = self._series("seconds", row, slot, reached)
        extra = seconds[first_new: reached + 1]
        if np.any(np.isnan(extra)):
            raise ValueError(f"benchmark {self.table.metadata.name!r} has no recorded cost for {arch!r} "
                             f"up to epoch {int(self.table.epochs[reached])}; refusing to invent one")
        reason = ""
        if bad.size:
            flagged = self.table.failed[row].any() if slot is None else self.table.failed[row, slot]
            epoch = int(self.table.epochs[reached])
            reason = (f"run diverged or failed at epoch {epoch}" if flagged
                      else f"benchmark has no value at epoch {epoch}")
        losses = self._series("valid_loss", row, slot, reached)
        return Evaluation(arch=arch, epochs=self.table.epochs[: reached + 1].copy(), values=values[: reached + 1],
                          losses=losses, cost=float(extra.sum()), failed=bool(bad.size), reason=reason)
