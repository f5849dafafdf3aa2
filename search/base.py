"""The ask/tell interface every searcher implements.

A searcher proposes jobs — train this architecture up to that many epochs — and is told what was
observed. A job on an architecture already trained is a resume (a promotion): only the extra epochs
are paid. Searchers see no files, no clock and no benchmark values they did not pay for; all their
randomness comes from the one ``numpy.random.Generator`` they are given.
"""
from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from benchmarks.spaces.base import SearchSpace


@dataclass(frozen=True)
class Job:
    """Train ``arch`` until ``epochs``; ``resume`` says it continues an earlier job on the same arch."""

    arch: str
    epochs: int
    resume: bool = False
    tag: tuple = field(default=(), compare=False)


@dataclass(frozen=True)
class Observation:
    """What a finished job showed: the validation curve up to the job's epochs (the whole history)."""

    epochs: np.ndarray
    values: np.ndarray
    failed: bool = False
    losses: np.ndarray | None = None

    @property
    def value(self) -> float:
        return float(self.values[-1])


def is_whole_number(value: object) -> bool:
    """Whether ``value`` is a finite real number with no fractional part (3, 3.0, numpy.int64(3); not True)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            and value == math.floor(value))


@dataclass(frozen=True)
class Problem:
    """What a searcher may know about the task: the space, the fidelities and the metric's direction."""

    space: SearchSpace
    fidelities: tuple[int, ...]
    higher_is_better: bool

    def __post_init__(self):
        if not all(is_whole_number(f) for f in self.fidelities):
            raise ValueError(f"fidelities {self.fidelities!r} must be whole numbers of epochs")
        fidelities = tuple(int(f) for f in self.fidelities)
        if not fidelities or fidelities[0] < 1 or any(b <= a for a, b in zip(fidelities, fidelities[1:])):
            raise ValueError(f"fidelities {self.fidelities!r} must be a non-empty, strictly increasing tuple of "
                             "positive epochs")
        object.__setattr__(self, "fidelities", fidelities)

    @property
    def max_epochs(self) -> int:
        return self.fidelities[-1]

    def fidelity_at_least(self, epochs: float) -> int:
        """The smallest recorded fidelity >= ``epochs`` (the max fidelity if none is)."""
        for f in self.fidelities:
            if f >= epochs - 1e-9:
                return f
        return self.fidelities[-1]


class Searcher(ABC):
    """Base class of all searchers: ``ask`` for a job, ``tell`` its observation."""

    def __init__(self, problem: Problem, rng: np.random.Generator):
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.problem = problem
        self.rng = rng

    @abstractmethod
    def ask(self) -> Job | None:
        """The next job, or None when nothing can start until a running job reports."""

    @abstractmethod
    def tell(self, job: Job, observation: Observation) -> None:
        """Hand back what ``job`` observed."""

    def score(self, value: float) -> float:
        """The metric turned so that larger is better; NaN (failure) scores as -inf."""
        if np.isnan(value):
            return -np.inf
        return value if self.problem.higher_is_better else -value
