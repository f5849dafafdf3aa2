"""Optuna (Akiba et al., KDD 2019): the TPE sampler with a Hyperband or successive-halving pruner.

Driven through Optuna's ask/tell interface: ``study.ask()`` opens a trial and TPE suggests the
architecture; the trial trains rung by rung (the pruner's rungs, ``min_resource * eta**k`` epochs, each
mapped to a recorded fidelity), reporting its value with ``trial.report(value, step=epochs)`` and asking
``trial.should_prune()`` after each — exactly what an objective that reports every epoch would see at
the pruner's decision points. A trial that survives to the top fidelity is told COMPLETE with its value;
a pruned one PRUNED; a failed one FAIL.

**Resumes.** An Optuna trial is one training run, so moving it to its next rung continues the run
(``Job(resume=True)``, only the extra epochs are paid). TPE may suggest an architecture that an earlier
trial already trained: that is a new trial, so a fresh run that pays in full (Optuna proposes such
repeats often on a small table; they are charged, as the library asks for them).
"""
from __future__ import annotations

import numpy as np

from search.base import Observation, Problem
from search.peers.base import PeerSearcher, Proposal, bracket_settings

__all__ = ["OptunaTPEHyperband", "OptunaTPESuccessiveHalving"]


class _OptunaTPE(PeerSearcher):
    library = "optuna"
    pruner_kind = ""

    def __init__(self, problem: Problem, rng: np.random.Generator, eta: int = 3, min_epochs: float | None = None):
        super().__init__(problem, rng)
        import optuna

        self.eta, self.min_epochs = bracket_settings(problem, eta, min_epochs, needs_two_fidelities=False)
        max_epochs = problem.max_epochs
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        min_resource = max(1, int(round(self.min_epochs)))
        if self.pruner_kind == "hyperband":
            pruner = optuna.pruners.HyperbandPruner(min_resource=min_resource, max_resource=max_epochs,
                                                    reduction_factor=self.eta)
        else:
            pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=self.eta)
        # A fixed study name: the Hyperband pruner assigns trials to brackets by hashing it.
        self.study = optuna.create_study(study_name="pmfnas-peer", direction="minimize",
                                         sampler=optuna.samplers.TPESampler(seed=self.seed), pruner=pruner)
        # Report points: the rungs the pruner decides at, mapped to recorded fidelities, and the top.
        steps = {problem.fidelity_at_least(min_resource * self.eta ** k)
                 for k in range(64) if min_resource * self.eta ** k < max_epochs}
        self.report_at = sorted(steps | {max_epochs})
        self._distributions = {name: optuna.distributions.CategoricalDistribution(list(choices))
                               for name, choices in self.codec.parameters}
        self._open: dict[int, tuple] = {}  # trial number -> (optuna trial, arch)
        # trial number -> index into report_at of its next job; -1 while a job of it is out or waiting.
        self._next_step: dict[int, int] = {}

    def _propose(self) -> Proposal | None:
        for number, position in list(self._next_step.items()):
            if position >= 0:
                trial, arch = self._open[number]
                self._next_step[number] = -1  # being served
                return Proposal(arch, self.report_at[position], number, continues=position > 0, handle=trial)
        trial = self.study.ask(self._distributions)
        arch = self.codec.to_arch(trial.params)
        self._open[trial.number] = (trial, arch)
        self._next_step[trial.number] = -1
        return Proposal(arch, self.report_at[0], trial.number, continues=False, handle=trial)

    def _report(self, proposal: Proposal, observation: Observation) -> None:
        import optuna

        trial, number = proposal.handle, proposal.trial
        if observation.failed:
            self._close(number, optuna.trial.TrialState.FAIL)
            return
        loss = self.loss(observation)
        step = int(observation.epochs[-1])
        if step >= self.problem.max_epochs:
            self._close(number, optuna.trial.TrialState.COMPLETE, loss)
            return
        trial.report(loss, step)
        if trial.should_prune():
            self._close(number, optuna.trial.TrialState.PRUNED)
            return
        self._next_step[number] = self.report_at.index(self.problem.fidelity_at_least(proposal.budget)) + 1

    def _close(self, number: int, state, value: float | None = None) -> None:
        self.study.tell(self._open.pop(number)[0], value, state=state)
        del self._next_step[number]


class OptunaTPEHyperband(_OptunaTPE):
    """Optuna's TPE sampler with its HyperbandPruner (eta 3, min resource as the project's Hyperband)."""

    pruner_kind = "hyperband"


class OptunaTPESuccessiveHalving(_OptunaTPE):
    """Optuna's TPE sampler with its SuccessiveHalvingPruner (asynchronous SH: eta 3, min resource as ASHA's)."""

    pruner_kind = "sh"
