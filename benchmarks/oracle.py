"""The fidelity-oracle interface, and its tabular implementation.

An oracle trains (or looks up) an architecture up to a number of epochs and says what that cost.
Asking for more epochs of an architecture already trained resumes it: only the extra epochs are
charged. The tabular oracle and the PyTorch trainer implement the same interface, so a searcher
and the runner cannot tell them apart except by the clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from benchmarks.spaces.base import SearchSpace
from benchmarks.tabular import TabularBenchmark


@dataclass(frozen=True)
class Evaluation:
    """What one call to :meth:`FidelityOracle.evaluate` observed and what it cost.

    ``epochs``/``values`` hold the whole observed curve of the validation metric up to the requested
    epoch (not only the new part): a resumed run shows its full history, as a real log would.
    ``cost`` is the seconds this call charged: zero for epochs already paid.
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


@runtime_checkable
class FidelityOracle(Protocol):
    """Anything that can evaluate an architecture up to an epoch with resume semantics."""

    space: SearchSpace
    metric: str
    higher_is_better: bool

    @property
    def max_epochs(self) -> int: ...

    @property
    def fidelities(self) -> tuple[int, ...]:
        """The epochs at which an evaluation may stop."""

    def evaluate(self, arch: str, epochs: int) -> Evaluation:
        """Train/look up ``arch`` up to ``epochs``, charging only epochs not paid before."""

    def paid_epochs(self, arch: str) -> int:
        """Epochs of ``arch`` already paid for (0 if never evaluated)."""


RepeatPolicy = Literal["sample", "mean"] | int


class TabularOracle:
    """Serves recorded curves, charging exactly the recorded seconds of the epochs it reveals.

    ``repeat`` decides which recorded seed a run sees: ``"sample"`` draws one of the architecture's
    recorded repeats with ``rng`` (fixed for the oracle's life, independent of query order), ``"mean"``
    averages the repeats, an int picks that repeat slot. One oracle serves one search run: it remembers
    what was paid. A run recorded as diverged stops at the epoch where its metric became NaN.
    """

    def __init__(self, table: TabularBenchmark, space: SearchSpace, rng: np.random.Generator | None = None,
                 repeat: RepeatPolicy = "sample"):
        self.table = table
        self.space = space
        self.metric = table.metadata.metric
        self.higher_is_better = table.higher_is_better
        self._fidelities = tuple(int(e) for e in table.epochs)
        self._paid: dict[str, int] = {}
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

    def paid_epochs(self, arch: str) -> int:
        return self._paid.get(arch, 0)

    def row_of(self, arch: str) -> int:
        """The table row that answers for ``arch`` (after canonicalisation if the table asks for it)."""
        arch = self.space.parse(arch)
        if self.table.metadata.canonical_keys:
            arch = self.space.canonical(arch)
        return self.table.row(self.space.table_key(arch))

    def _series(self, name: str, row: int, upto: int) -> np.ndarray:
        array = self.table.curves.get(name) if name != "seconds" else self.table.seconds
        if array is None:
            return np.full(upto + 1, np.nan)
        if self._repeat is None:
            block = np.asarray(array[row, :, : upto + 1], dtype=np.float64)
            count = int(max(self.table.n_repeats[row], 1))
            with np.errstate(all="ignore"):
                return np.nanmean(block[:count], axis=0) if count > 1 else block[0]
        return np.asarray(array[row, self._repeat[row], : upto + 1], dtype=np.float64)

    def evaluate(self, arch: str, epochs: int) -> Evaluation:
        target = self.table.fidelity_index(int(epochs))
        row = self.row_of(arch)
        values = self._series("valid", row, target)
        bad = np.flatnonzero(np.isnan(values))
        # A run that failed cannot be trained past the epoch where it failed: it stops there, as a real one would.
        stop = int(bad[0]) if bad.size else target
        seconds = self._series("seconds", row, stop)
        paid_index = int(np.searchsorted(self.table.epochs, self._paid.get(arch, 0), side="right"))
        extra = seconds[paid_index: stop + 1]
        if np.any(np.isnan(extra)):
            raise ValueError(f"benchmark {self.table.metadata.name!r} has no recorded cost for {arch!r} "
                             f"up to epoch {int(self.table.epochs[stop])}; refusing to invent one")
        self._paid[arch] = max(self._paid.get(arch, 0), int(self.table.epochs[stop]))
        reason = ""
        if bad.size:
            flagged = (self.table.failed[row].any() if self._repeat is None
                       else self.table.failed[row, self._repeat[row]])
            epoch = int(self.table.epochs[stop])
            reason = (f"run diverged or failed at epoch {epoch}" if flagged
                      else f"benchmark has no value at epoch {epoch}")
        losses = self._series("valid_loss", row, stop)
        return Evaluation(arch=arch, epochs=self.table.epochs[: stop + 1].copy(), values=values[: stop + 1],
                          losses=losses, cost=float(extra.sum()), failed=bool(bad.size), reason=reason)
