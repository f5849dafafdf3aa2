"""Time as the runner sees it: simulated (recorded costs) or real (the wall clock).

The runner reads time only through a clock, so the same loop drives a tabular replay and a real search.
"""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the search started."""


class SimulatedClock:
    """A clock that moves only when the runner advances it to the next completion."""

    def __init__(self) -> None:
        self._now = 0.0

    def now(self) -> float:
        return self._now

    def advance_to(self, moment: float) -> None:
        if moment < self._now:
            raise ValueError(f"cannot move a simulated clock back from {self._now} to {moment}")
        self._now = float(moment)


class WallClock:
    """Real elapsed seconds, from a monotonic source."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._start
