"""syne-tune (Salinas et al., AutoML-Conf 2022) schedulers: ASHA, BOHB, DyHPO, Hyper-Tune, MOBSTER.

The schedulers are driven directly, without a backend or Tuner: ``scheduler.suggest(trial_id)`` gives
a new trial (a configuration) or a paused trial to resume; every epoch the job trained is reported in
order with ``scheduler.on_trial_result`` (resource attribute ``epoch``, metric ``loss``, minimised) until
the scheduler answers PAUSE or STOP; a trial that reaches the top fidelity still running is completed
with ``on_trial_complete``, a failed one reported with ``on_trial_error``. The schedulers' clock is a
syne-tune ``TimeKeeper`` that counts the epochs reported, so it is deterministic.

**Resumes.** All five run as pause-and-resume schedulers (``type="promotion"``, DyHPO's own
``type="dyhpo"``), with ``max_resource_attr`` telling each trial to stop at its next milestone: a
resumed trial continues its run (``Job(resume=True)``, only the extra epochs are paid). A new trial on
an architecture an earlier trial trained is a fresh run that pays in full.

Defaults: ``eta=3`` (DyHPO: its own linear rungs every 2 epochs) and the smallest rung as the
project's ASHA (``max_epochs / 27``, at least the smallest recorded fidelity).

**Deviation (MOBSTER, Hyper-Tune): ``search_options["opt_skip_period"] = 3``.** Their Gaussian process
refits its hyper-parameters (L-BFGS, 2 restarts) on every suggestion: 88-98 % of a run, growing with
the observations (results/peers-speed/README.md). syne-tune documents ``opt_skip_init_length`` /
``opt_skip_period`` as the way to thin out refits once the data is large, and DyHPO's own default is
``opt_skip_period=3``: the adapters use that for MOBSTER and Hyper-Tune too, with the library's
``opt_skip_init_length`` (150 observations), so a run can change only after 150 observations (never at
10 full evaluations on nbnlp-wt2); a skipped suggestion still conditions on all the data, with the
last fitted hyper-parameters (MOBSTER on nbnlp-wt2 at 30 full evaluations, seed 0: the same jobs,
wall time x0.85).

**Determinism.** syne-tune names the parameters of its GP models from a process-wide counter (its
``gluon.NameManager``: ``scalarmeanfunction9_``, ``scalarmeanfunction10_``, ...), and the random
restarts of a hyper-parameter fit draw their perturbations in the sorted order of those names
(``optimization_utils``). Once earlier runs in the same process have advanced the counter, the names
sort differently ("...10_" before "...9_"), so the same seed drew the same numbers onto different
parameters: Hyper-Tune (one mean function per rung) proposed different jobs depending on what had run
before it. Every adapter therefore makes the library's calls inside a name manager of its own: names
start from zero for every searcher, as in a fresh process, whatever ran before.
"""
from __future__ import annotations

import contextlib
import io
import logging
from datetime import datetime, timedelta

import numpy as np

from search.base import Observation, Problem
from search.peers.base import PeerSearcher, Proposal, bracket_settings

__all__ = ["SyneTuneASHA", "SyneTuneBOHB", "SyneTuneDyHPO", "SyneTuneHyperTune", "SyneTuneMOBSTER"]

METRIC, RESOURCE, MAX_RESOURCE = "loss", "epoch", "epochs"

#: Refit the GP's hyper-parameters on every 3rd suggestion only, past syne-tune's own
#: ``opt_skip_init_length`` (DyHPO's default; see the module docstring).
GP_OPT_SKIP_PERIOD = 3


def _epoch_clock():
    """A syne-tune TimeKeeper whose time is the number of epochs reported so far (a deterministic clock)."""
    from syne_tune.backend.time_keeper import TimeKeeper

    class EpochClock(TimeKeeper):
        def __init__(self):
            self.now = 0.0
            self._origin = datetime(2000, 1, 1)

        def start_of_time(self):
            self.now = 0.0

        def time(self) -> float:
            return self.now

        def time_stamp(self) -> datetime:
            return self._origin + timedelta(seconds=self.now)

        def advance(self, step: float):
            self.now += step

    return EpochClock()


