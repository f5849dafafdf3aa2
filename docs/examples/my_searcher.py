"""An example of a searcher written outside pmf-nas: median stopping.

Each new architecture is trained to the lowest fidelity; it is continued (resumed, paying only the extra
epochs) to the maximum only if its value beats the median of the lowest-fidelity values seen so far.
Register it and compare it with the built-in methods (see docs/extending.md)::

    from harness.cli import main
    from search.registry import register_searcher
    from my_searcher import MedianStopping

    register_searcher("median-stop", MedianStopping, multi_fidelity=True)
    main(["compare", "--methods", "random,asha,median-stop", "--budget-evals", "10", "--out", "out/"])
"""
from __future__ import annotations

import numpy as np

from search.base import Job, Observation, Problem, Searcher
from search.random_search import DEFAULT_MAX_DRAWS, draw_architecture


class MedianStopping(Searcher):
    """Train new architectures to the lowest fidelity; continue those above the median to the maximum."""

    multi_fidelity = True  # read by the pmfnas.searchers entry-point loader (register_searcher takes it as a flag)

    def __init__(self, problem: Problem, rng: np.random.Generator, max_draws: int = DEFAULT_MAX_DRAWS):
        super().__init__(problem, rng)
        self.max_draws = max_draws
        self.low = problem.fidelities[0]
        self.low_scores: list[float] = []  # larger is better (Searcher.score), failures are -inf
        self.to_continue: list[str] = []
        self.in_flight: set[str] = set()
        self.seen: set[str] = set()

    def ask(self) -> Job | None:
        if self.to_continue:
            arch = self.to_continue.pop(0)
            self.in_flight.add(arch)
            return Job(arch, self.problem.max_epochs, resume=True)  # pays only the epochs after self.low
        # Each architecture is tried once: when draws find no new one, the space is taken as exhausted.
        arch = draw_architecture(self.problem.space, self.rng, avoid=self.seen, max_draws=self.max_draws)
        if arch is None:
            return None
        self.seen.add(arch)
        self.in_flight.add(arch)
        return Job(arch, self.low)

    def tell(self, job: Job, observation: Observation) -> None:
        self.in_flight.discard(job.arch)
        if job.epochs != self.low or self.low == self.problem.max_epochs:
            return
        score = self.score(observation.value)
        if self.low_scores and score > float(np.median(self.low_scores)):
            self.to_continue.append(job.arch)
        self.low_scores.append(score)
