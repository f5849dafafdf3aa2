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
removed when the searcher is collected.

**Speed.** The facade's random forest predicts with ``n_jobs=-1`` (a thread per core): the adapter
builds the same forest (:func:`facade_forest`, every setting of ``MultiFidelityFacade.get_model``) with
``n_jobs=1``, which changes no prediction (the trees are seeded) and so no proposal, and spares a
machine that runs one search per core the threads' contention. What remains is SMAC's own local
search of the acquisition function: on a table's single categorical ``arch`` every neighbour of a
configuration is another value of it, so each plateau walk visits most of the table (see
results/peers-speed/README.md). Not ``slow``: with that forest a run on NAS-Bench-NLP at 30 full
evaluations took 29.5 s on average (20.7-43.3 s, 30 seeds, results/nbnlp-wt2/peers-smac/timing.csv), under
the 60-second line; on the 1,000-cell nb201-fmnist about a minute.
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

__all__ = ["SMACHyperband", "facade_forest"]

#: Far beyond any budget the harness gives: SMAC must never stop on its own count.
N_TRIALS = 10**9


def facade_forest(scenario):
    """``MultiFidelityFacade.get_model(scenario)``, every setting the same, predicting in one thread."""
    from smac.model.random_forest import RandomForest

    return RandomForest(scenario.configspace, log_y=True, n_trees=10, bootstrapping=True, ratio_features=1.0,
                        min_samples_split=2, min_samples_leaf=1, max_depth=2**20,
                        instance_features=scenario.instance_features, seed=scenario.seed, n_jobs=1)


def _never_called(config, seed: int = 0, budget: float = 0.0) -> float:
    raise RuntimeError("SMAC is driven through ask/tell: the runner evaluates its trials")


class SMACHyperband(PeerSearcher):
    """SMAC3's MultiFidelityFacade (Hyperband intensifier, eta 3, random-forest surrogate)."""

    library = "smac"
    deterministic = False
    nondeterministic_reason = (
        "a seed fixes a run only for a fixed PYTHONHASHSEED: SMAC's local search takes its start points "
        "from a set of Configurations (smac/acquisition/maximizer/local_search.py, list(set(...))), hashed by "
        "their repr string, so their order, and with it the proposals, changes with Python's per-process string "
        "hash seed (identical runs within one process; PYTHONHASHSEED=0 pmfnas compare ... repeats them)")

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
            scenario, _never_called, model=facade_forest(scenario),
            intensifier=MultiFidelityFacade.get_intensifier(scenario, eta=int(eta)),
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
