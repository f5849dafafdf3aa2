"""Regularized (aging) evolution."""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from search.base import Job, Observation, Problem, Searcher
from search.random_search import DEFAULT_MAX_DRAWS, check_positive_int, draw_architecture

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(Searcher):
    """Regularized evolution (REA): tournament selection with aging, every child at full fidelity.

    Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture Search",
    AAAI 2019 (Algorithm 1). While the population holds fewer than ``population_size`` members, ``ask``
    returns a random architecture (preferring ones not evaluated yet). Then each ``ask`` samples
    ``sample_size`` members uniformly with replacement (as the paper's algorithm does), mutates the
    best with ``problem.space.mutate`` and returns the child at ``problem.max_epochs``. ``tell`` appends
    the evaluated architecture to the population and removes the oldest member once the population
    exceeds ``population_size``.

    Asynchronous: ``ask`` never waits for a report. With several workers the random phase may issue
    up to ``workers - 1`` more random architectures than ``population_size`` (it lasts until that many
    have reported). A failed run (``observation.failed`` or a NaN value) is discarded, not added, so it
    can never be chosen as a parent; nothing is removed for it. A child that is in flight is mutated
    again (up to ``max_draws`` tournaments); a child evaluated before is evaluated again, as in the
    paper.

    Parameters
    ----------
    problem, rng:
        As for every :class:`~search.base.Searcher`.
    population_size:
        P, the number of members kept (default 20; this project's default, smaller than the paper's
        image-classification setting so that short tabular runs leave the random phase).
    sample_size:
        S, the tournament size, 1 <= S (default 5; this project's default).
    max_draws:
        Samples (random phase) or tournaments (evolution phase) tried per ask before giving up with None.
    """

    def __init__(self, problem: Problem, rng: np.random.Generator, population_size: int = 20, sample_size: int = 5,
                 max_draws: int = DEFAULT_MAX_DRAWS):
        super().__init__(problem, rng)
        self.population_size = check_positive_int("population_size", population_size)
        self.sample_size = check_positive_int("sample_size", sample_size)
        self.max_draws = check_positive_int("max_draws", max_draws)
        self._population: deque[tuple[str, float]] = deque()
        self._in_flight: dict[str, Job] = {}
        self._seen: dict[str, None] = {}

    @property
    def population(self) -> tuple[tuple[str, float], ...]:
        """The current members ``(arch, score)``, oldest first; scores are "larger is better"."""
        return tuple(self._population)

    def ask(self) -> Job | None:
        if len(self._population) < self.population_size:
            arch = draw_architecture(self.problem.space, self.rng, self._in_flight, self._seen, self.max_draws)
            return None if arch is None else self._issue(arch, "random")
        members = list(self._population)
        for _ in range(self.max_draws):
            picks = self.rng.integers(len(members), size=self.sample_size)
            # The first of equally good candidates wins, so the choice depends only on the rng.
            parent = max((members[int(k)] for k in picks), key=lambda member: member[1])[0]
            child = self.problem.space.mutate(parent, self.rng)
            if child not in self._in_flight:
                return self._issue(child, "mutation")
        return None

    def tell(self, job: Job, observation: Observation) -> None:
        if self._in_flight.get(job.arch) != job:
            raise ValueError(f"job {job!r} is not in flight for this searcher")
        del self._in_flight[job.arch]
        score = -math.inf if observation.failed else self.score(observation.value)
        if score == -math.inf:
            return
        self._population.append((job.arch, score))
        while len(self._population) > self.population_size:
            self._population.popleft()

    def _issue(self, arch: str, how: str) -> Job:
        job = Job(arch, self.problem.max_epochs, resume=False, tag=("rea", how))
        self._in_flight[arch] = job
        self._seen[arch] = None
        return job