class _SyneTune(PeerSearcher):
    library = "syne-tune"
    baseline = ""  # class name in syne_tune.optimizer.baselines
    search_options: dict = {}  # the searcher's options where the adapter departs from syne-tune's defaults

    def __init__(self, problem: Problem, rng: np.random.Generator, eta: int = 3, min_epochs: float | None = None):
        super().__init__(problem, rng)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints which optional extras it lacks
            from syne_tune.backend.trial_status import Trial
            from syne_tune.optimizer.schedulers.searchers.bayesopt.gpautograd.gluon import NameManager

        # Every call into syne-tune runs inside it: the searcher's own parameter names (module docstring).
        self._parameter_names = NameManager()
        with self._parameter_names:
            self._build(problem, eta, min_epochs)
        self._make_trial = Trial
        self._trials: dict[int, object] = {}
        self._reported: dict[int, int] = {}  # trial id -> last epoch reported to the scheduler
        self._next_id = 0

    def _build(self, problem: Problem, eta: int, min_epochs: float | None) -> None:
        from syne_tune.config_space import choice
        from syne_tune.optimizer import baselines

        self.eta, self.min_epochs = bracket_settings(problem, eta, min_epochs, needs_two_fidelities=False)
        max_epochs = problem.max_epochs
        logging.getLogger("syne_tune").setLevel(logging.ERROR)
        config_space = {name: choice(list(choices)) for name, choices in self.codec.parameters}
        config_space[MAX_RESOURCE] = max_epochs
        self._clock = _epoch_clock()
        self._clock.start_of_time()
        self.scheduler = getattr(baselines, self.baseline)(
            config_space, metric=METRIC, mode="min", resource_attr=RESOURCE, max_resource_attr=MAX_RESOURCE,
            grace_period=max(1, int(round(self.min_epochs))), random_seed=self.seed,
            **self._scheduler_options())
        # After construction: syne-tune 0.13 cannot take a time keeper in the constructor.
        self.scheduler.set_time_keeper(self._clock)

    def _scheduler_options(self) -> dict:
        options = {"type": "promotion", "reduction_factor": self.eta}
        return {**options, "search_options": dict(self.search_options)} if self.search_options else options

    def _propose(self) -> Proposal | None:
        with self._parameter_names:
            return self._propose_in_library()

    def _propose_in_library(self) -> Proposal | None:
        suggestion = self.scheduler.suggest(self._next_id)
        if suggestion is None:
            return None
        if suggestion.spawn_new_trial_id:
            trial_id = self._next_id
            self._next_id += 1
            trial = self._make_trial(trial_id=trial_id, config=suggestion.config,
                                     creation_time=self._clock.time_stamp())
            self._trials[trial_id] = trial
            self._reported[trial_id] = 0
            self.scheduler.on_trial_add(trial)
            continues = False
        else:
            trial_id = suggestion.checkpoint_trial_id
            trial = self._trials[trial_id]
            if suggestion.config is not None:
                trial.config = suggestion.config
            continues = True
        arch = self.codec.to_arch(trial.config)
        return Proposal(arch, float(trial.config[MAX_RESOURCE]), trial_id, continues=continues, handle=trial)

    def _report(self, proposal: Proposal, observation: Observation) -> None:
        with self._parameter_names:
            self._report_in_library(proposal, observation)

    def _report_in_library(self, proposal: Proposal, observation: Observation) -> None:
        from syne_tune.optimizer.scheduler import SchedulerDecision

        trial, trial_id = proposal.handle, proposal.trial
        values = observation.values
        decision, result = SchedulerDecision.CONTINUE, None
        for epoch, value in zip(observation.epochs, values):
            epoch = int(epoch)
            if epoch <= self._reported[trial_id] or np.isnan(value):
                continue
            self._clock.advance(epoch - self._reported[trial_id])
            self._reported[trial_id] = epoch
            result = {RESOURCE: epoch, METRIC: -self.score(float(value)), MAX_RESOURCE: trial.config[MAX_RESOURCE]}
            decision = self.scheduler.on_trial_result(trial, result)
            if decision != SchedulerDecision.CONTINUE:
                break
        if observation.failed:
            self.scheduler.on_trial_error(trial)
        elif decision == SchedulerDecision.CONTINUE and result is not None:
            # The trial's script ran to the epochs it was given and ended: the Tuner would complete it.
            self.scheduler.on_trial_complete(trial, result)


class SyneTuneASHA(_SyneTune):
    """syne-tune's ASHA (promotion type, random search)."""

    baseline = "ASHA"


class SyneTuneBOHB(_SyneTune):
    """syne-tune's asynchronous BOHB: ASHA promotion with a multi-fidelity KDE searcher."""

    baseline = "BOHB"


class SyneTuneMOBSTER(_SyneTune):
    """syne-tune's MOBSTER: ASHA promotion with a multi-task GP searcher."""

    baseline = "MOBSTER"
    slow = True  # a Gaussian process refit on every suggestion (every 3rd past 150 observations)
    search_options = {"opt_skip_period": GP_OPT_SKIP_PERIOD}


class SyneTuneHyperTune(_SyneTune):
    """syne-tune's Hyper-Tune: several brackets sampled by a model, independent GPs per rung ensembled."""

    baseline = "HyperTune"
    slow = True
    search_options = {"opt_skip_period": GP_OPT_SKIP_PERIOD}


class SyneTuneDyHPO(_SyneTune):
    """syne-tune's DyHPO: linear rungs, promotion decisions folded into the GP acquisition."""

    baseline = "DyHPO"
    slow = True

    def _scheduler_options(self) -> dict:
        return {}
