"""Random search at full fidelity, and the architecture draw the other searchers share."""
from __future__ import annotations

from typing import Container

import numpy as np

from benchmarks.spaces.base import SearchSpace
from search.base import Job, Observation, Problem, Searcher

__all__ = ["DEFAULT_MAX_DRAWS", "draw_architecture", "check_positive_int", "RandomSearch"]

#: How many samples a searcher draws looking for a suitable architecture before it concludes the space
#: has none left; bounded so that an exhausted finite space costs a fixed amount per ask.
DEFAULT_MAX_DRAWS = 100


def check_positive_int(name: str, value: object) -> int:
    """``value`` as an int; ValueError naming ``name`` unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be an integer >= 1")
    return int(value)


def draw_architecture(space: SearchSpace, rng: np.random.Generator, avoid: Container[str],
                      prefer_not: Container[str] = (), max_draws: int = DEFAULT_MAX_DRAWS) -> str | None:
    """Sample ``space`` until an architecture is in neither ``avoid`` nor ``prefer_not``.

    After ``max_draws`` samples without one, fall back to the first sample that was only in
    ``prefer_not`` (a repeat), or None when every sample was in ``avoid``. ``avoid`` is a hard
    constraint (e.g. in flight), ``prefer_not`` a soft one (e.g. already evaluated).
    """
    fallback = None
    for _ in range(max_draws):
        arch = space.sample(rng)
        if arch in avoid:
            continue
        if arch not in prefer_not:
            return arch
        if fallback is None:
            fallback = arch
    return fallback


class RandomSearch(Searcher):
    """Random search: each job is a newly sampled architecture trained to the maximum fidelity.

    Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 13, 2012.

    Parameters
    ----------
    problem, rng:
        As for every :class:`~search.base.Searcher`.
    max_draws:
        Samples drawn per ask looking for an architecture neither evaluated nor in flight (default
        :data:`DEFAULT_MAX_DRAWS`). When none turns up the space is taken as exhausted and an
        evaluated architecture that is not in flight is repeated (a fresh run, ``resume=False``);
        when even that fails ``ask`` returns None.
    """

    def __init__(self, problem: Problem, rng: np.random.Generator, max_draws: int = DEFAULT_MAX_DRAWS):
        super().__init__(problem, rng)
        self.max_draws = check_positive_int("max_draws", max_draws)
        self._in_flight: dict[str, Job] = {}
        self._seen: dict[str, None] = {}

    def ask(self) -> Job | None:
        arch = draw_architecture(self.problem.space, self.rng, self._in_flight, self._seen, self.max_draws)
        if arch is None:
            return None
        job = Job(arch, self.problem.max_epochs, resume=False, tag=("random",))
        self._in_flight[arch] = job
        self._seen[arch] = None
        return job

    def tell(self, job: Job, observation: Observation) -> None:
        if self._in_flight.get(job.arch) != job:
            raise ValueError(f"job {job!r} is not in flight for this searcher")
        del self._in_flight[job.arch]
