"""SMAC3 (Lindauer et al., JMLR 2022): the multi-fidelity facade — Hyperband intensifier, random forest.

Driven through SMAC's ask/tell interface (``smac.ask()`` gives a ``TrialInfo`` with a configuration and
a budget in epochs; ``smac.tell(info, TrialValue(cost=loss))``), never through ``optimize``. A failed
run is told ``StatusType.CRASHED`` with the worst loss told so far as its cost (SMAC's random forest
cannot take its default crash cost, +inf; a failure before any success is told after the first one). ``n_trials`` is set far beyond any
budget: the runner, not SMAC, decides when to stop.

**Restarts.** SMAC's target function is ``f(config, seed, budget)``, evaluated from scratch; a
configuration the intensifier runs again at a higher budget is a fresh run that pays in full
(``Job(resume=False)``).

SMAC writes its run history to an output folder: the adapter gives it a private temporary folder,
removed when the searcher is collected. SMAC is slow (its random forest and acquisition optimisation
run on every ``ask``): ``slow = True``, so ``pmfnas compare`` runs it only when it is named.
"""
from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np

from search.base import Observation, Problem
from search.peers.base import FailuresAsWorst, PeerSearcher, Proposal, bracket_settings
from search.peers.dehb_peer import configspace

__all__ = ["SMACHyperband"]

#: Far beyond any budget the harness gives: SMAC must never stop on its own count.
N_TRIALS = 10**9


def _never_called(config, seed: int = 0, budget: float = 0.0) -> float:
    raise RuntimeError("SMAC is driven through ask/tell: the runner evaluates its trials")


class SMACHyperband(PeerSearcher):
    """SMAC3's MultiFidelityFacade (Hyperband intensifier, eta 3, random-forest surrogate)."""

    library = "smac"
    slow = True

    def __init__(self, problem: Problem, rng: np.random.Generator, eta: int = 3, min_epochs: float | None = None):
        super().__init__(problem, rng)
        from smac import MultiFidelityFacade, Scenario

        eta, min_epochs = bracket_settings(problem, eta, min_epochs, needs_two_fidelities=True)
        max_epochs = problem.max_epochs
        self._folder = tempfile.mkdtemp(prefix="pmfnas-smac-")
        weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        scenario = Scenario(configspace(self.codec, self.seed), name="pmfnas-peer", output_directory=Path(self._folder),
                            deterministic=True, n_trials=N_TRIALS, min_budget=min_epochs, max_budget=max_epochs,
                            seed=self.seed)
        self.smac = MultiFidelityFacade(
            scenario, _never_called, intensifier=MultiFidelityFacade.get_intensifier(scenario, eta=int(eta)),
            logging_level=40, overwrite=True)
        self._trials = 0
        self._exhausted = False
        self._failures = FailuresAsWorst()

    def _propose(self) -> Proposal | None:
        from smac.main.exceptions import ConfigurationSpaceExhaustedException

        if self._exhausted:
            return None
        try:
            info = self.smac.ask()
        except ConfigurationSpaceExhaustedException:
            # SMAC never proposes a configuration twice: once every one was run, it has nothing more.
            self._exhausted = True
            return None
        self._trials += 1
        arch = self.codec.to_arch(dict(info.config))
        return Proposal(arch, float(info.budget), trial=self._trials, continues=False, handle=info)

    def _report(self, proposal: Proposal, observation: Observation) -> None:
        from smac.runhistory.dataclasses import TrialValue
        from smac.runhistory.enumerations import StatusType

        loss = None if observation.failed else self.loss(observation)
        for proposal, cost, failed in self._failures.results(proposal, loss):
            status = StatusType.CRASHED if failed else StatusType.SUCCESS
            self.smac.tell(proposal.handle, TrialValue(cost=cost, status=status), save=False)
