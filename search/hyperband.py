"""Hyperband: successive-halving brackets of every aggressiveness, in turn."""
from __future__ import annotations

import numpy as np

from search.base import Problem
from search.brackets import hyperband_schedule
from search.random_search import DEFAULT_MAX_DRAWS
from search.successive_halving import BracketSearcher, resolve_epochs

__all__ = ["Hyperband"]


class Hyperband(BracketSearcher):
    """Hyperband, cycling through its brackets ``s = s_max .. 0`` for as long as it is asked.

    Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar, "Hyperband: A Novel Bandit-Based Approach to
    Hyperparameter Optimization", JMLR 18(185), 2018 (Algorithm 1; the rungs come from
    :func:`search.brackets.hyperband_schedule`). Each bracket is a synchronous successive-halving run
    (:class:`search.brackets.Bracket`); rung epochs are mapped to recorded fidelities with
    ``problem.fidelity_at_least``.

    Parallel workers: by default (``parallel_brackets=True``) when every open bracket is waiting for
    its running jobs to report, ``ask`` opens the next bracket of the cycle instead of returning None,
    as synchronous Hyperband implementations do (e.g. syne-tune's, DEHB's bracket manager). Promotions
    of older brackets still come first. Run by one worker this never happens, so the job sequence is
    exactly the paper's. With ``parallel_brackets=False`` one bracket runs at a time and ``ask``
    returns None while it waits.

    Parameters
    ----------
    problem, rng:
        As for every :class:`~search.base.Searcher`.
    eta:
        Reduction factor, an integer >= 2 (default 3).
    min_epochs:
        ``r_min`` (default :func:`search.successive_halving.default_min_epochs`: ``max_epochs /
        eta**3``, at least the smallest recorded fidelity).
    max_epochs:
        ``R``, the epochs of every bracket's top rung (default ``problem.max_epochs``).
    parallel_brackets:
        Open the next bracket while the open ones wait (default True), see above.
    max_draws:
        Samples drawn looking for a new architecture before the space counts as exhausted.
    """

    def __init__(self, problem: Problem, rng: np.random.Generator, eta: int = 3, min_epochs: float | None = None,
                 max_epochs: float | None = None, parallel_brackets: bool = True,
                 max_draws: int = DEFAULT_MAX_DRAWS):
        super().__init__(problem, rng, eta, parallel_brackets=parallel_brackets, max_draws=max_draws)
        self.min_epochs, self.max_epochs = resolve_epochs(problem, self.eta, min_epochs, max_epochs)
        self.schedule = hyperband_schedule(self.eta, self.min_epochs, self.max_epochs)

    @property
    def _brackets_per_cycle(self) -> int:
        return len(self.schedule)

    def _bracket_rungs(self, index: int) -> list[tuple[int | None, float]]:
        return list(self.schedule[index % len(self.schedule)])
