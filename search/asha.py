"""ASHA: asynchronous successive halving."""
from __future__ import annotations

import numpy as np

from search.base import Problem
from search.brackets import Bracket, max_bracket_index
from search.random_search import DEFAULT_MAX_DRAWS
from search.successive_halving import BracketSearcher, resolve_epochs

__all__ = ["ASHA"]


class ASHA(BracketSearcher):
    """Asynchronous successive halving with early-stopping rate 0.

    Li, Jamieson, Rostamizadeh, Gonina, Ben-Tzur, Hardt, Recht & Talwalkar, "A System for Massively
    Parallel Hyperparameter Tuning", MLSys 2020 (Algorithm 2). Rungs ``k = 0..s_max`` train to
    ``max_epochs * eta^(k - s_max)`` epochs, ``s_max = floor(log_eta(max_epochs / min_epochs))``, each
    mapped to a recorded fidelity with ``problem.fidelity_at_least``. ``ask`` promotes, from the highest
    rung down, an architecture that is in the top ``floor(|rung k| / eta)`` of the runs that reported
    at rung ``k``, has a finite score and was not promoted yet (a resume job); otherwise it starts a
    newly sampled architecture at rung 0. It never waits: it returns None only when no architecture
    outside the search so far turns up in ``max_draws`` samples (the space is exhausted) and nothing
    can be promoted. Each architecture is started at most once.

    Parameters
    ----------
    problem, rng:
        As for every :class:`~search.base.Searcher`.
    eta:
        Reduction factor, an integer >= 2 (default 3).
    min_epochs:
        ``r``, the epochs of rung 0 before mapping (default
        :func:`search.successive_halving.default_min_epochs`: ``max_epochs / eta**3``, at least the
        smallest recorded fidelity).
    max_epochs:
        ``R``, the epochs of the top rung (default ``problem.max_epochs``).
    max_draws:
        Samples drawn looking for a new architecture before the space counts as exhausted.
    """

    # ASHA's rung 0 is open-ended: a failed draw only means "nothing new right now".
    _seal_when_exhausted = False

    def __init__(self, problem: Problem, rng: np.random.Generator, eta: int = 3, min_epochs: float | None = None,
                 max_epochs: float | None = None, max_draws: int = DEFAULT_MAX_DRAWS):
        super().__init__(problem, rng, eta, parallel_brackets=False, max_draws=max_draws)
        self.min_epochs, self.max_epochs = resolve_epochs(problem, self.eta, min_epochs, max_epochs)
        s_max = max_bracket_index(self.eta, self.min_epochs, self.max_epochs)
        self.rungs: list[tuple[int | None, float]] = [
            (None, self.max_epochs / self.eta ** (s_max - k)) for k in range(s_max + 1)]

    def _bracket_rungs(self, index: int) -> list[tuple[int | None, float]] | None:
        return list(self.rungs) if index == 0 else None

    def _make_bracket(self, index: int) -> Bracket | None:
        rungs = self._bracket_rungs(index)
        return None if rungs is None else Bracket(rungs, self.eta, asynchronous=True)
