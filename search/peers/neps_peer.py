"""NePS (neural-pipeline-search, AutoML Freiburg) bracket optimizers: Hyperband and ASHA.

Driven through NePS's own ask/tell interface, :class:`neps.AskAndTell` over ``neps.algorithms.hyperband``
/ ``neps.algorithms.asha``: ``ask()`` gives a trial (``trial.config`` holds the architecture's
categoricals and the fidelity ``epochs``), ``tell(trial_id, {"objective_to_minimize": loss})`` reports
it; a failed run is told as the exception it is (NePS marks the trial crashed and never promotes it).
The space is NePS's classic ``SearchSpace`` of :class:`~neps.space.HPOCategorical` parameters (see
:class:`~search.peers.base.ArchCodec`) and a float fidelity from the project's smallest rung to the max
epochs, so NePS's rungs are ``max / eta**k`` as the project's Hyperband and ASHA (each mapped to the
nearest recorded fidelity at or above it).

**Resumes.** A NePS promotion is a new trial id ``"<config>_rung_<k+1>"`` whose
``metadata.previous_trial_id`` names the trial it continues (``"<config>_rung_<k>"``): NePS's runtime
hands that trial's folder to the evaluation so it can load its checkpoint. So a promotion resumes its
configuration's run (``Job(resume=True)``, only the extra epochs are paid). A new configuration that
names an architecture trained before (NePS samples uniformly with replacement) is a fresh run, paid in full.

**Determinism.** NePS samples with torch's and numpy's *global* generators and takes no seed in
ask/tell; the adapter keeps its own torch and numpy generator states, seeded from the searcher's
stream, and swaps them in around every call to NePS (restoring the global ones after), so a seed fixes
the run and nothing else in the process is disturbed.

**ifBO is not offered.** NePS's ifBO (``neps.algorithms.ifbo``, the freeze-thaw PFN surrogate) downloads
its pretrained surrogate from figshare (``ifbo.download``) the first time it runs; offline — as here and
on the CI machines — it fails, and the weights cannot be shipped with the project. It would also need
NePS's own fidelity steps instead of the table's. Where the surrogate is already in the local cache it
could be wrapped like the two here, but that was not tested.

NePS 0.17 needs numpy >= 2 and DEHB 0.1.2 needs numpy < 2, so NePS has its own extra, ``peers-neps``
(``pip install ".[peers-neps]"``), in an environment without the ``peers`` extra.
"""
from __future__ import annotations

import numpy as np

from search.base import Observation, Problem
from search.peers.base import PeerSearcher, Proposal, bracket_settings

__all__ = ["NePSASHA", "NePSHyperband"]

FIDELITY = "epochs"


class RunFailed(RuntimeError):
    """What a failed run is told to NePS as (it records the trial as crashed)."""


class _NePS(PeerSearcher):
    library = "neps"
    algorithm = ""  # a function of neps.algorithms

    def __init__(self, problem: Problem, rng: np.random.Generator, eta: int = 3, min_epochs: float | None = None):
        super().__init__(problem, rng)
        import neps
        import torch
        from neps.space import HPOCategorical, HPOFloat, SearchSpace

        eta, min_epochs = bracket_settings(problem, eta, min_epochs, needs_two_fidelities=True)
        max_epochs = problem.max_epochs
        self.eta = int(eta)
        self.min_epochs = min_epochs
        parameters = {name: HPOCategorical(choices=list(choices)) for name, choices in self.codec.parameters}
        # A hair below the smallest rung: NePS counts its rungs with floor(log(max/min)/log(eta)), which
        # rounding can put one short when max/min is a power of eta.
        parameters[FIDELITY] = HPOFloat(lower=min_epochs * (1 - 1e-9), upper=float(max_epochs), is_fidelity=True)
        space = SearchSpace(parameters)
        self.neps = neps.AskAndTell(getattr(neps.algorithms, self.algorithm)(space, eta=self.eta),
                                    worker_id="pmfnas")
        self._torch = torch
        self._torch_state = torch.Generator().manual_seed(self.seed).get_state()
        self._numpy_state = np.random.RandomState(self.seed).get_state()
        self._trials: dict[str, str] = {}  # NePS trial id -> its configuration id

    def _with_own_generators(self, call):
        """``call()`` with NePS's global generators set to this searcher's states (the global ones kept)."""
        torch = self._torch
        numpy_global = np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._torch_state)
            np.random.set_state(self._numpy_state)
            try:
                return call()
            finally:
                self._torch_state = torch.get_rng_state()
                self._numpy_state = np.random.get_state()
                np.random.set_state(numpy_global)

    def _propose(self) -> Proposal | None:
        trial = self._with_own_generators(self.neps.ask)
        config_id = trial.id.split("_rung_")[0]
        self._trials[trial.id] = config_id
        return Proposal(self.codec.to_arch(trial.config), float(trial.config[FIDELITY]), config_id,
                        continues=trial.metadata.previous_trial_id is not None, handle=trial.id)

    def _report(self, proposal: Proposal, observation: Observation) -> None:
        if observation.failed:
            result = RunFailed(f"the run of {proposal.arch} failed")
        else:
            result = {"objective_to_minimize": self.loss(observation)}
        self._with_own_generators(lambda: self.neps.tell(proposal.handle, result))


class NePSHyperband(_NePS):
    """NePS's Hyperband (synchronous successive-halving brackets, uniform sampling; eta 3)."""

    algorithm = "hyperband"


class NePSASHA(_NePS):
    """NePS's ASHA (one asynchronous bracket, uniform sampling; eta 3)."""

    algorithm = "asha"
