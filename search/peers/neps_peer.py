"""NePS (neural-pipeline-search, AutoML Freiburg) bracket optimizers: Hyperband and ASHA.

Driven through NePS's own ask/tell interface, :class:`neps.AskAndTell` over ``neps.algorithms.hyperband``
/ ``neps.algorithms.asha``: ``ask()`` gives a trial (``trial.config`` holds the architecture's
categoricals and the fidelity ``epochs``); the result is recorded on that trial as its report (the loss,
or for a failed run the exception, so NePS marks the trial crashed and never promotes it).

The space is NePS's ``SearchSpace`` of :class:`~neps.space.Categorical` parameters (see
:class:`~search.peers.base.ArchCodec`) and a float fidelity from the project's smallest rung to the max
epochs, so NePS's rungs are ``max / eta**k`` as the project's Hyperband and ASHA (each mapped to the
nearest recorded fidelity at or above it).

**NePS 0.13.0's ``AskAndTell.tell`` loses the result**: it calls ``trial.set_complete(...)`` but drops
the :class:`~neps.state.trial.Report` that returns, so ``trial.report`` stays ``None`` and the optimizer
reads every told trial as still pending (Hyperband then never promotes and only opens new brackets).
NePS 0.14 fixed it (``_trial.report = _trial.set_complete(...)``), but 0.14 needs numpy >= 2. The
adapter therefore completes the trial itself, as the fixed ``tell`` does.

**Resumes.** A NePS promotion is a new trial id ``"<config>_<k+1>"`` whose
``metadata.previous_trial_id`` names the trial it continues (``"<config>_<k>"``): NePS's runtime
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

**One supported version: neural-pipeline-search 0.13.0**, in the ``peers`` extra with the other
libraries. It is the last NePS release on numpy < 2 (0.14 and later need numpy >= 2, which DEHB 0.1.2 and
syne-tune 0.13 refuse), so one environment runs every peer. Against 0.17 (which the adapter supported
before) the rung arithmetic and the uniform sampler are the same; the differences: 0.17 renamed the
parameter classes (``HPOCategorical``, ``HPOFloat``) and the trial ids (``"<config>_rung_<k>"``);
0.17's ASHA drops the already-promoted configurations from a rung *before* taking k = len(rung) // eta,
so it keeps promoting until about two are left, while 0.13's takes the top k of the whole rung and
then skips those promoted (the rule of the ASHA paper); 0.17's Hyperband fills its brackets by each
configuration's starting rung, 0.13's by configuration id. Supporting both versions would be a few
lines, but 0.17 cannot share the ``peers`` environment, so it would only bring back a second
environment to install and test. NePS 0.13 requires Python < 3.13.
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
        from neps.space import Categorical, Float, SearchSpace

        eta, min_epochs = bracket_settings(problem, eta, min_epochs, needs_two_fidelities=True)
        max_epochs = problem.max_epochs
        self.eta = int(eta)
        self.min_epochs = min_epochs
        parameters = {name: Categorical(choices=list(choices)) for name, choices in self.codec.parameters}
        # A hair below the smallest rung: NePS counts its rungs with floor(log(max/min)/log(eta)), which
        # rounding can put one short when max/min is a power of eta.
        parameters[FIDELITY] = Float(lower=min_epochs * (1 - 1e-9), upper=float(max_epochs), is_fidelity=True)
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
        config_id = trial.id.split("_")[0]  # NePS's trial id: "<config>_<rung>"
        self._trials[trial.id] = config_id
        return Proposal(self.codec.to_arch(trial.config), float(trial.config[FIDELITY]), config_id,
                        continues=trial.metadata.previous_trial_id is not None, handle=trial.id)

    def _report(self, proposal: Proposal, observation: Observation) -> None:
        # What NePS's AskAndTell.tell does, keeping the report that 0.13.0's drops (module docstring).
        # Timestamps are NePS metadata only (no optimizer reads them): a searcher keeps no clock.
        failed = observation.failed
        trial = self.neps.trials[proposal.handle]
        trial.report = trial.set_complete(
            report_as="crashed" if failed else "success",
            objective_to_minimize=None if failed else self.loss(observation),
            err=RunFailed(f"the run of {proposal.arch} failed") if failed else None,
            cost=None, learning_curve=None, extra=None, tb=None, time_end=float("nan"), evaluation_duration=None,
        )


class NePSHyperband(_NePS):
    """NePS's Hyperband (synchronous successive-halving brackets, uniform sampling; eta 3)."""

    algorithm = "hyperband"


class NePSASHA(_NePS):
    """NePS's ASHA (one asynchronous bracket, uniform sampling; eta 3)."""

    algorithm = "asha"
