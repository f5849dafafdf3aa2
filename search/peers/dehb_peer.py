"""DEHB (Awad, Mallik & Hutter, IJCAI 2021): differential evolution inside Hyperband brackets.

Driven through DEHB's ask/tell interface (``dehb.ask()`` gives a configuration and a fidelity,
``dehb.tell(job_info, {"fitness": loss, "cost": seconds})``), with ``n_workers=1`` so no Dask cluster
starts; several jobs may still be asked before any is told (DEHB then opens further brackets). The
space is a ConfigSpace categorical (see :class:`~search.peers.base.ArchCodec`), which DEHB's DE encodes
as one dimension of its unit hypercube. A failed run is told the worst fitness told so far (DEHB reads
+inf as "not evaluated" and then fails to promote; see :class:`~search.peers.base.FailuresAsWorst`).

**Restarts.** DEHB's objective is ``f(config, fidelity)``, evaluated from scratch; a configuration
promoted to a higher fidelity, or proposed again by a mutation, is a fresh run that pays in full
(``Job(resume=False)``).

DEHB writes a log (and, on request, its state) to an output folder: the adapter gives it a private
temporary folder, removed when the searcher is collected.
"""
from __future__ import annotations

import shutil
import tempfile
import weakref

import numpy as np

from search.base import Observation, Problem
from search.peers.base import FailuresAsWorst, PeerSearcher, Proposal, bracket_settings

__all__ = ["DEHBSearcher"]


def configspace(codec, seed: int):
    """The codec's parameters as a ConfigSpace space (DEHB and SMAC3 take one)."""
    import ConfigSpace

    space = ConfigSpace.ConfigurationSpace(seed=seed)
    space.add([ConfigSpace.Categorical(name, list(choices)) for name, choices in codec.parameters])
    return space


class DEHBSearcher(PeerSearcher):
    """DEHB with its defaults (eta 3, mutation 0.5, crossover 0.5, rand1_bin), min fidelity as Hyperband's."""

    library = "dehb"

    def __init__(self, problem: Problem, rng: np.random.Generator, eta: int = 3, min_epochs: float | None = None):
        super().__init__(problem, rng)
        from dehb import DEHB

        eta, min_epochs = bracket_settings(problem, eta, min_epochs, needs_two_fidelities=True)
        max_epochs = problem.max_epochs
        self._folder = tempfile.mkdtemp(prefix="pmfnas-dehb-")
        weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        self.dehb = DEHB(cs=configspace(self.codec, self.seed), min_fidelity=min_epochs, max_fidelity=max_epochs,
                         eta=int(eta), n_workers=1, seed=self.seed, output_path=self._folder, save_freq="end",
                         log_level="ERROR")
        self._jobs = 0
        self._failures = FailuresAsWorst()

    def _propose(self) -> Proposal | None:
        job_info = self.dehb.ask()
        self._jobs += 1
        arch = self.codec.to_arch(dict(job_info["config"]))
        return Proposal(arch, float(job_info["fidelity"]), trial=self._jobs, continues=False, handle=job_info)

    def _report(self, proposal: Proposal, observation: Observation) -> None:
        loss = None if observation.failed else self.loss(observation)
        for (told, epochs), fitness, _ in self._failures.results((proposal, float(observation.epochs[-1])), loss):
            self.dehb.tell(told.handle, {"fitness": fitness, "cost": epochs})
